//! `github status`: the token file (presence, age, staleness, prefix, expiry), gh's
//! stored auth (only when `gh_cli` is on) and the timer's state (reported, never
//! judged). Offline: it never calls GitHub. The JSON form is consumed by the
//! Takopi plugin and the MCP server, so its shape is versioned.
//!
//! It is a cold command (run by prompts, plugins and monitors): on the common,
//! healthy path it spawns no process. The timer's state comes from what systemd
//! leaves on disk (the unit file, its `timers.target.wants` link, the
//! `Persistent=` stamp of its last run); `systemctl --user is-active` is asked
//! only when something is wrong and the live state helps explain it.

use serde::Serialize;

use super::app::App;
use super::{gh_cli, systemd, token_file};
use crate::clock::{self, Clock};
use crate::error::Result;

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub version: u32,
    pub app: String,
    pub token_file: TokenFileStatus,
    pub gh: GhStatus,
    pub timer: TimerStatus,
    pub healthy: bool,
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TokenFileStatus {
    pub path: String,
    pub present: bool,
    pub age_minutes: Option<i64>,
    pub stale: bool,
    pub max_age_minutes: u64,
    /// The token's first characters and `…`, never more.
    pub prefix: Option<String>,
    pub expires_at: Option<String>,
    pub expired: bool,
}

