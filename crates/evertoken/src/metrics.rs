//! Prometheus metrics files (`--metrics-file PATH`), in the text exposition format
//! for node_exporter's textfile collector: written to a temp file in the same
//! directory and renamed over the old one, so the collector never reads half a file.
//!
//! What it exports, from a [`RunReport`] (or, for other commands such as
//! `github status`, from the same builder fed by hand):
//! - `evertoken_credential_expiry_timestamp_seconds{platform,account,credential}`
//!   for every credential whose expiry is known;
//! - `evertoken_credential_state{platform,account,state}`: 1 for the current state,
//!   0 for the others;
//! - `evertoken_refresh_total{platform,result}`: credentials handled by real
//!   `refresh` runs, by outcome. evertoken keeps no state between runs, so the
//!   counter is carried forward from the previous file at the same path;
//! - `evertoken_last_run_timestamp_seconds`, `evertoken_last_run_success`.
//!
//! Nothing here ever sees a secret: only names, states and timestamps.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use jiff::Timestamp;

use crate::error::{Error, Result};
use crate::report::{RunReport, State};

/// Every state a credential can be in, in the order the file lists them.
pub const STATES: &[State] = &[
    State::Ok,
    State::Refreshed,
    State::Rotated,
    State::Expiring,
    State::ReauthRequired,
    State::Failed,
    State::Unknown,
];

pub const EXPIRY: &str = "evertoken_credential_expiry_timestamp_seconds";
pub const STATE: &str = "evertoken_credential_state";
pub const REFRESH_TOTAL: &str = "evertoken_refresh_total";
pub const LAST_RUN: &str = "evertoken_last_run_timestamp_seconds";
pub const LAST_RUN_SUCCESS: &str = "evertoken_last_run_success";

/// The README's example Prometheus alert rules (tested with `promtool test rules`).
pub const EXAMPLE_ALERT_RULES: &str = r#"groups:
  - name: evertoken
    rules:
      - alert: EvertokenCredentialExpiresSoon
        expr: evertoken_credential_expiry_timestamp_seconds - time() < 7 * 86400
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.platform }}/{{ $labels.account }}: {{ $labels.credential }} expires in less than 7 days"
      - alert: EvertokenNeedsAttention
        expr: evertoken_credential_state{state=~"reauth_required|failed|unknown"} == 1
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.platform }}/{{ $labels.account }} is {{ $labels.state }}: run `evertoken auth refresh` and read its message"
      - alert: EvertokenNotRunning
        expr: time() - evertoken_last_run_timestamp_seconds{command="auth"} > 8 * 86400
        labels:
          severity: warning
        annotations:
          summary: "evertoken has not written its metrics for more than 8 days: is the schedule running?"
"#;

/// Which command produced the report: only a real `refresh` counts refreshes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    Refresh,
    Status,
}

/// The metrics of one run, before rendering.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    /// (platform, account, credential) → expiry.
    expiry: BTreeMap<(String, String, String), Timestamp>,
    /// (platform, account) → current state.
    states: BTreeMap<(String, String), State>,
    /// (platform, result) → count in this run.
    refreshes: BTreeMap<(String, String), u64>,
    /// Platforms whose refresh counters are shown even at zero.
    platforms: Vec<String>,
    /// The `command` label of the last-run gauges: `auth` or `github`, so that the
    /// files of both command families can sit side by side in one collector directory.
    command: &'static str,
    last_run: Option<(Timestamp, bool)>,
}

impl Metrics {
    /// Metrics of the `auth` commands.
    pub fn new() -> Self {
        Self::for_command("auth")
    }

    /// Metrics of another command family (`github`): its last-run gauges carry
    /// `command="github"`, so its file and the `auth` one never clash.
    pub fn for_command(command: &'static str) -> Self {
        Self {
            command,
            ..Self::default()
        }
    }

    /// A GitHub App installation token (`platform="github"`, `account` = app name,
    /// `credential="GITHUB_TOKEN"`), for `github status|refresh --metrics-file`.
    pub fn github_token(
        &mut self,
        app: &str,
        expires_at: Option<Timestamp>,
        state: State,
    ) -> &mut Self {
        self.platform(GITHUB);
        if let Some(t) = expires_at {
            self.credential_expiry(GITHUB, app, "GITHUB_TOKEN", t);
        }
        self.account_state(GITHUB, app, state)
    }

