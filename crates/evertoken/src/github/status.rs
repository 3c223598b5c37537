//! `github status`: the token file (presence, age, staleness, prefix, expiry), gh's
//! stored auth (only when `gh_cli` is on) and the timer's state (reported, never
//! judged). Offline: it never calls GitHub. The JSON form is consumed by the
//! Takopi plugin and the MCP server, so its shape is versioned.

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
    let (active, state) = systemd::timer_state(&app.timer_unit).await;
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