#[derive(Debug, Serialize)]
pub struct GhStatus {
    pub checked: bool,
    pub host: String,
    pub authenticated: Option<bool>,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct TimerStatus {
    pub unit: String,
    pub active: Option<bool>,
    pub state: String,
}

pub async fn status(app: &App, clock: &Clock) -> Result<StatusReport> {
    let now = clock.now();
    let file = token_file::read(&app.token_file)?;
    let mut problems = Vec::new();
    let path = app.token_file.display().to_string();
    let tf = match &file {
        None => {
            problems.push(format!(
                "token file {path} is missing: run `evertoken github refresh`"
            ));
            TokenFileStatus {
                path,
                present: false,
                age_minutes: None,
                stale: false,
                max_age_minutes: app.max_age_minutes,
                prefix: None,
                expires_at: None,
                expired: false,
            }
        }
        Some(f) => {
            let age = f.age_minutes(now);
            let stale = f.is_stale(now, app.max_age_minutes);
            let expired = f.expires_within(now, 0);
            if expired {
                problems.push(format!(
                    "the token in {path} expired at {}: run `evertoken github refresh`, and check the timer",
                    f.expires_at.map(clock::rfc3339).unwrap_or_default()
                ));
            } else if stale {
                problems.push(format!(
                    "the token in {path} is {} minutes old (limit {}): the refresh timer may not be running; run `evertoken github refresh`",
                    age.unwrap_or_default(),
                    app.max_age_minutes
                ));
            }
            TokenFileStatus {
                path,
                present: true,
                age_minutes: age,
                stale,
                max_age_minutes: app.max_age_minutes,
                prefix: Some(f.token.prefix().to_string()),
                expires_at: f.expires_at.map(clock::rfc3339),
                expired,
            }
        }
    };
    let gh = if app.gh_cli {
        let c = gh_cli::check(&app.host, file.as_ref().map(|f| &f.token)).await;
        if !c.authenticated {
            problems.push(c.message.clone());
        }
        GhStatus {
            checked: true,
            host: app.host.clone(),
            authenticated: Some(c.authenticated),
            message: c.message,
        }
    } else {
        GhStatus {
            checked: false,
            host: app.host.clone(),
            authenticated: None,
            message: "not checked (gh_cli is off)".into(),
        }
    };
    let (active, state) = if problems.is_empty() {
        timer_on_disk(&app.timer_unit, now)
    } else {
        systemd::timer_state(&app.timer_unit).await
    };
    Ok(StatusReport {
        version: 1,
        app: app.name.clone(),
        token_file: tf,
        gh,
        timer: TimerStatus {
            unit: app.timer_unit.clone(),
            active,
            state,
        },
        healthy: problems.is_empty(),
        problems,
    })
}

/// The timer's state as systemd leaves it on disk, without asking systemd:
/// `~/.config/systemd/user/<unit>`, its `timers.target.wants/` link (enabled) and
/// the stamp `Persistent=true` timers keep at
/// `$XDG_DATA_HOME/systemd/timers/stamp-<unit>` (its modification time is the
/// last run; see systemd.timer(5), `Persistent=`).
fn timer_on_disk(unit: &str, now: jiff::Timestamp) -> (Option<bool>, String) {
    let data = match std::env::var_os(crate::env_vars::XDG_DATA_HOME).filter(|v| !v.is_empty()) {
        Some(d) => std::path::PathBuf::from(d),
        None => crate::files::home_dir().join(".local/share"),
    };
    timer_in(&systemd::user_unit_dir(), &data, unit, now)
}

fn timer_in(
    dir: &std::path::Path,
    data: &std::path::Path,
    unit: &str,
    now: jiff::Timestamp,
) -> (Option<bool>, String) {
    let installed = dir.join(unit).symlink_metadata().is_ok();
    let enabled = dir
        .join("timers.target.wants")
        .join(unit)
        .symlink_metadata()
        .is_ok();
    let last_run = std::fs::metadata(data.join("systemd/timers").join(format!("stamp-{unit}")))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
        .map(|t| {
            let mins = (now.as_second() - t.as_second()).max(0) / 60;
            format!("; last ran {mins} min ago")
        })
        .unwrap_or_default();
    match (installed || enabled, enabled) {
        (_, true) => (None, format!("enabled{last_run}")),
        (true, false) => (Some(false), format!("installed, not enabled{last_run}")),
        (false, _) => (
            None,
            "not installed for this user (the schedule may live elsewhere)".to_owned(),
        ),
    }
}

/// The human form.
pub fn render(r: &StatusReport) -> String {
    let t = &r.token_file;
    let mut s = format!("GitHub App `{}`\n", r.app);
    if t.present {
        s.push_str(&format!(
            "  token file  {} (present)\n  token       {}\n  age         {} min{}\n  expires     {}{}\n",
            t.path,
            t.prefix.as_deref().unwrap_or("…"),
            t.age_minutes.map(|a| a.to_string()).unwrap_or_else(|| "?".into()),
            if t.stale { format!(" (stale: limit {})", t.max_age_minutes) } else { format!(" (limit {})", t.max_age_minutes) },
            t.expires_at.as_deref().unwrap_or("unknown"),
            if t.expired { " (expired)" } else { "" },
        ));
    } else {
        s.push_str(&format!("  token file  {} (missing)\n", t.path));
    }
    s.push_str(&format!("  gh          {}\n", r.gh.message));
    s.push_str(&format!(
        "  timer       {}: {}{}\n",
        r.timer.unit,
        r.timer.state,
        match r.timer.active {
            // Reported, not judged: the schedule may live elsewhere (cron, CI).
            Some(false) => format!(
                " (if this host should refresh: systemctl --user enable --now {}; \
                 `systemctl --user status {}` shows why it stopped)",
                r.timer.unit, r.timer.unit
            ),
            _ => String::new(),
        }
    ));
    if r.problems.is_empty() {
        s.push_str("healthy\n");
    } else {
        for p in &r.problems {
            s.push_str(&format!("problem: {p}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_state_is_read_from_disk_without_systemctl() {
        let home = tempfile::tempdir().unwrap();
        let units = home.path().join("config/systemd/user");
        std::fs::create_dir_all(units.join("timers.target.wants")).unwrap();
        let stamps = home.path().join("data/systemd/timers");
        std::fs::create_dir_all(&stamps).unwrap();
        let data = home.path().join("data");
        let timer_on_disk = |unit: &str, now| timer_in(&units, &data, unit, now);
        let unit = "evertoken-github-token-refresh-test.timer";
        let now = jiff::Timestamp::now();
        assert_eq!(timer_on_disk(unit, now).0, None);
        assert!(timer_on_disk(unit, now).1.starts_with("not installed"));
        std::fs::write(units.join(unit), "[Timer]\n").unwrap();
        assert_eq!(
            timer_on_disk(unit, now),
            (Some(false), "installed, not enabled".to_owned())
        );
        std::os::unix::fs::symlink(
            units.join(unit),
            units.join("timers.target.wants").join(unit),
        )
        .unwrap();
        std::fs::write(stamps.join(format!("stamp-{unit}")), "").unwrap();
        let later = now + jiff::SignedDuration::from_mins(12);
        assert_eq!(
            timer_on_disk(unit, later),
            (None, "enabled; last ran 12 min ago".to_owned())
        );
    }
}
