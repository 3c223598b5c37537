//! Alerts: one out-of-band message per run listing every credential that needs a
//! human, through one [`Notifier`] per channel ([`webhook`], [`email`]). The exit
//! code is always on; a notifier only adds to it.
//!
//! What a run sends is decided here, from the run's results and the alert state
//! ([`state`]): nothing when nothing needs attention; the whole list when a problem
//! is new, changed, escalated or due again (`repeat_hours`); a short "recovered"
//! line for a credential alerted on before that is healthy now.
//!
//! An alert never carries a secret, not even a token prefix: it is built from
//! platform, account, state, plain-words problem, date and fix command only, and
//! every known secret (or JWT) in the problem text is replaced by `[token]`. A
//! webhook URL is itself a secret and is shown as scheme and host only.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::report::{AccountResult, AlertReport, Fix, RunReport, State};
use crate::section::{Ctx, Site};

pub mod email;
pub mod state;
pub mod webhook;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    #[serde(default)]
    pub backend: Backend,
    /// Re-send an unchanged problem at most this often.
    #[serde(default = "default_repeat_hours")]
    pub repeat_hours: u64,
    #[serde(default)]
    pub webhook: Option<webhook::Config>,
    #[serde(default)]
    pub email: Option<email::Config>,
}

fn default_repeat_hours() -> u64 {
    24
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            backend: Backend::None,
            repeat_hours: default_repeat_hours(),
            webhook: None,
            email: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    None,
    Webhook,
    Email,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::None => "none",
            Backend::Webhook => "webhook",
            Backend::Email => "email",
        }
    }
}

/// One channel an alert can go through.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    /// The backend's name, as in the config (`webhook`, `email`).
    fn backend(&self) -> &'static str;
    /// Where it sends, safe to show: `slack webhook https://hooks.slack.com/…`.
    fn describe(&self) -> String;
    /// Delivers the alert; the error says what failed and where (never a secret).
    async fn send(&self, alert: &Alert) -> std::result::Result<(), String>;
    /// What the last successful `send` achieved: `delivered`, or `accepted` when
    /// the service only queued it (a Teams Workflows trigger answers 202 before
    /// the flow posts to the channel).
    fn last_outcome(&self) -> &'static str {
        "delivered"
    }
}

/// `auth.alerts`, resolved once when the config loads: the channel (if any) with
/// its checked settings, and how often an unchanged problem is repeated.
#[derive(Debug)]
pub struct Alerts {
    pub channel: Option<AlertChannel>,
    pub repeat_hours: u64,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            channel: None,
            repeat_hours: default_repeat_hours(),
        }
    }
}

/// One configured alert channel and its settings.
#[derive(Debug)]
pub enum AlertChannel {
    Webhook(webhook::Settings),
    Email(email::Settings),
}

impl Alerts {
    pub fn resolve(c: &AlertsConfig, site: &Site) -> Result<Alerts> {
        if c.repeat_hours == 0 {
            return Err(site
                .error_at("auth.alerts.repeat_hours", "must be at least 1")
                .with_hint("the default, 24, re-sends an unchanged problem once a day"));
        }
        let channel = match c.backend {
            Backend::None => None,
            Backend::Webhook => Some(AlertChannel::Webhook(webhook::Settings::resolve(
                c.webhook.as_ref(),
                site,
            )?)),
            Backend::Email => Some(AlertChannel::Email(email::Settings::resolve(
                c.email.as_ref(),
                site,
            )?)),
        };
        Ok(Alerts {
            channel,
            repeat_hours: c.repeat_hours,
        })
    }

    pub fn backend(&self) -> Backend {
        match &self.channel {
            None => Backend::None,
            Some(AlertChannel::Webhook(_)) => Backend::Webhook,
            Some(AlertChannel::Email(_)) => Backend::Email,
        }
    }

    /// Builds the notifier. `Ok(None)` for `backend: none`; a setting the
    /// environment must supply (the webhook URL, the SMTP login) that is missing
    /// or unusable is a config error.
    pub fn notifier(&self, ctx: &Ctx) -> Result<Option<Box<dyn Notifier>>> {
        Ok(match &self.channel {
            None => None,
            Some(AlertChannel::Webhook(s)) => Some(Box::new(webhook::Webhook::open(s, ctx)?)),
            Some(AlertChannel::Email(s)) => Some(Box::new(email::Email::open(s, ctx)?)),
        })
    }

