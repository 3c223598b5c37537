//! `evertoken auth …`: refresh, rotate and inspect platform tokens.

use std::sync::Arc;

use clap::{Args, Subcommand};

use super::Ctx;
use crate::engine::{Engine, Options, Progress};
use crate::error::{Error, Result};
use crate::platform::Target;
use crate::render;

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Refresh or rotate every token that needs it, write new tokens back, report the rest
    #[command(long_about = refresh_long_about())]
    Refresh(RefreshArgs),
    /// Show each credential's state from stored metadata (offline: no network, no writes)
    Status(StatusArgs),
    /// Re-authorise an account in the browser (OAuth, loopback redirect) and store the new tokens
    #[command(long_about = "\
Re-authorise an account in the browser and store the new tokens and their expiries
through the configured write-back store.

Runs the OAuth authorization-code flow with a loopback redirect: register
http://127.0.0.1:8765/callback (or the --port you use) as a redirect URI in the
platform's app settings. The `state` is checked; PKCE S256 is used where the platform
takes it (YouTube, X, TikTok desktop apps, `kind: oauth2` services unless
`pkce: none`). With --no-browser, or where no browser can be opened, the URL
is printed.

On a headless host (a VPS, a CI box), forward the port from your laptop, run the login
on the host, and open the printed URL in the laptop's browser; the redirect to
127.0.0.1 reaches the host through the tunnel:

  ssh -L 8765:127.0.0.1:8765 HOST
  evertoken auth login linkedin --no-browser     # on HOST, in that ssh session

First tokens go where the pipeline reads them: `--store gitlab` writes this login's
tokens to the project's CI/CD variables whatever `auth.writeback.backend` says, and
`--create-variable` creates missing ones (masked, protected and, on GitLab 17.4+,
hidden). Refresh runs never create variables.")]
    Login(super::login::LoginArgs),
    /// Send a sample alert through the configured alert backend, to check the wiring
    TestAlert(super::alert::TestAlertArgs),
    /// Print a valid access token (refreshed first when due), alone on stdout, for a job that uses it
    #[command(long_about = "\
Print a currently valid access token of one account, alone on stdout, for the job
that uses it (a posting step): `TOKEN=$(evertoken auth token tiktok)`.

When the stored access token is missing, expired or expires within 5 minutes,
evertoken refreshes or rotates it first, under the same lock, journal and
write-back as `auth refresh`. Jobs must get their tokens this way: a job that
refreshes on its own becomes a second rotator and kills evertoken's refresh token.
A platform that keeps no access token (YouTube: only its refresh token is stored)
gets one minted by the refresh grant, handed over and not stored.

Exit 1, with nothing on stdout and the reason on stderr, when no valid token can be
had. Under GitHub Actions (GITHUB_ACTIONS=true) the token is masked with
`::add-mask::` on stderr first.")]
    Token(super::token::TokenArgs),
    /// Print every targeted access token as variables, for `eval "$(evertoken auth env tiktok)"`
    #[command(long_about = "\
Print one line per access-token variable of the targeted accounts, each token valid
for at least 5 minutes (refreshed first when due, as `auth token` does):

  eval \"$(evertoken auth env tiktok)\"     # export TIKTOK_ACCESS_TOKEN='…'
  evertoken auth env all --format dotenv > .env

`shell` (the default) single-quotes every value, so `eval` is safe whatever it holds;
`dotenv` prints NAME=value. Platforms that keep no access token (YouTube) are
skipped for `all`. Exit 1 when a targeted token cannot be had: the others are still
printed, its variable is unset (`unset NAME`) so that an old copy in the job's
environment is never used, and the reasons go to stderr. Under GitHub Actions every value is masked with
`::add-mask::` on stderr first.")]
    Env(super::token::EnvArgs),
}

fn refresh_long_about() -> String {
    format!(
        "\
Refresh or rotate every token that needs it and write each new token back to the
configured store; report every token a human must re-authorise, with a date.

Each platform does what its API allows (docs/src/reference/platforms.md): a token
is refreshed in place near expiry, a long-lived refresh token is health-checked, or
a rotating refresh token is rotated and the new one persisted before anything else;
a token nothing can refresh is reported `reauth_required` from `warn_before_days`
before its deadline. Built in: {}; any OAuth 2.0 service
with `kind: oauth2`.

Exit codes: 0 all healthy or refreshed; 1 something needs attention; 2 usage or
configuration error (nothing was contacted); 130 / 143 interrupted by SIGINT / by
SIGTERM or SIGHUP: calls already sent finished and their tokens were saved, the
accounts not processed are reported `unknown` / `interrupted`.",
        super::builtin_list(|(_, d)| d)
    )
}

fn refresh_target_help() -> String {
    format!(
        "`all`, a platform ({}, or a configured service) or `platform:account`",
        super::builtin_list(|(k, _)| k)
    )
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    #[arg(help = refresh_target_help())]
    #[arg(default_value = "all", value_name = "TARGET")]
    pub target: String,
    /// Report what would be done and exit with the code the real run would most likely give; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON document on stdout instead of the table
    #[arg(long)]
    pub json: bool,
    /// Also write Prometheus metrics to PATH (atomically; for node_exporter's textfile collector)
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<std::path::PathBuf>,
    /// Only shard K of N (1-based) of the targeted accounts, by a stable hash of
    /// `platform:account`; `ci` reads K and N from CI_NODE_INDEX/CI_NODE_TOTAL (GitLab `parallel: N`)
    #[arg(long, value_name = "K/N|ci")]
    pub shard: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// `all`, a platform or `platform:account`
    #[arg(default_value = "all", value_name = "TARGET")]
    pub target: String,
    /// Print one JSON document on stdout instead of the table
    #[arg(long)]
    pub json: bool,
    /// Also write Prometheus metrics to PATH (atomically; for node_exporter's textfile collector)
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<std::path::PathBuf>,
}

