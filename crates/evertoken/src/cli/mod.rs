//! The command line: clap definitions and dispatch. Each command lives in its own
//! file with its arguments and an `exec` that parses, calls the library and renders.
//! Nothing here decides policy.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::render::{ColorChoice, Shell};

pub mod alert;
pub mod auth;
pub mod broker;
pub mod demo;
pub mod doctor;
pub mod github;
pub mod login;
pub mod mcp;
pub mod schedule;
pub mod token;

const ABOUT: &str = "Keeps the credentials of unattended automation alive.";
fn long_about() -> String {
    format!(
        "\
Keeps the credentials of unattended automation alive: refreshes or rotates every
token it can ({}, and any OAuth 2.0
service configured with `kind: oauth2`), writes each new token back where the
next run reads it, and alerts, with a date, for every token a human must
re-authorise.

Start with `evertoken demo` (no account needed), then `evertoken auth status`.

Exit codes: 0 all healthy; 1 something needs attention; 2 usage or config error;
130 / 143 interrupted by SIGINT / by SIGTERM or SIGHUP (work in flight was saved).",
        builtin_list(|(_, d)| d)
    )
}

/// The built-in platforms, from the registry, as `a, b, c`: keys or display
/// names (`pick`), for help texts.
pub(crate) fn builtin_list(pick: fn(&(&'static str, &'static str)) -> &'static str) -> String {
    crate::provider::BUILTIN
        .iter()
        .map(pick)
        .collect::<Vec<_>>()
        .join(", ")
}

fn platform_help() -> String {
    format!(
        "A built-in platform ({}) or a configured service",
        builtin_list(|(k, _)| k)
    )
}

#[derive(Debug, Parser)]
#[command(name = "evertoken", version, about = ABOUT, long_about = long_about(), propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: $EVERTOKEN_CONFIG, ./evertoken.yaml, $XDG_CONFIG_HOME/evertoken/config.yaml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors and data on stdout
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// When to colour output
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Refresh, rotate and inspect platform tokens
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Run a full refresh cycle against the built-in simulator (no account needed)
    Demo(demo::DemoArgs),
    /// Check the whole setup, change nothing: config, secrets, stores, alerts, GitHub, clock
    Doctor(doctor::DoctorArgs),
    /// Print or --write a ready-made schedule: GitLab CI, GitHub Actions or systemd timer
    Schedule(schedule::ScheduleArgs),
    /// Serve read-only MCP tools on stdio: status, dry-run plan, GitHub token status
    Mcp(mcp::McpArgs),
    /// Mint and inspect GitHub App installation tokens
    #[command(subcommand)]
    Github(github::GithubCommand),
    /// Run the GitHub App token broker (keys off the hosts that use the tokens)
    #[command(subcommand)]
    Broker(broker::BrokerCommand),
}

/// What every command gets: the shell, the clock and where the config is.
pub struct Ctx {
    pub shell: Shell,
    pub clock: Clock,
    pub config_flag: Option<PathBuf>,
}

impl Ctx {
    /// Loads the config; a command that needs one fails (exit 2) when none exists.
    pub fn require_config(&self) -> Result<Config> {
        match Config::locate(self.config_flag.as_deref())? {
            Some(path) => Config::load_file(&path),
            None => Err(Error::config(format!("no configuration file found (looked at: {})", Config::search_order()))
                .with_hint("create ./evertoken.yaml (docs/src/reference/config.md has a complete example), or run `evertoken demo` first")),
        }
    }
}

/// For commands that may rotate or mint (`auth refresh`, `auth login`, `github
/// refresh|token|bootstrap`): from here on SIGINT, SIGTERM and SIGHUP stop new
/// provider calls instead of killing the process (see [`crate::interrupt`]).
pub(crate) fn arm_signals(ctx: &Ctx) {
    if let Err(e) = crate::interrupt::global().arm() {
        ctx.shell.warn(&format!(
            "cannot listen for signals ({e}): an interruption now kills the run at once"
        ));
    }
}

fn init_logging(shell: &Shell) {
    use tracing_subscriber::EnvFilter;
    let default = match (shell.quiet, shell.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "evertoken=info",
        (_, 2) => "evertoken=debug",
        _ => "evertoken=trace,info",
    };
    let filter = std::env::var(crate::env_vars::EVERTOKEN_LOG)
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::scrub::LogWriter {
            escape: !shell.color,
        })
        .with_ansi(shell.color)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Threads for blocking work (account locks, journal records and their fsyncs,
/// credentials-file flushes). Tokio's default of 512 let a 10,000-account run
/// keep ~200 alive at its peak, each with its stack and allocator state (issue 15);
/// the work is short and disk-bound, and more threads than this only queue at
/// the disk.
const BLOCKING_THREADS: usize = 32;

/// The binary's `main`.
pub fn main() -> ExitCode {
    // Issue 9: glibc gives every thread that allocates its own arena; with the
    // blocking threads (journal, credentials-file flushes) a 10,000-account run
    // kept ~30% more memory in idle arenas. Issue 15: one arena (two still left
    // ~5 MiB of free space split between them at the peak of a 10,000-account
    // run); the process is I/O-bound, so contention on it costs nothing measurable.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    //
    // Issue 15: a fixed mmap threshold. glibc's default one grows to the largest
    // block freed so far (up to 32 MiB), after which every render of a 2.6 MB
    // credentials file, and every copy of the table, comes from the heap and
    // leaves it fragmented: ~10 MiB more peak RSS at 10,000 accounts. Fixed,
    // blocks of 256 KiB and more are mapped and unmapped on their own.
    // SAFETY: mallopt only tunes the allocator; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
    crate::http::install_crypto_provider();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let shell = Shell::new(cli.color, cli.quiet, cli.verbose);
    init_logging(&shell);
    let clock = match Clock::from_env() {
        Ok(c) => c,
        Err(msg) => {
            shell.error(&Error::usage(msg));
            return ExitCode::from(2);
        }
    };
    let ctx = Ctx {
        shell: shell.clone(),
        clock,
        config_flag: cli.config.clone(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            shell.error(&Error::failed(format!(
                "cannot start the async runtime: {e}"
            )));
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Auth(cmd) => auth::exec(&ctx, cmd).await,
            Command::Demo(args) => demo::exec(&ctx, args).await,
            Command::Doctor(args) => doctor::exec(&ctx, args).await,
            Command::Schedule(args) => schedule::exec(&ctx, args).await,
            Command::Mcp(args) => mcp::exec(&ctx, args).await,
            Command::Github(cmd) => github::exec(&ctx, cmd).await,
            Command::Broker(cmd) => broker::exec(&ctx, cmd).await,
        }
    });
    // Don't wait for lingering connections on the way out.
    runtime.shutdown_background();
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            shell.error(&e);
            e.exit_code()
        }
    };
    // An interrupted command exits 130 (SIGINT) or 143 (SIGTERM, SIGHUP) whatever
    // else happened: a pipeline must see that the run did not complete.
    ExitCode::from(crate::interrupt::global().code().unwrap_or(code))
}
