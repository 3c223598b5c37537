//! `evertoken schedule <gitlab|github-actions|systemd> [--write]`: prints a ready
//! schedule, or writes it where that scheduler looks for it.

use clap::Args;

use super::Ctx;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::render;
use crate::schedule::{self, Kind, Settings};

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Which scheduler: gitlab, github-actions or systemd
    #[arg(value_enum, value_name = "KIND")]
    pub kind: Kind,
    /// Write the files (evertoken.gitlab-ci.yml, .github/workflows/evertoken.yml,
    /// ~/.config/systemd/user/evertoken-refresh.{service,timer}) instead of printing them
    #[arg(long)]
    pub write: bool,
    /// With --write: replace files that exist with other contents
    #[arg(long, requires = "write")]
    pub force: bool,
    /// CI jobs: where they get evertoken: `release` (the prebuilt release binary,
    /// checksum-verified), an https:// URL of a .tar.gz (a mirror; its .sha256 beside
    /// it) or `cargo` (build). Without a prebuilt binary they build once and cache it
    #[arg(long, value_name = "SOURCE", default_value = "release")]
    pub install_from: String,
    /// CI jobs: split the accounts over N parallel jobs (GitLab `parallel: N` with
    /// `--shard ci`; an Actions matrix with `--shard K/N`)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=200))]
    pub shards: Option<u32>,
    /// systemd: the environment file the service reads secrets from (created empty,
    /// mode 0600, by --write) [default: $XDG_CONFIG_HOME/evertoken/evertoken.env]
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<std::path::PathBuf>,
    /// broker-github-actions, broker-gitlab: the token broker's URL
    /// (`evertoken broker serve`; https, or http on loopback)
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,
    /// broker-github-actions, broker-gitlab: the broker policy the job asks for
    #[arg(long, value_name = "NAME")]
    pub policy: Option<String>,
    /// broker-github-actions, broker-gitlab: the audience of the job's ID token (the
    /// broker's `broker.audience`)
    #[arg(long, value_name = "AUD", default_value = crate::broker::client::DEFAULT_AUDIENCE)]
    pub audience: String,
}

pub async fn exec(ctx: &Ctx, args: ScheduleArgs) -> Result<u8> {
    // The config is optional: with one, the schedule names its file and variables.
    let cfg = match Config::locate(ctx.config_flag.as_deref())? {
        Some(path) => Some(Config::load_file(&path)?),
        None => None,
    };
    let exe = std::env::current_exe()
        .map_err(|e| Error::failed(format!("cannot find the evertoken binary's path: {e}")))?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    let mut settings = Settings::from_config(exe, cfg.as_ref());
    settings.install = schedule::Install::parse(&args.install_from).map_err(|m| {
        Error::usage(format!("--install-from: {m}"))
            .with_hint("for example `--install-from release` or `--install-from https://mirror.example/evertoken-x86_64-unknown-linux-gnu.tar.gz`")
    })?;
    if args.shards.is_some() && args.kind == Kind::Systemd {
        return Err(
            Error::usage("--shards is for the CI schedules (gitlab, github-actions)")
                .with_hint("a systemd timer runs on one host; drop --shards"),
        );
    }
    settings.shards = args.shards;
    let broker_kind = matches!(args.kind, Kind::BrokerGithubActions | Kind::BrokerGitlab);
    match (&args.broker, &args.policy) {
        (Some(url), Some(policy)) if broker_kind => {
            settings.broker = Some(
                schedule::broker::BrokerSnippet::new(url, policy, &args.audience).map_err(|m| {
                    Error::usage(m).with_hint(
                        "for example `--broker https://broker.example.com:8717 --policy site-ci`",
                    )
                })?,
            );
        }
        _ if broker_kind => {
            return Err(Error::usage("the broker snippets need --broker URL and --policy NAME")
                .with_hint("for example `evertoken schedule broker-github-actions --broker https://broker.example.com:8717 --policy site-ci`"));
        }
        (None, None) => {}
        _ => {
            return Err(Error::usage(
                "--broker and --policy are for the broker snippets (broker-github-actions, broker-gitlab)",
            ));
        }
    }
    if broker_kind {
        // The snippets read no config: the notes about it would only be noise.
        settings.notes.clear();
    }
    if broker_kind && args.shards.is_some() {
        return Err(Error::usage(
            "--shards is for the refresh schedules, not the broker snippets",
        ));
    }
    if let Some(p) = args.env_file {
        settings.env_file = std::path::absolute(&p).unwrap_or(p);
    }
    if args.kind == Kind::Systemd {
        settings.linger = schedule::linger_enabled();
    }
    schedule::check(args.kind, &settings).map_err(|m| {
        Error::usage(format!("{m}; nothing was generated"))
            .with_hint("rename or move the file (or fix the config value) so that the generated schedule can name it safely")
    })?;
    let s = schedule::generate(args.kind, &settings);
    for w in &s.warnings {
        ctx.shell.warn(w);
    }
    if !args.write {
        let many = s.files.len() > 1;
        for f in &s.files {
            if many {
                render::stdout(&format!("# ---- {} ----\n", f.path.display()));
            }
            render::stdout(&f.contents);
        }
        return Ok(0);
    }
    if !args.force
        && let Some(f) = s
            .files
            .iter()
            .find(|f| schedule::differs(&f.path, &f.contents))
    {
        return Err(Error::usage(format!(
            "{} exists with other contents; nothing was written",
            f.path.display()
        ))
        .with_hint(
            "compare it with the printed form (without --write), or pass --force to replace it",
        ));
    }
    for f in &s.files {
        write_file(&f.path, &f.contents)?;
        ctx.shell.status("Wrote", &f.path.display().to_string());
    }
    if let Some(p) = &s.private_empty {
        if !p.exists() {
            if let Some(dir) = p.parent() {
                crate::files::ensure_private_dir(dir)
                    .map_err(|e| Error::failed(format!("cannot create {}: {e}", dir.display())))?;
            }
            crate::files::write_private_atomic(p, b"").map_err(|e| {
                Error::failed(format!("cannot create {}: {e}", p.display()))
                    .with_hint("check that the directory is writable")
            })?;
            ctx.shell.status(
                "Created",
                &format!("{} (empty, mode 0600: put NAME=value lines for the secrets listed in the unit)", p.display()),
            );
        } else if let Ok(Some(mode)) = crate::files::mode_of(p)
            && crate::files::too_open(mode)
        {
            ctx.shell.warn(&format!(
                "{} is readable by others (mode {mode:o}); run `chmod 600 {}`",
                p.display(),
                p.display()
            ));
        }
    }
    for step in &s.next_steps {
        ctx.shell.note(&format!("next: {step}"));
    }
    Ok(0)
}

/// Not a secret: a normal file, 0644 whatever the umask or a symlink's target
/// (a symlink at the path is replaced, never written through), replaced atomically.
fn write_file(path: &std::path::Path, contents: &str) -> Result<()> {
    let fail = |e: std::io::Error| {
        Error::failed(format!("cannot write {}: {e}", path.display()))
            .with_hint("check that the directory is writable")
    };
    crate::files::write_file_mode(path, contents.as_bytes(), 0o644)
        .map_err(fail)
        .map(|_| ())
}