    /// The metrics of an `auth refresh` / `auth status` report.
    pub fn from_report(report: &RunReport, run: Run) -> Self {
        let mut m = Self::new();
        let counts = run == Run::Refresh && !report.dry_run;
        for r in &report.results {
            let platform = r.platform.name();
            m.platform(platform);
            m.account_state(platform, r.account_name(), r.state);
            for c in &r.credentials {
                if let Some(t) = c.expires_at {
                    m.credential_expiry(platform, r.account_name(), &c.var, t);
                }
            }
            if counts {
                m.refreshed(platform, r.state.as_str());
            }
        }
        m.last_run(report.generated_at, report.exit_code() == 0);
        m
    }

    /// Declares a platform, so its refresh counters appear (at 0) before its first refresh.
    pub fn platform(&mut self, platform: &str) -> &mut Self {
        if !self.platforms.iter().any(|p| p == platform) {
            self.platforms.push(platform.to_owned());
        }
        self
    }

    pub fn credential_expiry(
        &mut self,
        platform: &str,
        account: &str,
        credential: &str,
        at: Timestamp,
    ) -> &mut Self {
        self.expiry.insert(
            (
                platform.to_owned(),
                account.to_owned(),
                credential.to_owned(),
            ),
            at,
        );
        self
    }

    pub fn account_state(&mut self, platform: &str, account: &str, state: State) -> &mut Self {
        self.states
            .insert((platform.to_owned(), account.to_owned()), state);
        self
    }

    /// Counts one credential handled by a real refresh, by outcome (`rotated`, `failed`, …).
    pub fn refreshed(&mut self, platform: &str, result: &str) -> &mut Self {
        self.platform(platform);
        *self
            .refreshes
            .entry((platform.to_owned(), result.to_owned()))
            .or_default() += 1;
        self
    }

    pub fn last_run(&mut self, at: Timestamp, success: bool) -> &mut Self {
        self.last_run = Some((at, success));
        self
    }

    /// The text format, with `previous` counter values (from the file this one
    /// replaces) added to this run's.
    pub fn render(&self, previous: &BTreeMap<(String, String), u64>) -> String {
        let mut out = String::new();
        family(
            &mut out,
            EXPIRY,
            "gauge",
            "When the credential expires (Unix time); absent when the expiry is unknown.",
        );
        for ((p, a, c), t) in &self.expiry {
            sample(
                &mut out,
                EXPIRY,
                &[("platform", p), ("account", a), ("credential", c)],
                &t.as_second().to_string(),
            );
        }
        family(
            &mut out,
            STATE,
            "gauge",
            "The credential's state: 1 for the current state, 0 for the others.",
        );
        for ((p, a), current) in &self.states {
            for s in STATES {
                let v = if s == current { "1" } else { "0" };
                sample(
                    &mut out,
                    STATE,
                    &[("platform", p), ("account", a), ("state", s.as_str())],
                    v,
                );
            }
        }
        let mut totals: BTreeMap<(String, String), u64> = previous.clone();
        for p in &self.platforms {
            for s in STATES {
                totals
                    .entry((p.clone(), s.as_str().to_owned()))
                    .or_default();
            }
        }
        for (k, n) in &self.refreshes {
            *totals.entry(k.clone()).or_default() += n;
        }
        family(
            &mut out,
            REFRESH_TOTAL,
            "counter",
            "Credentials handled by `auth refresh` runs, by outcome.",
        );
        for ((p, r), n) in &totals {
            sample(
                &mut out,
                REFRESH_TOTAL,
                &[("platform", p), ("result", r)],
                &n.to_string(),
            );
        }
        if let Some((at, ok)) = self.last_run {
            let labels = [("command", self.command)];
            family(
                &mut out,
                LAST_RUN,
                "gauge",
                "When evertoken last wrote this file (Unix time).",
            );
            sample(&mut out, LAST_RUN, &labels, &at.as_second().to_string());
            family(
                &mut out,
                LAST_RUN_SUCCESS,
                "gauge",
                "1 if the last run exited 0 (everything healthy), else 0.",
            );
            sample(
                &mut out,
                LAST_RUN_SUCCESS,
                &labels,
                if ok { "1" } else { "0" },
            );
        }
        out
    }

    /// Writes the file atomically (temp file in the same directory, fsync, rename),
    /// mode 0644 so a collector running as another user can read it.
    pub fn write(&self, path: &Path) -> Result<()> {
        let previous = std::fs::read_to_string(path)
            .map(|t| parse_counters(&t))
            .unwrap_or_default();
        let text = self.render(&previous);
        write_atomic(path, text.as_bytes()).map_err(|e| {
            Error::failed(format!("cannot write the metrics file {}: {e}", path.display()))
                .with_hint("check that the directory exists and is writable (node_exporter reads *.prom files from its --collector.textfile.directory)")
        })
    }
}

