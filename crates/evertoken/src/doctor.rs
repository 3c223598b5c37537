//! `evertoken doctor`: checks the whole setup and changes nothing. One [`Check`]
//! per row, each with a status and, when something is off, the fix.
//!
//! It never refreshes, writes, locks or alerts: it loads the config, opens the
//! store (which only reads), resolves every secret (showing where it came from,
//! never its value), asks the store's pre-flight whether a write-back would be
//! accepted, reads the GitHub token file's metadata, and compares the local clock
//! with a provider's `Date` header.

use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::clock::{self, Clock};
use crate::config::Config;
use crate::engine::Engine;
use crate::error::Error;
use crate::files;
use crate::platform::Target;
use crate::store::keychain;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Worth knowing; does not fail the check run.
    Warn,
    /// Broken: `doctor` exits 1.
    Fail,
    /// Not checked (a check it depends on failed, or it does not apply).
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    fn new(check: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            status,
            detail: detail.into(),
            hint: None,
        }
    }
    fn ok(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Ok, detail)
    }
    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    fn from_error(check: impl Into<String>, e: &Error) -> Self {
        Self {
            check: check.into(),
            status: Status::Fail,
            detail: e.message.clone(),
            hint: e.hint.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub version: u32,
    pub checks: Vec<Check>,
    pub failed: usize,
    pub warnings: usize,
}

impl Report {
    fn new(checks: Vec<Check>) -> Self {
        let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
        let warnings = checks.iter().filter(|c| c.status == Status::Warn).count();
        Self {
            version: 1,
            checks,
            failed,
            warnings,
        }
    }

    pub fn exit_code(&self) -> u8 {
        u8::from(self.failed > 0)
    }
}

/// Runs every check. `config_flag` is `--config`.
pub async fn run(config_flag: Option<&std::path::Path>, clock: Clock) -> Report {
    let mut checks = Vec::new();
    let cfg = match Config::locate(config_flag) {
        Ok(Some(path)) => match Config::load_file(&path) {
            Ok(cfg) => {
                checks.push(Check::ok("config", format!("{} parses", path.display())));
                cfg
            }
            Err(e) => {
                checks.push(Check::from_error("config", &e));
                return Report::new(checks);
            }
        },
        Ok(None) => {
            checks.push(
                Check::new("config", Status::Fail, format!("no configuration file found (looked at: {})", Config::search_order()))
                    .hint("create ./evertoken.yaml (docs/src/reference/config.md has a complete example), or run `evertoken demo` to see one"),
            );
            return Report::new(checks);
        }
        Err(e) => {
            checks.push(Check::from_error("config", &e));
            return Report::new(checks);
        }
    };

    checks.push(keychain_check(&cfg));
    let base_urls: Vec<url::Url> = crate::provider::build(&cfg)
        .map(|ps| ps.iter().map(|p| p.common().base_url.clone()).collect())
        .unwrap_or_default();
    let backend = cfg.file.auth.writeback.backend.name();
    let alerts = alerts_check(&cfg);
    let github = github_checks(&cfg, clock).await;
    let http_cfg_timeout = cfg.file.http.timeout_seconds;

    match Engine::new(cfg, clock) {
        Err(e) => {
            checks.push(Check::from_error(format!("write-back ({backend})"), &e));
            checks.push(Check::new(
                "credentials",
                Status::Skip,
                "not checked: they are read through the write-back store, which did not open",
            ));
        }
        Ok(engine) => {
            let store = engine.store().clone();
            checks.push(Check::ok(
                format!("write-back ({backend})"),
                format!("opens: {}", store.describe()),
            ));
            // The local store's notice is the keychain fallback, which has its own row.
            if backend != "local" {
                for n in store.notices() {
                    checks.push(Check::new("write-back notice", Status::Warn, n));
                }
            }
            credential_checks(&engine, &mut checks).await;
        }
    }
    checks.push(alerts);
    checks.extend(github);
    if let Some(c) = refresh_timer_check() {
        checks.push(c);
    }
    checks.push(clock_check(&base_urls, http_cfg_timeout).await);
    Report::new(checks)
}

fn keychain_check(cfg: &Config) -> Check {
    let mode = cfg.file.auth.writeback.local.keychain;
    let name = "keychain";
    if cfg.file.auth.writeback.backend.name() != "local" {
        return Check::new(
            name,
            Status::Skip,
            "not used: the write-back is not `local`",
        );
    }
    match (mode, keychain::probe()) {
        (keychain::Mode::Off, _) => Check::ok(
            name,
            "off (auth.writeback.local.keychain: off): the credentials file holds the tokens",
        ),
        (_, Ok(_)) => Check::ok(name, "usable (service `evertoken`)"),
        (keychain::Mode::Required, Err(why)) => {
            Check::new(name, Status::Fail, format!("required, but {why}")).hint(
                "run where a keychain is unlocked, or set `auth.writeback.local.keychain: auto`",
            )
        }
        (keychain::Mode::Auto, Err(why)) => Check::new(
            name,
            Status::Ok,
            format!("not usable here ({why}); the credentials file (0600) is used instead"),
        ),
    }
}

/// Secrets (source shown, never the value), each account's state, and the
/// store's pre-flight for the variables a write-back would touch.
async fn credential_checks(engine: &std::sync::Arc<Engine>, checks: &mut Vec<Check>) {
    let selected = match engine.select(&Target::All) {
        Ok(s) => s,
        Err(e) => {
            checks.push(Check::from_error("platforms", &e));
            return;
        }
    };
    match engine.client_secrets(&selected, false).await {
        Ok((_, reports)) => {
            for r in reports {
                let platform = selected
                    .iter()
                    .find(|(p, _)| p.client_secret_var() == Some(r.var.as_str()))
                    .map(|(p, _)| p.platform().display_name())
                    .unwrap_or("the platform");
                checks.push(match r.source {
                    Some(src) => Check::ok(format!("secret {}", r.var), format!("set, from {src}")),
                    None => Check::new(
                        format!("secret {}", r.var),
                        Status::Fail,
                        format!("not set: {platform} cannot refresh without it"),
                    )
                    .hint(format!(
                        "export {}=… or add it to {}",
                        r.var,
                        engine.store().describe()
                    )),
                });
            }
        }
        Err(e) => checks.push(Check::from_error("client secrets", &e)),
    }
    let report = match engine.status(&Target::All).await {
        Ok(r) => r,
        Err(e) => {
            checks.push(Check::from_error("credentials", &e));
            return;
        }
    };
    checks.push(rotator_check(&report));
    let durable: std::collections::BTreeSet<String> = selected
        .iter()
        .flat_map(|(p, accounts)| {
            accounts.iter().flat_map(|a| {
                p.slots()
                    .iter()
                    .filter(|s| s.durable)
                    .map(|s| a.var(s.base))
            })
        })
        .collect();
    for r in &report.results {
        for c in &r.credentials {
            let name = format!("token {}", c.var);
            checks.push(match (&c.source, &c.prefix) {
                (Some(src), Some(prefix)) => {
                    let exp = c
                        .expires_at
                        .map(|t| format!(", expires {}", clock::date(t)))
                        .unwrap_or_default();
                    Check::ok(name, format!("{prefix} from {src}{exp}"))
                }
                // The durable credential is the one a human must provide.
                _ if durable.contains(&c.var) => Check::new(name, Status::Fail, "not set").hint(
                    r.fix
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| format!("run `evertoken auth login {}`", r.platform)),
                ),
                _ => Check::ok(
                    name,
                    "not set (optional: a refresh issues it, or the app does not get one)",
                ),
            });
        }
        let label = r.account_label();
        let mut row = Check::new(
            format!("account {label}"),
            if r.attention {
                Status::Fail
            } else {
                Status::Ok
            },
            format!(
                "{}{}: {}",
                r.state.as_str(),
                if r.action == crate::report::Action::None {
                    String::new()
                } else {
                    format!(", {}", r.action)
                },
                r.message()
            ),
        );
        if r.attention {
            row = row.hint(r.fix.as_ref().map(ToString::to_string).unwrap_or_else(|| {
                match &r.reauth_by {
                    Some(d) => {
                        format!("re-authorise by {d}: `evertoken auth login {}`", r.platform)
                    }
                    None => format!("run `evertoken auth refresh {label}` and read its message"),
                }
            }));
        }
        for w in &r.warnings {
            checks.push(Check::new(
                format!("account {label}"),
                Status::Warn,
                w.clone(),
            ));
        }
        checks.push(row);
    }
    // Pre-flight: would the store accept a write-back of every durable variable?
    let mut vars = Vec::new();
    for (p, accounts) in &selected {
        for a in accounts {
            for s in p.slots() {
                vars.push((a.var(s.base), s.durable));
            }
        }
    }
    let store = engine.store();
    checks.push(match store.preflight(&vars).await {
        Ok(()) => Check::ok("write-back pre-flight", format!("{} would accept a write-back of {} variable(s)", store.describe(), vars.len())),
        Err(e) => {
            let mut c = Check::new("write-back pre-flight", Status::Fail, e.message.clone());
            c.hint = e.hint.clone().or_else(|| Some("fix the store so a rotated token can be written back, then run `evertoken doctor` again".into()));
            c
        }
    });
}