    /// For `auth test-alert`: the notifier, or a config error (exit 2) saying why not.
    pub fn require_notifier(&self, ctx: &Ctx) -> Result<Box<dyn Notifier>> {
        self.notifier(ctx)?.ok_or_else(|| {
            ctx.error_at("auth.alerts.backend", "is `none`: there is nowhere to send an alert")
                .with_hint("set `auth.alerts.backend: webhook` (with `webhook: { url: … }` or ALERT_WEBHOOK_URL) or `email` (with an `email:` block); the README shows both")
        })
    }
}

/// How close the deadline is; decides the wording and re-sends on escalation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// A problem with a deadline more than a week away (or none).
    Notice,
    /// The deadline is 7 days away or less.
    Soon,
    /// The deadline is a day away or less, or past, or a re-auth is needed now.
    Urgent,
}

impl Level {
    pub fn of(state: State, days_left: Option<i64>) -> Level {
        match days_left {
            Some(d) if d <= 1 => Level::Urgent,
            Some(d) if d <= 7 => Level::Soon,
            Some(_) => Level::Notice,
            None if state == State::ReauthRequired => Level::Urgent,
            None => Level::Notice,
        }
    }

    /// The word in front of a headline.
    pub fn tag(self) -> &'static str {
        match self {
            Level::Notice => "Action needed",
            Level::Soon => "Action needed soon",
            Level::Urgent => "URGENT",
        }
    }
}

/// One credential that needs a human.
#[derive(Clone, Debug)]
pub struct Item {
    /// `linkedin` or `tiktok:brand-a`: the alert state's key.
    pub key: String,
    /// `LinkedIn`.
    pub platform: String,
    /// `None`: the platform's single, unnamed account.
    pub account: Option<String>,
    pub state: State,
    /// The problem in plain words (known secrets replaced by `[token]`).
    pub problem: String,
    /// The date (UTC) by which a human must re-authorise.
    pub reauth_by: Option<Date>,
    /// Whole days from today (UTC) to `reauth_by`; negative when past.
    pub days_left: Option<i64>,
    /// What fixes it: a command, or advice in words (known secrets replaced).
    pub fix: Option<Fix>,
    pub level: Level,
}

impl Item {
    pub fn from_result(r: &AccountResult, now: Timestamp) -> Item {
        let days_left = r.reauth_by.map(|d| days_between(now, d));
        let fix = match &r.fix {
            Some(Fix::Run(c)) => Some(Fix::Run(crate::scrub::hidden(c))),
            Some(Fix::Advice(a)) => Some(Fix::Advice(crate::scrub::hidden(a))),
            None => matches!(r.state, State::ReauthRequired).then(|| {
                Fix::Run(match &r.account {
                    None => format!("evertoken auth login {}", r.platform),
                    Some(a) => format!("evertoken auth login {} --account {a}", r.platform),
                })
            }),
        };
        Item {
            key: r.account_label(),
            platform: r.platform.display_name().to_owned(),
            account: r.account.clone(),
            state: r.state,
            problem: crate::scrub::hidden(&r.problem),
            reauth_by: r.reauth_by,
            days_left,
            fix,
            level: Level::of(r.state, days_left),
        }
    }

    /// `LinkedIn` or `TikTok (brand-a)`.
    pub fn who(&self) -> String {
        who(&self.platform, self.account.as_deref())
    }

    /// The fix for a chat message: a command as `code`, advice as words, each
    /// through the channel's `escape`.
    pub fn fix_markdown(&self, escape: impl Fn(&str) -> String) -> Option<String> {
        self.fix.as_ref().map(|f| match f {
            Fix::Run(c) => format!("`{}`", escape(c)),
            Fix::Advice(a) => escape(a),
        })
    }

