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
    Token(TokenArgs),
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
    /// git credential helper: `git config --global credential.https://github.com.helper '!evertoken github git-credential'`
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
pub struct TokenArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// Ask this token broker instead of minting here (no config needed)
    #[arg(long, value_name = "URL", requires = "policy")]
    pub broker: Option<String>,
    /// The broker policy to ask under
    #[arg(long, value_name = "NAME", requires = "broker")]
    pub policy: Option<String>,
    /// Read the OIDC ID token (or client secret) from this file
    #[arg(
        long,
        value_name = "FILE",
        requires = "broker",
        conflicts_with = "id_token_env"
    )]
    pub id_token_file: Option<PathBuf>,
    /// Read the OIDC ID token (or client secret) from this environment variable
    #[arg(long, value_name = "VAR", requires = "broker")]
    pub id_token_env: Option<String>,
    /// Audience of the GitHub Actions ID token requested from the runner
    #[arg(long, value_name = "AUD", requires = "broker", default_value = crate::broker::client::DEFAULT_AUDIENCE)]
    pub audience: String,
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
    #[arg(long, value_name = "N", required_unless_present = "from_takopi_ghauth")]
    pub app_id: Option<u64>,
    /// The installation's id (github.com/settings/installations/N)
    #[arg(long, value_name = "N", required_unless_present_any = ["owner", "from_takopi_ghauth"])]
    pub installation_id: Option<u64>,
    /// Look the installation up on this organisation or user instead of --installation-id
    #[arg(long, value_name = "LOGIN", conflicts_with = "installation_id")]
    pub owner: Option<String>,
    /// The downloaded private key (.pem); it is installed as ~/.config/evertoken/github-app.pem
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "from_takopi_ghauth"
    )]
    pub private_key: Option<PathBuf>,
    /// Move a takopi-ghauth host: read ~/.config/takopi/github-app.env, keep the key and
    /// the token file where they are, replace takopi-github-token-refresh.timer
    #[arg(long, conflicts_with_all = ["app_id", "installation_id", "owner", "private_key", "remove_source"])]
    pub from_takopi_ghauth: bool,
    /// Say what would change; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// GitHub's API root for the app entry (GitHub Enterprise Server: https://HOST/api/v3)
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
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
/// The token is checked first ([`printable`]): a line break in it would end the
/// `::add-mask::` command and inject workflow commands.
fn mask_line(token: &Secret) -> Result<String> {
    printable("GitHub", token)?;
    Ok(format!("::add-mask::{}\n", token.expose()))
}

