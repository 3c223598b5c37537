//! The result of a run, one [`AccountResult`] per (platform, account): the same
//! structs feed the table, the JSON document (SPEC §1), alerts and metrics.
//! Nothing here holds a secret; tokens appear only as [`Prefix`]es.

use jiff::Timestamp;
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

#[derive(Clone, Debug, Serialize)]
pub struct AccountResult {
    pub platform: Platform,
    pub account: String,
    pub state: State,
    /// What was done, or (dry-run) would be done.
    pub action: String,
    #[serde(serialize_with = "ser_ts")]
    pub expires_at: Option<Timestamp>,
    #[serde(serialize_with = "ser_ts")]
    pub refresh_expires_at: Option<Timestamp>,
    pub message: String,
    /// `YYYY-MM-DD` (UTC): the date by which a human must re-authorise.
    pub reauth_by: Option<String>,
    /// The command that fixes it, when a human must act.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    pub credentials: Vec<CredentialReport>,
    /// Whether this result needs a human (also counts towards `attention`).
    #[serde(skip)]
    pub attention: bool,
    /// Warnings (e.g. an environment variable shadows the stored value).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl AccountResult {
    pub fn account_label(&self) -> String {
        if self.account == "default" {
            self.platform.to_string()
        } else {
            format!("{}:{}", self.platform, self.account)
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
        results.sort_by(|a, b| (a.platform, &a.account).cmp(&(b.platform, &b.account)));
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

    /// SPEC §1: 0 healthy, 1 something needs attention (or the alert failed).
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
