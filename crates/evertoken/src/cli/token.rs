//! `evertoken auth token` and `evertoken auth env`: hand a valid access token to
//! the job that uses it, so that evertoken stays the only process that refreshes
//! or rotates (two rotators kill each other's refresh token).
//!
//! These are, with `github token` and `git-credential get`, the only commands that
//! print a whole token: to stdout, on explicit request. Nothing else goes to
//! stdout: a failure leaves it empty and says why on stderr. Under GitHub Actions
//! each printed token is masked first (`::add-mask::` on stderr). The refresh
//! itself is the engine's ([`Engine::access_token`]), never a second path here.

use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::Ctx;
use crate::engine::{AccessToken, Engine};
use crate::env_vars;
use crate::error::{Error, Result};
use crate::platform::Target;
use crate::provider::Role;
use crate::render;
use crate::secret::Secret;

/// A printed token is valid for at least this long.
pub const MARGIN: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// `platform` (with one account) or `platform:account`
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Print `{"variable","access_token","expires_at"}` instead of the bare token
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// `all`, a platform or `platform:account`
    #[arg(default_value = "all", value_name = "TARGET")]
    pub target: String,
    /// `shell`: export NAME='value' (for eval); `dotenv`: NAME=value
    #[arg(long, value_enum, default_value_t = Format::Shell, value_name = "FORMAT")]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Shell,
    Dotenv,
}

#[derive(Serialize)]
struct TokenJson<'a> {
    version: u32,
    platform: &'a str,
    account: &'a str,
    variable: &'a str,
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<jiff::Timestamp>,
}

fn target(s: &str, example: &str) -> Result<Target> {
    Target::parse(s).map_err(|m| Error::usage(m).with_hint(format!("for example `{example}`")))
}

fn in_actions() -> bool {
    std::env::var(env_vars::GITHUB_ACTIONS).is_ok_and(|v| v == "true")
}

/// GitHub Actions masks every later occurrence of the value in the job's logs.
/// Call [`check_printable`] first: a line break in the value would end the
/// `::add-mask::` command early and start another one.
fn mask(value: &Secret) {
    if in_actions() {
        errln!("::add-mask::{}", value.expose());
    }
}

/// Refuses a token that must not be printed whole: one holding a control
/// character (CR, LF, ESC, NUL, NEL, …) or a Unicode line or paragraph separator
/// would end `::add-mask::` early and inject GitHub Actions workflow commands (or
/// terminal escapes, or extra `key=value` lines for git). No real provider issues
/// such a token, so it is refused before anything about it is printed.
pub fn check_printable(what: &str, value: &Secret) -> Result<()> {
    let v = value.expose();
    if v.is_empty() {
        return Err(Error::failed(format!("{what} is empty: nothing to print"))
            .with_hint("run `evertoken auth refresh` and read its report"));
    }
    if let Some(c) = v
        .chars()
        .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(Error::failed(format!(
            "{what} holds a control character ({}): it is not printed, since it could forge log commands or output lines",
            c.escape_unicode()
        ))
        .with_hint(
            "no real provider issues such a token: check where it came from (the store, the provider's answer) and log in again (`evertoken auth login`)",
        ));
    }
    Ok(())
}

/// A token held only by the journal: the provider issued it but the write-back
/// failed. It is not printed (exit 1, stdout empty): a job must not run on a
/// token its store does not hold, and the failure must not pass silently.
fn not_stored(a: &impl std::fmt::Display, h: &crate::provider::Held) -> Option<Error> {
    match &h.source {
        crate::secret::Source::Journal(path) => Some(
            Error::failed(format!(
                "the new access token for {a} ({}) could not be written back to the store: it is kept in the journal {path} and not printed",
                h.value.prefix()
            ))
            .with_hint(format!(
                "run `evertoken auth refresh {a}` to see why the write-back fails and finish it; then ask again"
            )),
        ),
        _ => None,
    }
}

/// Nothing of an interrupted run reaches stdout: the job must not mistake it for
/// a completed one (the binary exits 130/143).
fn interrupted(ctx: &Ctx) -> bool {
    match crate::interrupt::global().signal_name() {
        Some(sig) => {
            ctx.shell.warn(&format!(
                "interrupted by {sig}: nothing printed; a call already sent was finished and its tokens saved; run again for the token"
            ));
            true
        }
        None => false,
    }
}

