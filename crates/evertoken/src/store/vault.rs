//! The `vault` store: HashiCorp Vault or OpenBao, KV version 2.
//!
//! One secret per variable at `<mount>/data/<path>/<VARIABLE>` with the fields
//! `value`, `expires_at` and `updated_at`. Every write is a check-and-set on the
//! version this process read, so a value changed by someone else since is never
//! overwritten blindly. It is also the lock several runners on several hosts share:
//! `<mount>/data/<path>/.locks/<account>` is created (or taken over once expired)
//! with check-and-set, holds its owner and expiry, and is released by writing an
//! expired marker with check-and-set on the version this process wrote.
//!
//! Auth: `VAULT_TOKEN`, or AppRole (`VAULT_ROLE_ID` + `VAULT_SECRET_ID`, logged in
//! once per run). The token is sent only in `X-Vault-Token`, never logged.
//!
//! Docs: <https://openbao.org/api-docs/secret/kv/kv-v2/>,
//! <https://openbao.org/api-docs/auth/approle/>.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::{Entry, RemoteLock, Store, StoreError, Stored};
use crate::env_vars;
use crate::error::Result;
use crate::http::{Call, Failure, Http, safe_url};
use crate::secret::{Secret, Source};
use crate::section::{Ctx, Site};

/// `auth.writeback.vault`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Server address; default `$VAULT_ADDR`.
    #[serde(default)]
    pub address: Option<String>,
    /// The KV v2 mount (default `secret`).
    #[serde(default = "default_mount")]
    pub mount: String,
    /// The folder under the mount holding one secret per variable (default `evertoken`).
    #[serde(default = "default_path")]
    pub path: String,
    /// Namespace (`X-Vault-Namespace`); default `$VAULT_NAMESPACE`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// PEM file of the CA that signed the server's certificate; default `$VAULT_CACERT`.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Where the AppRole auth method is mounted (default `approle`).
    #[serde(default = "default_approle_mount")]
    pub approle_mount: String,
    /// How long to wait for another runner's lock before giving up (default 120).
    #[serde(default = "default_lock_timeout")]
    pub lock_timeout_seconds: u64,
    /// How long a lock is valid; a runner that died leaves one that expires (default 600).
    #[serde(default = "default_lock_ttl")]
    pub lock_ttl_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            address: None,
            mount: default_mount(),
            path: default_path(),
            namespace: None,
            ca_file: None,
            approle_mount: default_approle_mount(),
            lock_timeout_seconds: default_lock_timeout(),
            lock_ttl_seconds: default_lock_ttl(),
        }
    }
}

fn default_mount() -> String {
    "secret".into()
}
fn default_path() -> String {
    "evertoken".into()
}
fn default_approle_mount() -> String {
    "approle".into()
}
fn default_lock_timeout() -> u64 {
    120
}
fn default_lock_ttl() -> u64 {
    600
}

fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// `a/b` with no empty, `.` or `..` segment and no characters Vault paths do not need.
fn valid_path(p: &str) -> bool {
    !p.is_empty()
        && p.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

/// `auth.writeback.vault` (or a GitHub App's Transit signer), resolved: checked
/// names and address, the CA file's path, the lock timings. The address, token
/// and namespace the file leaves out come from `$VAULT_*` when the store opens.
#[derive(Debug, Clone)]
pub struct Settings {
    address: Option<Url>,
    mount: String,
    path: String,
    namespace: Option<String>,
    ca_file: Option<PathBuf>,
    approle_mount: String,
    lock_timeout: Duration,
    lock_ttl: Duration,
}

impl Settings {
    /// `at` is the block's key, for messages (`auth.writeback.vault`).
    pub fn resolve(c: &Config, site: &Site, at: &str) -> Result<Settings> {
        let key = |k: &str| format!("{at}.{k}");
        for (k, v) in [
            ("mount", &c.mount),
            ("path", &c.path),
            ("approle_mount", &c.approle_mount),
        ] {
            let t = v.trim_matches('/');
            if !valid_path(t) {
                return Err(site
                    .error_at(&key(k), format!("`{v}` is not a Vault path"))
                    .with_hint("use segments of letters, digits, `-`, `_` and `.`, separated by `/`, e.g. `secret` or `ci/evertoken`"));
            }
        }
        let address = match &c.address {
            Some(a) => Some(parse_address(a).map_err(|e| {
                site.error_at(&key("address"), e)
                    .with_hint("for example `https://vault.example.com:8200`")
            })?),
            None => None,
        };
        if c.lock_timeout_seconds == 0 || c.lock_ttl_seconds == 0 {
            return Err(site
                .error_at(
                    &key(if c.lock_ttl_seconds == 0 {
                        "lock_ttl_seconds"
                    } else {
                        "lock_timeout_seconds"
                    }),
                    "must be at least 1",
                )
                .with_hint("the defaults are 120 (timeout) and 600 (ttl)"));
        }
        Ok(Settings {
            address,
            mount: c.mount.trim_matches('/').to_owned(),
            path: c.path.trim_matches('/').to_owned(),
            namespace: c.namespace.as_ref().map(|n| n.trim_matches('/').to_owned()),
            ca_file: c.ca_file.as_deref().map(|f| site.resolve_path(f)),
            approle_mount: c.approle_mount.trim_matches('/').to_owned(),
            lock_timeout: Duration::from_secs(c.lock_timeout_seconds),
            lock_ttl: Duration::from_secs(c.lock_ttl_seconds),
        })
    }
}

fn parse_address(a: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(a.trim()).map_err(|e| format!("`{a}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{a}` is not an http(s) URL"));
    }
    Ok(url)
}