/// Refuses, before anything about it is printed, a token outside GitHub's
/// alphabet: it could carry control characters, shell syntax or extra
/// `key=value` lines for git. `from` names who sent it.
fn printable(from: &str, token: &Secret) -> Result<()> {
    github::token_file::check_token(token.expose())
        .map_err(|why| github::token_file::refused(from, &why))
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

async fn token(ctx: &Ctx, t: TokenArgs) -> Result<u8> {
    if let (Some(url), Some(policy)) = (&t.broker, &t.policy) {
        return broker_token(ctx, url, policy, &t).await;
    }
    let a = t.app;
    let (cfg, app) = load(ctx, &a.app, &Overrides::default())?;
    let http = Http::new(&cfg.file.http);
    crate::interrupt::global().check("reading or minting the token")?;
    let u = github::usable_token(&app, &http, &ctx.clock, Duration::from_secs(60)).await?;
    printable("the token file or GitHub", &u.token)?;
    if in_actions() {
        // stdout stays the token alone (`$(…)`); the runner reads commands on stderr too.
        err!("{}", mask_line(&u.token)?);
    }
    if let Some(r) = &u.refreshed {
        report_refreshed(ctx, &app, r);
    }
    // The printed token is good whatever gh did: exit 0, so `$(…)` under `set -e` works.
    render::stdout(&format!("{}\n", u.token.expose()));
    Ok(0)
}

/// `github token --broker URL --policy NAME`: no config, token alone on stdout.
async fn broker_token(ctx: &Ctx, url: &str, policy: &str, t: &TokenArgs) -> Result<u8> {
    use crate::broker::client;
    let base = client::parse_url(url).map_err(|e| {
        Error::usage(format!("--broker: {e}"))
            .with_hint("use https://BROKER (plain http only on 127.0.0.1 / localhost)")
    })?;
    let bearer = match (&t.id_token_file, &t.id_token_env) {
        (Some(f), _) => client::Bearer::File(f.clone()),
        (None, Some(v)) => client::Bearer::Env(v.clone()),
        (None, None) => client::Bearer::Actions {
            audience: t.audience.clone(),
        },
    };
    let http = Http::new(&crate::config::HttpConfig::default());
    let secret = client::bearer(&bearer, &http).await?;
    let m = client::request(&http, &base, policy, &secret).await?;
    printable("the broker", &m.token)?;
    if in_actions() {
        err!("{}", mask_line(&m.token)?);
    }
    for n in &m.notes {
        ctx.shell.note(n);
    }
    render::stdout(&format!("{}\n", m.token.expose()));
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
        render::stdout(&mask_line(&r.token)?);
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
    let takopi = if a.from_takopi_ghauth {
        Some(bootstrap::read_takopi()?)
    } else {
        None
    };
    if let Some(u) = &a.api_url {
        match url::Url::parse(u) {
            Ok(p) if matches!(p.scheme(), "https" | "http") && p.host_str().is_some() => {}
            _ => {
                return Err(
                    Error::usage(format!("--api-url: `{u}` is not an http(s) URL"))
                        .with_hint("for example https://api.github.com, or https://HOST/api/v3"),
                );
            }
        }
    }
    let req = bootstrap::Request {
        app: a.app.app.clone(),
        app_id: match &takopi {
            Some(t) => t.app_id,
            None => a.app_id.unwrap_or_default(),
        },
        installation_id: takopi
            .as_ref()
            .map(|t| t.installation_id)
            .or(a.installation_id),
        owner: a.owner.clone(),
        private_key: match &takopi {
            Some(t) => t.key.clone(),
            None => a.private_key.clone().unwrap_or_default(),
        },
        key_in_place: takopi.is_some(),
        token_env_file: takopi.as_ref().map(|t| t.token_file.clone()),
        api_url: a.api_url.clone(),
        dry_run: a.dry_run,
        no_systemd: a.no_systemd,
        remove_source: a.remove_source,
        config_flag: ctx.config_flag.clone(),
        binary,
        gh_available,
    };
    let mut out = bootstrap::run(&req)?;
    if !a.no_systemd && !a.dry_run {
        bootstrap::enable_timer(&req.app, &mut out).await;
    }
    if let Some(t) = &takopi {
        ctx.shell.note(&format!(
            "read {} (app {}, installation {}, key {})",
            t.env_file.display(),
            t.app_id,
            t.installation_id,
            t.key.display()
        ));
        if !a.no_systemd {
            bootstrap::retire_takopi_timer(a.dry_run, &mut out).await;
        }
    }
    if !a.no_systemd
        && let Some(h) = bootstrap::linger_hint().await
    {
        out.warnings.push(h);
    }
    for s in &out.steps {
        ctx.shell
            .status(if a.dry_run { "Would" } else { "Bootstrap" }, s);
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
    if a.dry_run {
        ctx.shell
            .note("dry run: nothing was changed and nothing minted");
        return Ok(0);
    }
    if takopi.is_some() {
        ctx.shell.note(
            "/ghauth status reads the same token file; for /ghauth refresh to run evertoken, \
             remove `refresh_script` from [plugins.ghauth] in ~/.takopi/takopi.toml",
        );
    }
    // The first mint (skipped when a fresh token is already there: idempotent).
    let cfg = Config::load_file(&out.config_path)?;
    let app = github::app::resolve(&cfg, &req.app, &Overrides::default())?;
    let http = Http::new(&cfg.file.http);
    crate::interrupt::global().check("the first mint")?;
    // A token the source script wrote (no expiry line) is replaced once, so the
    // move proves that evertoken mints; evertoken's own fresh token is kept.
    let from_script = takopi.is_some()
        && github::token_file::read(&app.token_file)
            .ok()
            .flatten()
            .is_some_and(|f| f.expires_at.is_none());
    let u = if from_script {
        let r = github::refresh(&app, &http, &ctx.clock, Duration::from_secs(60)).await?;
        github::Usable {
            token: r.token.clone(),
            refreshed: Some(r),
        }
    } else {
        github::usable_token(&app, &http, &ctx.clock, Duration::from_secs(60)).await?
    };
    let mut code = 0;
    match &u.refreshed {
        Some(r) => {
            if in_actions() {
                render::stdout(&mask_line(&r.token)?);
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
            printable("the token file or GitHub", &u.token)?;
            if in_actions() {
                err!("{}", mask_line(&u.token)?);
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
