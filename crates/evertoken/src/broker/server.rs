//! The broker's HTTP side: `POST /v1/token`, `GET /healthz`, `GET /metrics`
//! (Prometheus text), plain HTTP or TLS (rustls with the `ring` provider), rate
//! limits, and graceful shutdown on SIGTERM / Ctrl-C (in-flight requests finish,
//! new connections are refused).
//!
//! Rate limits, all in windows of a minute and in bounded tables (the oldest
//! entries are evicted, never the newcomer refused):
//! - an authenticated caller (`iss|sub` or `client:NAME`) gets
//!   `rate_limit_per_minute` requests; a flood of other identities cannot use up
//!   its budget;
//! - a failed authentication is counted per source address (the same budget) and
//!   globally ([`failure_cap`]); over either, failures are answered 429 instead of
//!   401. Credentials are always checked first, so an authenticated caller is never
//!   locked out by someone else's failures.
//!
//! Answers: 200 `{token, expires_at, repositories, permissions, installation_id}`;
//! 400 (body is not `{"policy": NAME}`); 401 (no or bad credential); 403 (no such
//! policy, or it does not admit the caller); 413 (body over 16 KiB); 429; 502
//! (GitHub refused the mint). Every answer to `/v1/token` is one audit line, except
//! that 401/413/429 beyond the audit log's burst are counted in a summary line.
//! Nothing external may make a handler panic; a token appears only in a 200 body.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::audit::{Audit, Line};
use super::oidc::Verifier;
use super::{BrokerConfig, Caller, Policy, escape, sha256_hex};
use crate::clock::{self, Clock};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::github::{self, App};
use crate::http::Http;

const BODY_LIMIT: usize = 16 * 1024;
const RATE_WINDOW: Duration = Duration::from_secs(60);
const MAX_TRACKED_CALLERS: usize = 10_000;
const MAX_TRACKED_SOURCES: usize = 10_000;

/// Failed authentications a minute, all sources together, before every failure
/// is answered 429.
pub fn failure_cap(rate: u32) -> u64 {
    (u64::from(rate) * 10).max(600)
}

/// Request counts per key in fixed windows of [`RATE_WINDOW`], at most `max` keys:
/// when full, expired entries go first, then the oldest eighth.
struct Windows<K> {
    map: HashMap<K, (Instant, u32)>,
    max: usize,
}

impl<K: std::hash::Hash + Eq + Clone> Windows<K> {
    fn new(max: usize) -> Self {
        Self {
            map: HashMap::new(),
            max,
        }
    }

