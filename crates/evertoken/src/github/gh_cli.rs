//! The `gh` CLI integration (`gh_cli: true`): after each mint, `gh auth login
//! --hostname H --with-token` with the token on stdin (never in argv) and with
//! `GH_TOKEN`/`GITHUB_TOKEN` removed from its environment (gh refuses to store auth
//! while they are set), so `gh` and `gh api` use the new token without a restart.
//! Also the checks `status` reports: is gh installed, does it hold this token,
//! does `GH_TOKEN` shadow it, does it keep the token in plain-text `hosts.yml`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::env_vars;
use crate::error::{Error, Result};
use crate::files;
use crate::secret::Secret;

const GH_TIMEOUT: Duration = Duration::from_secs(30);

/// Variables that override gh's stored auth; removed from gh's environment.
const TOKEN_VARS: &[&str] = &[
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "GH_ENTERPRISE_TOKEN",
    "GITHUB_ENTERPRISE_TOKEN",
];

fn gh() -> Command {
    let mut c = Command::new("gh");
    for v in TOKEN_VARS {
        c.env_remove(v);
    }
    c.env("GH_PROMPT_DISABLED", "1")
        .env("GH_NO_UPDATE_NOTIFIER", "1")
        .kill_on_drop(true);
    c
}

fn not_found_error() -> Error {
    Error::failed("`gh` (the GitHub CLI) is not installed or not on PATH, so its auth cannot be updated")
        .with_hint("install it (Debian/Ubuntu: `apt-get install gh`; https://cli.github.com), or set `gh_cli: false`")
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    v[v.len().saturating_sub(lines)..].join(" | ")
}

/// What a login did.
#[derive(Debug, Default)]
pub struct Login {
    /// Warnings worth showing (plain-text storage, GH_TOKEN shadowing).
    pub warnings: Vec<String>,
}

/// Stores `token` as gh's auth for `host`.
pub async fn login(host: &str, token: &Secret) -> Result<Login> {
    let mut child = gh()
        .args(["auth", "login", "--hostname", host, "--with-token"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                not_found_error()
            } else {
                Error::failed(format!("cannot run `gh auth login`: {e}"))
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let mut line = token.expose().to_owned();
        line.push('\n');
        let res = stdin.write_all(line.as_bytes()).await;
        drop(stdin);
        res.map_err(|e| {
            Error::failed(format!(
                "cannot pass the token to `gh auth login` on stdin: {e}"
            ))
        })?;
    }
    let out = tokio::time::timeout(GH_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            Error::failed(format!(
                "`gh auth login --hostname {host}` did not finish within {}s",
                GH_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| Error::failed(format!("`gh auth login` failed to run: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(Error::failed(format!(
            "`gh auth login --hostname {host} --with-token` failed ({}): {}",
            out.status,
            tail(&stderr, 3)
        ))
        .with_hint("run `gh auth status` to see why; the token file was written regardless"));
    }
    let mut l = Login::default();
    if let Some(w) = shadow_warning() {
        l.warnings.push(w);
    }
    if let Some(path) = plain_text_store(host) {
        l.warnings.push(format!(
            "gh keeps the token in plain text in {} (no keyring available); keep that file 0600 — it holds a token that expires within the hour",
            path.display()
        ));
    }
    Ok(l)
}

/// `GH_TOKEN`/`GITHUB_TOKEN` in this environment override gh's stored auth.
pub fn shadow_warning() -> Option<String> {
    [env_vars::GH_TOKEN, env_vars::GITHUB_TOKEN]
        .iter()
        .find(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
        .map(|v| {
            format!(
                "{v} is set in this environment: gh uses it instead of its stored auth, and it goes stale within the hour; \
                 unset it (remove it from the service's Environment/EnvironmentFile) so gh picks up each new token"
            )
        })
}

/// What `gh auth token --hostname H` says.
#[derive(Debug)]
pub struct GhCheck {
    pub authenticated: bool,
    pub message: String,
}

/// Whether gh's stored auth for `host` is `current` (the token in the token file).
pub async fn check(host: &str, current: Option<&Secret>) -> GhCheck {
    let out = gh()
        .args(["auth", "token", "--hostname", host])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    let out = match tokio::time::timeout(GH_TIMEOUT, out).await {
        Err(_) => {
            return GhCheck {
                authenticated: false,
                message: "`gh auth token` did not answer in time".into(),
            };
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return GhCheck {
                authenticated: false,
                message: "gh is not installed or not on PATH (install it, or set gh_cli: false)"
                    .into(),
            };
        }
        Ok(Err(e)) => {
            return GhCheck {
                authenticated: false,
                message: format!("cannot run gh: {e}"),
            };
        }
        Ok(Ok(o)) => o,
    };
    let stored = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || stored.is_empty() {
        return GhCheck {
            authenticated: false,
            message: format!(
                "gh is not authenticated for {host}; run `evertoken github refresh` ({})",
                tail(&String::from_utf8_lossy(&out.stderr), 1)
            ),
        };
    }
    let stored = Secret::new(stored);
    let mut message = match current {
        Some(c) if c.same_as(&stored) => format!("gh uses the current token for {host}"),
        Some(_) => {
            return GhCheck {
                authenticated: false,
                message: format!(
                    "gh holds a different token for {host} ({}), not the current one; run `evertoken github refresh`",
                    stored.prefix()
                ),
            };
        }
        None => format!(
            "gh holds a token for {host} ({}), but there is no token file to compare",
            stored.prefix()
        ),
    };
    if let Some(w) = shadow_warning() {
        message.push_str("; ");
        message.push_str(&w);
        return GhCheck {
            authenticated: false,
            message,
        };
    }
    GhCheck {
        authenticated: current.is_some(),
        message,
    }
}

/// gh's config directory: `$GH_CONFIG_DIR`, else `$XDG_CONFIG_HOME/gh`, else `~/.config/gh`.
fn gh_config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(env_vars::GH_CONFIG_DIR).filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    match std::env::var_os(env_vars::XDG_CONFIG_HOME).filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x).join("gh"),
        None => files::home_dir().join(".config/gh"),
    }
}

/// `hosts.yml` when it holds an `oauth_token` for `host` (gh's plain-text fallback).
pub fn plain_text_store(host: &str) -> Option<PathBuf> {
    let path = gh_config_dir().join("hosts.yml");
    let text = std::fs::read_to_string(&path).ok()?;
    let mut in_host = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_host = line.trim_end().trim_end_matches(':').trim_matches('"') == host;
        } else if in_host && line.trim_start().starts_with("oauth_token:") {
            return Some(path);
        }
    }
    None
}
