//! Ready-made schedules: a GitLab scheduled-pipeline job, a GitHub Actions
//! workflow and a systemd user service + timer, each running `evertoken auth
//! refresh all`. Generation is pure: [`generate`] turns [`Settings`] into file
//! contents; only the CLI writes them (with `--write`).
//!
//! Every generated file names the config it was made from and lists every
//! variable that config makes evertoken read ([`needed_vars`]): token variables,
//! client secrets, store credentials and alert settings. The CI jobs install a
//! prebuilt binary (checksum-verified) instead of compiling on every run, with a
//! `cargo install` fallback whose result is cached between runs; they keep the
//! rotation journal in the CI cache, so a write-back interrupted in one run is
//! finished by the next, and keep the metrics file as an artifact. With
//! `--shards N` they split the accounts over N parallel jobs. The systemd units
//! read secrets from an `EnvironmentFile=`. No template ever contains a secret:
//! files name secret variables, never values.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::files;

/// Where the job keeps the journal inside the CI workspace (cached between runs).
pub const CI_STATE_DIR: &str = ".evertoken-state";
/// The metrics file the CI jobs write and keep as an artifact.
pub const CI_METRICS_FILE: &str = "evertoken.prom";
pub const SYSTEMD_UNIT: &str = "evertoken-refresh";
/// The GitLab job's cargo home inside the workspace (its `bin/` is cached).
pub const CI_CARGO_HOME: &str = ".evertoken-cargo";
/// The evertoken version the CI jobs install.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Linux x86_64 release asset the CI jobs fetch (a `.tar.gz` holding the
/// `evertoken` binary, with a `.sha256` file beside it).
pub const RELEASE_ASSET: &str = "evertoken-x86_64-unknown-linux-gnu.tar.gz";

/// The default download: the release asset of this version.
pub fn default_release_url() -> String {
    format!(
        "{}/releases/download/v{VERSION}/{RELEASE_ASSET}",
        REPOSITORY.trim_end_matches('/')
    )
}

/// The project's repository (the manifest's `repository`), where releases live.
pub const REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

pub mod broker;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A GitLab CI job for a weekly scheduled pipeline (with the gitlab write-back)
    Gitlab,
    /// A GitHub Actions workflow on `schedule:`
    GithubActions,
    /// A systemd user service and timer
    Systemd,
    /// A GitHub Actions workflow whose job gets a GitHub App token from the token
    /// broker with its OIDC ID token (needs --broker and --policy)
    BrokerGithubActions,
    /// A GitLab CI template job that gets a GitHub App token from the token broker
    /// with its `id_tokens:` ID token (needs --broker and --policy)
    BrokerGitlab,
}

/// How a CI job gets the evertoken binary (`--install-from`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Install {
    /// The prebuilt release binary of this version, checksum-verified; when it
    /// cannot be fetched, `cargo install` once, cached for the next runs.
    Release,
    /// A prebuilt `.tar.gz` at this URL (a mirror), with its `.sha256` beside it;
    /// same fallback.
    Url(String),
    /// Always build with `cargo install`, caching the binary between runs.
    Cargo,
}

impl Install {
    pub fn parse(s: &str) -> Result<Install, String> {
        match s {
            "release" => Ok(Install::Release),
            "cargo" => Ok(Install::Cargo),
            u if u.starts_with("https://") || u.starts_with("http://") => {
                let url = url::Url::parse(u).map_err(|e| format!("`{u}` is not a URL: {e}"))?;
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(format!(
                        "`{}` holds credentials; the file would publish them",
                        crate::http::safe_url(&url)
                    ));
                }
                if u.contains(['\'', '"', '`', '$', '\\', ' ']) {
                    return Err("the URL holds quotes, `$`, backslashes or spaces".into());
                }
                Ok(Install::Url(u.to_owned()))
            }
            other => Err(format!(
                "unknown install source `{other}`: expected `release`, `cargo` or an https:// URL of a .tar.gz"
            )),
        }
    }

    fn url(&self) -> Option<String> {
        match self {
            Install::Release => Some(default_release_url()),
            Install::Url(u) => Some(u.clone()),
            Install::Cargo => None,
        }
    }
}

