//! GitHub App installation tokens: mint from the app's private key,
//! write the token env file, keep `gh`'s stored auth current, answer git's
//! credential helper protocol, report status, and bootstrap the whole setup with
//! a systemd user timer. One file per concern:
//! [`app`] (config and resolution), [`jwt`], [`mint`] (GitHub's API),
//! [`token_file`], [`gh_cli`], [`systemd`], [`status`], [`bootstrap`].
//!
//! Nothing here prints; a token leaves the process only through the token file,
//! `gh`'s stdin, and the CLI's explicit `github token` / `git-credential get`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::lock::FileLock;
use crate::secret::Secret;

pub mod app;
pub mod bootstrap;
pub mod gh_cli;
pub mod jwt;
pub mod mint;
pub mod signer;
pub mod status;
pub mod systemd;
pub mod token_file;

pub use app::{App, AppConfig, Overrides};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    #[serde(default)]
    pub apps: BTreeMap<String, AppConfig>,
}

pub(crate) fn validate(cfg: &Config) -> Result<()> {
    app::validate(cfg)
}

/// Refuses a minted answer no real GitHub gives: a token outside GitHub's token
/// alphabet or length ([`token_file::check_token`]: it would be written raw into
/// token files, shell lines and headers), or an `expires_at` already past or more
/// than 100 years away.
pub(crate) fn check_minted(
    token: &str,
    expires_at: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
    shown: &str,
) -> Result<()> {
    if let Err(why) = token_file::check_token(token) {
        return Err(crate::error::Error::failed(format!(
            "GitHub's answer from {shown} has a `token` that is refused ({why}); it was not written anywhere"
        ))
        .with_hint("check `api_url`: something other than GitHub answered"));
    }
    let mut check = crate::clock::LifetimeCheck::default();
    check.absolute(now, "expires_at", expires_at);
    if let Some(p) = check.problem("GitHub") {
        return Err(crate::error::Error::failed(format!(
            "{p} (answer from {shown}); the token was not written anywhere"
        ))
        .with_hint("check the host clock (`timedatectl`) and `api_url`"));
    }
    Ok(())
}

/// The outcome of a mint that reached the token file.
#[derive(Debug)]
pub struct Refreshed {
    pub token: Secret,
    pub expires_at: Option<jiff::Timestamp>,
    pub installation_id: u64,
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
    /// `gh_cli` is on and updating gh failed: the token file is current, gh is not.
    pub gh_error: Option<Error>,
}

/// A token the caller can use now, and the mint that produced it, if one did.
pub struct Usable {
    pub token: Secret,
    pub refreshed: Option<Refreshed>,
}

fn is_fresh(f: &token_file::TokenFile, app: &App, clock: &Clock) -> bool {
    let now = clock.now();
    f.written_at.is_some()
        && !f.is_stale(now, app.max_age_minutes)
        && !f.expires_within(now, app::EXPIRY_MARGIN_SECS)
}

async fn lock(app: &App, timeout: Duration) -> Result<FileLock> {
    FileLock::acquire(app.lock_path.clone(), timeout).await.map_err(|e| {
        Error::failed(format!("cannot take the GitHub token lock: {e}"))
            .with_hint("another `evertoken github refresh` (the timer, or a manual run) is minting; try again in a moment")
    })
}

/// Mints now, whatever the file holds (`github refresh`, the timer).
pub async fn refresh(
    app: &App,
    http: &Http,
    clock: &Clock,
    lock_timeout: Duration,
) -> Result<Refreshed> {
    let _guard = lock(app, lock_timeout).await?;
    refresh_locked(app, http, clock).await
}