    /// `2026-11-28 (Saturday 28 November, in 5 days)`, or `now`.
    pub fn deadline(&self) -> String {
        match (self.reauth_by, self.days_left) {
            (Some(d), Some(n)) => format!("{d} ({})", friendly(d, n)),
            (Some(d), None) => d.to_string(),
            (None, _) if self.state == State::ReauthRequired => "now".to_owned(),
            (None, _) => "none".to_owned(),
        }
    }

    /// `needs re-auth by 2026-11-28` / `refresh failed` …: the state in words.
    pub fn state_words(&self) -> &'static str {
        match self.state {
            State::ReauthRequired => "re-authorisation required",
            State::Expiring => "expiring",
            State::Failed => "refresh failed",
            State::Unknown => "outcome unknown",
            State::Ok | State::Refreshed | State::Rotated => "healthy",
        }
    }
}

/// A credential alerted on before that is healthy now.
#[derive(Clone, Debug)]
pub struct Recovered {
    pub key: String,
    pub who: String,
    pub state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertKind {
    /// A real run's alert.
    Run,
    /// `auth test-alert`: a sample, marked as such.
    Test,
}

/// The message of one run, in a channel-neutral form each notifier renders.
#[derive(Clone, Debug)]
pub struct Alert {
    pub kind: AlertKind,
    pub items: Vec<Item>,
    pub recovered: Vec<Recovered>,
}

impl Alert {
    /// The most pressing level among the items.
    pub fn level(&self) -> Option<Level> {
        self.items.iter().map(|i| i.level).max()
    }

    /// The item with the earliest deadline.
    pub fn earliest(&self) -> Option<&Item> {
        self.items
            .iter()
            .filter(|i| i.reauth_by.is_some())
            .min_by_key(|i| i.reauth_by)
    }

    /// One line: the title of a chat message, the subject of an email.
    pub fn headline(&self) -> String {
        let test = if self.kind == AlertKind::Test {
            "[TEST] "
        } else {
            ""
        };
        let Some(level) = self.level() else {
            let n = self.recovered.len();
            return format!(
                "{test}evertoken: {} recovered",
                plural(n, "credential", "credentials")
            );
        };
        let n = self.items.len();
        let what = if n == 1 {
            let i = &self.items[0];
            match (&i.reauth_by, i.state) {
                (Some(d), State::ReauthRequired | State::Expiring) => {
                    format!("{} must be re-authorised by {d}", i.who())
                }
                (None, State::ReauthRequired) => format!("{} must be re-authorised now", i.who()),
                _ => format!("{}: {}", i.who(), i.state_words()),
            }
        } else {
            let mut s = format!("{n} credentials need attention");
            if let Some(e) = self.earliest().and_then(|e| e.reauth_by) {
                s.push_str(&format!(", earliest deadline {e}"));
            }
            s
        };
        format!("{test}{}: {what}", level.tag())
    }

