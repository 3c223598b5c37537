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
    let s = schedule::generate(args.kind, &Settings::from_config(exe, cfg.as_ref()));
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