fn alerts_check(cfg: &Config) -> Check {
    let name = "alerts";
    // No engine yet (the config's other checks come first): the client is
    // built lazily, so this costs nothing unless a channel calls out.
    let http = crate::http::Http::new(&cfg.file.http);
    match cfg.notifier(&http) {
        Ok(None) => Check::new(
            name,
            Status::Warn,
            "backend `none`: only the exit code reports a credential that needs a human",
        )
        .hint("set `auth.alerts.backend: webhook` (Slack, Teams, Discord) or `email`, then `evertoken auth test-alert`"),
        Ok(Some(n)) => Check::ok(name, format!("{}: {}", n.backend(), n.describe()))
            .hint("`evertoken auth test-alert` sends a sample through it"),
        Err(e) => Check::from_error(name, &e),
    }
}

/// The GitHub apps to look at: every `github.apps` entry, or `default` when only
/// the environment (`GITHUB_APP_ID`) describes one.
pub fn github_app_names(cfg: &Config) -> Vec<String> {
    let mut names: Vec<String> = cfg.file.github.apps.keys().cloned().collect();
    if names.is_empty()
        && std::env::var_os(crate::env_vars::GITHUB_APP_ID).is_some_and(|v| !v.is_empty())
    {
        names.push("default".into());
    }
    names
}