    /// The plain-text body (email; the fallback text of chat messages).
    pub fn plain_text(&self) -> String {
        let mut out = String::new();
        if self.kind == AlertKind::Test {
            out.push_str(
                "This is a test alert from `evertoken auth test-alert`: if you can read it, alert delivery works.\nThe entry below is a sample, not a real problem.\n\n",
            );
        }
        if !self.items.is_empty() {
            out.push_str(&format!(
                "evertoken found {} that {} a human:\n\n",
                plural(self.items.len(), "credential", "credentials"),
                if self.items.len() == 1 {
                    "needs"
                } else {
                    "need"
                }
            ));
        }
        for i in &self.items {
            out.push_str(&format!(
                "* {} [{}]: {}\n",
                i.who(),
                i.state.as_str(),
                i.problem
            ));
            out.push_str(&format!("  Re-auth by: {}\n", i.deadline()));
            if let Some(f) = &i.fix {
                out.push_str(&format!("  Fix: {f}\n"));
            }
            out.push('\n');
        }
        if !self.recovered.is_empty() {
            out.push_str("Recovered (no action needed any more):\n");
            for r in &self.recovered {
                out.push_str(&format!("* {} is {} again\n", r.who, r.state.as_str()));
            }
            out.push('\n');
        }
        out.push_str("-- evertoken (sent once per run; an unchanged problem is repeated at most every auth.alerts.repeat_hours)\n");
        out
    }
}

/// The sample `auth test-alert` sends.
pub fn sample(now: Timestamp) -> Alert {
    let by = now
        .checked_add(jiff::SignedDuration::from_hours(5 * 24))
        .unwrap_or(now);
    let reauth_by = crate::report::utc_date(by);
    let days_left = Some(days_between(now, reauth_by));
    Alert {
        kind: AlertKind::Test,
        items: vec![Item {
            key: "linkedin:example".into(),
            platform: "LinkedIn".into(),
            account: Some("example".into()),
            state: State::ReauthRequired,
            problem: "sample: the access token expires in 5 days; LinkedIn cannot refresh it without a partner refresh token".into(),
            reauth_by: Some(reauth_by),
            days_left,
            fix: Some(Fix::Run(
                "evertoken auth login linkedin --account example".into(),
            )),
            level: Level::of(State::ReauthRequired, days_left),
        }],
        recovered: Vec::new(),
    }
}

/// `LinkedIn` or `TikTok (brand-a)`.
fn who(platform: &str, account: Option<&str>) -> String {
    match account {
        None => platform.to_owned(),
        Some(a) => format!("{platform} ({a})"),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Whole days from today (UTC) to `d`.
fn days_between(now: Timestamp, d: Date) -> i64 {
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    i64::from((d - today).get_days())
}

/// `Saturday 28 November, in 5 days` / `today` / `3 days ago`.
fn friendly(date: Date, days_left: i64) -> String {
    let long = date.strftime("%A %-d %B").to_string();
    let rel = match days_left {
        0 => "today".to_owned(),
        1 => "tomorrow".to_owned(),
        -1 => "yesterday".to_owned(),
        n if n > 1 => format!("in {n} days"),
        n => format!("{} days ago", -n),
    };
    if long.is_empty() {
        rel
    } else {
        format!("{long}, {rel}")
    }
}

/// Sends the run's alert (if the backend is not `none`, the run is not a dry-run,
/// and something needs attention or recovered), and records the delivery in
/// `report.alert`. Never fails the run by itself: a failed delivery is reported
/// in `report.alert` (which makes the exit code 1).
pub async fn dispatch(
    alerts: &Alerts,
    ctx: &Ctx<'_>,
    dir: &Path,
    report: &mut RunReport,
    clock: Clock,
) {
    let backend = alerts.backend();
    if backend == Backend::None || report.dry_run {
        return;
    }
    let now = clock.now();
    let items: Vec<Item> = report
        .results
        .iter()
        .filter(|r| r.attention)
        .map(|r| Item::from_result(r, now))
        .collect();
    let healthy: Vec<(String, String, State)> = report
        .results
        .iter()
        .filter(|r| !r.attention)
        .map(|r| {
            let who = who(r.platform.display_name(), r.account.as_deref());
            (r.account_label(), who, r.state)
        })
        .collect();

    let path = dir.join(state::FILE_NAME);
    let fail = |report: &mut RunReport, error: String| {
        report.alert = Some(AlertReport {
            backend: backend.name().to_owned(),
            delivered: false,
            error: Some(error),
        });
    };
    // One run at a time decides and records, so two runners do not both re-send.
    let _lock = match crate::lock::FileLock::acquire(
        dir.join("locks").join("alerts.lock"),
        Duration::from_secs(60),
    )
    .await
    {
        Ok(l) => l,
        Err(e) => return fail(report, format!("cannot lock the alert state: {e}")),
    };
    let (mut st, note) = state::AlertState::load(&path);
    if let Some(n) = note {
        report.notices.push(n);
    }
    // Capped (a century) so that no configured value can overflow.
    let hours = alerts.repeat_hours.min(876_000);
    let repeat = jiff::SignedDuration::from_hours(i64::try_from(hours).unwrap_or(876_000));
    let decision = st.decide(&items, &healthy, now, repeat);
    if !decision.send {
        if !items.is_empty() {
            report.notices.push(format!(
                "alert not re-sent: the same {} already alerted on within auth.alerts.repeat_hours ({}h)",
                if items.len() == 1 { "problem was" } else { "problems were" },
                alerts.repeat_hours
            ));
        }
        return;
    }
    let alert = Alert {
        kind: AlertKind::Run,
        items,
        recovered: decision.recovered,
    };
    let notifier = match alerts.notifier(ctx) {
        Ok(Some(n)) => n,
        Ok(None) => return,
        Err(e) => {
            let msg = match e.hint {
                Some(h) => format!("{} ({h})", e.message),
                None => e.message,
            };
            return fail(report, msg);
        }
    };
    match notifier.send(&alert).await {
        Ok(()) => {
            if notifier.last_outcome() == "accepted" {
                report.notices.push(format!(
                    "the {} accepted the alert (202); the workflow posts it to the channel afterwards",
                    notifier.describe()
                ));
            }
            st.record_sent(&alert, now);
            if let Err(e) = st.save(&path) {
                // Delivered, but the next run may repeat it: say so, do not fail.
                report.notices.push(format!(
                    "the alert was sent but its state could not be saved to {}: {e}",
                    path.display()
                ));
            }
            report.alert = Some(AlertReport {
                backend: backend.name().to_owned(),
                delivered: true,
                error: None,
            });
        }
        Err(e) => fail(report, crate::scrub::external(&e).into_owned()),
    }
}

/// An [`Error`] for a delivery that failed in `auth test-alert`.
pub fn delivery_error(n: &dyn Notifier, e: String) -> Error {
    let hint = match n.backend() {
        "email" => {
            "check host, port, tls, ca_file and ALERT_SMTP_USERNAME / ALERT_SMTP_PASSWORD; `-v` shows each attempt"
        }
        _ => {
            "check the webhook URL and `format`, and that this machine can reach the service; `-v` shows each attempt"
        }
    };
    Error::failed(format!(
        "the test alert could not be delivered: {}",
        crate::scrub::external(&e)
    ))
    .with_hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_replace_known_secrets_without_a_prefix() {
        crate::scrub::register("alert-scrub-test-token-0123456789");
        let p = crate::scrub::hidden("token alert-scrub-test-token-0123456789 was revoked");
        assert_eq!(p, "token [token] was revoked");
        // Words that merely contain an ellipsis are left alone.
        assert_eq!(
            crate::scrub::hidden("expires in 5 days…"),
            "expires in 5 days…"
        );
    }

    #[test]
    fn an_item_carries_the_problem_the_date_and_the_command_separately() {
        let now: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let i = Item::from_result(&crate::report::tests::reauth_result(None), now);
        assert_eq!(i.problem, "the access token expires 2026-11-28 (5 days)");
        assert_eq!(i.reauth_by, Some(jiff::civil::date(2026, 11, 28)));
        assert_eq!(i.days_left, Some(5));
        assert_eq!(
            i.fix,
            Some(Fix::Run("evertoken auth login linkedin".into()))
        );
        assert_eq!(
            i.fix_markdown(str::to_owned).as_deref(),
            Some("`evertoken auth login linkedin`")
        );
        assert_eq!(i.who(), "LinkedIn");
        let named = Item::from_result(&crate::report::tests::reauth_result(Some("brand-a")), now);
        assert_eq!(named.who(), "LinkedIn (brand-a)");
        assert_eq!(named.key, "linkedin:brand-a");
    }

    #[test]
    fn levels_escalate_with_the_deadline() {
        assert_eq!(Level::of(State::ReauthRequired, Some(14)), Level::Notice);
        assert_eq!(Level::of(State::ReauthRequired, Some(7)), Level::Soon);
        assert_eq!(Level::of(State::ReauthRequired, Some(1)), Level::Urgent);
        assert_eq!(Level::of(State::ReauthRequired, Some(-3)), Level::Urgent);
        assert_eq!(Level::of(State::ReauthRequired, None), Level::Urgent);
        assert_eq!(Level::of(State::Failed, None), Level::Notice);
    }

    #[test]
    fn sample_headline_names_the_date() {
        let now: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let a = sample(now);
        let h = a.headline();
        assert!(
            h.starts_with(
                "[TEST] Action needed soon: LinkedIn (example) must be re-authorised by 2026-11-28"
            ),
            "{h}"
        );
        assert!(
            a.plain_text()
                .contains("2026-11-28 (Saturday 28 November, in 5 days)"),
            "{}",
            a.plain_text()
        );
    }
}
