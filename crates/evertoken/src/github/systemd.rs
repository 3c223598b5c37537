//! The systemd user timer that keeps the token fresh: the unit texts bootstrap
//! writes (`evertoken-github-token-refresh.{service,timer}`, every 45 minutes,
//! `Persistent=true`), enabling them, and reading the timer's state for `status`
//! (reported, not judged: the schedule may live elsewhere).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::env_vars;
use crate::files;

const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(10);

/// `~/.config/systemd/user` (`$XDG_CONFIG_HOME/systemd/user`).
pub fn user_unit_dir() -> PathBuf {
    match std::env::var_os(env_vars::XDG_CONFIG_HOME).filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x).join("systemd/user"),
        None => files::home_dir().join(".config/systemd/user"),
    }
}

/// Quotes an argument for `ExecStart=` when it needs it.
fn exec_arg(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@=,".contains(c))
    {
        s.to_owned()
    } else {
        format!(
            "\"{}\"",
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('%', "%%")
        )
    }
}

/// The service unit: runs `evertoken github refresh` once.
pub fn service_text(binary: &Path, config: &Path, app: &str) -> String {
    format!(
        "# Written by `evertoken github bootstrap`; running it again rewrites this file.\n\
         [Unit]\n\
         Description=Refresh the GitHub App installation token (evertoken, app {app})\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={} --config {} github refresh --app {}\n",
        exec_arg(&binary.to_string_lossy()),
        exec_arg(&config.to_string_lossy()),
        exec_arg(app)
    )
}

/// The timer unit: every 45 minutes, catching up after sleep or downtime.
pub fn timer_text(stem: &str, app: &str) -> String {
    format!(
        "# Written by `evertoken github bootstrap`; running it again rewrites this file.\n\
         [Unit]\n\
         Description=Refresh the GitHub App installation token every 45 minutes (evertoken, app {app})\n\
         \n\
         [Timer]\n\
         OnBootSec=45min\n\
         OnUnitActiveSec=45min\n\
         Persistent=true\n\
         Unit={stem}.service\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n"
    )
}

pub(crate) async fn systemctl(
    args: &[&str],
) -> std::result::Result<(bool, String, String), String> {
    let out = Command::new("systemctl")
        .arg("--user")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(SYSTEMCTL_TIMEOUT, out).await {
        Err(_) => Err("systemctl did not answer in time".into()),
        Ok(Err(e)) => Err(format!("cannot run systemctl: {e}")),
        Ok(Ok(o)) => Ok((
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).trim().to_owned(),
            String::from_utf8_lossy(&o.stderr).trim().to_owned(),
        )),
    }
}

/// The timer's state: `(Some(true), "active")`, `(Some(false), "inactive")`, or
/// `(None, "unknown: …")` when systemd cannot be asked.
pub async fn timer_state(unit: &str) -> (Option<bool>, String) {
    match systemctl(&["is-active", unit]).await {
        Ok((_, out, _)) if out == "active" => (Some(true), out),
        Ok((_, out, _))
            if matches!(
                out.as_str(),
                "inactive" | "failed" | "activating" | "deactivating"
            ) =>
        {
            (Some(false), out)
        }
        Ok((_, _, err)) => (
            None,
            format!(
                "unknown ({})",
                err.lines().next().unwrap_or("no answer from systemd")
            ),
        ),
        Err(e) => (None, format!("unknown ({e})")),
    }
}

/// `daemon-reload` then `enable --now`; `Err` with systemctl's words when the
/// user manager is unreachable (containers, no lingering session).
pub async fn enable(timer_unit: &str) -> std::result::Result<(), String> {
    for args in [vec!["daemon-reload"], vec!["enable", "--now", timer_unit]] {
        match systemctl(&args).await {
            Ok((true, _, _)) => {}
            Ok((false, _, err)) => {
                return Err(format!(
                    "`systemctl --user {}` failed: {}",
                    args.join(" "),
                    err.lines().next().unwrap_or("")
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_start_quotes_paths_with_spaces() {
        let s = service_text(
            Path::new("/opt/my tools/evertoken"),
            Path::new("/h/.config/evertoken/config.yaml"),
            "default",
        );
        assert!(s.contains("ExecStart=\"/opt/my tools/evertoken\" --config /h/.config/evertoken/config.yaml github refresh --app default\n"), "{s}");
    }
}