async fn github_checks(cfg: &Config, clock: Clock) -> Vec<Check> {
    let mut out = Vec::new();
    for n in github_app_names(cfg) {
        let app = match crate::github::app::resolve(cfg, &n, &crate::github::Overrides::default()) {
            Ok(a) => a,
            Err(e) => {
                out.push(Check::from_error(format!("github {n}"), &e));
                continue;
            }
        };
        let keyless = match crate::github::signer::doctor_check(&app).await {
            Some((what, Ok(d))) => {
                out.push(Check::ok(format!("github {n}: {what}"), d));
                true
            }
            Some((what, Err(e))) => {
                out.push(Check::from_error(format!("github {n}: {what}"), &e));
                true
            }
            None => false,
        };
        let key = &app.key_path;
        let key_row = format!("github {n}: private key");
        let key_check = match files::mode_of(key) {
            Ok(None) => Check::new(
                key_row,
                Status::Fail,
                format!("{} is missing", key.display()),
            )
            .hint("install the App's key with `evertoken github bootstrap --private-key PATH …`"),
            Ok(Some(m)) if files::too_open(m) => Check::new(
                key_row,
                Status::Fail,
                format!("{} is mode {m:04o}: readable by others", key.display()),
            )
            .hint(format!("run `chmod 600 {}`", key.display())),
            Ok(Some(m)) => Check::ok(key_row, format!("{} (mode {m:04o})", key.display())),
            Err(e) => Check::new(
                key_row,
                Status::Fail,
                format!("cannot stat {}: {e}", key.display()),
            ),
        };
        if !keyless {
            out.push(key_check);
        }
        let st = match crate::github::status::status(&app, &clock).await {
            Ok(s) => s,
            Err(e) => {
                out.push(Check::from_error(format!("github {n}: token file"), &e));
                continue;
            }
        };
        let t = &st.token_file;
        let row = format!("github {n}: token file");
        out.push(if !t.present {
            Check::new(row, Status::Fail, format!("{} is missing", t.path))
                .hint("run `evertoken github refresh`")
        } else {
            let detail = format!(
                "{}: token {}, {} min old (limit {}){}",
                t.path,
                t.prefix.as_deref().unwrap_or("…"),
                t.age_minutes
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "?".into()),
                t.max_age_minutes,
                t.expires_at
                    .as_ref()
                    .map(|e| format!(", expires {e}"))
                    .unwrap_or_default(),
            );
            if t.expired || t.stale {
                Check::new(
                    row,
                    Status::Fail,
                    format!(
                        "{} ({})",
                        detail,
                        if t.expired { "expired" } else { "stale" }
                    ),
                )
                .hint("run `evertoken github refresh`, and check that the timer below is active")
            } else {
                Check::ok(row, detail)
            }
        });
        if st.gh.checked {
            let row = format!("github {n}: gh");
            out.push(if st.gh.authenticated == Some(true) {
                Check::ok(row, st.gh.message.clone())
            } else {
                Check::new(row, Status::Fail, st.gh.message.clone())
                    .hint("run `evertoken github refresh` to update gh's stored auth")
            });
        }
        let row = format!("github {n}: timer {}", st.timer.unit);
        out.push(if st.timer.active == Some(true) {
            Check::ok(row, st.timer.state.clone())
        } else {
            Check::new(
                row,
                Status::Warn,
                format!("not active ({})", st.timer.state),
            )
            .hint(format!("systemctl --user enable --now {}", st.timer.unit))
        });
    }
    out
}