pub async fn token(ctx: &Ctx, args: TokenArgs) -> Result<u8> {
    // It may rotate: a signal must let the call in flight finish and be saved.
    super::arm_signals(ctx);
    let target = target(&args.target, "evertoken auth token tiktok:brand-a")?;
    if target == Target::All {
        return Err(Error::usage("`auth token` prints one account's token, not `all`")
            .with_hint("name one: `evertoken auth token tiktok` or `tiktok:brand-a`; for several, use `evertoken auth env`"));
    }
    let cfg = ctx.require_config()?;
    let engine = Engine::new(cfg, ctx.clock)?;
    let selected = engine.select(&target)?;
    let mut accounts: Vec<_> = selected
        .iter()
        .flat_map(|(p, accs)| accs.iter().map(move |a| (p.clone(), a.clone())))
        .collect();
    if accounts.len() > 1 {
        let names: Vec<String> = accounts.iter().map(|(_, a)| a.to_string()).collect();
        return Err(Error::usage(format!(
            "`{}` names several accounts: {}",
            args.target,
            names.join(", ")
        ))
        .with_hint(format!("name one: `evertoken auth token {}`", names[0])));
    }
    let Some((p, a)) = accounts.pop() else {
        return Err(Error::usage(format!("`{}` names no account", args.target)));
    };
    let (secrets, _) = engine.client_secrets(&selected, false).await?;
    let secret = p.client_secret_var().and_then(|v| secrets.get(v));
    let got = engine.access_token(p.as_ref(), &a, MARGIN, secret).await;
    if interrupted(ctx) {
        return Ok(1);
    }
    match got {
        AccessToken::Valid(h) => {
            if let Some(e) = not_stored(&a, &h) {
                ctx.shell.error(&e);
                return Ok(1);
            }
            check_printable(&h.var, &h.value)?;
            mask(&h.value);
            if args.json {
                let doc = TokenJson {
                    version: 1,
                    platform: a.platform.name(),
                    account: a.label(),
                    variable: &h.var,
                    access_token: h.value.expose(),
                    expires_at: h.expires_at,
                };
                let text = serde_json::to_string(&doc).map_err(|e| {
                    Error::failed(format!("cannot serialise the token document: {e}"))
                })?;
                render::stdout(&format!("{text}\n"));
            } else {
                render::stdout(&format!("{}\n", h.value.expose()));
            }
            Ok(0)
        }
        AccessToken::Unavailable { message, fix } => {
            let mut e = Error::failed(format!("no valid access token for {a}: {message}"));
            e.hint = fix.map(|f| f.to_string());
            ctx.shell.error(&e);
            Ok(1)
        }
    }
}

pub async fn env(ctx: &Ctx, args: EnvArgs) -> Result<u8> {
    super::arm_signals(ctx);
    let target = target(&args.target, "evertoken auth env tiktok")?;
    let cfg = ctx.require_config()?;
    let engine = Engine::new(cfg, ctx.clock)?;
    let selected = engine.select(&target)?;
    let (secrets, _) = engine.client_secrets(&selected, false).await?;
    let mut out = String::new();
    let mut failed = 0usize;
    for (p, accounts) in &selected {
        let secret = p.client_secret_var().and_then(|v| secrets.get(v));
        for a in accounts {
            match engine.access_token(p.as_ref(), a, MARGIN, secret).await {
                AccessToken::Valid(h) => {
                    if let Err(e) =
                        not_stored(a, &h).map_or_else(|| check_printable(&h.var, &h.value), Err)
                    {
                        ctx.shell.error(&e);
                        failed += 1;
                        out.push_str(&unset_line(args.format, &h.var));
                        continue;
                    }
                    mask(&h.value);
                    match line(args.format, &h.var, h.value.expose()) {
                        Ok(l) => out.push_str(&l),
                        Err(why) => {
                            ctx.shell.error(
                                &Error::failed(format!("{} cannot be printed: {why}", h.var))
                                    .with_hint("use `--format shell`, which quotes any value"),
                            );
                            failed += 1;
                        }
                    }
                }
                AccessToken::Unavailable { message, fix } => {
                    let mut e = Error::failed(format!("no valid access token for {a}: {message}"));
                    e.hint = fix.map(|f| f.to_string());
                    ctx.shell.error(&e);
                    failed += 1;
                    // A job's environment may hold an old copy (GitLab CI variables):
                    // unset it, so a posting step fails loudly instead of using it.
                    if let Some(s) = p.slots().iter().find(|s| s.role == Role::Access) {
                        out.push_str(&unset_line(args.format, &a.var(s.base)));
                    }
                }
            }
        }
    }
    if interrupted(ctx) {
        return Ok(1);
    }
    render::stdout(&out);
    Ok(if failed > 0 { 1 } else { 0 })
}

