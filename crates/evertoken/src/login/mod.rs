//! `auth login`: the OAuth authorization-code flow with a loopback redirect
//! (`http://127.0.0.1:<port>/callback`), one module per platform for the
//! authorize URL and the code exchange. The flow is the same everywhere:
//!
//! 1. [`start`]: bind the loopback listener, make a random `state` (and a PKCE
//!    S256 verifier where the platform supports it), build the authorize URL;
//! 2. the CLI opens the browser or prints the URL;
//! 3. [`Pending::finish`]: wait for the redirect, check `state`, exchange the code,
//!    and write the tokens with their expiries through the configured store,
//!    under the account's lock, clearing any stale journal record for it.
//!
//! Tokens, codes and verifiers stay in [`Secret`]s or local variables; nothing
//! here prints, and messages carry names, URLs without secrets and dates only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use jiff::Timestamp;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::http::{Http, Reply};
use crate::platform::{Account, Platform, Target};
use crate::provider::{NewToken, Provider, Role};
use crate::secret::Secret;
use crate::store::Entry;

pub mod instagram;
pub mod linkedin;
pub mod tiktok;
pub mod youtube;

/// The port of the redirect URI unless `--port` says otherwise. Register
/// `http://127.0.0.1:8765/callback` as a redirect URI in the app's settings.
pub const DEFAULT_PORT: u16 = 8765;
/// How long to wait for the browser to come back.
pub const WAIT: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
pub struct Options {
    pub platform: Platform,
    pub account: Option<String>,
    /// 0: any free port.
    pub port: u16,
    /// Overrides the platform's default scopes.
    pub scope: Option<String>,
    pub wait: Duration,
}

/// PKCE (RFC 7636) with `S256`.
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = random_string(64);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier: Secret::new(verifier),
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

fn random_string(n: usize) -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// What a platform's code exchange produced.
#[derive(Default)]
pub struct Tokens {
    pub access: Option<NewToken>,
    pub refresh: Option<NewToken>,
    /// Things the user should know (Testing mode, no refresh token, …).
    pub warnings: Vec<String>,
}

/// Everything a platform module needs for its two calls.
pub struct Cx<'a> {
    pub cfg: &'a Config,
    pub http: &'a Http,
    pub clock: Clock,
    pub client_secret: &'a Secret,
    pub redirect_uri: &'a str,
    pub scope: Option<&'a str>,
}