pub async fn exec(ctx: &Ctx, cmd: AuthCommand) -> Result<u8> {
    match cmd {
        AuthCommand::Refresh(a) => refresh(ctx, a).await,
        AuthCommand::Status(a) => status(ctx, a).await,
        AuthCommand::Login(a) => super::login::exec(ctx, a).await,
        AuthCommand::TestAlert(a) => super::alert::exec(ctx, a).await,
        AuthCommand::Token(a) => super::token::token(ctx, a).await,
        AuthCommand::Env(a) => super::token::env(ctx, a).await,
    }
}

fn target(s: &str) -> Result<Target> {
    Target::parse(s).map_err(|m| {
        Error::usage(m).with_hint("for example `evertoken auth refresh tiktok:brand-a`")
    })
}

async fn refresh(ctx: &Ctx, args: RefreshArgs) -> Result<u8> {
    super::arm_signals(ctx);
    let target = target(&args.target)?;
    let cfg = ctx.require_config()?;
    let engine = Engine::new(cfg, ctx.clock)?;
    if let Some(arg) = &args.shard {
        let shard = crate::shard::Shard::parse(arg, |v| std::env::var(v).ok()).map_err(|m| {
            Error::usage(format!("--shard: {m}")).with_hint(
                "for example `--shard 2/4`, or `--shard ci` in a GitLab job with `parallel: N`",
            )
        })?;
        engine.set_shard(shard);
    }
    for n in engine.store().notices() {
        ctx.shell.note(&n);
    }
    let bar = if args.json {
        None
    } else {
        render::Bar::new_if_interactive(&ctx.shell)
    };
    let progress: Option<Arc<dyn Progress>> = bar.map(|b| Arc::new(b) as Arc<dyn Progress>);
    let mut report = engine
        .refresh(
            &Options {
                target,
                dry_run: args.dry_run,
            },
            progress,
        )
        .await?;
    let interrupted = crate::interrupt::global().signal_name();
    if let Some(sig) = interrupted {
        // The run is incomplete: alerting on it would page for accounts that were
        // simply not reached; the next (scheduled) run alerts on what is wrong.
        ctx.shell.warn(&format!(
            "interrupted by {sig}: calls already sent were finished and saved; no alert was sent; run again to process the accounts reported `interrupted`"
        ));
    }
    if !args.dry_run && interrupted.is_none() {
        let cfg = &engine.cfg;
        crate::alert::dispatch(
            &cfg.alerts,
            &cfg.ctx(engine.http()),
            &cfg.journal_dir(),
            &mut report,
            ctx.clock,
        )
        .await;
        if let Some(a) = report.alert.as_ref().filter(|a| !a.delivered) {
            ctx.shell.warn(&format!(
                "the {} alert could not be delivered: {}",
                a.backend,
                a.error.as_deref().unwrap_or("unknown error")
            ));
        }
    }
    if args.json {
        render::stdout(&render::json(&report));
        render::stdout("\n");
    } else {
        render::stdout(&render::table(&report, &ctx.shell));
    }
    if let Some(p) = &args.metrics_file {
        crate::metrics::write(p, &report, crate::metrics::Run::Refresh)?;
    }
    Ok(report.exit_code())
}

async fn status(ctx: &Ctx, args: StatusArgs) -> Result<u8> {
    let target = target(&args.target)?;
    let cfg = ctx.require_config()?;
    let engine = Engine::new(cfg, ctx.clock)?;
    for n in engine.store().notices() {
        ctx.shell.note(&n);
    }
    let report = engine.status(&target).await?;
    if args.json {
        render::stdout(&render::json(&report));
        render::stdout("\n");
    } else {
        use std::fmt::Write as _;
        let mut out = render::table(&report, &ctx.shell);
        if !report.secrets.is_empty() {
            out.push_str("\nclient secrets:\n");
            for s in &report.secrets {
                let _ = match &s.source {
                    Some(from) => writeln!(out, "  {}: {from}", s.var),
                    None => writeln!(out, "  {}: not set", s.var),
                };
            }
        }
        out.push_str("\ncredential sources:\n");
        for r in &report.results {
            for c in &r.credentials {
                let _ = match (&c.source, &c.prefix) {
                    (Some(s), Some(p)) => writeln!(out, "  {}: {p} from {s}", c.var),
                    _ => writeln!(out, "  {}: not set", c.var),
                };
            }
        }
        render::stdout(&out);
    }
    if let Some(p) = &args.metrics_file {
        crate::metrics::write(p, &report, crate::metrics::Run::Status)?;
    }
    let code = report.exit_code();
    // The process exits next: freeing a 10,000-account report and engine one
    // allocation at a time would cost `auth status` about 5% of its run. Nothing
    // here has a `Drop` that does work (status takes no lock and writes nothing),
    // and the memory, secrets included, goes back to the kernel at exit.
    std::mem::forget(report);
    std::mem::forget(engine);
    Ok(code)
}