/// Returns the file's token when it is fresh, else mints (`github token`,
/// `git-credential get`). Re-reads under the lock, so concurrent callers mint once.
pub async fn usable_token(
    app: &App,
    http: &Http,
    clock: &Clock,
    lock_timeout: Duration,
) -> Result<Usable> {
    if let Some(f) = token_file::read(&app.token_file)?
        && is_fresh(&f, app, clock)
    {
        return Ok(Usable {
            token: f.token,
            refreshed: None,
        });
    }
    let _guard = lock(app, lock_timeout).await?;
    if let Some(f) = token_file::read(&app.token_file)?
        && is_fresh(&f, app, clock)
    {
        return Ok(Usable {
            token: f.token,
            refreshed: None,
        });
    }
    let r = refresh_locked(app, http, clock).await?;
    Ok(Usable {
        token: r.token.clone(),
        refreshed: Some(r),
    })
}

async fn refresh_locked(app: &App, http: &Http, clock: &Clock) -> Result<Refreshed> {
    let previous = token_file::read(&app.token_file).ok().flatten();
    let minted = mint::mint(app, http, clock).await?;
    let mut notes = minted.notes;
    let mut warnings = Vec::new();
    if app.verify {
        mint::verify(app, http, &minted.token).await?;
        notes.push("verified the new token with GET /installation/repositories".into());
    }
    token_file::write(&app.token_file, &minted.token, minted.expires_at)?;
    let mut gh_error = None;
    if app.gh_cli {
        match gh_cli::login(&app.host, &minted.token).await {
            Ok(l) => {
                notes.push(format!("updated gh's stored auth for {}", app.host));
                warnings.extend(l.warnings);
            }
            Err(e) => gh_error = Some(e),
        }
    }
    if app.revoke_previous
        && let Some(old) = previous.filter(|p| !p.token.same_as(&minted.token))
    {
        match mint::revoke(app, http, &old.token).await {
            Ok(true) => notes.push(format!("revoked the previous token {}", old.token.prefix())),
            Ok(false) => notes.push(format!(
                "the previous token {} had already expired or been revoked",
                old.token.prefix()
            )),
            Err(e) => warnings.push(e.message),
        }
    }
    Ok(Refreshed {
        token: minted.token,
        expires_at: minted.expires_at,
        installation_id: minted.installation_id,
        notes,
        warnings,
        gh_error,
    })
}

/// `github flow`: how the pieces fit, for humans and chat.
pub fn flow_text(app: &App) -> String {
    format!(
        "GitHub App token flow (app `{name}`)\n\
         1. The app's private key: {key} (a key file is 0600, read only to sign).\n\
         2. `evertoken github refresh` signs a 9-minute JWT and asks GitHub ({api}) for an\n   \
            installation token (valid 1 hour).\n\
         3. The token is written atomically to {file} (0600) as GH_TOKEN / GITHUB_TOKEN /\n   \
            GITHUB_TOKEN_EXPIRES_AT{gh}.\n\
         4. A systemd user timer ({timer}) runs the refresh every 45 minutes, so a token never\n   \
            gets older than ~45 minutes; a lock keeps timer and manual runs from overlapping.\n\
         5. Tools use `gh` / `gh api` (stored auth, no restart needed), `GH_TOKEN=$(evertoken github token)`,\n   \
            or git through `evertoken github git-credential`.\n\
         6. `evertoken github status` (or /ghauth status) shows presence, age, prefix and expiry;\n   \
            `evertoken github refresh` (or /ghauth refresh) mints now and reports the result.\n",
        name = app.name,
        key = match (&app.broker, &app.signer) {
            (Some(b), _) => format!(
                "nowhere here: tokens come from the broker {} (policy `{}`)",
                crate::http::safe_url(&b.url),
                b.policy
            ),
            (None, signer::KeySource::Transit(_)) => {
                "in Vault/OpenBao Transit (signer), never on this host".to_owned()
            }
            (None, signer::KeySource::File) => app.key_path.display().to_string(),
        },
        api = app.api_url,
        file = app.token_file.display(),
        gh = if app.gh_cli {
            format!(
                ", then `gh auth login --with-token` updates gh for {}",
                app.host
            )
        } else {
            String::new()
        },
        timer = app.timer_unit,
    )
}