/// Why evertoken reads a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarKind {
    /// An account's token (evertoken rewrites it when it rotates).
    Token,
    /// A platform's OAuth client secret.
    ClientSecret,
    /// The write-back store's credentials.
    Store,
    /// Where alerts go.
    Alert,
}

impl VarKind {
    fn describe(self) -> &'static str {
        match self {
            VarKind::Token => "token (evertoken rewrites it)",
            VarKind::ClientSecret => "OAuth client secret",
            VarKind::Store => "write-back store credential",
            VarKind::Alert => "alert setting",
        }
    }
}

/// One variable a config makes evertoken read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Var {
    pub name: String,
    pub kind: VarKind,
    /// A note ("or VAULT_ROLE_ID + VAULT_SECRET_ID", "optional").
    pub note: Option<&'static str>,
}

/// Every variable `cfg` makes evertoken read when it refreshes: token variables,
/// client secrets, store credentials and alert settings.
pub fn needed_vars(cfg: &Config) -> Vec<Var> {
    let mut out: Vec<Var> = Vec::new();
    let mut push = |name: &str, kind: VarKind, note: Option<&'static str>| {
        if !out.iter().any(|v| v.name == name) {
            out.push(Var {
                name: name.to_owned(),
                kind,
                note,
            });
        }
    };
    if let Ok(providers) = crate::provider::build(cfg) {
        for p in &providers {
            for a in p.accounts() {
                for slot in p.slots() {
                    push(&a.var(slot.base), VarKind::Token, None);
                }
            }
        }
        for p in &providers {
            if let Some(v) = p.client_secret_var() {
                push(v, VarKind::ClientSecret, None);
            }
        }
    }
    use crate::env_vars as ev;
    let wb = &cfg.file.auth.writeback;
    match wb.backend {
        crate::store::Backend::Gitlab => push(ev::GITLAB_TOKEN, VarKind::Store, None),
        crate::store::Backend::Vault => {
            if wb.vault.as_ref().and_then(|v| v.address.as_ref()).is_none() {
                push(ev::VAULT_ADDR, VarKind::Store, None);
            }
            push(
                ev::VAULT_TOKEN,
                VarKind::Store,
                Some("or VAULT_ROLE_ID + VAULT_SECRET_ID"),
            );
            push(
                ev::VAULT_ROLE_ID,
                VarKind::Store,
                Some("AppRole, instead of VAULT_TOKEN"),
            );
            push(
                ev::VAULT_SECRET_ID,
                VarKind::Store,
                Some("AppRole, instead of VAULT_TOKEN"),
            );
        }
        crate::store::Backend::GithubActions => {
            let name = wb
                .github_actions
                .as_ref()
                .and_then(|c| c.token_env.clone())
                .unwrap_or_else(|| ev::GITHUB_TOKEN.to_owned());
            push(&name, VarKind::Store, None);
        }
        crate::store::Backend::Local | crate::store::Backend::EnvFile => {}
    }
    let alerts = &cfg.file.auth.alerts;
    match alerts.backend {
        crate::alert::Backend::Webhook => {
            let in_file = alerts
                .webhook
                .as_ref()
                .and_then(|w| w.url.as_ref())
                .is_some_and(|u| !u.trim().is_empty());
            if !in_file {
                push(ev::ALERT_WEBHOOK_URL, VarKind::Alert, None);
            }
        }
        crate::alert::Backend::Email => {
            push(
                ev::ALERT_SMTP_USERNAME,
                VarKind::Alert,
                Some("if the server needs a login"),
            );
            push(
                ev::ALERT_SMTP_PASSWORD,
                VarKind::Alert,
                Some("if the server needs a login"),
            );
        }
        crate::alert::Backend::None => {}
    }
    out
}