    /// Counts one request of `k` and returns its count in the current window.
    fn hit(&mut self, k: &K, now: Instant) -> u32 {
        if !self.map.contains_key(k) && self.map.len() >= self.max {
            self.map
                .retain(|_, (start, _)| now.duration_since(*start) < RATE_WINDOW);
            if self.map.len() >= self.max {
                let mut starts: Vec<Instant> = self.map.values().map(|(s, _)| *s).collect();
                let cut = starts.len() / 8;
                let (_, nth, _) = starts.select_nth_unstable(cut);
                let nth = *nth;
                self.map.retain(|_, (start, _)| *start > nth);
            }
        }
        let e = self.map.entry(k.clone()).or_insert((now, 0));
        if now.duration_since(e.0) >= RATE_WINDOW {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
        e.1
    }
}

struct Limits {
    callers: Windows<String>,
    sources: Windows<std::net::IpAddr>,
    /// All failed authentications: (window start, count).
    failures: (Instant, u64),
}

#[derive(Default)]
struct Counters {
    allowed: AtomicU64,
    bad_request: AtomicU64,
    unauthorized: AtomicU64,
    forbidden: AtomicU64,
    limited: AtomicU64,
    too_large: AtomicU64,
    upstream: AtomicU64,
    mint_micros: AtomicU64,
}

pub struct Broker {
    verifier: Verifier,
    policies: HashMap<String, Policy>,
    /// (name, hex SHA-256 of its secret)
    clients: Vec<(String, String)>,
    apps: HashMap<String, App>,
    http: Http,
    clock: Clock,
    audit: Audit,
    rate: u32,
    limits: std::sync::Mutex<Limits>,
    counters: Counters,
}

/// What `broker serve` resolved, for the startup message.
pub struct Summary {
    pub issuers: usize,
    pub clients: usize,
    pub policies: usize,
    pub audit_log: PathBuf,
}

impl Broker {
    /// Checks the `broker:` block, resolves every policy's app and opens the audit log.
    pub fn build(cfg: &Config, clock: Clock) -> Result<(Broker, Summary)> {
        let b: &BrokerConfig = cfg.file.broker.as_ref().ok_or_else(|| {
            Error::config(format!("{}: no `broker:` section", cfg.display_path())).with_hint(
                "add `broker:` with issuers or clients and policies (see the keys-off-host guide)",
            )
        })?;
        let policies = super::check(cfg, b)?;
        let http = Http::new(&cfg.file.http);
        let mut apps = HashMap::new();
        for p in &policies {
            if apps.contains_key(&p.app) {
                continue;
            }
            let app = github::app::resolve(cfg, &p.app, &github::Overrides::default())?;
            if app.broker.is_some() {
                return Err(cfg
                    .error_at(
                        &format!("github.apps.{}.broker", p.app),
                        "the broker's own apps must sign (key file or Transit), not ask a broker",
                    )
                    .with_hint("remove `broker:` from that app"));
            }
            app.require_issuer()?;
            app.require_target()?;
            if let github::signer::KeySource::File = app.signer {
                crate::github::jwt::load_key(&app.key_path)?;
            } else {
                app.signer.transit()?;
            }
            apps.insert(p.app.clone(), app);
        }
        let audit_path = match &b.audit_log {
            Some(p) => cfg.resolve_path(p),
            None => crate::files::default_state_dir().join("broker-audit.jsonl"),
        };
        let audit = Audit::open(&audit_path).map_err(|e| {
            cfg.error_at(
                "broker.audit_log",
                format!("cannot open {}: {e}", audit_path.display()),
            )
            .with_hint("the directory must be writable by the broker's user")
        })?;
        let summary = Summary {
            issuers: b.issuers.len(),
            clients: b.clients.len(),
            policies: policies.len(),
            audit_log: audit_path,
        };
        Ok((
            Broker {
                verifier: Verifier::new(b.audience.clone(), &b.issuers, http.clone()),
                policies: policies.into_iter().map(|p| (p.name.clone(), p)).collect(),
                clients: b
                    .clients
                    .iter()
                    .map(|c| (c.name.clone(), c.token_sha256.to_ascii_lowercase()))
                    .collect(),
                apps,
                http,
                clock,
                audit,
                rate: b.rate_limit_per_minute,
                limits: std::sync::Mutex::new(Limits {
                    callers: Windows::new(MAX_TRACKED_CALLERS),
                    sources: Windows::new(MAX_TRACKED_SOURCES),
                    failures: (Instant::now(), 0),
                }),
                counters: Counters::default(),
            },
            summary,
        ))
    }

    /// `true` when the authenticated caller `who` is within its rate.
    fn admit_rate(&self, who: &str) -> bool {
        let Ok(mut l) = self.limits.lock() else {
            return true;
        };
        l.callers.hit(&who.to_owned(), Instant::now()) <= self.rate
    }

    /// Counts a failed authentication (or an oversized body) from `from`; `Some`
    /// reason when it is over the per-source budget or the global cap (then the
    /// answer is 429, not 401).
    fn failure_over(&self, from: std::net::IpAddr) -> Option<String> {
        let Ok(mut l) = self.limits.lock() else {
            return None;
        };
        let now = Instant::now();
        if now.duration_since(l.failures.0) >= RATE_WINDOW {
            l.failures = (now, 0);
        }
        l.failures.1 = l.failures.1.saturating_add(1);
        let total = l.failures.1;
        let mine = l.sources.hit(&from, now);
        if mine > self.rate {
            Some(format!(
                "more than {} failed requests a minute from this address",
                self.rate
            ))
        } else if total > failure_cap(self.rate) {
            Some(format!(
                "more than {} failed requests a minute in all",
                failure_cap(self.rate)
            ))
        } else {
            None
        }
    }

