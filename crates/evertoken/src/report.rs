//! The result of a run, one [`AccountResult`] per (platform, account): the same
//! structs feed the table, the `--json` document CI pipelines parse, alerts,
//! metrics and MCP. Outcomes are typed ([`State`], [`Action`], a date, a [`Fix`]);
//! their words are made only where they are shown, and the JSON form (keys,
//! types, the state and action words) is a stable contract pinned by
//! `tests/json_contract.rs`. Nothing here holds a secret; tokens appear only as
//! [`Prefix`]es.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

use crate::platform::Platform;
use crate::secret::{Prefix, Source};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Ok,
    Refreshed,
    Rotated,
    Expiring,
    ReauthRequired,
    Failed,
    Unknown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Refreshed => "refreshed",
            State::Rotated => "rotated",
            State::Expiring => "expiring",
            State::ReauthRequired => "reauth_required",
            State::Failed => "failed",
            State::Unknown => "unknown",
        }
    }

    /// Whether this state, reported by a real run, needs a human.
    pub fn needs_attention(self) -> bool {
        matches!(
            self,
            State::Expiring | State::ReauthRequired | State::Failed | State::Unknown
        )
    }
}

/// One variable of an account, as `status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct CredentialReport {
    pub var: String,
    pub present: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Prefix>,
    #[serde(serialize_with = "ser_ts")]
    pub expires_at: Option<Timestamp>,
    #[serde(serialize_with = "ser_ts")]
    pub updated_at: Option<Timestamp>,
}

/// What a run did (or, dry-run and `status`, would do) about one account: the
/// `action` column and JSON field. The words are part of the JSON contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing was (or needs to be) done.
    None,
    /// A human must log in again.
    Reauthorise,
    /// `status`: the next `auth refresh` refreshes it.
    RefreshDue,
    /// `status`: the next `auth refresh` health-checks the refresh token.
    HealthCheckOnRefresh,
    /// `status`: the expiry is known only after asking the provider.
    IntrospectOnRefresh,
    /// Another run refreshed it while this one waited for the lock.
    Skipped,
    /// A write-back an earlier run left in the journal was finished.
    FinishedWriteBack,
    /// The store's pre-flight check failed, so nothing was rotated.
    PreflightFailed,
    /// A rotating call's outcome is unknown, so nothing was stored.
    OutcomeUnknown,
    Rotated,
    NewAccessToken,
    RefreshedInPlace,
    HealthChecked,
    WouldRotate,
    WouldRenewAccessToken,
    WouldRefreshInPlace,
    WouldHealthCheck,
    /// A signal stopped the run before this account's provider call.
    Interrupted,
    /// The provider answered but the write-back failed; the journal holds it.
    WriteBackPending(Box<Action>),
    /// Dry-run: a journaled write-back would be finished first.
    FinishPendingThen(Box<Action>),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = match self {
            Action::None => "none",
            Action::Reauthorise => "re-authorise",
            Action::RefreshDue => "refresh due",
            Action::HealthCheckOnRefresh => "health-check on refresh",
            Action::IntrospectOnRefresh => "introspect on refresh",
            Action::Skipped => "skipped",
            Action::FinishedWriteBack => "finished write-back",
            Action::PreflightFailed => "none (pre-flight failed)",
            Action::OutcomeUnknown => "none (outcome unknown)",
            Action::Rotated => "rotated",
            Action::NewAccessToken => "new access token",
            Action::RefreshedInPlace => "refreshed in place",
            Action::HealthChecked => "health-checked",
            Action::WouldRotate => "would rotate",
            Action::WouldRenewAccessToken => "would renew access token",
            Action::WouldRefreshInPlace => "would refresh in place",
            Action::WouldHealthCheck => "would health-check",
            Action::Interrupted => "interrupted",
            Action::WriteBackPending(done) => return write!(f, "{done}, write-back pending"),
            Action::FinishPendingThen(then) => {
                return write!(f, "would finish a pending write-back, then {then}");
            }
        };
        f.write_str(word)
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a human does about a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fix {
    /// Run exactly this command (`evertoken auth login linkedin`).
    Run(String),
    /// Advice in words (it may quote a command).
    Advice(String),
}