enum Auth {
    Token(Secret),
    AppRole { role_id: Secret, secret_id: Secret },
}

pub(crate) struct Inner {
    http: Http,
    address: Url,
    namespace: Option<String>,
    mount: String,
    path: String,
    approle_mount: String,
    auth: Auth,
    /// The token in use (AppRole: after login).
    token: tokio::sync::Mutex<Option<Secret>>,
    /// The KV version of each variable as last read or written (check-and-set).
    versions: Mutex<HashMap<String, u64>>,
}

pub struct VaultStore {
    inner: Arc<Inner>,
    lock_timeout: Duration,
    lock_ttl: Duration,
}

/// A KV v2 read: the fields, and the version to check-and-set against.
struct Kv {
    data: Option<serde_json::Map<String, Value>>,
    version: u64,
}

impl VaultStore {
    pub fn open(s: &Settings, ctx: &Ctx) -> Result<Self> {
        Ok(Self {
            inner: Arc::new(connect(s, ctx, "auth.writeback.vault")?),
            lock_timeout: s.lock_timeout,
            lock_ttl: s.lock_ttl,
        })
    }
}

/// Address, auth (token or AppRole), namespace and CA file of `s`, the
/// environment filling in what the file leaves out; `at` (the store's key, or a
/// GitHub App's Transit signer) names them in messages.
pub(crate) fn connect(s: &Settings, ctx: &Ctx, at: &str) -> Result<Inner> {
    let key = |k: &str| format!("{at}.{k}");
    let address = match (&s.address, env_nonempty(env_vars::VAULT_ADDR)) {
        (Some(a), _) => a.clone(),
        (None, Some(a)) => parse_address(&a).map_err(|e| {
            ctx.error_at(
                &key("address"),
                format!("{e} (from ${})", env_vars::VAULT_ADDR),
            )
            .with_hint("for example `https://vault.example.com:8200`")
        })?,
        (None, None) => {
            return Err(ctx
                .error_at(&key("address"), format!("is not set, and neither is ${}", env_vars::VAULT_ADDR))
                .with_hint("set `auth.writeback.vault.address: https://vault.example.com:8200` or export VAULT_ADDR"));
        }
    };
    let auth = match (
        env_nonempty(env_vars::VAULT_TOKEN),
        env_nonempty(env_vars::VAULT_ROLE_ID),
        env_nonempty(env_vars::VAULT_SECRET_ID),
    ) {
        (Some(t), _, _) => Auth::Token(Secret::new(t)),
        (None, Some(r), Some(s)) => Auth::AppRole {
            role_id: Secret::new(r),
            secret_id: Secret::new(s),
        },
        (None, r, s) => {
            let missing = match (r.is_some(), s.is_some()) {
                (true, false) => format!(
                    "${} is set but ${} is not",
                    env_vars::VAULT_ROLE_ID,
                    env_vars::VAULT_SECRET_ID
                ),
                (false, true) => format!(
                    "${} is set but ${} is not",
                    env_vars::VAULT_SECRET_ID,
                    env_vars::VAULT_ROLE_ID
                ),
                _ => format!(
                    "neither ${} nor ${} + ${} is set",
                    env_vars::VAULT_TOKEN,
                    env_vars::VAULT_ROLE_ID,
                    env_vars::VAULT_SECRET_ID
                ),
            };
            return Err(ctx
                .error_at(if at == "auth.writeback.vault" { "auth.writeback.backend" } else { at }, format!("cannot log in to Vault: {missing}"))
                .with_hint("export VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole (see the README for the policy the runner needs)"));
        }
    };
    let ca = match (&s.ca_file, env_nonempty(env_vars::VAULT_CACERT)) {
        (Some(f), _) => Some((f.clone(), key("ca_file"))),
        (None, Some(f)) => Some((PathBuf::from(f), format!("${}", env_vars::VAULT_CACERT))),
        (None, None) => None,
    };
    let mut roots = Vec::new();
    if let Some((path, from)) = ca {
        let pem = std::fs::read(&path).map_err(|e| {
            ctx.error_at(
                &key("ca_file"),
                format!("cannot read {} (from {from}): {e}", path.display()),
            )
            .with_hint(
                "point it at the PEM file of the CA that signed the Vault server's certificate",
            )
        })?;
        roots = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                ctx.error_at(
                    &key("ca_file"),
                    format!("{} (from {from}) holds no PEM certificate", path.display()),
                )
                .with_hint("it must hold `BEGIN CERTIFICATE` blocks: the CA that signed the Vault server's certificate")
            })?;
    }
    // The process's HTTP layer (timeouts, retries); with a private CA, its own
    // client trusting that CA too.
    let http = ctx
        .http
        .with_roots(roots)
        .map_err(|e| ctx.error_at(&key("ca_file"), format!("cannot set up TLS: {e}")))?;
    let namespace = s.namespace.clone().or_else(|| {
        env_nonempty(env_vars::VAULT_NAMESPACE).map(|n| n.trim_matches('/').to_owned())
    });
    Ok(Inner {
        http,
        address,
        namespace,
        mount: s.mount.clone(),
        path: s.path.clone(),
        approle_mount: s.approle_mount.clone(),
        auth,
        token: tokio::sync::Mutex::new(None),
        versions: Mutex::new(HashMap::new()),
    })
}