/// What the templates need to know about this installation.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The evertoken binary (systemd's `ExecStart=` needs an absolute path).
    pub exe: PathBuf,
    /// The config file, when one was found (absolute).
    pub config: Option<PathBuf>,
    /// The config file as the CI job names it (relative to the repository root).
    pub ci_config: String,
    /// Every variable the config makes evertoken read.
    pub vars: Vec<Var>,
    /// The configured write-back backend, when a config was found.
    pub backend: Option<&'static str>,
    /// The variable the github-actions write-back reads its token from
    /// (`auth.writeback.github_actions.token_env`, default `GITHUB_TOKEN`).
    pub actions_token_env: Option<String>,
    /// How CI jobs get the binary.
    pub install: Install,
    /// Split the accounts over this many parallel CI jobs.
    pub shards: Option<u32>,
    /// systemd: the `EnvironmentFile=` the service reads secrets from.
    pub env_file: PathBuf,
    /// systemd: whether lingering is on for this user (`None`: unknown).
    pub linger: Option<bool>,
    /// Notes about the settings themselves ("the config is outside this directory").
    pub notes: Vec<String>,
    /// The broker snippets' URL, policy and audience.
    pub broker: Option<broker::BrokerSnippet>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            exe: PathBuf::from("evertoken"),
            config: None,
            ci_config: "evertoken.yaml".into(),
            vars: Vec::new(),
            backend: None,
            actions_token_env: None,
            install: Install::Release,
            shards: None,
            env_file: default_env_file(),
            linger: None,
            notes: Vec::new(),
            broker: None,
        }
    }
}

/// `$XDG_CONFIG_HOME/evertoken/evertoken.env` (else under `~/.config`).
pub fn default_env_file() -> PathBuf {
    files::default_config_dir().join("evertoken.env")
}

impl Settings {
    /// Settings from the running binary and a config (if any was found).
    pub fn from_config(exe: PathBuf, cfg: Option<&Config>) -> Settings {
        let mut s = Settings {
            exe,
            ..Settings::default()
        };
        let Some(cfg) = cfg else {
            s.notes.push("no config file was found: the files name `evertoken.yaml` and list no variables; run again with --config PATH".into());
            return s;
        };
        s.config = cfg
            .path
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
        // A CI job runs in the repository root: the config relative to it.
        let cwd = std::env::current_dir().unwrap_or_default();
        if let Some(p) = &s.config {
            match p.strip_prefix(&cwd) {
                Ok(rel) => s.ci_config = rel.to_string_lossy().into_owned(),
                Err(_) => {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "evertoken.yaml".into());
                    s.notes.push(format!(
                        "the config {} is outside this directory: the CI files name `{name}`; commit it to the repository root (or edit --config in the file)",
                        p.display()
                    ));
                    s.ci_config = name;
                }
            }
        }
        s.backend = Some(cfg.file.auth.writeback.backend.name());
        s.actions_token_env = cfg
            .file
            .auth
            .writeback
            .github_actions
            .as_ref()
            .and_then(|c| c.token_env.clone());
        s.vars = needed_vars(cfg);
        s
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
    /// A private file to create empty (0600) if missing (systemd's EnvironmentFile=).
    pub private_empty: Option<PathBuf>,
}

