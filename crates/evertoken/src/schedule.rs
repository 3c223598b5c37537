//! Ready-made schedules (SPEC §8): a GitLab scheduled-pipeline job, a GitHub
//! Actions workflow and a systemd user service + timer, each running
//! `evertoken auth refresh all`. Generation is pure: [`generate`] turns
//! [`Settings`] into file contents; only the CLI writes them (with `--write`).
//!
//! The CI jobs keep the rotation journal in the CI cache (SPEC §9), so a
//! write-back interrupted in one run is finished by the next, and keep the
//! metrics file as an artifact. No template ever contains a secret: CI jobs name
//! secret variables, never values.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::files;

/// Where the job keeps the journal inside the CI workspace (cached between runs).
pub const CI_STATE_DIR: &str = ".evertoken-state";
/// The metrics file the CI jobs write and keep as an artifact.
pub const CI_METRICS_FILE: &str = "evertoken.prom";
pub const SYSTEMD_UNIT: &str = "evertoken-refresh";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A GitLab CI job for a weekly scheduled pipeline (with the gitlab write-back)
    Gitlab,
    /// A GitHub Actions workflow on `schedule:`
    GithubActions,
    /// A systemd user service and timer
    Systemd,
}

/// What the templates need to know about this installation.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The evertoken binary (systemd's `ExecStart=` needs an absolute path).
    pub exe: PathBuf,
    /// The config file, when one was found (absolute).
    pub config: Option<PathBuf>,
    /// The config file relative to the repository root, for CI jobs.
    pub ci_config: Option<String>,
    /// Every variable evertoken reads for the configured platforms (tokens and
    /// client secrets): the Actions workflow maps each from a repository secret.
    pub vars: Vec<String>,
    /// The configured write-back backend, when a config was found.
    pub backend: Option<&'static str>,
    /// The variable the github-actions write-back reads its token from
    /// (`auth.writeback.github_actions.token_env`, default `GITHUB_TOKEN`).
    pub actions_token_env: Option<String>,
}