/// The first of Vault's `errors`, or the start of the body.
pub(crate) fn vault_message(body: &Value, raw: &str) -> String {
    body.get("errors")
        .and_then(|e| e.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| crate::scrub::external_cut(raw, 120))
}

fn is_cas_mismatch(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::BAD_REQUEST && vault_message(body, "").contains("check-and-set")
}

impl Inner {
    pub(crate) fn url(&self, api_path: &str) -> Url {
        let mut u = self.address.clone();
        let base = u.path().trim_end_matches('/').to_owned();
        u.set_path(&format!("{base}/v1/{api_path}"));
        u.set_query(None);
        u
    }

    fn data_path(&self, name: &str) -> String {
        format!("{}/data/{}/{name}", self.mount, self.path)
    }

    /// The token to send, logging in with AppRole first when needed.
    async fn token(&self, relogin: bool) -> Result<Secret, StoreError> {
        let (role_id, secret_id) = match &self.auth {
            Auth::Token(t) => return Ok(t.clone()),
            Auth::AppRole { role_id, secret_id } => (role_id, secret_id),
        };
        let mut cached = self.token.lock().await;
        if let (Some(t), false) = (cached.as_ref(), relogin) {
            return Ok(t.clone());
        }
        let path = format!("auth/{}/login", self.approle_mount);
        let body = json!({ "role_id": role_id.expose(), "secret_id": secret_id.expose() });
        let (status, reply, raw) = self.send(Method::POST, &path, None, Some(&body)).await?;
        if !status.is_success() {
            return Err(StoreError::permanent(format!(
                "Vault AppRole login ({}) answered {status}: {}",
                safe_url(&self.url(&path)),
                vault_message(&reply, &raw)
            ))
            .with_hint("check VAULT_ROLE_ID and VAULT_SECRET_ID (a secret id may have expired or run out of uses) and `auth.writeback.vault.approle_mount`"));
        }
        let token = reply
            .pointer("/auth/client_token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                StoreError::permanent(format!(
                    "Vault AppRole login ({}) answered without a client token",
                    safe_url(&self.url(&path))
                ))
            })?;
        let t = Secret::new(token);
        *cached = Some(t.clone());
        Ok(t)
    }

    /// One API call through the shared HTTP layer, which retries what is worth
    /// retrying (connect errors, timeouts, 5xx, 429). Returns the final status,
    /// the JSON body (or null) and the raw body.
    async fn send(
        &self,
        method: Method,
        api_path: &str,
        token: Option<&Secret>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value, String), StoreError> {
        let url = self.url(api_path);
        let reply = self
            .http
            .send("Vault", Call::Safe, |c| {
                let mut rb = c.request(method.clone(), url.clone());
                if let Some(t) = token {
                    rb = rb.header("X-Vault-Token", t.expose());
                }
                if let Some(ns) = &self.namespace {
                    rb = rb.header("X-Vault-Namespace", ns);
                }
                if let Some(b) = body {
                    rb = rb.json(b);
                }
                rb
            })
            .await
            .map_err(|f| match f {
                Failure::Untrusted { message } => StoreError::permanent(message).with_hint(format!(
                    "if the server's certificate is signed by a private CA, set `auth.writeback.vault.ca_file` (or ${}) to that CA's PEM file",
                    env_vars::VAULT_CACERT
                )),
                Failure::GaveUp {
                    message,
                    answer: Some(raw),
                    ..
                } => {
                    let v = serde_json::from_str(&raw).unwrap_or(Value::Null);
                    StoreError::transient(format!("{message}: {}", vault_message(&v, &raw)))
                        .with_hint("check that the Vault server is reachable and unsealed")
                }
                f => StoreError::transient(f.message().to_owned())
                    .with_hint("check that the Vault server is reachable and unsealed"),
            })?;
        let v = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
        Ok((reply.status, v, reply.body))
    }

    /// An authenticated call; an AppRole token that stopped working is renewed once.
    pub(crate) async fn call(
        &self,
        method: Method,
        api_path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value, String), StoreError> {
        let token = self.token(false).await?;
        let r = self
            .send(method.clone(), api_path, Some(&token), body)
            .await?;
        if r.0 == StatusCode::FORBIDDEN && matches!(self.auth, Auth::AppRole { .. }) {
            let token = self.token(true).await?;
            return self.send(method, api_path, Some(&token), body).await;
        }
        Ok(r)
    }

    fn answer_error(
        &self,
        what: &str,
        api_path: &str,
        status: StatusCode,
        body: &Value,
        raw: &str,
    ) -> StoreError {
        let at = format!("Vault ({})", safe_url(&self.url(api_path)));
        let msg = vault_message(body, raw);
        match status.as_u16() {
            403 => StoreError::permanent(format!("{at} answered 403 {what}: {msg}"))
                .with_hint(forbidden_hint(&self.mount, &self.path)),
            404 => StoreError::permanent(format!("{at} answered 404 {what}: {msg}"))
                .with_hint(format!("check that a KV version 2 engine is mounted at `{}` (`bao secrets enable -path={} kv-v2`)", self.mount, self.mount)),
            s => StoreError::permanent(format!("{at} answered {s} {what}: {msg}")),
        }
    }

    /// Reads a KV v2 secret: its fields (None when absent or deleted) and version.
    async fn read_kv(&self, name: &str) -> Result<Kv, StoreError> {
        let path = self.data_path(name);
        let (status, body, raw) = self.call(Method::GET, &path, None).await?;
        let version = body
            .pointer("/data/metadata/version")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match status.as_u16() {
            200 => Ok(Kv {
                data: body
                    .pointer("/data/data")
                    .and_then(|d| d.as_object())
                    .cloned(),
                version,
            }),
            // Absent (version 0) or its latest version deleted (metadata still there).
            404 if body
                .get("errors")
                .and_then(|e| e.as_array())
                .is_none_or(|a| a.is_empty()) =>
            {
                Ok(Kv {
                    data: None,
                    version,
                })
            }
            _ => Err(self.answer_error(&format!("reading {name}"), &path, status, &body, &raw)),
        }
    }

    /// Writes a KV v2 secret with check-and-set; `Ok(None)` when the version moved.
    async fn write_kv(&self, name: &str, cas: u64, data: Value) -> Result<Option<u64>, StoreError> {
        let path = self.data_path(name);
        let req = json!({ "options": { "cas": cas }, "data": data });
        let (status, body, raw) = self.call(Method::POST, &path, Some(&req)).await?;
        if status.is_success() {
            return Ok(Some(
                body.pointer("/data/version")
                    .and_then(Value::as_u64)
                    .unwrap_or(cas + 1),
            ));
        }
        if is_cas_mismatch(status, &body) {
            return Ok(None);
        }
        Err(self.answer_error(&format!("writing {name}"), &path, status, &body, &raw))
    }
}