    async fn authenticate(&self, bearer: &str) -> std::result::Result<Caller, String> {
        let hash = sha256_hex(bearer);
        let mut found = None;
        for (name, h) in &self.clients {
            // Compare every entry, so the time does not depend on which one matched.
            let same = h.len() == hash.len()
                && h.bytes()
                    .zip(hash.bytes())
                    .fold(0u8, |a, (x, y)| a | (x ^ y))
                    == 0;
            if same {
                found = Some(name.clone());
            }
        }
        if let Some(n) = found {
            return Ok(Caller::Client(n));
        }
        if bearer.split('.').count() != 3 {
            return Err("unknown client".into());
        }
        self.verifier
            .verify(bearer, self.clock.now().as_second())
            .await
            .map_err(|r| r.0)
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

struct Deny<'a> {
    status: StatusCode,
    who: &'a str,
    from: &'a str,
    policy: Option<&'a str>,
    reason: String,
}

impl Broker {
    fn deny(&self, d: Deny<'_>) -> Response {
        let c = match d.status.as_u16() {
            400 => &self.counters.bad_request,
            401 => &self.counters.unauthorized,
            403 => &self.counters.forbidden,
            429 => &self.counters.limited,
            413 => &self.counters.too_large,
            _ => &self.counters.upstream,
        };
        c.fetch_add(1, Ordering::Relaxed);
        let (repos, perms) = match d.policy.and_then(|p| self.policies.get(p)) {
            Some(p) => (p.repositories.as_slice(), Some(&p.permissions)),
            None => (&[][..], None),
        };
        let policy = d.policy.map(escape);
        let line = Line {
            ts: clock::rfc3339(self.clock.now()),
            who: d.who,
            from: Some(d.from),
            policy: policy.as_deref(),
            repositories: repos,
            permissions: perms,
            allowed: false,
            status: d.status.as_u16(),
            reason: &d.reason,
            suppressed: None,
        };
        // Anyone can cause these: bounded lines plus a summary.
        if matches!(d.status.as_u16(), 401 | 413 | 429) {
            self.audit.write_noisy(&line);
        } else {
            self.audit.write(&line);
        }
        let mut r = answer(d.status, json!({ "error": d.reason }));
        if d.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if d.status == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
        }
        r
    }
}

async fn token(
    State(b): State<Arc<Broker>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let unauth = "unauthenticated";
    let from = peer.ip().to_string();
    // Read here (not by an extractor) so an oversized body is audited too.
    let body: Bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            let over = b.failure_over(peer.ip());
            return b.deny(Deny {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                who: unauth,
                from: &from,
                policy: None,
                reason: format!(
                    "the body is over {} KiB or could not be read{}",
                    BODY_LIMIT / 1024,
                    over.map(|o| format!(" ({o})")).unwrap_or_default()
                ),
            });
        }
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty());
    let authenticated = match bearer {
        None => Err("no `Authorization: Bearer` credential".to_owned()),
        Some(bearer) => b.authenticate(bearer).await,
    };
    let caller = match authenticated {
        Ok(c) => c,
        Err(reason) => {
            let (status, reason) = match b.failure_over(peer.ip()) {
                Some(over) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("{over}; this one: {reason}"),
                ),
                None => (StatusCode::UNAUTHORIZED, reason),
            };
            return b.deny(Deny {
                status,
                who: unauth,
                from: &from,
                policy: None,
                reason,
            });
        }
    };
    let who = caller.who();
    if !b.admit_rate(&who) {
        return b.deny(Deny {
            status: StatusCode::TOO_MANY_REQUESTS,
            who: &who,
            from: &from,
            policy: None,
            reason: format!("more than {} requests a minute", b.rate),
        });
    }
    let name = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m.get("policy").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    let Some(name) = name else {
        return b.deny(Deny {
            status: StatusCode::BAD_REQUEST,
            who: &who,
            from: &from,
            policy: None,
            reason: "the body must be JSON `{\"policy\": NAME}`".into(),
        });
    };
    let Some(policy) = b.policies.get(&name) else {
        return b.deny(Deny {
            status: StatusCode::FORBIDDEN,
            who: &who,
            from: &from,
            policy: Some(&name),
            reason: "no such policy".into(),
        });
    };
    if let Err(reason) = policy.admits(&caller) {
        return b.deny(Deny {
            status: StatusCode::FORBIDDEN,
            who: &who,
            from: &from,
            policy: Some(&name),
            reason,
        });
    }
    let Some(app) = b.apps.get(&policy.app) else {
        return b.deny(Deny {
            status: StatusCode::BAD_GATEWAY,
            who: &who,
            from: &from,
            policy: Some(&name),
            reason: "the policy's app is not configured".into(),
        });
    };
    // Narrowed to exactly the policy: never the app's own (wider) defaults.
    let mut narrowed = app.clone();
    narrowed.repositories = policy.repositories.clone();
    narrowed.repository_ids = Vec::new();
    narrowed.permissions = policy.permissions.clone();
    let started = Instant::now();
    let minted = github::mint::mint(&narrowed, &b.http, &b.clock).await;
    b.counters
        .mint_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    match minted {
        Ok(m) => {
            b.counters.allowed.fetch_add(1, Ordering::Relaxed);
            b.audit.write(&Line {
                ts: clock::rfc3339(b.clock.now()),
                who: &who,
                from: Some(&from),
                policy: Some(&name),
                repositories: &policy.repositories,
                permissions: Some(&policy.permissions),
                allowed: true,
                status: 200,
                reason: "policy matched",
                suppressed: None,
            });
            answer(
                StatusCode::OK,
                json!({
                    "token": m.token.expose(),
                    "expires_at": m.expires_at.map(clock::rfc3339),
                    "repositories": policy.repositories,
                    "permissions": policy.permissions,
                    "installation_id": m.installation_id,
                }),
            )
        }
        Err(e) => b.deny(Deny {
            status: StatusCode::BAD_GATEWAY,
            who: &who,
            from: &from,
            policy: Some(&name),
            reason: format!("GitHub did not mint: {}", e.message),
        }),
    }
}