impl Settings {
    /// Settings from the running binary and a config (if any was found).
    pub fn from_config(exe: PathBuf, cfg: Option<&Config>) -> Settings {
        let mut s = Settings {
            exe,
            ..Settings::default()
        };
        let Some(cfg) = cfg else { return s };
        s.config = cfg
            .path
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
        // A CI job runs in the repository root: name the config only when it is in
        // this directory (the repository) under another name than the default.
        let cwd = std::env::current_dir().unwrap_or_default();
        s.ci_config = s
            .config
            .as_ref()
            .and_then(|p| p.strip_prefix(&cwd).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| p != "evertoken.yaml");
        s.backend = Some(cfg.file.auth.writeback.backend.name());
        s.actions_token_env = cfg
            .file
            .auth
            .writeback
            .github_actions
            .as_ref()
            .and_then(|c| c.token_env.clone());
        if let Ok(providers) = crate::provider::build(cfg) {
            for p in &providers {
                if let Some(v) = p.client_secret_var() {
                    push_unique(&mut s.vars, v.to_owned());
                }
                for a in p.accounts() {
                    for slot in p.slots() {
                        push_unique(&mut s.vars, a.var(slot.base));
                    }
                }
            }
        }
        s
    }
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// One file of a schedule.
#[derive(Clone, Debug)]
pub struct File {
    /// Where `--write` puts it: relative paths are relative to the current directory.
    pub path: PathBuf,
    pub contents: String,
}

#[derive(Clone, Debug)]
pub struct Schedule {
    pub files: Vec<File>,
    /// What the user does next (shown after `--write`).
    pub next_steps: Vec<String>,
    /// Things worth a warning ("the write-back is `local`: …").
    pub warnings: Vec<String>,
}

pub fn generate(kind: Kind, s: &Settings) -> Schedule {
    match kind {
        Kind::Gitlab => gitlab(s),
        Kind::GithubActions => github_actions(s),
        Kind::Systemd => systemd(s),
    }
}

fn ci_command(s: &Settings) -> String {
    let mut cmd = String::from("evertoken");
    if let Some(c) = &s.ci_config {
        let _ = write!(cmd, " --config {}", shell_word(c));
    }
    let _ = write!(cmd, " auth refresh all --metrics-file {CI_METRICS_FILE}");
    cmd
}

fn gitlab(s: &Settings) -> Schedule {
    let cmd = ci_command(s);
    let contents = format!(
        r#"# evertoken: keeps this project's tokens alive. Generated by `evertoken schedule gitlab`.
#
# 1. Include this file from .gitlab-ci.yml:
#      include:
#        - local: evertoken.gitlab-ci.yml
# 2. Set `auth.writeback.backend: gitlab` in the evertoken config, so rotated
#    tokens are written back to this project's CI/CD variables.
# 3. Settings > CI/CD > Variables: GITLAB_TOKEN (a project access token with `api`
#    scope) and every token variable (e.g. TIKTOK_REFRESH_TOKEN), each masked and
#    protected. evertoken never creates or unmasks a variable.
# 4. Build > Pipeline schedules: a weekly schedule on a protected branch, for
#    example "17 6 * * 1" (Mondays 06:17).
#
# The job exits 1 when a credential needs a human (re-auth, failed refresh), so a
# failed scheduled pipeline is the alarm. The rotation journal stays in the CI cache:
# a write-back interrupted in one run is finished by the next.

evertoken-refresh:
  image: rust:1
  rules:
    - if: $CI_PIPELINE_SOURCE == "schedule"
    - if: $CI_PIPELINE_SOURCE == "web"
      when: manual
  # One run at a time: a rotation is never raced by a second pipeline.
  resource_group: evertoken
  variables:
    XDG_STATE_HOME: $CI_PROJECT_DIR/{CI_STATE_DIR}
  cache:
    key: evertoken-journal
    paths:
      - {CI_STATE_DIR}/
    when: always
  before_script:
    - command -v evertoken || cargo install --locked evertoken
  script:
    - {cmd}
  artifacts:
    when: always
    expire_in: 30 days
    paths:
      - {CI_METRICS_FILE}
"#
    );
    let mut warnings = Vec::new();
    if let Some(b) = s.backend.filter(|b| *b != "gitlab") {
        warnings.push(format!(
            "the configured write-back is `{b}`: in a GitLab pipeline rotated tokens would be lost when the job ends; set `auth.writeback.backend: gitlab`"
        ));
    }
    Schedule {
        files: vec![File {
            path: PathBuf::from("evertoken.gitlab-ci.yml"),
            contents,
        }],
        next_steps: vec![
            "add `include: [{ local: evertoken.gitlab-ci.yml }]` to .gitlab-ci.yml".into(),
            "create a weekly pipeline schedule (Build > Pipeline schedules)".into(),
        ],
        warnings,
    }
}

fn github_actions(s: &Settings) -> Schedule {
    let cmd = ci_command(s);
    let mut env = String::new();
    let _ = writeln!(
        env,
        "      XDG_STATE_HOME: ${{{{ github.workspace }}}}/{CI_STATE_DIR}"
    );
    if s.vars.is_empty() {
        let _ = writeln!(
            env,
            "      # One line per variable evertoken reads, from a repository secret, e.g.:"
        );
        let _ = writeln!(
            env,
            "      # TIKTOK_REFRESH_TOKEN: ${{{{ secrets.TIKTOK_REFRESH_TOKEN }}}}"
        );
    }
    for v in &s.vars {
        let _ = writeln!(env, "      {v}: ${{{{ secrets.{v} }}}}");
    }
    let _ = writeln!(
        env,
        "      # The github-actions write-back updates repository secrets: it needs a token"
    );
    let _ = writeln!(
        env,
        "      # allowed to write them (the workflow's own GITHUB_TOKEN cannot)."
    );
    let token_env = s.actions_token_env.as_deref().unwrap_or("GITHUB_TOKEN");
    let _ = writeln!(
        env,
        "      {token_env}: ${{{{ secrets.EVERTOKEN_SECRETS_TOKEN }}}}"
    );
    let contents = format!(
        r#"# evertoken: keeps this repository's tokens alive. Generated by
# `evertoken schedule github-actions`. Set `auth.writeback.backend: github-actions`
# in the evertoken config so rotated tokens are written back to the repository
# secrets. The run fails (exit 1) when a credential needs a human.
name: evertoken

on:
  schedule:
    - cron: "17 6 * * 1"
  workflow_dispatch:

permissions:
  contents: read

# One run at a time: a rotation is never raced by a second run.
concurrency:
  group: evertoken
  cancel-in-progress: false

jobs:
  refresh:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    env:
{env}    steps:
      - uses: actions/checkout@v4
      # The rotation journal: a write-back interrupted in one run is finished by the
      # next. Saved even when the run fails (that is when it may hold a token).
      - uses: actions/cache/restore@v4
        with:
          path: {CI_STATE_DIR}
          key: evertoken-journal-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}
          restore-keys: evertoken-journal-
      - name: Install evertoken
        run: command -v evertoken || cargo install --locked evertoken
      - name: Refresh tokens
        run: {cmd}
      - uses: actions/cache/save@v4
        if: always()
        with:
          path: {CI_STATE_DIR}
          key: evertoken-journal-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: evertoken-metrics
          path: {CI_METRICS_FILE}
          if-no-files-found: ignore
"#
    );
    let mut warnings = Vec::new();
    if let Some(b) = s.backend.filter(|b| *b != "github-actions") {
        warnings.push(format!(
            "the configured write-back is `{b}`: on a GitHub runner rotated tokens would be lost when the job ends; set `auth.writeback.backend: github-actions`"
        ));
    }
    Schedule {
        files: vec![File {
            path: PathBuf::from(".github/workflows/evertoken.yml"),
            contents,
        }],
        next_steps: vec![
            "add each variable listed under `env:` as a repository secret".into(),
            "commit .github/workflows/evertoken.yml".into(),
        ],
        warnings,
    }
}