fn ts(data: &serde_json::Map<String, Value>, key: &str) -> Option<Timestamp> {
    data.get(key)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates or truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A held lock: released by writing an expired marker over the version we wrote.
struct VaultLock {
    inner: Arc<Inner>,
    name: String,
    owner: String,
    version: u64,
}

#[async_trait::async_trait]
impl RemoteLock for VaultLock {
    async fn release(self: Box<Self>) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let marker = json!({ "owner": self.owner, "expires_at": crate::clock::rfc3339(now), "released_at": crate::clock::rfc3339(now) });
        match self.inner.write_kv(&self.name, self.version, marker).await? {
            Some(_) => Ok(()),
            None => Err(StoreError::permanent(format!(
                "the Vault lock {} was taken over by another runner before it was released (it had expired)",
                self.inner.data_path(&self.name)
            ))
            .with_hint("raise `auth.writeback.vault.lock_ttl_seconds` above the longest refresh")),
        }
    }
}

#[async_trait::async_trait]
impl Store for VaultStore {
    fn name(&self) -> &'static str {
        "vault"
    }
    fn id(&self) -> String {
        let i = &self.inner;
        format!(
            "vault:{}:{}:{}/{}",
            safe_url(&i.address),
            i.namespace.as_deref().unwrap_or(""),
            i.mount,
            i.path
        )
    }
    fn describe(&self) -> String {
        let i = &self.inner;
        let ns = i
            .namespace
            .as_deref()
            .map(|n| format!(" (namespace {n})"))
            .unwrap_or_default();
        format!(
            "Vault {}/data/{} at {}{ns}",
            i.mount,
            i.path,
            safe_url(&i.address)
        )
    }
    fn source(&self) -> Source {
        Source::Store(self.describe())
    }

    async fn read(&self, var: &str) -> Result<Option<Stored>, StoreError> {
        let kv = self.inner.read_kv(var).await?;
        if let Ok(mut v) = self.inner.versions.lock() {
            v.insert(var.to_owned(), kv.version);
        }
        let Some(data) = kv.data else { return Ok(None) };
        let Some(value) = data.get("value").and_then(Value::as_str) else {
            return Err(StoreError::permanent(format!(
                "{} has no string field `value` at {}",
                var,
                self.inner.data_path(var)
            ))
            .with_hint(format!(
                "store the token as `bao kv put {}/{}/{var} value=…`",
                self.inner.mount, self.inner.path
            )));
        };
        Ok(Some(Stored {
            value: Secret::new(value),
            expires_at: ts(&data, "expires_at"),
            updated_at: ts(&data, "updated_at"),
            source: self.source(),
        }))
    }

    async fn write(&self, entries: &[Entry]) -> Result<(), StoreError> {
        for e in entries {
            let known = self
                .inner
                .versions
                .lock()
                .ok()
                .and_then(|v| v.get(&e.var).copied());
            // A KV v2 write replaces every field of the secret: keep the ones
            // the user put beside `value` (a check-and-set on a newer version
            // fails anyway, so these are the fields of the version replaced).
            let current = self.inner.read_kv(&e.var).await?;
            let cas = known.unwrap_or(current.version);
            let mut data = current.data.unwrap_or_default();
            data.insert("value".into(), json!(e.value.expose()));
            data.insert(
                "expires_at".into(),
                json!(e.expires_at.map(crate::clock::rfc3339)),
            );
            data.insert(
                "updated_at".into(),
                json!(crate::clock::rfc3339(e.updated_at)),
            );
            let data = Value::Object(data);
            match self.inner.write_kv(&e.var, cas, data).await? {
                Some(version) => {
                    if let Ok(mut v) = self.inner.versions.lock() {
                        v.insert(e.var.clone(), version);
                    }
                }
                None => {
                    // Forget the stale version: the next run reads the current one.
                    if let Ok(mut v) = self.inner.versions.lock() {
                        v.remove(&e.var);
                    }
                    return Err(StoreError::permanent(format!(
                        "{} at {} changed since evertoken read it (check-and-set on version {cas} failed), so it was not overwritten",
                        e.var,
                        self.inner.data_path(&e.var)
                    ))
                    .with_hint("something outside evertoken's lock wrote it; check who did, then re-run `evertoken auth refresh`, which finishes the write-back from the journal"));
                }
            }
        }
        Ok(())
    }

    async fn lock(&self, key: &str) -> Result<Option<Box<dyn RemoteLock>>, StoreError> {
        let safe: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let name = format!(".locks/{safe}");
        let owner = format!(
            "{}:{}:{:016x}",
            hostname(),
            std::process::id(),
            rand::random::<u64>()
        );
        let started = Instant::now();
        loop {
            let kv = self.inner.read_kv(&name).await?;
            let now = Timestamp::now();
            let holder = kv.data.as_ref().and_then(|d| {
                let until = ts(d, "expires_at")?;
                let who = d
                    .get("owner")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                // Expired, or held by a process of this host that no longer exists
                // (killed mid-run): free. Other hosts' locks wait for their expiry.
                (until > now && !owner_died_here(&who)).then_some((who, until))
            });
            match holder {
                None => {
                    let until = now.checked_add(self.lock_ttl).unwrap_or(now);
                    let data = json!({ "owner": owner, "expires_at": crate::clock::rfc3339(until), "acquired_at": crate::clock::rfc3339(now) });
                    if let Some(version) = self.inner.write_kv(&name, kv.version, data).await? {
                        return Ok(Some(Box::new(VaultLock {
                            inner: self.inner.clone(),
                            name,
                            owner,
                            version,
                        })));
                    }
                    // Another runner took it between our read and write: wait for it.
                    tracing::debug!("lost the race for the Vault lock {name}");
                }
                Some((who, until)) => {
                    if started.elapsed() >= self.lock_timeout {
                        return Err(StoreError::permanent(format!(
                            "another runner ({who}) holds the Vault lock {} until {}; gave up after {}s",
                            self.inner.data_path(&name),
                            crate::clock::rfc3339(until),
                            self.lock_timeout.as_secs()
                        ))
                        .with_hint(format!(
                            "if that runner died, the lock expires by itself at {}; raise `auth.writeback.vault.lock_timeout_seconds` to wait longer",
                            crate::clock::rfc3339(until)
                        )));
                    }
                    tracing::info!("waiting for the Vault lock {name} held by {who}");
                }
            }
            tokio::time::sleep(Duration::from_millis(300 + rand::random::<u64>() % 400)).await;
        }
    }
}