/// One line of `auth env`: the variable name is checked, the value quoted.
pub fn line(format: Format, var: &str, value: &str) -> std::result::Result<String, String> {
    if var.is_empty()
        || var.starts_with(|c: char| c.is_ascii_digit())
        || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!("`{var}` is not a variable name"));
    }
    Ok(match format {
        Format::Shell => format!("export {var}={}\n", shell_quote(value)),
        Format::Dotenv => format!("{var}={}\n", dotenv_value(value)?),
    })
}

/// The line that removes a variable no valid token can be had for: `unset NAME`
/// for the shell, `NAME=` (empty) for dotenv readers.
fn unset_line(format: Format, var: &str) -> String {
    match format {
        Format::Shell => format!("unset {var}\n"),
        Format::Dotenv => format!("{var}=\n"),
    }
}

/// Single-quoted for a POSIX shell: nothing inside is special except `'`, which
/// becomes `'\''`. Safe to `eval` whatever the value holds.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// A dotenv value: bare when it is plain token characters, single-quoted (taken
/// literally by docker compose, python-dotenv and systemd's EnvironmentFile=)
/// otherwise; a value that cannot be written unambiguously is refused.
pub fn dotenv_value(value: &str) -> std::result::Result<String, String> {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.~+/=:@%,".contains(c))
    {
        return Ok(value.to_owned());
    }
    if value.contains(['\'', '\n', '\r', '\\']) || value.chars().any(char::is_control) {
        return Err(
            "it holds a quote, backslash or control character that dotenv readers disagree about"
                .into(),
        );
    }
    Ok(format!("'{value}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `sh -c 'eval "$LINE"; printf %s "$VAR"'` and returns what the shell saw.
    fn through_sh(line: &str, var: &str) -> (String, String) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "eval \"$LINE\"; printf %s \"${var}\"; printf %s \"${{PWNED-}}\""
            ))
            .env("LINE", line)
            .env_remove("PWNED")
            .output()
            .expect("sh runs");
        let s = String::from_utf8(out.stdout).unwrap();
        (s, String::from_utf8(out.stderr).unwrap())
    }

    #[test]
    fn shell_lines_survive_eval_of_hostile_values() {
        let hostile = [
            "plain-token.123",
            "it's",
            "'",
            "''",
            "a'\"'\"b",
            "$(touch /tmp/evertoken-pwned)",
            "`id`",
            "$HOME ${PATH} $((1+1))",
            "x; export PWNED=1",
            "x'; export PWNED=1; echo '",
            "new\nline",
            "back\\slash\\",
            "tab\there",
            "ünïcödé ✓",
            "!history",
            "-n",
            "",
        ];
        for v in hostile {
            let l = line(Format::Shell, "TIKTOK_ACCESS_TOKEN", v).unwrap();
            let (seen, _) = through_sh(&l, "TIKTOK_ACCESS_TOKEN");
            assert_eq!(seen, v, "value {v:?} came back different from {l:?}");
        }
        assert!(!std::path::Path::new("/tmp/evertoken-pwned").exists());
    }

    #[test]
    fn bad_variable_names_are_refused() {
        for v in ["", "1X", "A-B", "A B", "A;rm", "A=B", "Ä"] {
            assert!(line(Format::Shell, v, "x").is_err(), "{v:?}");
            assert!(line(Format::Dotenv, v, "x").is_err(), "{v:?}");
        }
    }

    #[test]
    fn dotenv_values_are_bare_quoted_or_refused() {
        assert_eq!(
            line(Format::Dotenv, "A", "act.abc-DEF_123=").unwrap(),
            "A=act.abc-DEF_123=\n"
        );
        assert_eq!(line(Format::Dotenv, "A", "a b$c").unwrap(), "A='a b$c'\n");
        for v in ["it's", "a\nb", "a\\b", "a\u{7}b"] {
            assert!(line(Format::Dotenv, "A", v).is_err(), "{v:?}");
        }
    }
}