/// The state of the timer `evertoken schedule systemd --write` installs, when its
/// unit file is there: reported, not judged (the schedule may live in CI instead).
fn refresh_timer_check() -> Option<Check> {
    let unit = format!("{}.timer", crate::schedule::SYSTEMD_UNIT);
    if !crate::schedule::systemd_user_dir().join(&unit).is_file() {
        return None;
    }
    let name = format!("timer {unit}");
    let out = std::process::Command::new("systemctl")
        .args(["--user", "is-active", &unit])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    Some(match out {
        Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "active" => Check::ok(name, "active"),
        Ok(o) => {
            let state = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            Check::new(
                name,
                Status::Warn,
                format!(
                    "installed but not active ({})",
                    if state.is_empty() {
                        "no user systemd"
                    } else {
                        &state
                    }
                ),
            )
            .hint(format!(
                "systemctl --user daemon-reload && systemctl --user enable --now {unit}"
            ))
        }
        Err(_) => Check::new(
            name,
            Status::Warn,
            "installed; systemctl is not available to ask its state",
        ),
    })
}

/// Compares the system clock with the `Date` header of the first reachable
/// provider. JWTs (GitHub) and token expiries go wrong beyond a minute or so.
async fn clock_check(base_urls: &[url::Url], timeout_secs: f64) -> Check {
    let name = "clock skew";
    if base_urls.is_empty() {
        return Check::new(name, Status::Skip, "no provider configured to compare with");
    }
    crate::http::install_crypto_provider();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(timeout_secs.clamp(1.0, 10.0)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return Check::new(
                name,
                Status::Warn,
                format!("cannot build an HTTP client: {e}"),
            );
        }
    };
    for url in base_urls {
        let Ok(resp) = client.head(url.clone()).send().await else {
            continue;
        };
        let Some(date) = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| jiff::fmt::rfc2822::parse(v).ok())
            .map(|z| z.timestamp())
        else {
            continue;
        };
        let skew = Timestamp::now().as_second() - date.as_second();
        let where_ = crate::http::safe_url(url);
        return if skew.abs() > 60 {
            Check::new(name, Status::Fail, format!("local clock is {skew:+} s off {where_}'s"))
                .hint("enable time sync (`timedatectl set-ntp true`); JWTs and expiry checks fail with a skewed clock")
        } else {
            Check::ok(name, format!("{skew:+} s against {where_}"))
        };
    }
    Check::new(
        name,
        Status::Warn,
        "no provider answered with a Date header; clock not compared",
    )
}

/// One rotator: evertoken must be the only process that refreshes a rotating token.
/// A store value that changed since evertoken last wrote it (not through its
/// journal) is the sign of a second one (the engine compares fingerprints).
fn rotator_check(report: &crate::report::RunReport) -> Check {
    let drifted: Vec<String> = report
        .results
        .iter()
        .flat_map(|r| {
            r.credentials
                .iter()
                .filter(|c| {
                    r.warnings
                        .iter()
                        .any(|w| w.starts_with(&format!("{} changed in the store", c.var)))
                })
                .map(|c| c.var.clone())
        })
        .collect();
    if drifted.is_empty() {
        return Check::ok(
            "one rotator",
            "no stored token changed behind evertoken's back since it last wrote it; jobs must read tokens with `evertoken auth token` / `auth env`, never refresh them themselves",
        );
    }
    Check::new(
        "one rotator",
        Status::Warn,
        format!(
            "{} changed in the store since evertoken last wrote it, not through its journal: {}",
            drifted.join(", "),
            crate::fingerprint::LIKELY_CAUSE
        ),
    )
    .hint("find the job or script that refreshes these tokens itself and make it read them with `eval \"$(evertoken auth env)\"` instead; a token pasted in by hand after a re-auth is fine (`evertoken auth login` avoids the warning)")
}