fn systemd(s: &Settings) -> Schedule {
    let mut exec = systemd_word(&s.exe.to_string_lossy());
    if let Some(c) = &s.config {
        let _ = write!(exec, " --config {}", systemd_word(&c.to_string_lossy()));
    }
    // %S is $XDG_STATE_HOME (~/.local/state) for user units.
    let _ = write!(
        exec,
        " auth refresh all --metrics-file %S/evertoken/metrics.prom"
    );
    let service = format!(
        r#"# Generated by `evertoken schedule systemd`.
[Unit]
Description=evertoken: refresh and rotate tokens, write them back, alert on the rest
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart={exec}
# Exit 1 means a credential needs a human: the unit shows as failed
# (`systemctl --user status {SYSTEMD_UNIT}`, `journalctl --user -u {SYSTEMD_UNIT}`).
"#
    );
    let timer = format!(
        r#"# Generated by `evertoken schedule systemd`.
[Unit]
Description=Run {SYSTEMD_UNIT}.service daily

[Timer]
OnCalendar=daily
RandomizedDelaySec=1h
# Catch up on a run missed while the machine was off.
Persistent=true

[Install]
WantedBy=timers.target
"#
    );
    let dir = systemd_user_dir();
    Schedule {
        files: vec![
            File {
                path: dir.join(format!("{SYSTEMD_UNIT}.service")),
                contents: service,
            },
            File {
                path: dir.join(format!("{SYSTEMD_UNIT}.timer")),
                contents: timer,
            },
        ],
        next_steps: vec![
            format!(
                "systemctl --user daemon-reload && systemctl --user enable --now {SYSTEMD_UNIT}.timer"
            ),
            "loginctl enable-linger \"$USER\"   # keep the timer running while you are logged out"
                .into(),
        ],
        warnings: Vec::new(),
    }
}

/// `$XDG_CONFIG_HOME/systemd/user`, else `~/.config/systemd/user`.
pub fn systemd_user_dir() -> PathBuf {
    match std::env::var_os(crate::env_vars::XDG_CONFIG_HOME) {
        Some(v) if !v.is_empty() => PathBuf::from(v).join("systemd/user"),
        _ => files::home_dir().join(".config/systemd/user"),
    }
}

/// A word for a POSIX shell line: quoted when it holds anything unusual.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A word for systemd's `ExecStart=`: `%` doubled, quoted when it holds spaces.
fn systemd_word(s: &str) -> String {
    let s = s.replace('%', "%%");
    if s.chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s
    }
}

/// Whether `path` exists with contents other than `contents`.
pub fn differs(path: &Path, contents: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|old| old != contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_words_escape_percent_and_quote_spaces() {
        assert_eq!(systemd_word("/usr/bin/evertoken"), "/usr/bin/evertoken");
        assert_eq!(systemd_word("/a b/100%"), "\"/a b/100%%\"");
        assert_eq!(shell_word("my config.yaml"), "'my config.yaml'");
        assert_eq!(shell_word("evertoken.yaml"), "evertoken.yaml");
    }
}
