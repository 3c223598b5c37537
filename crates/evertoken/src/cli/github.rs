//! `evertoken github …`: GitHub App installation tokens. Parses, calls
//! [`crate::github`], renders. The only places a whole token is printed are
//! `github token` and `git-credential get` (stdout, on explicit request) and the
//! `::add-mask::` command GitHub Actions consumes.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use super::Ctx;
use crate::config::Config;
use crate::env_vars;
use crate::error::{Error, Result};
use crate::github::{self, App, Overrides, Refreshed, bootstrap, status};
use crate::http::Http;
use crate::render;
use crate::secret::Secret;

#[derive(Debug, Subcommand)]
pub enum GithubCommand {
    /// Print a valid installation token on stdout (minting when the stored one is stale)
    ///
    /// For scripts: `GH_TOKEN=$(evertoken github token)`. Mints when the token file is
    /// missing, older than max_token_age_minutes, or within 5 minutes of expiry.
    Token(AppArgs),
    /// Token file presence, age, prefix and expiry; gh and timer state (offline)
    ///
    /// Exits 1 when the token is missing, stale or expired, or when gh_cli is on and gh
    /// does not hold the current token. The timer's state is reported, not judged.
    Status(StatusArgs),
    /// Mint a new installation token now and write it to the token file
    Refresh(RefreshArgs),
    /// How the pieces fit together (text for humans and chat)
    Flow(AppArgs),
    /// Install the app's key, write its config entry and a systemd timer, mint once
    Bootstrap(BootstrapArgs),
    /// git credential helper: `git config credential.helper '!evertoken github git-credential'`
    #[command(name = "git-credential")]
    GitCredential(GitCredentialArgs),
}

#[derive(Debug, Args)]
pub struct AppArgs {
    /// The app entry under `github.apps`
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub app: String,
}

#[derive(Debug, Args)]
pub struct FileOverrides {
    /// Token env file to use instead of the app's `token_env_file`
    #[arg(long, value_name = "PATH")]
    pub token_env_file: Option<PathBuf>,
    /// Staleness limit instead of the app's `max_token_age_minutes`
    #[arg(long, value_name = "MINUTES", value_parser = clap::value_parser!(u64).range(1..=60))]
    pub max_token_age_minutes: Option<u64>,
}