impl Fix {
    /// The command, when the fix is one.
    pub fn command(&self) -> Option<&str> {
        match self {
            Fix::Run(c) => Some(c),
            Fix::Advice(_) => None,
        }
    }
}

impl std::fmt::Display for Fix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fix::Run(c) => f.write_str(c),
            Fix::Advice(a) => f.write_str(a),
        }
    }
}

impl Serialize for Fix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The account's name in the JSON document and the table: `default` for the
/// unnamed account of a platform that lists no `accounts:`.
pub const UNNAMED: &str = "default";

/// One (platform, account) outcome. Its fields are data; the words a human or a
/// parser reads are made where they are shown (the table in `render`, alerts,
/// metrics, MCP, and this type's JSON form).
#[derive(Clone, Debug)]
pub struct AccountResult {
    pub platform: Platform,
    /// `None`: the platform's single, unnamed account.
    pub account: Option<String>,
    pub state: State,
    /// What was done, or (dry-run) would be done.
    pub action: Action,
    pub expires_at: Option<Timestamp>,
    pub refresh_expires_at: Option<Timestamp>,
    /// The problem or outcome in plain words, without the deadline and the fix
    /// (those are fields of their own; [`AccountResult::message`] joins them).
    pub problem: String,
    /// The date (UTC) by which a human must re-authorise.
    pub reauth_by: Option<Date>,
    /// What fixes it, when a human must act.
    pub fix: Option<Fix>,
    pub credentials: Vec<CredentialReport>,
    /// Whether this result needs a human (also counts towards `attention`).
    pub attention: bool,
    /// Warnings (e.g. an environment variable shadows the stored value).
    pub warnings: Vec<String>,
    /// An access token the refresh produced that no slot keeps (YouTube's
    /// hour-long ones): handed to `auth token`, never stored, shown or serialised.
    pub minted: Option<crate::provider::NewToken>,
}

/// The JSON form: `platform`, `account` (`default` for the unnamed one),
/// `state`, `action`, `expires_at`, `refresh_expires_at`, `message` (the
/// problem with its deadline and fix), `reauth_by` (`YYYY-MM-DD`), then `fix`
/// and `warnings` when there are any, and `credentials`.
impl Serialize for AccountResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let ts = |t: Option<Timestamp>| t.map(crate::clock::rfc3339);
        let mut m = s.serialize_struct("AccountResult", 12)?;
        m.serialize_field("platform", &self.platform)?;
        m.serialize_field("account", self.account_name())?;
        m.serialize_field("state", &self.state)?;
        m.serialize_field("action", &self.action)?;
        m.serialize_field("expires_at", &ts(self.expires_at))?;
        m.serialize_field("refresh_expires_at", &ts(self.refresh_expires_at))?;
        m.serialize_field("message", &self.message())?;
        m.serialize_field("reauth_by", &self.reauth_by.map(|d| d.to_string()))?;
        match &self.fix {
            Some(f) => m.serialize_field("fix", f)?,
            None => m.skip_field("fix")?,
        }
        m.serialize_field("credentials", &self.credentials)?;
        if self.warnings.is_empty() {
            m.skip_field("warnings")?;
        } else {
            m.serialize_field("warnings", &self.warnings)?;
        }
        m.end()
    }
}

impl AccountResult {
    /// `linkedin` or `tiktok:brand-a`.
    pub fn account_label(&self) -> String {
        match &self.account {
            None => self.platform.to_string(),
            Some(a) => format!("{}:{a}", self.platform),
        }
    }

    /// The account's name as shown: `default` for the unnamed one.
    pub fn account_name(&self) -> &str {
        self.account.as_deref().unwrap_or(UNNAMED)
    }

    /// The whole message: the problem, then, when a human must log in by a date,
    /// `re-auth by DATE with `COMMAND``.
    pub fn message(&self) -> String {
        match (self.reauth_by, self.fix.as_ref().and_then(Fix::command)) {
            (Some(by), Some(cmd)) => {
                format!("{}; re-auth by {by} with `{cmd}`", self.problem)
            }
            _ => self.problem.clone(),
        }
    }
}