/// Refuses settings that would rewrite the generated files instead of filling
/// them in: a control character (a line break starts a new YAML key, unit
/// directive or shell command) in any value that goes into a file, a variable name
/// outside `[A-Za-z_][A-Za-z0-9_]*`, or a GitHub Actions expression (`${{`) in
/// the config path, which the runner would evaluate. `Err` names the value.
pub fn check(kind: Kind, s: &Settings) -> std::result::Result<(), String> {
    let shown = |v: &str| crate::scrub::escape_controls(v).into_owned();
    let mut values: Vec<(&str, String)> = vec![
        ("the config path", s.ci_config.clone()),
        (
            "the evertoken binary's path",
            s.exe.to_string_lossy().into_owned(),
        ),
        (
            "the environment file's path",
            s.env_file.to_string_lossy().into_owned(),
        ),
    ];
    if let Some(c) = &s.config {
        values.push(("the config path", c.to_string_lossy().into_owned()));
    }
    for (what, v) in &values {
        if v.chars()
            .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
        {
            return Err(format!(
                "{what} `{}` holds a control character (a line break would add lines to the generated file)",
                shown(v)
            ));
        }
    }
    if kind == Kind::GithubActions && s.ci_config.contains("${{") {
        return Err(format!(
            "the config path `{}` holds `${{{{`, which GitHub Actions would evaluate as an expression",
            shown(&s.ci_config)
        ));
    }
    let var_ok = |v: &str| {
        v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    for v in s.vars.iter().map(|v| &v.name).chain(&s.actions_token_env) {
        if !var_ok(v) {
            return Err(format!(
                "`{}` is not an environment variable name (letters, digits and `_`, not starting with a digit)",
                shown(v)
            ));
        }
    }
    Ok(())
}

/// A YAML scalar for `value`, quoted as the YAML emitter decides, so that a YAML
/// parser reads back exactly `value` whatever it holds (`: `, `#`, quotes, a
/// leading `-` or `*` …). Control characters are refused earlier by [`check`].
fn yaml_scalar(value: &str) -> String {
    serde_norway::to_string(value)
        .map(|t| t.trim_end_matches('\n').to_owned())
        .unwrap_or_else(|_| format!("'{}'", value.replace('\'', "''")))
}

pub fn generate(kind: Kind, s: &Settings) -> Schedule {
    let mut out = match kind {
        Kind::Gitlab => gitlab(s),
        Kind::GithubActions => github_actions(s),
        Kind::Systemd => systemd(s),
        Kind::BrokerGithubActions | Kind::BrokerGitlab => {
            // The CLI refuses these kinds without --broker and --policy (exit 2).
            match (&s.broker, kind) {
                (Some(b), Kind::BrokerGitlab) => broker::gitlab(s, b),
                (Some(b), _) => broker::github_actions(s, b),
                (None, _) => Schedule {
                    files: Vec::new(),
                    next_steps: Vec::new(),
                    warnings: vec![
                        "the broker snippets need --broker URL and --policy NAME".into(),
                    ],
                    private_empty: None,
                },
            }
        }
    };
    out.warnings.splice(0..0, s.notes.iter().cloned());
    out
}

fn refresh_command(s: &Settings, shard: Option<&str>) -> String {
    let mut cmd = format!("evertoken --config {}", shell_word(&s.ci_config));
    let _ = write!(cmd, " auth refresh all");
    if let Some(sh) = shard {
        let _ = write!(cmd, " --shard {sh}");
    }
    let _ = write!(cmd, " --metrics-file {CI_METRICS_FILE}");
    cmd
}

/// The variables as comment lines (`#   NAME  what`), for the head of a file.
fn var_comment(vars: &[Var], indent: &str) -> String {
    let width = vars.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for v in vars {
        let note = v.note.map(|n| format!("; {n}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{indent}#   {:width$}  {}{note}",
            v.name,
            v.kind.describe()
        );
    }
    out
}

/// The install step's shell lines: fetch the prebuilt binary (checksum-verified)
/// into `$bin`, else `cargo install` once; skipped when `evertoken` is on PATH.
fn install_script(s: &Settings, bin: &str) -> Vec<String> {
    let mut l = vec!["if ! command -v evertoken >/dev/null 2>&1; then".to_owned()];
    match s.install.url() {
        Some(url) => {
            l.push(format!(
                "  url=\"{url}\"; mkdir -p \"{bin}\" /tmp/evertoken-dl"
            ));
            l.push(
                "  if curl -fsSL --retry 3 \"$url\" -o /tmp/evertoken-dl/evertoken.tar.gz &&"
                    .into(),
            );
            l.push("     curl -fsSL --retry 3 \"$url.sha256\" -o /tmp/evertoken-dl/sum &&".into());
            l.push("     echo \"$(cut -d' ' -f1 /tmp/evertoken-dl/sum)  /tmp/evertoken-dl/evertoken.tar.gz\" | sha256sum -c - >/dev/null; then".into());
            l.push("    tar -xzf /tmp/evertoken-dl/evertoken.tar.gz -C /tmp/evertoken-dl".into());
            l.push(format!(
                "    find /tmp/evertoken-dl -type f -name evertoken -exec install -m 0755 {{}} \"{bin}/evertoken\" \\;"
            ));
            l.push("  else".into());
            l.push("    echo \"no prebuilt evertoken at $url: building it once (cached for the next runs)\"".into());
            l.push(format!(
                "    cargo install --locked --root \"{bin}/..\" evertoken --version {VERSION}"
            ));
            l.push("  fi".into());
        }
        None => {
            l.push(format!(
                "  cargo install --locked --root \"{bin}/..\" evertoken --version {VERSION}"
            ));
        }
    }
    l.push("fi".into());
    l.push("evertoken --version".into());
    l
}

fn gitlab(s: &Settings) -> Schedule {
    let shard = s.shards.map(|_| "ci");
    let cmd = yaml_scalar(&refresh_command(s, shard));
    let vars = if s.vars.is_empty() {
        "#   (no config was found: run `evertoken --config PATH schedule gitlab`)\n".to_owned()
    } else {
        var_comment(&s.vars, "")
    };
    let parallel = match s.shards {
        Some(n) => format!(
            "  # {n} jobs, each refreshing its own share of the accounts (`--shard ci` reads\n  # CI_NODE_INDEX/CI_NODE_TOTAL, which `parallel:` sets).\n  parallel: {n}\n"
        ),
        None => String::new(),
    };
    // Each shard keeps its own journal.
    let parallel = if s.shards.is_some() {
        format!(
            "{parallel}  cache:\n    - key: evertoken-journal-$CI_NODE_INDEX\n      paths:\n        - {CI_STATE_DIR}/\n      when: always\n    - key: evertoken-bin-{VERSION}\n      paths:\n        - {CI_CARGO_HOME}/bin/\n"
        )
    } else {
        parallel
    };
    let install: String = install_script(s, &format!("$CI_PROJECT_DIR/{CI_CARGO_HOME}/bin"))
        .iter()
        .map(|l| format!("      {l}\n"))
        .collect();
    let config = &s.ci_config;
    let contents = format!(
        r#"# evertoken: keeps this project's tokens alive. Generated by
# `evertoken --config {config} schedule gitlab`.
#
# 1. Include this file from .gitlab-ci.yml:
#      include:
#        - local: evertoken.gitlab-ci.yml
# 2. `auth.writeback.backend: gitlab` in {config}, so rotated tokens are written
#    back to this project's CI/CD variables.
# 3. Settings > CI/CD > Variables, each masked and protected (the first tokens come
#    from `evertoken auth login PLATFORM --store gitlab --create-variable`):
{vars}# 4. Build > Pipeline schedules: a weekly schedule on a protected branch, for
#    example "17 6 * * 1" (Mondays 06:17).
#
# The job exits 1 when a credential needs a human (re-auth, failed refresh), so a
# failed scheduled pipeline is the alarm. The rotation journal stays in the CI cache:
# a write-back interrupted in one run is finished by the next.
#
# Jobs that post get their tokens from evertoken, never refresh on their own (a
# second rotator kills evertoken's refresh token):
#   post:
#     extends: .evertoken
#     resource_group: evertoken
#     script:
#       - eval "$(evertoken --config {config} auth env tiktok)"
#       - ./post-video.sh

# The install and the journal cache, shared with posting jobs (`extends: .evertoken`).
.evertoken:
  image: rust:1
  variables:
    XDG_STATE_HOME: $CI_PROJECT_DIR/{CI_STATE_DIR}
  cache:
    - key: evertoken-journal
      paths:
        - {CI_STATE_DIR}/
      when: always
    # The evertoken binary: built at most once per version when no prebuilt one
    # can be fetched.
    - key: evertoken-bin-{VERSION}
      paths:
        - {CI_CARGO_HOME}/bin/
  before_script:
    - export PATH="$CI_PROJECT_DIR/{CI_CARGO_HOME}/bin:$PATH"
    - |
{install}
evertoken-refresh:
  extends: .evertoken
  rules:
    - if: $CI_PIPELINE_SOURCE == "schedule"
    - if: $CI_PIPELINE_SOURCE == "web"
      when: manual
  # One run at a time: a rotation is never raced by a second pipeline.
  resource_group: evertoken
{parallel}  script:
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
        private_empty: None,
    }
}

fn github_actions(s: &Settings) -> Schedule {
    let shards = s.shards;
    let shard_arg = shards.map(|n| format!("${{{{ matrix.shard }}}}/{n}"));
    let cmd = yaml_scalar(&refresh_command(s, shard_arg.as_deref()));
    let token_env = s
        .actions_token_env
        .clone()
        .unwrap_or_else(|| "GITHUB_TOKEN".into());
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
        if v.name == token_env && v.kind == VarKind::Store {
            continue;
        }
        let _ = writeln!(env, "      {}: ${{{{ secrets.{} }}}}", v.name, v.name);
    }
    let _ = writeln!(
        env,
        "      # The github-actions write-back updates repository secrets: it needs a token"
    );
    let _ = writeln!(
        env,
        "      # allowed to write them (the workflow's own GITHUB_TOKEN cannot)."
    );
    let _ = writeln!(
        env,
        "      {token_env}: ${{{{ secrets.EVERTOKEN_SECRETS_TOKEN }}}}"
    );
    let (strategy, suffix) = match shards {
        Some(n) => {
            let list: Vec<String> = (1..=n).map(|k| k.to_string()).collect();
            (
                format!(
                    "    # {n} jobs, each refreshing its own share of the accounts.\n    strategy:\n      fail-fast: false\n      matrix:\n        shard: [{}]\n",
                    list.join(", ")
                ),
                "-${{ matrix.shard }}",
            )
        }
        None => (String::new(), ""),
    };
    let install: String = install_script(s, "$HOME/.cargo/bin")
        .iter()
        .map(|l| format!("          {l}\n"))
        .collect();
    let config = &s.ci_config;
    let vars = if s.vars.is_empty() {
        "#   (no config was found: run `evertoken --config PATH schedule github-actions`)\n"
            .to_owned()
    } else {
        var_comment(&s.vars, "")
    };
    let contents = format!(
        r#"# evertoken: keeps this repository's tokens alive. Generated by
# `evertoken --config {config} schedule github-actions`. Set
# `auth.writeback.backend: github-actions` in {config} so rotated tokens are
# written back to the repository secrets. The run fails (exit 1) when a credential
# needs a human.
#
# Repository secrets this workflow reads (Settings > Secrets and variables > Actions),
# plus EVERTOKEN_SECRETS_TOKEN (a token allowed to write Actions secrets):
{vars}#
# Jobs that post get their tokens from evertoken, never refresh on their own:
#   - run: eval "$(evertoken --config {config} auth env tiktok)" && ./post-video.sh
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
{strategy}    env:
{env}    steps:
      - uses: actions/checkout@v4
      # The rotation journal: a write-back interrupted in one run is finished by the
      # next. Saved even when the run fails (that is when it may hold a token).
      - uses: actions/cache/restore@v4
        with:
          path: {CI_STATE_DIR}
          key: evertoken-journal{suffix}-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}
          restore-keys: evertoken-journal{suffix}-
      # The evertoken binary: built at most once per version when no prebuilt one
      # can be fetched.
      - uses: actions/cache@v4
        with:
          path: ~/.cargo/bin/evertoken
          key: evertoken-bin-${{{{ runner.os }}}}-{VERSION}
      - name: Install evertoken
        run: |
{install}      - name: Refresh tokens
        run: {cmd}
      - uses: actions/cache/save@v4
        if: always()
        with:
          path: {CI_STATE_DIR}
          key: evertoken-journal{suffix}-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: evertoken-metrics{suffix}
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
        private_empty: None,
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
    let env_file = systemd_path(&s.env_file.to_string_lossy());
    let from_env: Vec<Var> = s
        .vars
        .iter()
        .filter(|v| v.kind != VarKind::Token)
        .cloned()
        .collect();
    let tokens: Vec<Var> = s
        .vars
        .iter()
        .filter(|v| v.kind == VarKind::Token)
        .cloned()
        .collect();
    let mut listing = String::new();
    if s.config.is_none() {
        listing.push_str(
            "# No config was found: run `evertoken --config PATH schedule systemd` to list\n# the variables it reads.\n",
        );
    }
    if !from_env.is_empty() {
        listing.push_str(&format!(
            "# Secrets this config reads from the environment: put NAME=value lines in\n# {} (mode 0600), or keep them in evertoken's store:\n",
            s.env_file.display()
        ));
        listing.push_str(&var_comment(&from_env, ""));
    }
    if !tokens.is_empty() {
        listing.push_str(
            "# Tokens it reads from its store (or the environment file) and keeps alive:\n",
        );
        listing.push_str(&var_comment(&tokens, ""));
    }
    let config_line = match &s.config {
        Some(c) => format!("# Config: {}\n", c.display()),
        None => String::new(),
    };
    let service = format!(
        r#"# Generated by `evertoken schedule systemd`.
{config_line}{listing}[Unit]
Description=evertoken: refresh and rotate tokens, write them back, alert on the rest
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
EnvironmentFile={env_file}
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
    let mut next_steps = vec![format!(
        "systemctl --user daemon-reload && systemctl --user enable --now {SYSTEMD_UNIT}.timer"
    )];
    let mut warnings = Vec::new();
    match s.linger {
        Some(true) => {}
        Some(false) => warnings.push(linger_hint()),
        None => next_steps.push(
            "loginctl enable-linger \"$USER\"   # keep the timer running while you are logged out"
                .into(),
        ),
    }
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
        next_steps,
        warnings,
        private_empty: Some(s.env_file.clone()),
    }
}

/// What to say when lingering is off.
pub fn linger_hint() -> String {
    "lingering is off for this user: the timer stops when you log out (a VPS session ends); run `loginctl enable-linger \"$USER\"`".to_owned()
}

/// Whether systemd keeps this user's manager (and timers) running after logout:
/// `/var/lib/systemd/linger/<user>` exists. `None` when the user is unknown.
pub fn linger_enabled() -> Option<bool> {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && !u.contains('/'))?;
    Some(Path::new("/var/lib/systemd/linger").join(user).exists())
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

/// A word for systemd's `ExecStart=` (systemd.syntax(7), systemd.service(5)):
/// `%` (specifiers) and `$` (variable expansion) doubled; double-quoted, with `\`
/// and `"` escaped, when it holds whitespace, a quote, a backslash or `;` (a lone
/// `;` separates commands). Control characters are refused earlier by [`check`].
fn systemd_word(s: &str) -> String {
    let s = s.replace('%', "%%").replace('$', "$$");
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s
    }
}

/// A path for `EnvironmentFile=`: specifiers (`%`) are expanded there, variables
/// (`$`) are not; quoted like an `ExecStart=` word when it holds spaces.
fn systemd_path(s: &str) -> String {
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

    #[test]
    fn install_sources_parse_and_refuse_what_would_break_the_file() {
        assert_eq!(Install::parse("release"), Ok(Install::Release));
        assert_eq!(Install::parse("cargo"), Ok(Install::Cargo));
        assert!(matches!(
            Install::parse("https://mirror.example/e.tar.gz"),
            Ok(Install::Url(_))
        ));
        for bad in [
            "ftp://x/y",
            "image",
            "https://user:pw@mirror.example/e.tar.gz",
            "https://mirror.example/$(id).tar.gz",
            "https://mirror.example/a'b",
        ] {
            assert!(Install::parse(bad).is_err(), "{bad}");
        }
        let url = default_release_url();
        assert!(
            url.ends_with(&format!("/v{VERSION}/{RELEASE_ASSET}")),
            "{url}"
        );
        assert!(
            url.starts_with("https://") && url::Url::parse(&url).is_ok(),
            "the manifest's `repository` must be set: {url}"
        );
    }
}