impl FileOverrides {
    fn get(&self) -> Overrides {
        Overrides {
            token_env_file: self.token_env_file.clone(),
            max_token_age_minutes: self.max_token_age_minutes,
        }
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub app: AppArgs,
    #[command(flatten)]
    pub files: FileOverrides,
    /// One JSON document on stdout
    #[arg(long)]
    pub json: bool,
    /// Also write Prometheus metrics (textfile-collector format) to PATH
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    #[command(flatten)]
    pub app: AppArgs,
    #[command(flatten)]
    pub files: FileOverrides,
    /// Give up (exit 1) after this many seconds, waiting for the lock included
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// Also write Prometheus metrics (textfile-collector format) to PATH
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// The GitHub App's ID (its settings page shows it)
    #[arg(long, value_name = "N")]
    pub app_id: u64,
    /// The installation's id (github.com/settings/installations/N)
    #[arg(long, value_name = "N", required_unless_present = "owner")]
    pub installation_id: Option<u64>,
    /// Look the installation up on this organisation or user instead of --installation-id
    #[arg(long, value_name = "LOGIN", conflicts_with = "installation_id")]
    pub owner: Option<String>,
    /// The downloaded private key (.pem); it is installed as ~/.config/evertoken/github-app.pem
    #[arg(long, value_name = "PATH")]
    pub private_key: PathBuf,
    /// Do not write or enable the systemd user timer
    #[arg(long)]
    pub no_systemd: bool,
    /// Delete the staged key file once it is installed
    #[arg(long)]
    pub remove_source: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CredentialOp {
    Get,
    Store,
    Erase,
}

#[derive(Debug, Args)]
pub struct GitCredentialArgs {
    /// The operation git asks for
    #[arg(value_enum)]
    pub op: CredentialOp,
    #[command(flatten)]
    pub app: AppArgs,
}

/// Loads the config (defaults when there is none) and resolves the app.
fn load(ctx: &Ctx, name: &str, ov: &Overrides) -> Result<(Config, App)> {
    let cfg = Config::load(ctx.config_flag.as_deref())?;
    let app = github::app::resolve(&cfg, name, ov)?;
    Ok((cfg, app))
}

fn in_actions() -> bool {
    std::env::var(env_vars::GITHUB_ACTIONS).is_ok_and(|v| v == "true")
}

/// GitHub Actions masks every later occurrence of the token in the job's logs.
fn mask_line(token: &Secret) -> String {
    format!("::add-mask::{}\n", token.expose())
}

pub async fn exec(ctx: &Ctx, cmd: GithubCommand) -> Result<u8> {
    // A mint does not retire earlier tokens, so an interrupted command only has to
    // stop before its next call; the one in flight finishes (bounded by its timeout).
    if matches!(
        cmd,
        GithubCommand::Token(_) | GithubCommand::Refresh(_) | GithubCommand::Bootstrap(_)
    ) {
        super::arm_signals(ctx);
    }
    match cmd {
        GithubCommand::Token(a) => token(ctx, a).await,
        GithubCommand::Status(a) => status_cmd(ctx, a).await,
        GithubCommand::Refresh(a) => refresh_cmd(ctx, a).await,
        GithubCommand::Flow(a) => {
            let (_, app) = load(ctx, &a.app, &Overrides::default())?;
            render::stdout(&github::flow_text(&app));
            Ok(0)
        }
        GithubCommand::Bootstrap(a) => bootstrap_cmd(ctx, a).await,
        GithubCommand::GitCredential(a) => git_credential(ctx, a).await,
    }
}

fn report_refreshed(ctx: &Ctx, app: &App, r: &Refreshed) {
    for n in &r.notes {
        ctx.shell.note(n);
    }
    for w in &r.warnings {
        ctx.shell.warn(w);
    }
    if let Some(e) = &r.gh_error {
        let hint = e
            .hint
            .as_deref()
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        ctx.shell.warn(&format!("{}{hint}", e.message));
    }
    ctx.shell.status(
        "Minted",
        &format!(
            "{} for app `{}` (installation {}), expires {}; wrote {}",
            r.token.prefix(),
            app.name,
            r.installation_id,
            r.expires_at
                .map(crate::clock::rfc3339)
                .unwrap_or_else(|| "unknown".into()),
            app.token_file.display()
        ),
    );
}

async fn token(ctx: &Ctx, a: AppArgs) -> Result<u8> {
    let (cfg, app) = load(ctx, &a.app, &Overrides::default())?;
    let http = Http::new(&cfg.file.http);
    crate::interrupt::global().check("reading or minting the token")?;
    let u = github::usable_token(&app, &http, &ctx.clock, Duration::from_secs(60)).await?;
    if in_actions() {
        // stdout stays the token alone (`$(…)`); the runner reads commands on stderr too.
        eprint!("{}", mask_line(&u.token));
    }
    if let Some(r) = &u.refreshed {
        report_refreshed(ctx, &app, r);
    }
    // The printed token is good whatever gh did: exit 0, so `$(…)` under `set -e` works.
    render::stdout(&format!("{}\n", u.token.expose()));
    Ok(0)
}

async fn status_cmd(ctx: &Ctx, a: StatusArgs) -> Result<u8> {
    let (_, app) = load(ctx, &a.app.app, &a.files.get())?;
    let r = status::status(&app, &ctx.clock).await?;
    if a.json {
        render::stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&r).expect("status serialises")
        ));
    } else {
        render::stdout(&status::render(&r));
    }
    if let Some(path) = &a.metrics_file {
        crate::metrics::write_github_status(
            path,
            std::slice::from_ref(&r),
            ctx.clock.now(),
            r.healthy,
        )?;
    }
    Ok(if r.healthy { 0 } else { 1 })
}

async fn refresh_cmd(ctx: &Ctx, a: RefreshArgs) -> Result<u8> {
    let (cfg, app) = load(ctx, &a.app.app, &a.files.get())?;
    let http = Http::new(&cfg.file.http);
    let limit = Duration::from_secs(a.timeout);
    crate::interrupt::global().check("the mint")?;
    let run = github::refresh(&app, &http, &ctx.clock, limit);
    let outcome = tokio::time::timeout(limit, run).await;
    if let Some(path) = &a.metrics_file {
        let minted = match &outcome {
            Ok(Ok(r)) if r.gh_error.is_none() => Ok(r.expires_at),
            _ => Err(()),
        };
        crate::metrics::write_github_refresh(path, &app.name, minted, ctx.clock.now())?;
    }
    let mut r = match outcome {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return Err(Error {
                message: format!("refresh of GitHub App `{}` failed: {}", app.name, e.message),
                ..e
            });
        }
        Err(_) => {
            return Err(Error::failed(format!(
                "refresh of GitHub App `{}` did not finish within {}s",
                app.name, a.timeout
            ))
            .with_hint("check the network and `api_url`, or raise --timeout"));
        }
    };
    if in_actions() {
        render::stdout(&mask_line(&r.token));
    }
    let gh_error = r.gh_error.take();
    report_refreshed(ctx, &app, &r);
    if let Some(e) = gh_error {
        return Err(Error {
            message: format!(
                "the token file is current, but gh was not updated: {}",
                e.message
            ),
            ..e
        });
    }
    Ok(0)
}