/// Whether a lock owner (`host:pid:nonce`) is a process of this host that has
/// exited: its lock cannot be released by anyone else, so it need not be waited for.
fn owner_died_here(owner: &str) -> bool {
    let mut parts = owner.split(':');
    let (Some(host), Some(pid)) = (
        parts.next(),
        parts.next().and_then(|p| p.parse::<i32>().ok()),
    ) else {
        return false;
    };
    if host != hostname() || pid <= 0 || pid as u32 == std::process::id() {
        return false;
    }
    // SAFETY: signal 0 only checks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    !alive
}

/// What a 403 asks for: the capabilities this store uses, on the paths it uses
/// (reads and check-and-set writes of `<mount>/data/<path>/*`, its locks included).
fn forbidden_hint(mount: &str, path: &str) -> String {
    format!(
        "the token lacks a policy for this path, or expired; it needs the capabilities create, read and update on `{mount}/data/{path}/*` (the tokens and the `.locks/` entries beside them)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_of_a_dead_process_on_this_host_is_free() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(owner_died_here(&format!("{}:{pid}:00", hostname())));
        assert!(!owner_died_here(&format!(
            "{}:{}:00",
            hostname(),
            std::process::id()
        )));
        assert!(!owner_died_here(&format!("other-host-name:{pid}:00")));
        assert!(!owner_died_here("garbage"));
    }

    #[test]
    fn the_forbidden_hint_names_only_the_capabilities_used() {
        let h = forbidden_hint("secret", "evertoken");
        assert!(
            h.contains("create, read and update on `secret/data/evertoken/*`"),
            "{h}"
        );
        for unused in ["delete", "list", "sudo", "patch", "metadata"] {
            assert!(!h.contains(unused), "{unused}: {h}");
        }
    }

    #[test]
    fn paths_are_checked() {
        assert!(valid_path("secret"));
        assert!(valid_path("ci/evertoken"));
        assert!(!valid_path(""));
        assert!(!valid_path("a//b"));
        assert!(!valid_path("a/../b"));
        assert!(!valid_path("a b"));
    }

    #[test]
    fn vault_errors_are_summarised() {
        let v: Value = serde_json::from_str(
            r#"{"errors":["check-and-set parameter did not match the current version"]}"#,
        )
        .unwrap();
        assert!(is_cas_mismatch(StatusCode::BAD_REQUEST, &v));
        assert!(!is_cas_mismatch(StatusCode::FORBIDDEN, &v));
        assert_eq!(vault_message(&Value::Null, "plain text"), "plain text");
    }
}