async fn healthz() -> Response {
    answer(StatusCode::OK, json!({ "status": "ok" }))
}

async fn metrics(State(b): State<Arc<Broker>>) -> Response {
    let c = &b.counters;
    let mut s = String::from(
        "# HELP evertoken_broker_requests_total Token requests by outcome.\n# TYPE evertoken_broker_requests_total counter\n",
    );
    let rows: BTreeMap<&str, u64> = BTreeMap::from([
        ("allowed", c.allowed.load(Ordering::Relaxed)),
        ("bad_request", c.bad_request.load(Ordering::Relaxed)),
        ("unauthorized", c.unauthorized.load(Ordering::Relaxed)),
        ("forbidden", c.forbidden.load(Ordering::Relaxed)),
        ("rate_limited", c.limited.load(Ordering::Relaxed)),
        ("too_large", c.too_large.load(Ordering::Relaxed)),
        ("upstream_failed", c.upstream.load(Ordering::Relaxed)),
    ]);
    for (k, v) in rows {
        s.push_str(&format!(
            "evertoken_broker_requests_total{{outcome=\"{k}\"}} {v}\n"
        ));
    }
    s.push_str("# HELP evertoken_broker_mint_seconds_total Time spent minting at GitHub.\n# TYPE evertoken_broker_mint_seconds_total counter\n");
    s.push_str(&format!(
        "evertoken_broker_mint_seconds_total {}\n",
        c.mint_micros.load(Ordering::Relaxed) as f64 / 1e6
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s).into_response()
}

pub fn router(b: Arc<Broker>) -> Router {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(audit_summaries(Arc::downgrade(&b)));
    }
    Router::new()
        .route("/v1/token", post(token))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(b)
}

/// Writes the audit log's pending summary of noisy refusals when its interval
/// ends; stops with the broker ([`Broker::finish`] writes the last one).
async fn audit_summaries(b: std::sync::Weak<Broker>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let Some(b) = b.upgrade() else { return };
        b.audit.flush(&clock::rfc3339(b.clock.now()), false);
    }
}

impl Broker {
    /// Writes the audit log's pending summary; called once the server stopped.
    pub fn finish(&self) {
        self.audit.flush(&clock::rfc3339(self.clock.now()), true);
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Loads the TLS certificate chain and key (PEM) into a rustls server config.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::config(format!(
                "cannot read the TLS certificate {}: {e}",
                cert.display()
            ))
            .with_hint("broker.tls.cert_file must be a PEM certificate chain")
        })?;
    if certs.is_empty() {
        return Err(Error::config(format!(
            "{} holds no certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        Error::config(format!("cannot read the TLS key {}: {e}", key.display()))
            .with_hint("broker.tls.key_file must be a PEM private key")
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| Error::config(format!("the TLS certificate and key do not fit: {e}")))?;
    c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// Serves until `shutdown` resolves; in-flight requests get up to 10 s to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let Some(tls) = tls else {
        return axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::failed(format!("the broker stopped: {e}")));
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone().layer(axum::Extension(ConnectInfo(peer)));
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    _ => return,
                };
            let io = hyper_util::rt::TokioIo::new(tls);
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn = builder.serve_connection(io, svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}
