//! `auth login`: the OAuth authorization-code flow, one module per platform for
//! the authorize URL and the code exchange. Two ways back from the browser:
//!
//! - **loopback** (the default where the provider allows it): a listener on
//!   `http://127.0.0.1:<port>/callback` (or the loopback `--redirect-uri` given)
//!   receives the redirect;
//! - **pasted callback** (`--redirect-uri https://…`, for providers that accept
//!   only registered `https` redirects, and for headless machines): the user opens
//!   the printed URL anywhere, and gives back the address the browser landed on,
//!   pasted on stdin or with `--callback-url` in a later run.
//!
//! The flow:
//! 1. [`start`]: check the redirect URI (an `http` one only on a loopback host),
//!    make a random `state` (and a PKCE S256 verifier where the platform uses one),
//!    build the authorize URL, and remember the waiting login in the state directory
//!    (0600, ten minutes) so that `--callback-url` can finish it;
//! 2. the CLI opens the browser or prints the URL;
//! 3. [`Pending::finish`]: take the callback, check `state` and `error`,
//!    [`Pending::exchange_code`] with exactly the redirect URI of step 1, and write
//!    the tokens with their expiries through the configured store, under the
//!    account's lock, clearing any stale journal record for it.
//!
//! Tokens, codes and verifiers stay in [`Secret`]s or local variables; nothing
//! here prints, and messages carry names, URLs without secrets and dates only.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::http::is_loopback;
use crate::http::{Http, Reply};
use crate::platform::{Account, Platform, Target};
use crate::provider::{NewToken, Provider, Role};
use crate::secret::Secret;
use crate::store::Entry;

/// The port of the redirect URI unless `--port` says otherwise. Register
/// `http://127.0.0.1:8765/callback` as a redirect URI in the app's settings.
pub const DEFAULT_PORT: u16 = 8765;
/// How long to wait for the browser to come back.
pub const WAIT: Duration = Duration::from_secs(300);
/// How long a login started with a pasted-callback redirect can be finished with
/// `--callback-url` (providers' codes live about as long).
pub const WAITING_TTL: Duration = Duration::from_secs(600);

#[derive(Clone, Debug)]
pub struct Options {
    /// The platform's key (`tiktok`, or a configured service's name).
    pub platform: String,
    pub account: Option<String>,
    /// 0: any free port.
    pub port: u16,
    /// Overrides the platform's default scopes.
    pub scope: Option<String>,
    pub wait: Duration,
    /// The redirect URI registered with the app, verbatim (trailing slash and
    /// all). `https`: the pasted-callback flow; `http` on a loopback host: the
    /// listener binds its port and answers its path. None: the default loopback.
    pub redirect_uri: Option<String>,
    /// The address the browser landed on, finishing a login started earlier with
    /// the same `redirect_uri`.
    pub callback_url: Option<String>,
    /// `--create-variable`: create missing GitLab CI/CD variables (login only).
    pub create_variables: bool,
}

/// How the PKCE `S256` challenge is encoded: RFC 7636's base64url, or the
/// lowercase hex TikTok's desktop flow uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Challenge {
    Base64Url,
    Hex,
}

/// PKCE (RFC 7636) with `S256`.
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
    pub kind: Challenge,
}

impl Pkce {
    /// A new verifier with an RFC 7636 (base64url) challenge.
    pub fn new() -> Pkce {
        Self::with(Challenge::Base64Url)
    }

    pub fn with(kind: Challenge) -> Pkce {
        Self::from_verifier(Secret::new(random_string(64)), kind)
    }