/// One platform's side of the flow.
#[async_trait::async_trait]
pub trait Flow: Send + Sync {
    /// Whether the authorize request carries a PKCE challenge.
    fn pkce(&self) -> bool;
    /// The variable holding the client (app) secret for the code exchange.
    fn client_secret_var(&self) -> &'static str;
    fn authorize_url(&self, cx: &Cx<'_>, state: &str, pkce: Option<&Pkce>) -> Url;
    async fn exchange(&self, cx: &Cx<'_>, code: &Secret, pkce: Option<&Pkce>) -> Result<Tokens>;
}

fn flow(cfg: &Config, platform: Platform) -> Result<Box<dyn Flow>> {
    Ok(match platform {
        Platform::Instagram => Box::new(instagram::Instagram::new(cfg)?),
        Platform::Youtube => Box::new(youtube::Youtube::new(cfg)?),
        Platform::Tiktok => Box::new(tiktok::Tiktok::new(cfg)?),
        Platform::Linkedin => Box::new(linkedin::Linkedin::new(cfg)?),
    })
}

/// A login waiting for the browser.
pub struct Pending {
    engine: Arc<Engine>,
    provider: Arc<dyn Provider>,
    account: Account,
    flow: Box<dyn Flow>,
    http: Http,
    client_secret: Secret,
    listener: TcpListener,
    redirect_uri: String,
    state: String,
    pkce: Option<Pkce>,
    scope: Option<String>,
    wait: Duration,
    /// The URL to open: safe to show (it carries `state` and the PKCE challenge,
    /// which are useless without this process).
    pub url: Url,
}

/// What a login stored.
#[derive(Debug)]
pub struct Outcome {
    pub account: String,
    /// (variable, expiry) of each stored token.
    pub stored: Vec<(String, Option<Timestamp>)>,
    pub store: String,
    pub warnings: Vec<String>,
}

/// Binds the loopback listener and builds the authorize URL.
pub async fn start(cfg: Config, clock: Clock, opts: &Options) -> Result<Pending> {
    let flow = flow(&cfg, opts.platform)?;
    let engine = Engine::new(cfg, clock)?;
    let target = match &opts.account {
        Some(a) => Target::Account(opts.platform, a.clone()),
        None => Target::Platform(opts.platform),
    };
    let mut selected = engine.select(&target)?;
    let (provider, mut accounts) = selected
        .pop()
        .ok_or_else(|| Error::usage(format!("platform `{}` is not enabled", opts.platform)))?;
    if accounts.len() > 1 {
        let names: Vec<&str> = accounts.iter().map(|a| a.label()).collect();
        return Err(Error::usage(format!(
            "{} has several accounts: {}",
            opts.platform.display_name(),
            names.join(", ")
        ))
        .with_hint(format!(
            "say which one: `evertoken auth login {} --account {}`",
            opts.platform, names[0]
        )));
    }
    let Some(account) = accounts.pop() else {
        return Err(Error::usage(format!(
            "no account of `{}` is configured",
            opts.platform
        )));
    };
    // The client secret, env → store (as for refresh; Instagram's refresh needs
    // none, its code exchange does).
    let var = flow.client_secret_var();
    let client_secret = match std::env::var(var).ok().filter(|v| !v.is_empty()) {
        Some(v) => Secret::new(v),
        None => engine
            .store()
            .read(var)
            .await
            .map_err(Error::from)?
            .map(|s| s.value)
            .ok_or_else(|| {
                Error::config(format!(
                    "{var} is not set (looked in the environment, then {})",
                    engine.store().describe()
                ))
                .with_hint(format!(
                    "export {var}=… or add it to the credentials file; the code exchange needs it"
                ))
            })?,
    };

    let listener = TcpListener::bind(("127.0.0.1", opts.port)).await.map_err(|e| {
        Error::failed(format!("cannot listen on 127.0.0.1:{} for the OAuth redirect: {e}", opts.port))
            .with_hint("another program uses that port: pick another with `--port N` (and register http://127.0.0.1:N/callback with the app)")
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::failed(format!("cannot read the listener's address: {e}")))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let state = random_string(32);
    let pkce = flow.pkce().then(Pkce::new);
    let http = Http::new(&engine.cfg.file.http);
    let url = {
        let cx = Cx {
            cfg: &engine.cfg,
            http: &http,
            clock,
            client_secret: &client_secret,
            redirect_uri: &redirect_uri,
            scope: opts.scope.as_deref(),
        };
        flow.authorize_url(&cx, &state, pkce.as_ref())
    };
    Ok(Pending {
        engine,
        provider,
        account,
        flow,
        http,
        client_secret,
        listener,
        redirect_uri,
        state,
        pkce,
        scope: opts.scope.clone(),
        wait: opts.wait,
        url,
    })
}

impl Pending {
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits for the redirect, exchanges the code and stores the tokens.
    pub async fn finish(self) -> Result<Outcome> {
        let code = tokio::time::timeout(self.wait, wait_for_code(&self.listener, &self.state))
            .await
            .map_err(|_| {
                Error::failed(format!("no authorization arrived at {} within {}s", self.redirect_uri, self.wait.as_secs()))
                    .with_hint("run the command again and finish the consent in the browser; with --no-browser, open the printed URL on this machine")
            })??;
        let clock = self.engine.clock();
        let cx = Cx {
            cfg: &self.engine.cfg,
            http: &self.http,
            clock,
            client_secret: &self.client_secret,
            redirect_uri: &self.redirect_uri,
            scope: self.scope.as_deref(),
        };
        // Signals (crate::interrupt): no exchange after one; an exchange already sent
        // finishes and its tokens are stored before the command exits 130/143.
        let _call = crate::interrupt::global()
            .begin_rotating_call()
            .ok_or_else(|| crate::interrupt::global().stopped("the code exchange"))?;
        let tokens = self.flow.exchange(&cx, &code, self.pkce.as_ref()).await?;
        self.store(tokens).await
    }

    async fn store(&self, tokens: Tokens) -> Result<Outcome> {
        let now = self.engine.clock().now();
        let mut entries = Vec::new();
        for slot in self.provider.slots() {
            let t = match slot.role {
                Role::Access => tokens.access.as_ref(),
                Role::Refresh => tokens.refresh.as_ref(),
            };
            if let Some(t) = t {
                entries.push(Entry {
                    var: self.account.var(slot.base),
                    value: t.value.clone(),
                    expires_at: t.expires_at,
                    updated_at: now,
                    durable: slot.durable,
                });
            }
        }
        if entries.is_empty() {
            return Err(Error::failed(format!(
                "{} issued no token this platform's refresh uses",
                self.account.platform.display_name()
            )));
        }
        let store = self.engine.store().clone();
        let key = self.account.key();
        let lock_path = self
            .engine
            .cfg
            .journal_dir()
            .join("locks")
            .join(format!("{key}.lock"));
        let _lock = crate::lock::FileLock::acquire(lock_path, Duration::from_secs(120))
            .await
            .map_err(|e| {
                Error::failed(format!("cannot take the lock: {e}"))
                    .with_hint("another evertoken run may be stuck; check for it")
            })?;
        store.write(&entries).await.map_err(|e| {
            let mut err = Error::failed(format!(
                "the new tokens could not be written to {}: {}",
                store.describe(),
                e.message
            ));
            err.hint = e.hint.or(Some(
                "fix the store and run `evertoken auth login` again; the old tokens are unchanged"
                    .into(),
            ));
            err
        })?;
        // A record left by an interrupted rotation would shadow the new tokens.
        let journal = crate::journal::Journal::new(&self.engine.cfg.journal_dir());
        let mut warnings = tokens.warnings;
        if let Err(e) = journal.clear(&store.id(), &key) {
            warnings.push(format!(
                "could not remove an old journal record for {}: {e}",
                self.account
            ));
        }
        let mut by_var: BTreeMap<String, Option<Timestamp>> = BTreeMap::new();
        for e in &entries {
            by_var.insert(e.var.clone(), e.expires_at);
            if store.env_shadows() && std::env::var_os(&e.var).is_some_and(|v| !v.is_empty()) {
                warnings.push(format!("{} is also set in the environment, which wins over {}: unset it or update it too", e.var, store.describe()));
            }
        }
        Ok(Outcome {
            account: self.account.to_string(),
            stored: by_var.into_iter().collect(),
            store: store.describe(),
            warnings,
        })
    }
}

/// Accepts connections on the loopback listener until one carries the redirect.
/// A request with the wrong `state` ends the login (it did not come from our
/// authorize request); other paths (a favicon) get a 404 and are ignored.
async fn wait_for_code(listener: &TcpListener, state: &str) -> Result<Secret> {
    loop {
        let (mut sock, _) = listener
            .accept()
            .await
            .map_err(|e| Error::failed(format!("the OAuth redirect listener failed: {e}")))?;
        let Some(target) = read_request_target(&mut sock).await else {
            continue;
        };
        let Ok(url) = Url::parse(&format!("http://127.0.0.1{target}")) else {
            respond(&mut sock, 400, "That is not a valid request.").await;
            continue;
        };
        if url.path() != "/callback" {
            respond(&mut sock, 404, "Not found.").await;
            continue;
        }
        let q: BTreeMap<String, String> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if q.get("state").map(String::as_str) != Some(state) {
            respond(&mut sock, 400, "The state parameter does not match this login. Start again with `evertoken auth login`.").await;
            return Err(Error::failed("the redirect's `state` does not match the one evertoken sent: the answer does not belong to this login")
                .with_hint("start the login again; if it repeats, something else is answering on the loopback port"));
        }
        if let Some(err) = q.get("error") {
            let desc = q
                .get("error_description")
                .or_else(|| q.get("error_reason"))
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            respond(
                &mut sock,
                400,
                "The authorization was not granted. You can close this tab.",
            )
            .await;
            return Err(Error::failed(format!("the authorization was refused: {err}{desc}"))
                .with_hint("check the app's redirect URI, scopes and status in the platform's developer portal, then try again"));
        }
        match q
            .get("code")
            .map(|c| c.trim_end_matches("#_"))
            .filter(|c| !c.is_empty())
        {
            Some(code) => {
                respond(
                    &mut sock,
                    200,
                    "Authorised. You can close this tab and return to the terminal.",
                )
                .await;
                return Ok(Secret::new(code.to_owned()));
            }
            None => {
                respond(
                    &mut sock,
                    400,
                    "The redirect carries no authorization code.",
                )
                .await;
                return Err(
                    Error::failed("the redirect carried neither a code nor an error")
                        .with_hint("start the login again"),
                );
            }
        }
    }
}

/// The request target of `GET <target> HTTP/1.1`, after reading the headers.
async fn read_request_target(sock: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 16 * 1024 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next()?;
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    (method == "GET" && target.starts_with('/')).then(|| target.to_owned())
}

async fn respond(sock: &mut tokio::net::TcpStream, status: u16, text: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let body = format!(
        "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>evertoken</title><body style=\"font-family:sans-serif\"><h1>evertoken</h1><p>{text}</p></body></html>"
    );
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// Whether a browser can be opened here: macOS, or a Linux/BSD desktop session.
pub fn can_open_browser() -> bool {
    if cfg!(target_os = "macos") {
        return true;
    }
    [crate::env_vars::DISPLAY, crate::env_vars::WAYLAND_DISPLAY]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// Opens `url` with `open` (macOS) or `xdg-open`; the URL goes as one argument,
/// never through a shell.
pub fn open_browser(url: &Url) -> std::result::Result<(), String> {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    std::process::Command::new(program)
        .arg(url.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| format!("cannot run `{program}`: {e}"))
}

/// An authorization or token endpoint from a configured base (scheme, host and
/// port only, like `base_url`), or the platform's default.
pub(crate) fn endpoint(
    cfg: &Config,
    key: &str,
    configured: Option<&str>,
    default: &str,
    path: &str,
) -> Result<Url> {
    let raw = configured.unwrap_or(default);
    let base = Url::parse(raw).map_err(|e| {
        cfg.error_at(key, format!("`{raw}` is not a URL: {e}"))
            .with_hint("for example `https://www.linkedin.com`")
    })?;
    if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
        return Err(cfg.error_at(key, format!("`{raw}` must be an http(s) URL with a host")));
    }
    Ok(crate::http::endpoint(&base, path))
}

/// The platform's error for a failed exchange, in its own words.
pub(crate) fn exchange_error(platform: &str, reply: &Reply) -> Error {
    let detail = crate::provider::OAuthError::from_reply(reply)
        .map(|e| e.describe())
        .or_else(|| {
            let v: serde_json::Value = reply.json().ok()?;
            v.get("error_message")
                .or_else(|| v.pointer("/error/message"))
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| crate::provider::redact_body(&reply.snippet()));
    Error::failed(format!("{platform} refused the authorization code ({}): {detail}", reply.status))
        .with_hint("codes are single-use and short-lived: run `evertoken auth login` again; check the client id/secret and that the redirect URI is registered")
}

pub(crate) fn failure(platform: &str, f: crate::http::Failure) -> Error {
    Error::failed(format!("{platform} token endpoint: {}", f.message()))
        .with_hint("check the network and base_url, then run `evertoken auth login` again")
}

/// Seconds from now, when the platform gave a lifetime.
pub(crate) fn expiry(clock: Clock, secs: Option<i64>) -> Option<Timestamp> {
    secs.filter(|s| *s > 0).map(|s| clock.in_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_s256_of_the_verifier() {
        let p = Pkce::new();
        assert_eq!(p.verifier.expose().len(), 64);
        let expect = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(p.verifier.expose().as_bytes()));
        assert_eq!(p.challenge, expect);
        assert_ne!(Pkce::new().verifier.expose(), p.verifier.expose());
    }
}
