//! The token env file: `GH_TOKEN`, `GITHUB_TOKEN` and
//! `GITHUB_TOKEN_EXPIRES_AT`, written atomically with mode 0600 in a 0700
//! directory, readable by `source`, systemd's `EnvironmentFile=` and the Takopi
//! plugin. Its age is its modification time, as the source plugin measured it.
//! Nothing here ever shows the token beyond its prefix.

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::clock;
use crate::error::{Error, Result};
use crate::files;
use crate::secret::Secret;

/// The file as read back.
#[derive(Debug)]
pub struct TokenFile {
    pub path: PathBuf,
    pub token: Secret,
    pub expires_at: Option<Timestamp>,
    /// When it was last written (its mtime).
    pub written_at: Option<Timestamp>,
}

impl TokenFile {
    /// Whole minutes since it was written (0 when the clock is behind the file).
    pub fn age_minutes(&self, now: Timestamp) -> Option<i64> {
        self.written_at
            .map(|w| ((now.as_second() - w.as_second()) / 60).max(0))
    }

    /// Older than `max_age_minutes`.
    pub fn is_stale(&self, now: Timestamp, max_age_minutes: u64) -> bool {
        self.age_minutes(now)
            .is_some_and(|a| a >= max_age_minutes as i64)
    }

    /// Past its expiry (or within `margin_secs` of it).
    pub fn expires_within(&self, now: Timestamp, margin_secs: i64) -> bool {
        self.expires_at
            .is_some_and(|e| e.as_second() - now.as_second() <= margin_secs)
    }
}

/// Reads the file; `Ok(None)` when it does not exist or holds no token.
pub fn read(path: &Path) -> Result<Option<TokenFile>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::failed(format!("cannot read the token file {}: {e}", path.display()))
                .with_hint("it must be readable by the user running evertoken; `evertoken github refresh` rewrites it"));
        }
    };
    let mut token = None;
    let mut fallback = None;
    let mut expires_at = None;
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
        match k.trim() {
            "GH_TOKEN" if !v.is_empty() => token = Some(v.to_owned()),
            "GITHUB_TOKEN" if !v.is_empty() => fallback = Some(v.to_owned()),
            "GITHUB_TOKEN_EXPIRES_AT" => expires_at = v.parse::<Timestamp>().ok(),
            _ => {}
        }
    }
    let Some(token) = token.or(fallback) else {
        return Ok(None);
    };
    let written_at = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok());
    Ok(Some(TokenFile {
        path: path.to_path_buf(),
        token: Secret::new(token),
        expires_at,
        written_at,
    }))
}

/// The file's contents for a token.
fn render(token: &Secret, expires_at: Option<Timestamp>) -> String {
    let t = token.expose();
    let exp = expires_at.map(clock::rfc3339).unwrap_or_default();
    format!("GH_TOKEN={t}\nGITHUB_TOKEN={t}\nGITHUB_TOKEN_EXPIRES_AT={exp}\n")
}

/// The shortest and longest installation token accepted. Classic tokens are
/// `ghs_` + 36 characters; the stateless `ghs_APPID_JWT` form is about 520.
pub const TOKEN_LEN: std::ops::RangeInclusive<usize> = 20..=4096;

/// Whether `token` looks like a GitHub installation token: only GitHub's token
/// alphabet (`A-Z a-z 0-9 _`, plus `-` and `.` of the stateless form's base64url
/// JWT) and a length within [`TOKEN_LEN`]. Anything else (a quote, `;`, `|`, `$`,
/// a backtick, a line break…) would become shell syntax when the env file is
/// sourced, or a forged command in a CI log, so such a token is never written or
/// printed. `Err` says what is wrong without showing the token.
pub fn check_token(token: &str) -> std::result::Result<(), String> {
    let n = token.chars().count();
    if !TOKEN_LEN.contains(&n) {
        return Err(format!(
            "its length ({n} characters) is outside {}..={}",
            TOKEN_LEN.start(),
            TOKEN_LEN.end()
        ));
    }
    if let Some(c) = token
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "it holds `{}`, which is outside GitHub's token alphabet (A-Z a-z 0-9 _ - .)",
            c.escape_default()
        ));
    }
    Ok(())
}