    pub fn from_verifier(verifier: Secret, kind: Challenge) -> Pkce {
        let digest = sha2::Sha256::digest(verifier.expose().as_bytes());
        let challenge = match kind {
            Challenge::Base64Url => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
            Challenge::Hex => hex::encode(digest),
        };
        Pkce {
            verifier,
            challenge,
            kind,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

fn random_string(n: usize) -> String {
    use rand::RngExt as _;
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
    /// The PKCE challenge the authorize request carries, if any. `loopback`: the
    /// redirect URI's host is a loopback one (`127.0.0.1`, `[::1]`, `localhost`),
    /// whether evertoken listens there (`http`) or the address is pasted (`https`).
    fn pkce(&self, loopback: bool) -> Option<Challenge>;
    /// Whether the provider accepts a loopback `http` redirect at all (Meta does not).
    fn loopback(&self) -> bool {
        true
    }
    /// The variable holding the client (app) secret for the code exchange;
    /// `None` for a public client, which has none.
    fn client_secret_var(&self) -> Option<&'static str>;
    fn authorize_url(&self, cx: &Cx<'_>, state: &str, pkce: Option<&Pkce>) -> Url;
    /// What the platform needs for a login beyond what refreshing needs.
    fn check(&self) -> Result<()> {
        Ok(())
    }
    async fn exchange(&self, cx: &Cx<'_>, code: &Secret, pkce: Option<&Pkce>) -> Result<Tokens>;
}

/// Where the browser comes back to.
enum Back {
    /// A listener on the loopback redirect's port, answering its path.
    Loopback { listener: TcpListener, path: String },
    /// The user gives the address the browser landed on: this one, or one read
    /// from stdin.
    Paste { callback: Option<String> },
}

/// A login waiting for the browser.
pub struct Pending {
    engine: Arc<Engine>,
    provider: Arc<dyn Provider>,
    account: Account,
    http: Http,
    client_secret: Secret,
    back: Back,
    redirect_uri: String,
    state: String,
    pkce: Option<Pkce>,
    scope: Option<String>,
    wait: Duration,
    waiting_file: PathBuf,
    resumed: bool,
    create_variables: bool,
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
    /// GitLab CI/CD variables `--create-variable` created.
    pub created: Vec<String>,
}

/// A pasted-callback login that can still be finished with `--callback-url`,
/// kept (0600) in the state directory.
#[derive(Serialize, Deserialize)]
struct Waiting {
    redirect_uri: String,
    state: String,
    #[serde(default)]
    verifier: Option<String>,
    #[serde(default)]
    challenge: Option<Challenge>,
    #[serde(default)]
    scope: Option<String>,
    created_at: Timestamp,
}

/// Checks a `--redirect-uri` before anything starts: `https` anywhere, `http`
/// only on a loopback host with a port, never a fragment.
pub fn check_redirect_uri(raw: &str) -> Result<Url> {
    let hint = "register an https URL with the app and pass it (`--redirect-uri https://example.com/evertoken/callback`), or a loopback one (`http://127.0.0.1:8765/callback`)";
    let u = Url::parse(raw).map_err(|e| {
        Error::usage(format!(
            "--redirect-uri `{raw}` is not an absolute URL: {e}"
        ))
        .with_hint(hint)
    })?;
    if u.fragment().is_some() {
        return Err(Error::usage(format!(
            "--redirect-uri `{raw}` has a fragment (#…), which OAuth forbids"
        ))
        .with_hint(hint));
    }
    match u.scheme() {
        "https" if u.host().is_some() => Ok(u),
        "http" if is_loopback(&u) => {
            if u.port().is_none() {
                return Err(Error::usage(format!(
                    "--redirect-uri `{raw}` needs a port (`http://127.0.0.1:8765/callback`)"
                )));
            }
            Ok(u)
        }
        "http" => Err(Error::usage(format!(
            "--redirect-uri `{raw}` is plain http to another host: the authorization code would cross the network unencrypted, and providers refuse it"
        ))
        .with_hint(hint)),
        _ => Err(Error::usage(format!("--redirect-uri `{raw}` must be an https URL")).with_hint(hint)),
    }
}

/// Binds the redirect listener (loopback) or prepares the pasted-callback flow,
/// and builds the authorize URL.
pub async fn start(cfg: Config, clock: Clock, opts: &Options) -> Result<Pending> {
    // The redirect first: a bad one is refused before anything else happens.
    let given = opts
        .redirect_uri
        .as_deref()
        .map(check_redirect_uri)
        .transpose()?;
    let loopback_given = given.as_ref().is_some_and(|u| u.scheme() == "http");
    if opts.callback_url.is_some() && (given.is_none() || loopback_given) {
        return Err(Error::usage(
            "--callback-url finishes a login started with an https --redirect-uri",
        )
        .with_hint(format!(
            "pass the same `--redirect-uri https://…` as when the login was started: `evertoken auth login {} --redirect-uri https://… --callback-url URL`",
            opts.platform
        )));
    }
    let engine = Engine::new(cfg, clock)?;
    let target = match &opts.account {
        Some(a) => Target::Account(opts.platform.clone(), a.clone()),
        None => Target::Platform(opts.platform.clone()),
    };
    let mut selected = engine.select(&target)?;
    let (provider, mut accounts) = selected
        .pop()
        .ok_or_else(|| Error::usage(format!("platform `{}` is not enabled", opts.platform)))?;
    let platform = provider.platform();
    let name = platform.display_name();
    provider.common().client_id()?;
    provider.login().check()?;
    if !provider.login().loopback() && (given.is_none() || loopback_given) {
        return Err(Error::usage(format!(
            "{name} accepts only https redirect URIs registered with the app, so this login cannot use a loopback listener"
        ))
        .with_hint(format!(
            "register an https redirect URI in the app's settings and run `evertoken auth login {platform} --redirect-uri https://…`; then paste the address the browser lands on"
        )));
    }
    if accounts.len() > 1 {
        let names: Vec<&str> = accounts.iter().map(|a| a.label()).collect();
        return Err(
            Error::usage(format!("{name} has several accounts: {}", names.join(", "))).with_hint(
                format!(
                    "say which one: `evertoken auth login {platform} --account {}`",
                    names[0]
                ),
            ),
        );
    }
    let Some(account) = accounts.pop() else {
        return Err(Error::usage(format!(
            "no account of `{platform}` is configured"
        )));
    };
    // The client secret, env → store (as for refresh; Instagram's refresh needs
    // none, its code exchange does).
    let client_secret = match provider.login().client_secret_var() {
        None => Secret::new(String::new()),
        Some(var) => engine
            .lookup_secret(var)
            .await?
            .map(|(v, _)| v)
            .or_else(|| {
                provider
                    .client_secret_optional()
                    .then(|| Secret::new(String::new()))
            })
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
    // Pre-flight the store before the browser opens: an authorization code is
    // single-use, so a store that cannot take the tokens (a GitLab variable that is
    // missing, unmasked or unprotected, a rejected GITLAB_TOKEN) is found now,
    // while nothing has been spent. `--create-variable` creates what is missing.
    if !opts.create_variables {
        let vars: Vec<(String, bool)> = provider
            .slots()
            .iter()
            .map(|s| (account.var(s.base), s.durable))
            .collect();
        engine.store().preflight(&vars).await.map_err(|e| {
            let mut err = Error::from(e);
            err.message = format!(
                "{}; the login was not started (nothing was sent to {name})",
                err.message
            );
            err
        })?;
    }
    let waiting_file = engine
        .cfg
        .journal_dir()
        .join("login")
        .join(format!("{}.json", account.key()));

    let (back, redirect_uri) = match &given {
        Some(u) if u.scheme() == "https" => (
            Back::Paste {
                callback: opts.callback_url.clone(),
            },
            opts.redirect_uri.clone().unwrap_or_default(),
        ),
        _ => {
            let (port, path) = match &given {
                Some(u) => (u.port().unwrap_or(80), u.path().to_owned()),
                None => (opts.port, "/callback".to_owned()),
            };
            // Listen on the redirect's own host: `[::1]` is not `127.0.0.1`.
            let ip: std::net::IpAddr = match given.as_ref().and_then(Url::host) {
                Some(url::Host::Ipv4(a)) => a.into(),
                Some(url::Host::Ipv6(a)) => a.into(),
                _ => std::net::Ipv4Addr::LOCALHOST.into(),
            };
            let addr = std::net::SocketAddr::new(ip, port);
            let listener = TcpListener::bind(addr).await.map_err(|e| {
                Error::failed(format!("cannot listen on {addr} for the OAuth redirect: {e}"))
                    .with_hint("another program uses that port, or this host has no such loopback address: pick another port with `--port N` (and register http://127.0.0.1:N/callback with the app)")
            })?;
            let port = listener
                .local_addr()
                .map_err(|e| Error::failed(format!("cannot read the listener's address: {e}")))?
                .port();
            let uri = match &opts.redirect_uri {
                Some(raw) => raw.clone(),
                None => format!("http://127.0.0.1:{port}/callback"),
            };
            (Back::Loopback { listener, path }, uri)
        }
    };
    let loopback = matches!(back, Back::Loopback { .. });
    // PKCE follows the redirect's host, not how the code comes back: TikTok's
    // desktop apps may register `https://127.0.0.1:PORT/…`, pasted here.
    let loopback_host = given.as_ref().is_none_or(is_loopback);

    // A `--callback-url` finishes the login that printed the URL: its state and
    // verifier, not new ones.
    let (state, pkce, scope, resumed) = if opts.callback_url.is_some() {
        let w = read_waiting(&waiting_file, &redirect_uri, clock, platform)?;
        let pkce = match (w.verifier, w.challenge) {
            (Some(v), Some(kind)) => Some(Pkce::from_verifier(Secret::new(v), kind)),
            _ => None,
        };
        (w.state, pkce, w.scope, true)
    } else {
        let state = random_string(32);
        let pkce = provider.login().pkce(loopback_host).map(Pkce::with);
        (state, pkce, opts.scope.clone(), false)
    };
    // The engine's client: one HTTP client per process.
    let http = engine.http().clone();
    let url = {
        let cx = Cx {
            cfg: &engine.cfg,
            http: &http,
            clock,
            client_secret: &client_secret,
            redirect_uri: &redirect_uri,
            scope: scope.as_deref(),
        };
        provider.login().authorize_url(&cx, &state, pkce.as_ref())
    };
    if !loopback && !resumed {
        let w = Waiting {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            verifier: pkce.as_ref().map(|p| p.verifier.expose().to_owned()),
            challenge: pkce.as_ref().map(|p| p.kind),
            scope: scope.clone(),
            created_at: clock.now(),
        };
        write_waiting(&waiting_file, &w)?;
    }
    Ok(Pending {
        engine,
        provider,
        account,
        http,
        client_secret,
        back,
        redirect_uri,
        state,
        pkce,
        scope,
        wait: opts.wait,
        waiting_file,
        resumed,
        create_variables: opts.create_variables,
        url,
    })
}

fn write_waiting(path: &std::path::Path, w: &Waiting) -> Result<()> {
    let fail = |e: std::io::Error| {
        Error::failed(format!(
            "cannot remember the waiting login in {}: {e}",
            path.display()
        ))
        .with_hint("check that the state directory (auth.journal_dir) is writable")
    };
    if let Some(dir) = path.parent() {
        crate::files::ensure_private_dir(dir).map_err(fail)?;
    }
    let body = serde_json::to_vec(w)
        .map_err(|e| Error::failed(format!("cannot encode the waiting login: {e}")))?;
    crate::files::write_private_atomic(path, &body).map_err(fail)
}

fn read_waiting(
    path: &std::path::Path,
    redirect_uri: &str,
    clock: Clock,
    platform: Platform,
) -> Result<Waiting> {
    let start_again = format!(
        "start it again: `evertoken auth login {platform} --redirect-uri {redirect_uri}`, open the URL it prints, then paste the address the browser lands on (or pass it with --callback-url within {} minutes)",
        WAITING_TTL.as_secs() / 60
    );
    let raw = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::failed(format!(
                "no {} login is waiting for a callback (nothing in {})",
                platform.display_name(),
                path.display()
            ))
            .with_hint(start_again));
        }
        Err(e) => {
            return Err(Error::failed(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let w: Waiting = serde_json::from_slice(&raw).map_err(|e| {
        Error::failed(format!("{} is not a waiting login: {e}", path.display()))
            .with_hint(start_again.clone())
    })?;
    let age = clock.now().duration_since(w.created_at);
    if age.as_secs() < 0 || age.as_secs() > WAITING_TTL.as_secs() as i64 {
        let _ = std::fs::remove_file(path);
        return Err(Error::failed(format!(
            "the waiting {} login is older than {} minutes: its authorization code has expired",
            platform.display_name(),
            WAITING_TTL.as_secs() / 60
        ))
        .with_hint(start_again));
    }
    if w.redirect_uri != redirect_uri {
        return Err(Error::usage(format!(
            "the waiting login was started with --redirect-uri {}, not {redirect_uri}",
            w.redirect_uri
        ))
        .with_hint("pass the same --redirect-uri: the code exchange must repeat it exactly"));
    }
    Ok(w)
}

impl Pending {
    /// The platform being logged in to.
    pub fn platform(&self) -> Platform {
        self.account.platform
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Whether the browser comes back to a local listener (else the user pastes).
    pub fn is_loopback(&self) -> bool {
        matches!(self.back, Back::Loopback { .. })
    }

    /// Whether this finishes a login started earlier (`--callback-url`).
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Whether the callback address will be read from stdin.
    pub fn reads_stdin(&self) -> bool {
        matches!(self.back, Back::Paste { callback: None })
    }

    /// Takes the callback, exchanges the code and stores the tokens.
    pub async fn finish(self) -> Result<Outcome> {
        let code = match &self.back {
            Back::Loopback { listener, path } => {
                tokio::time::timeout(self.wait, wait_for_code(listener, path, &self.state))
                    .await
                    .map_err(|_| {
                        Error::failed(format!("no authorization arrived at {} within {}s", self.redirect_uri, self.wait.as_secs()))
                            .with_hint("run the command again and finish the consent in the browser; with --no-browser, open the printed URL on this machine (or forward the port: `ssh -L PORT:127.0.0.1:PORT host`)")
                    })??
            }
            Back::Paste { callback } => {
                let pasted = match callback {
                    Some(c) => c.clone(),
                    None => self.read_pasted().await?,
                };
                code_from_pasted(&pasted, &self.redirect_uri, &self.state)?
            }
        };
        // Signals (crate::interrupt): no exchange after one; an exchange already sent
        // finishes and its tokens are stored before the command exits 130/143.
        let _call = crate::interrupt::global()
            .begin_rotating_call()
            .ok_or_else(|| crate::interrupt::global().stopped("the code exchange"))?;
        let tokens = self.exchange_code(&code).await?;
        // The code is spent whatever comes next: the waiting login is done.
        if !self.is_loopback() {
            let _ = std::fs::remove_file(&self.waiting_file);
        }
        self.store(tokens).await
    }

    /// One line from stdin: the address the browser landed on (at most
    /// [`MAX_PASTED`] bytes: a redirect address is a few hundred).
    async fn read_pasted(&self) -> Result<String> {
        let mut line = String::new();
        let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).take(MAX_PASTED as u64 + 1);
        let read = tokio::time::timeout(self.wait, stdin.read_line(&mut line))
            .await
            .map_err(|_| {
                Error::failed(format!(
                    "no callback address was pasted within {}s",
                    self.wait.as_secs()
                ))
                .with_hint(self.later_hint())
            })?
            .map_err(|e| {
                Error::failed(format!("cannot read the pasted address from stdin: {e}"))
            })?;
        if line.len() > MAX_PASTED {
            return Err(Error::failed(format!(
                "the pasted text is longer than {} KiB: that is not a redirect address",
                MAX_PASTED / 1024
            ))
            .with_hint(self.later_hint()));
        }
        if read == 0 || line.trim().is_empty() {
            return Err(
                Error::failed("no callback address was pasted (stdin ended)")
                    .with_hint(self.later_hint()),
            );
        }
        Ok(line)
    }

    fn later_hint(&self) -> String {
        format!(
            "finish within {} minutes with `evertoken auth login {}{} --redirect-uri {} --callback-url 'ADDRESS'`, ADDRESS being what the browser's address bar shows after you allowed access",
            WAITING_TTL.as_secs() / 60,
            self.account.platform,
            self.account
                .name
                .as_deref()
                .map(|n| format!(" --account {n}"))
                .unwrap_or_default(),
            self.redirect_uri
        )
    }

    /// The code exchange: one call to the platform's token endpoint with the code,
    /// exactly the redirect URI of the authorize request, and the PKCE verifier.
    /// Its answer carries the only copy of the new tokens.
    pub async fn exchange_code(&self, code: &Secret) -> Result<Tokens> {
        let cx = Cx {
            cfg: &self.engine.cfg,
            http: &self.http,
            clock: self.engine.clock(),
            client_secret: &self.client_secret,
            redirect_uri: &self.redirect_uri,
            scope: self.scope.as_deref(),
        };
        self.provider
            .login()
            .exchange(&cx, code, self.pkce.as_ref())
            .await
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
        // The same store-keyed lock `auth refresh` takes (issue 13).
        let lock_path = crate::lock::account_lock_path(store.as_ref(), &key);
        let _lock = crate::lock::FileLock::acquire(lock_path, Duration::from_secs(120))
            .await
            .map_err(|e| {
                Error::failed(format!("cannot take the lock: {e}"))
                    .with_hint("another evertoken run may be stuck; check for it")
            })?;
        // The code is spent: like a rotation, the new tokens go to the journal
        // before the store, so a store that refuses them loses nothing.
        let journal = crate::journal::Journal::new(&self.engine.cfg.journal_dir());
        let journaled = journal
            .record(&store.id(), &self.account.to_string(), &key, &entries, now)
            .map_err(|e| tracing::warn!("cannot journal the new tokens before the write: {e}"))
            .ok();
        let kept = |why: &str| -> Error {
            let mut err = Error::failed(format!(
                "the new tokens could not be written to {}: {why}",
                store.describe()
            ));
            err.hint = Some(match &journaled {
                Some(path) => format!(
                    "they are kept in the journal record {} (0600); fix the store, then `evertoken auth refresh {}` (with this store as `auth.writeback.backend`) writes them; the old tokens in the store are unchanged",
                    path.display(),
                    self.account
                ),
                None => format!(
                    "they could not be journaled either, so they are lost: fix the store, then run `evertoken auth login {}` again",
                    self.account.platform
                ),
            });
            err
        };
        let mut created = Vec::new();
        if self.create_variables {
            let cfg = &self.engine.cfg;
            let gitlab = crate::store::gitlab::GitLabStore::open_configured(
                &cfg.writeback,
                &cfg.ctx(self.engine.http()),
            )
            .map_err(|e| kept(&e.message))?;
            created = gitlab
                .create_missing(&entries)
                .await
                .map_err(|e| kept(&e.message))?;
        }
        // The pre-flight ran before the consent: what the store says now about the
        // durable variables (still there, still masked and protected) decides.
        let durable: Vec<String> = entries
            .iter()
            .filter(|e| e.durable)
            .map(|e| e.var.clone())
            .collect();
        store.reread(&durable);
        store.write(&entries).await.map_err(|e| {
            let mut err = kept(&e.message);
            if let Some(h) = e.hint {
                // The store's own advice, minus a refresh-only claim about the journal.
                let own = h
                    .replace(
                        "; the new token is kept in the journal and the next run writes it",
                        "",
                    )
                    .replace(
                        "the token is kept in the journal and the next run writes it; ",
                        "",
                    );
                err.hint = Some(format!("{own}; {}", err.hint.unwrap_or_default()));
            }
            err
        })?;
        // This host's refresh runs will read what it just wrote. A store that CI jobs
        // fill and rotate (GitLab variables, Actions secrets) is compared only by the
        // jobs that rotate it, so a laptop's login records nothing for it.
        if store.env_shadows() {
            crate::fingerprint::Fingerprints::new(&self.engine.cfg.journal_dir(), &store.id())
                .record(&entries);
        }
        // The store holds them: the record (and any left by an interrupted
        // rotation, which would shadow the new tokens) goes.
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
            created,
        })
    }
}

/// The longest pasted callback address read from stdin.
const MAX_PASTED: usize = 64 * 1024;

/// Why a callback carries no usable code, and the page the browser gets.
struct Refused {
    page: &'static str,
    err: Error,
}

/// Checks a callback's query: `state` first (an answer to another login is not
/// ours to read), then `error`, then `code`.
fn code_from_query(
    q: &BTreeMap<String, String>,
    state: &str,
) -> std::result::Result<Secret, Refused> {
    if q.get("state").map(String::as_str) != Some(state) {
        return Err(Refused {
            page: "The state parameter does not match this login. Start again with `evertoken auth login`.",
            err: Error::failed("the callback's `state` does not match the one evertoken sent: the answer does not belong to this login")
                .with_hint("start the login again and use the address of that login's redirect; if it repeats, something else answers on the redirect"),
        });
    }
    if let Some(err) = q.get("error") {
        if err.trim().is_empty() {
            return Err(Refused {
                page: "The authorization was not granted. You can close this tab.",
                err: Error::failed(
                    "the authorization was refused: the callback has an `error` parameter with no value (the platform gave no reason)",
                )
                .with_hint(
                    "run the login again; if it repeats, check the app's redirect URI, scopes and status in the platform's developer portal",
                ),
            });
        }
        let desc = q
            .get("error_description")
            .or_else(|| q.get("error_reason"))
            .map(|d| format!(": {}", escape_control(d)))
            .unwrap_or_default();
        let hint = if err == "access_denied" || err.contains("cancel") {
            "the consent was declined in the browser: run the login again and allow access"
        } else {
            "check the app's redirect URI, scopes and status in the platform's developer portal, then try again"
        };
        return Err(Refused {
            page: "The authorization was not granted. You can close this tab.",
            err: Error::failed(format!(
                "the authorization was refused: {}{desc}",
                escape_control(err)
            ))
            .with_hint(hint),
        });
    }
    match q
        .get("code")
        .map(|c| c.trim_end_matches("#_"))
        .filter(|c| !c.is_empty())
    {
        Some(code) => Ok(Secret::new(code.to_owned())),
        None => Err(Refused {
            page: "The redirect carries no authorization code.",
            err: Error::failed("the callback address carries neither a `code` nor an `error`")
                .with_hint("copy the whole address from the browser's address bar after allowing access (it contains `code=` and `state=`), or start the login again"),
        }),
    }
}

/// External text for a message: control characters escaped, at most 200 characters.
fn escape_control(s: &str) -> String {
    s.chars()
        .take(200)
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The callback's query. A parameter that decides the outcome (`state`, `code`,
/// `error`) given twice is refused: which copy counts would be a guess, and a
/// second `state` is how a forged answer would ride on a genuine one.
fn query_of(url: &Url) -> std::result::Result<BTreeMap<String, String>, Refused> {
    let mut q = BTreeMap::new();
    for (k, v) in url.query_pairs() {
        let k = k.into_owned();
        if q.contains_key(&k) && matches!(k.as_str(), "state" | "code" | "error") {
            return Err(Refused {
                page: "The redirect carries a parameter twice. Start again with `evertoken auth login`.",
                err: Error::failed(format!(
                    "the callback address carries `{k}` more than once: an ambiguous answer is not used"
                ))
                .with_hint("copy the address exactly as the browser shows it after allowing access, or start the login again"),
            });
        }
        q.insert(k, v.into_owned());
    }
    Ok(q)
}

/// The code from an address the user pasted (or passed with `--callback-url`).
fn code_from_pasted(pasted: &str, redirect_uri: &str, state: &str) -> Result<Secret> {
    let text = pasted
        .trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '<' || c == '>');
    let url = Url::parse(text).map_err(|_| {
        Error::failed("the pasted text is not an address (URL)").with_hint(
            "copy the whole address from the browser's address bar after allowing access (it starts with your redirect URI)",
        )
    })?;
    let expected = Url::parse(redirect_uri).ok();
    let same_place = expected.as_ref().is_some_and(|e| {
        e.scheme() == url.scheme()
            && e.host_str() == url.host_str()
            && e.port_or_known_default() == url.port_or_known_default()
            && e.path() == url.path()
    });
    if !same_place {
        return Err(Error::failed(format!(
            "the pasted address is not the redirect URI {redirect_uri} (it points to {}://{}{})",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.path()
        ))
        .with_hint("paste the address the browser landed on after you allowed access"));
    }
    query_of(&url)
        .and_then(|q| code_from_query(&q, state))
        .map_err(|r| r.err)
}

/// Accepts connections on the loopback listener until one carries the redirect.
/// A request with the wrong `state` ends the login (it did not come from our
/// authorize request); other paths (a favicon) get a 404 and are ignored.
async fn wait_for_code(listener: &TcpListener, path: &str, state: &str) -> Result<Secret> {
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
        if url.path() != path {
            respond(&mut sock, 404, "Not found.").await;
            continue;
        }
        match query_of(&url).and_then(|q| code_from_query(&q, state)) {
            Ok(code) => {
                respond(
                    &mut sock,
                    200,
                    "Authorised. You can close this tab and return to the terminal.",
                )
                .await;
                return Ok(code);
            }
            Err(r) => {
                respond(&mut sock, 400, r.page).await;
                return Err(r.err);
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
/// The expiry of a token a login just received; an impossible lifetime leaves it
/// unknown (the token is kept: the next `auth refresh` finds its expiry) and says so.
pub(crate) fn expiry(clock: Clock, secs: impl Into<crate::clock::Lifetime>) -> Option<Timestamp> {
    match clock.expiry("expires_in", &secs.into()) {
        Ok(t) => t.filter(|t| *t > clock.now()),
        Err(e) => {
            tracing::warn!("the token answer {e}; its expiry is recorded as unknown");
            None
        }
    }
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

    #[test]
    fn tiktok_challenge_is_lowercase_hex_of_sha256() {
        // RFC 7636 appendix B's verifier, hex-encoded instead of base64url.
        let p = Pkce::from_verifier(
            Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            Challenge::Hex,
        );
        assert_eq!(
            p.challenge,
            "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3"
        );
        let b = Pkce::from_verifier(p.verifier.clone(), Challenge::Base64Url);
        assert_eq!(b.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn redirect_uris_are_checked_before_anything_starts() {
        assert!(check_redirect_uri("https://example.com/cb/").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:8765/callback/").is_ok());
        assert!(check_redirect_uri("http://localhost:3455/callback").is_ok());
        for bad in [
            "http://example.com/cb",
            "http://127.0.0.1/cb",
            "https://example.com/cb#x",
            "ftp://example.com/cb",
            "/cb",
        ] {
            let e = check_redirect_uri(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn pasted_callbacks_are_checked() {
        let r = "https://example.com/cb/";
        let ok =
            code_from_pasted(" 'https://example.com/cb/?code=abc&state=S#_' \n", r, "S").unwrap();
        assert_eq!(ok.expose(), "abc");
        let e = code_from_pasted("https://example.com/cb/?code=abc&state=T", r, "S").unwrap_err();
        assert!(e.message.contains("state"), "{}", e.message);
        let e = code_from_pasted("https://example.com/cb/?state=S", r, "S").unwrap_err();
        assert!(e.message.contains("neither a `code`"), "{}", e.message);
        let e = code_from_pasted(
            "https://example.com/cb/?error=access_denied&error_description=no%1b&state=S",
            r,
            "S",
        )
        .unwrap_err();
        assert!(e.message.contains("access_denied") && !e.message.contains('\u{1b}'));
        assert!(e.hint.unwrap().contains("declined"));
        let e = code_from_pasted("https://evil.example/cb/?code=abc&state=S", r, "S").unwrap_err();
        assert!(e.message.contains("not the redirect URI"), "{}", e.message);
        assert!(code_from_pasted("not a url", r, "S").is_err());
    }

    #[test]
    fn ambiguous_or_empty_callback_parameters_are_refused() {
        let r = "https://example.com/cb/";
        for dup in [
            "https://example.com/cb/?code=abc&state=S&state=T",
            "https://example.com/cb/?code=abc&state=T&state=S",
            "https://example.com/cb/?code=abc&code=def&state=S",
            "https://example.com/cb/?error=x&error=y&state=S",
        ] {
            let e = code_from_pasted(dup, r, "S").unwrap_err();
            assert!(e.message.contains("more than once"), "{dup}: {}", e.message);
        }
        let e = code_from_pasted("https://example.com/cb/?error=&state=S", r, "S").unwrap_err();
        assert!(e.message.contains("no value"), "{}", e.message);
    }
}