/// `--metrics-file PATH` for `auth refresh` / `auth status`.
pub fn write(path: &Path, report: &RunReport, run: Run) -> Result<()> {
    Metrics::from_report(report, run).write(path)
}

/// `--metrics-file PATH` for `github status`: one token per app. A token that is
/// missing or expired is `failed`, a stale one (older than `max_token_age_minutes`,
/// still valid) `expiring`, else `ok`; `success` is the command's exit code being 0.
pub fn write_github_status(
    path: &Path,
    reports: &[crate::github::status::StatusReport],
    now: Timestamp,
    success: bool,
) -> Result<()> {
    let mut m = Metrics::for_command("github");
    for r in reports {
        let t = &r.token_file;
        let state = if !t.present || t.expired {
            State::Failed
        } else if t.stale {
            State::Expiring
        } else {
            State::Ok
        };
        let expires = t
            .expires_at
            .as_deref()
            .and_then(|e| e.parse::<Timestamp>().ok());
        m.github_token(&r.app, expires, state);
    }
    m.last_run(now, success).write(path)
}

/// `--metrics-file PATH` for `github refresh`: `minted` is the new token's expiry
/// on success (`Ok(None)` when GitHub gave none), `Err(())` when the mint failed.
pub fn write_github_refresh(
    path: &Path,
    app: &str,
    minted: std::result::Result<Option<Timestamp>, ()>,
    now: Timestamp,
) -> Result<()> {
    let mut m = Metrics::for_command("github");
    match minted {
        Ok(expires) => m
            .github_token(app, expires, State::Refreshed)
            .refreshed(GITHUB, State::Refreshed.as_str()),
        Err(()) => m
            .github_token(app, None, State::Failed)
            .refreshed(GITHUB, State::Failed.as_str()),
    };
    m.last_run(now, minted.is_ok()).write(path)
}

const GITHUB: &str = "github";

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(
        out,
        "# HELP {name} {}",
        help.replace('\\', "\\\\").replace('\n', "\\n")
    );
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// Label values escape `\`, `"` and newlines (the text format's rules).
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// The `evertoken_refresh_total` samples of a previous file; anything unreadable
/// is skipped (the counter then restarts, which Prometheus handles as a reset).
pub fn parse_counters(text: &str) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line
            .strip_prefix(REFRESH_TOTAL)
            .and_then(|r| r.strip_prefix('{'))
        else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Ok(n) = value.trim().parse::<u64>() else {
            continue;
        };
        let mut platform = None;
        let mut result = None;
        for part in labels.split(',') {
            let Some((k, v)) = part.split_once('=') else {
                continue;
            };
            let v = v.trim_matches('"').to_owned();
            match k {
                "platform" => platform = Some(v),
                "result" => result = Some(v),
                _ => {}
            }
        }
        if let (Some(p), Some(r)) = (platform, result) {
            out.insert((p, r), n);
        }
    }
    out
}

/// 0644 whatever the umask, new directories 0755, a symlink replaced (issue 13).
fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    crate::files::write_file_mode(path, contents, 0o644).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_carry_forward_and_labels_escape() {
        let mut m = Metrics::new();
        m.last_run(Timestamp::UNIX_EPOCH, true);
        m.refreshed("tiktok", "rotated")
            .account_state("tiktok", "a\"b", State::Rotated);
        let mut prev = BTreeMap::new();
        prev.insert(("tiktok".to_owned(), "rotated".to_owned()), 4);
        let text = m.render(&prev);
        assert!(
            text.contains("evertoken_refresh_total{platform=\"tiktok\",result=\"rotated\"} 5\n"),
            "{text}"
        );
        assert!(text.contains("account=\"a\\\"b\""), "{text}");
        assert_eq!(
            parse_counters(&text).get(&("tiktok".into(), "rotated".into())),
            Some(&5)
        );
        assert_eq!(
            parse_counters(&text).get(&("tiktok".into(), "failed".into())),
            Some(&0)
        );
        assert!(
            text.contains("evertoken_last_run_success{command=\"auth\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn github_files_carry_their_own_command_label() {
        let mut m = Metrics::for_command("github");
        m.github_token(
            "default",
            Some(Timestamp::from_second(1_800_000_000).unwrap()),
            State::Ok,
        )
        .last_run(Timestamp::UNIX_EPOCH, true);
        let text = m.render(&BTreeMap::new());
        assert!(text.contains("evertoken_credential_expiry_timestamp_seconds{platform=\"github\",account=\"default\",credential=\"GITHUB_TOKEN\"} 1800000000\n"), "{text}");
        assert!(
            text.contains("evertoken_last_run_timestamp_seconds{command=\"github\"} 0\n"),
            "{text}"
        );
    }
}