/// The error for a token [`check_token`] refused; `from` says who sent it.
pub fn refused(from: &str, why: &str) -> Error {
    Error::failed(format!(
        "{from} returned an installation token that is refused: {why}; nothing was written or printed"
    ))
    .with_hint(
        "a real GitHub token never looks like this: check that `api_url` (or --broker) points at GitHub or your broker, and report it with the output of `evertoken -vv github refresh`",
    )
}

/// Replaces the file atomically (0600, directory 0700). A token outside GitHub's
/// alphabet ([`check_token`]) is refused and nothing is written.
pub fn write(path: &Path, token: &Secret, expires_at: Option<Timestamp>) -> Result<()> {
    if let Err(why) = check_token(token.expose()) {
        return Err(refused("GitHub", &why));
    }
    files::write_private_atomic(path, render(token, expires_at).as_bytes()).map_err(|e| {
        Error::failed(format!(
            "cannot write the token file {}: {e}",
            path.display()
        ))
        .with_hint("check that its directory is writable, or set `token_env_file`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_token_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/github-token.env");
        let t = Secret::new("test-installation-token-not-a-real-secret");
        let exp: Timestamp = "2026-11-23T06:45:00Z".parse().unwrap();
        write(&p, &t, Some(exp)).unwrap();
        assert_eq!(files::mode_of(&p).unwrap(), Some(0o600));
        let back = read(&p).unwrap().unwrap();
        assert!(back.token.same_as(&t));
        assert_eq!(back.expires_at, Some(exp));
        assert!(
            std::fs::read_to_string(&p)
                .unwrap()
                .contains("GITHUB_TOKEN_EXPIRES_AT=2026-11-23T06:45:00Z\n")
        );
    }

    #[test]
    fn hostile_tokens_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("github-token.env");
        for t in [
            "ghs_abcdefghijklmnopqrstuvwxyz0123;touch /tmp/x",
            "ghs_abcdefghijklmnopqrstuvwxyz0123|id",
            "ghs_abcdefghijklmnopqrstuvwxyz0123&id",
            "ghs_abcdefghijklmnopqrstuvwxyz0123>x",
            "ghs_abcdefghijklmnopqrstuvwxyz0123<x",
            "ghs_abcdefghijklmnopqrstuvwxyz0123`id`",
            "ghs_abcdefghijklmnopqrstuvwxyz0123$(id)",
            "ghs_abcdefghijklmnopqrstuvwxyz0123\nX=1",
            "ghs_abcdefghijklmnopqrstuvwxyz0123\rX=1",
            "ghs_abcdefghijklmnopqrstuvwxyz0123 x",
            "ghs_short",
            "",
        ] {
            assert!(write(&p, &Secret::new(t), None).is_err(), "{t:?}");
            assert!(!p.exists(), "{t:?} wrote the file");
        }
        let long = format!("ghs_{}", "a".repeat(5000));
        assert!(write(&p, &Secret::new(long), None).is_err());
        // Both of GitHub's forms pass.
        write(
            &p,
            &Secret::new("ghs_testFAKEnotarealtoken0000000000000000"),
            None,
        )
        .unwrap();
        write(
            &p,
            &Secret::new("ghs_4242_eyJhbGciOiJFUzI1NiJ9.eyJzaW0iOnRydWV9.c2lnX-abc"),
            None,
        )
        .unwrap();
    }

    #[test]
    fn missing_file_is_none() {
        assert!(
            read(Path::new("/nonexistent/evertoken/x.env"))
                .unwrap()
                .is_none()
        );
    }
}