async fn bootstrap_cmd(ctx: &Ctx, a: BootstrapArgs) -> Result<u8> {
    let binary = std::env::current_exe()
        .and_then(std::path::absolute)
        .map_err(|e| Error::failed(format!("cannot find the path of the evertoken binary: {e}")))?;
    let gh_available = tokio::process::Command::new("gh")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    let req = bootstrap::Request {
        app: a.app.app.clone(),
        app_id: a.app_id,
        installation_id: a.installation_id,
        owner: a.owner.clone(),
        private_key: a.private_key.clone(),
        no_systemd: a.no_systemd,
        remove_source: a.remove_source,
        config_flag: ctx.config_flag.clone(),
        binary,
        gh_available,
    };
    let mut out = bootstrap::run(&req)?;
    if !a.no_systemd {
        bootstrap::enable_timer(&req.app, &mut out).await;
    }
    for s in &out.steps {
        ctx.shell.status("Bootstrap", s);
    }
    for w in &out.warnings {
        ctx.shell.warn(w);
    }
    if !out.manual.is_empty() {
        ctx.shell.note(&format!(
            "enable the timer by hand where systemd runs:\n  {}",
            out.manual.join("\n  ")
        ));
    }
    // The first mint (skipped when a fresh token is already there: idempotent).
    let cfg = Config::load_file(&out.config_path)?;
    let app = github::app::resolve(&cfg, &req.app, &Overrides::default())?;
    let http = Http::new(&cfg.file.http);
    crate::interrupt::global().check("the first mint")?;
    let u = github::usable_token(&app, &http, &ctx.clock, Duration::from_secs(60)).await?;
    let mut code = 0;
    match &u.refreshed {
        Some(r) => {
            if in_actions() {
                render::stdout(&mask_line(&r.token));
            }
            report_refreshed(ctx, &app, r);
            if r.gh_error.is_some() {
                code = 1;
            }
        }
        None => ctx.shell.status(
            "Fresh",
            &format!(
                "token in {} is current ({})",
                app.token_file.display(),
                u.token.prefix()
            ),
        ),
    }
    if let Some(src) = &out.staged_key_left {
        ctx.shell.warn(&format!(
            "delete the staged key copy now: rm -f {} (or run bootstrap with --remove-source); keep only {}",
            src.display(),
            app.key_path.display()
        ));
    }
    ctx.shell.note("check it with `evertoken github status`");
    Ok(code)
}

/// git's credential helper protocol: `key=value` lines until a blank line.
async fn git_credential(ctx: &Ctx, a: GitCredentialArgs) -> Result<u8> {
    let mut attrs = std::collections::BTreeMap::new();
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        for line in stdin.lock().lines() {
            let line =
                line.map_err(|e| Error::usage(format!("cannot read git's request on stdin: {e}")))?;
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once('=') {
                attrs.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    match a.op {
        // evertoken mints its own tokens; git's store/erase have nothing to do.
        CredentialOp::Store | CredentialOp::Erase => Ok(0),
        CredentialOp::Get => {
            let (cfg, app) = load(ctx, &a.app.app, &Overrides::default())?;
            let host = attrs.get("host").map(String::as_str).unwrap_or("");
            let protocol = attrs.get("protocol").map(String::as_str).unwrap_or("https");
            if !host.eq_ignore_ascii_case(&app.host) || protocol != "https" {
                // Not ours: say nothing, so git asks the next helper.
                return Ok(0);
            }
            let http = Http::new(&cfg.file.http);
            let u = github::usable_token(&app, &http, &ctx.clock, Duration::from_secs(60)).await?;
            if in_actions() {
                eprint!("{}", mask_line(&u.token));
            }
            if let Some(r) = &u.refreshed {
                report_refreshed(ctx, &app, r);
            }
            render::stdout(&format!(
                "username=x-access-token\npassword={}\n",
                u.token.expose()
            ));
            Ok(0)
        }
    }
}