/// Where a client secret came from (never its value).
#[derive(Clone, Debug, Serialize)]
pub struct SecretReport {
    pub var: String,
    pub present: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// Delivery of the run's alert.
#[derive(Clone, Debug, Serialize)]
pub struct AlertReport {
    pub backend: String,
    pub delivered: bool,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub version: u32,
    pub dry_run: bool,
    pub results: Vec<AccountResult>,
    pub attention: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertReport>,
    #[serde(serialize_with = "ser_ts_req")]
    pub generated_at: Timestamp,
}

impl RunReport {
    pub fn new(dry_run: bool, mut results: Vec<AccountResult>, now: Timestamp) -> Self {
        results.sort_by(|a, b| (a.platform, a.account_name()).cmp(&(b.platform, b.account_name())));
        let attention = results.iter().filter(|r| r.attention).count();
        Self {
            version: 1,
            dry_run,
            results,
            attention,
            secrets: Vec::new(),
            notices: Vec::new(),
            alert: None,
            generated_at: now,
        }
    }

    /// The exit code: 0 healthy, 1 something needs attention (or the alert failed).
    pub fn exit_code(&self) -> u8 {
        let alert_failed = self.alert.as_ref().is_some_and(|a| !a.delivered);
        u8::from(self.attention > 0 || alert_failed)
    }
}

fn ser_ts<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&crate::clock::rfc3339(*t)),
        None => s.serialize_none(),
    }
}

fn ser_ts_req<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::clock::rfc3339(*t))
}

/// The calendar date of `t` in UTC: the form of `reauth_by`.
pub fn utc_date(t: Timestamp) -> Date {
    t.to_zoned(jiff::tz::TimeZone::UTC).date()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A LinkedIn result that needs a re-auth by 2026-11-28, for tests.
    pub(crate) fn reauth_result(account: Option<&str>) -> AccountResult {
        AccountResult {
            platform: Platform::builtin("linkedin").unwrap(),
            account: account.map(str::to_owned),
            state: State::ReauthRequired,
            action: Action::Reauthorise,
            expires_at: Some("2026-11-28T09:00:00Z".parse().unwrap()),
            refresh_expires_at: None,
            problem: "the access token expires 2026-11-28 (5 days)".into(),
            reauth_by: Some(jiff::civil::date(2026, 11, 28)),
            fix: Some(Fix::Run("evertoken auth login linkedin".into())),
            credentials: Vec::new(),
            attention: true,
            minted: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn actions_keep_their_words() {
        assert_eq!(Action::None.to_string(), "none");
        assert_eq!(Action::Reauthorise.to_string(), "re-authorise");
        assert_eq!(
            Action::PreflightFailed.to_string(),
            "none (pre-flight failed)"
        );
        assert_eq!(
            Action::WriteBackPending(Box::new(Action::Rotated)).to_string(),
            "rotated, write-back pending"
        );
        assert_eq!(
            Action::FinishPendingThen(Box::new(Action::WouldRotate)).to_string(),
            "would finish a pending write-back, then would rotate"
        );
    }

    #[test]
    fn the_message_joins_problem_deadline_and_command_only_for_a_login() {
        let mut r = reauth_result(None);
        assert_eq!(
            r.message(),
            "the access token expires 2026-11-28 (5 days); re-auth by 2026-11-28 with `evertoken auth login linkedin`"
        );
        r.fix = Some(Fix::Advice("check the store".into()));
        assert_eq!(r.message(), "the access token expires 2026-11-28 (5 days)");
        r.fix = None;
        assert_eq!(r.message(), r.problem);
    }

    #[test]
    fn json_keeps_the_default_account_name_and_string_values() {
        let v = serde_json::to_value(reauth_result(None)).unwrap();
        assert_eq!(v["account"], "default");
        assert_eq!(v["reauth_by"], "2026-11-28");
        assert_eq!(v["fix"], "evertoken auth login linkedin");
        assert_eq!(v["action"], "re-authorise");
        assert_eq!(v["expires_at"], "2026-11-28T09:00:00Z");
        assert!(v["refresh_expires_at"].is_null());
        assert!(v.get("warnings").is_none());
        let named = serde_json::to_value(reauth_result(Some("brand-a"))).unwrap();
        assert_eq!(named["account"], "brand-a");
        assert_eq!(
            reauth_result(Some("brand-a")).account_label(),
            "linkedin:brand-a"
        );
        assert_eq!(reauth_result(None).account_label(), "linkedin");
    }
}
