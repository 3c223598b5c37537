//! The one HTTP client every provider, store and alert channel shares: connection
//! pooling, timeouts, retries with capped exponential backoff and jitter, `Retry-After`,
//! and the rule that decides what may be retried. It returns every final answer
//! (2xx and 4xx alike) to the caller, whose module knows the provider's error shapes.
//!
//! It never logs a request body, and URLs go through [`safe_url`] before they appear
//! in any message, since Instagram puts the token in the query string.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use url::Url;

use crate::config::HttpConfig;

/// Whether a call may be repeated when its outcome is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Repeating it changes nothing that matters (Instagram refresh, Google grant,
    /// introspection, GitHub mint, store writes): retried after a timeout too.
    Safe,
    /// Each success rotates a credential (TikTok, LinkedIn refresh grants): a timeout
    /// after the request was sent is an unknown outcome, never retried.
    Rotating,
}

/// A final answer from the server (any status that is not retried).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.body)
    }

    /// The server's clock, from the `Date` header.
    pub fn date(&self) -> Option<jiff::Timestamp> {
        let v = self.headers.get(reqwest::header::DATE)?.to_str().ok()?;
        jiff::fmt::rfc2822::parse(v).ok().map(|z| z.timestamp())
    }

    /// The first characters of the body, for error messages about unexpected answers:
    /// known secrets replaced by their prefix form, control characters escaped.
    pub fn snippet(&self) -> String {
        let body = crate::scrub::external(&self.body);
        let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut s: String = one_line.chars().take(120).collect();
        if one_line.chars().count() > 120 {
            s.push('…');
        }
        s
    }
}

/// The largest answer body read (1 MiB). Token answers are under a kilobyte; a
/// bigger or endless body is a fault or an attack, never buffered whole.
pub const MAX_BODY: usize = 1 << 20;

/// Reads the body, at most `limit` bytes, as (lossy) UTF-8.
pub(crate) async fn read_body(mut resp: reqwest::Response, limit: usize) -> Result<String, String> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if buf.len() + c.len() > limit {
                    return Err(format!(
                        "the body is larger than {} KiB; evertoken stops reading there",
                        limit / 1024
                    ));
                }
                buf.extend_from_slice(&c);
            }
            Ok(None) => break,
            Err(e) => return Err(e.without_url().to_string()),
        }
    }
    Ok(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Every attempt failed with a transient error, or one failed for good;
    /// `last` is what the last attempt came to.
    GaveUp {
        message: String,
        last: Outcome,
        /// The body of the last answer, when one came (a 5xx, a 429): the
        /// service's own words, for a caller that knows their shape.
        answer: Option<String>,
    },
    /// A rotating request was sent and no answer came back: the provider may have
    /// rotated the credential. Never reported as success, never blindly retried.
    Unknown { message: String },
    /// The server's TLS certificate is not trusted (unknown CA, wrong name,
    /// expired): asking again does not make it trusted, so nothing is retried.
    Untrusted { message: String },
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::GaveUp { message, .. }
            | Failure::Unknown { message }
            | Failure::Untrusted { message } => message,
        }
    }
}

/// What one attempt came to, as far as retrying is concerned: the transport's
/// answer reduced to what [`classify`] needs, for HTTP and SMTP alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer with this status, and the wait the server asked for
    /// (`Retry-After`, or a JSON body's `retry_after` on a 429).
    Http {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// An HTTP answer whose body could not be read to the end.
    BodyLost { status: u16 },
    /// An SMTP reply code refusing the message (4xx transient, 5xx permanent).
    Smtp { code: u16 },
    /// Nothing reached the server: DNS, connection refused, unreachable.
    NotConnected,
    /// The request may have left and no answer came: timeout, reset mid-exchange.
    NoAnswer,
    /// The server's TLS certificate is not trusted.
    Untrusted,
    /// The exchange broke in a way that asking again does not fix: a request that
    /// cannot be built, a malformed answer, a TLS set-up error.
    Broken,
}

/// What to do after one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A final answer for the caller to read (2xx, and the 4xx whose shapes the
    /// caller's module knows).
    Answer,
    /// Transient: try again, after `after` when the server asked for a wait.
    Retry { after: Option<Duration> },
    /// Permanent: asking again changes nothing.
    Stop,
    /// A rotating call left and its outcome is unknown: never retried, never success.
    Unknown,
}

/// The one rule deciding retry / stop / unknown outcome, for providers (`Safe`
/// or `Rotating`), stores and alert channels (always `Safe`: a repeated write or
/// message changes nothing that matters), over HTTP and SMTP.
pub fn classify(call: Call, outcome: Outcome) -> Decision {
    match outcome {
        Outcome::Http {
            status,
            retry_after,
        } => {
            if status == 429 || (500..600).contains(&status) {
                Decision::Retry { after: retry_after }
            } else {
                Decision::Answer
            }
        }
        Outcome::BodyLost { status } => {
            if call == Call::Rotating && (200..300).contains(&status) {
                Decision::Unknown
            } else {
                Decision::Retry { after: None }
            }
        }
        Outcome::Smtp { code } => match code {
            400..=499 => Decision::Retry { after: None },
            200..=399 => Decision::Answer,
            _ => Decision::Stop,
        },
        // Nothing reached the server: safe to retry even a rotating call.
        Outcome::NotConnected => Decision::Retry { after: None },
        Outcome::NoAnswer => match call {
            Call::Safe => Decision::Retry { after: None },
            Call::Rotating => Decision::Unknown,
        },
        Outcome::Untrusted | Outcome::Broken => Decision::Stop,
    }
}

/// Whether `e` (or anything in its chain) is TLS refusing the server's
/// certificate. Looks at the typed rustls error, including one wrapped in an
/// `io::Error` (whose `source` skips the wrapped error itself).
pub fn untrusted(e: &(dyn std::error::Error + 'static)) -> bool {
    let is_cert = |x: &(dyn std::error::Error + 'static)| {
        matches!(
            x.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
        )
    };
    let mut cur = Some(e);
    while let Some(x) = cur {
        if is_cert(x) {
            return true;
        }
        if let Some(inner) = x
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && is_cert(inner)
        {
            return true;
        }
        cur = x.source();
    }
    false
}

/// One attempt's failure, for [`Http::retrying`].
#[derive(Debug)]
pub(crate) enum Attempt {
    Retry {
        message: String,
        after: Option<Duration>,
        last: Outcome,
        answer: Option<String>,
    },
    Stop(Failure),
}

#[derive(Clone)]
pub struct Http {
    clients: std::sync::Arc<Clients>,
    retries: u32,
    max_retry_after: Duration,
}

/// Makes ring the process's rustls crypto provider (TLS for reqwest, lettre and
/// the platform verifier), once; safe to call from anywhere before a TLS client
/// is built. ring seeds from the kernel (`getrandom`), so the first handshake
/// pays no entropy-gathering cost (SECURITY.md, "Cryptography backend"). Without
/// it, reqwest built with `rustls-no-provider` would panic on the first client.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // `Err` only when another provider was installed first: keep that one.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The clients, built on first use (issue 9: start-up proportional to the
/// command). Building a TLS client loads the system's CA store, tens of
/// milliseconds; commands that never call out (`status`) never pay for it, and
/// plain-`http://` calls (loopback, the simulator) use a client without roots.
/// Each client keeps one keep-alive (HTTP/1.1 or HTTP/2) pool per host.
struct Clients {
    timeout: Duration,
    /// CAs trusted besides the platform's (a Vault server's private CA).
    extra_roots: Vec<reqwest::Certificate>,
    plain: std::sync::OnceLock<reqwest::Client>,
    tls: std::sync::OnceLock<reqwest::Client>,
}

impl Clients {
    fn new(timeout: Duration, extra_roots: Vec<reqwest::Certificate>) -> Self {
        Self {
            timeout,
            extra_roots,
            plain: std::sync::OnceLock::new(),
            tls: std::sync::OnceLock::new(),
        }
    }

    fn builder(&self) -> reqwest::ClientBuilder {
        install_crypto_provider();
        reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            // A server that stalls mid-headers or mid-body (slow loris) is cut off
            // after this idle time; `timeout` bounds the whole exchange anyway.
            .read_timeout(self.timeout.min(Duration::from_secs(30)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("evertoken/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64)
    }

    /// For `https://` (and anything that is not plain `http://`): the platform's
    /// roots, plus the extra ones.
    fn tls(&self) -> &reqwest::Client {
        self.tls.get_or_init(|| {
            let mut b = self.builder();
            for c in &self.extra_roots {
                b = b.add_root_certificate(c.clone());
            }
            b.build()
                .expect("the HTTP client configuration is static and valid")
        })
    }

    /// For plain `http://` only: no root store to load (it would never be used).
    fn plain(&self) -> &reqwest::Client {
        self.plain.get_or_init(|| {
            self.builder()
                .tls_certs_only(std::iter::empty())
                .build()
                .expect("the HTTP client configuration is static and valid")
        })
    }
}

/// How a call is named in messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// `what (METHOD url)`, query secrets masked.
    WithUrl,
    /// `what` only: the URL itself is a secret (a chat webhook).
    NameOnly,
}

impl Http {
    pub fn new(cfg: &HttpConfig) -> Self {
        Self {
            // The config is range-checked; this guards any other caller.
            clients: std::sync::Arc::new(Clients::new(
                Duration::try_from_secs_f64(cfg.timeout_seconds)
                    .unwrap_or(Duration::from_secs(30))
                    .clamp(Duration::from_millis(1), Duration::from_secs(3600)),
                Vec::new(),
            )),
            retries: cfg.retries,
            max_retry_after: Duration::from_secs(cfg.max_retry_after_seconds),
        }
    }

    /// The same timeouts and retries, with `roots` trusted besides the platform's
    /// CAs (its own connection pools). The TLS client is built now, so a
    /// certificate rustls cannot use is an error here, not a panic later.
    pub fn with_roots(&self, roots: Vec<reqwest::Certificate>) -> Result<Self, String> {
        if roots.is_empty() {
            return Ok(self.clone());
        }
        let clients = Clients::new(self.clients.timeout, roots);
        let mut b = clients.builder();
        for c in &clients.extra_roots {
            b = b.add_root_certificate(c.clone());
        }
        let tls = b.build().map_err(|e| chain(&e))?;
        let _ = clients.tls.set(tls);
        Ok(Self {
            clients: std::sync::Arc::new(clients),
            retries: self.retries,
            max_retry_after: self.max_retry_after,
        })
    }

    /// The TLS-capable client, for callers that build their own requests.
    pub fn client(&self) -> &reqwest::Client {
        self.clients.tls()
    }

    /// The per-request timeout (for transports that are not HTTP: SMTP).
    pub fn timeout(&self) -> Duration {
        self.clients.timeout
    }

    /// Sends the request built by `build` (called again for each attempt) and
    /// returns the final answer. `what` names the call in messages, e.g. "TikTok
    /// token endpoint"; the URL is added, with query secrets masked.
    pub async fn send<F>(&self, what: &str, call: Call, build: F) -> Result<Reply, Failure>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        self.send_as(what, call, Shown::WithUrl, build).await
    }

    /// [`Http::send`] for a URL that is itself a secret: messages name `what` only.
    pub async fn send_hidden<F>(&self, what: &str, call: Call, build: F) -> Result<Reply, Failure>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        self.send_as(what, call, Shown::NameOnly, build).await
    }

    async fn send_as<F>(
        &self,
        what: &str,
        call: Call,
        shown: Shown,
        build: F,
    ) -> Result<Reply, Failure>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let attempt = || async {
            // Requests are built on the cheap client and sent on the one their
            // scheme needs; both clients are configured alike apart from TLS roots.
            let req = build(self.clients.plain()).build().map_err(|e| {
                Attempt::Stop(Failure::GaveUp {
                    message: format!("{what}: bad request: {}", e.without_url()),
                    last: Outcome::Broken,
                    answer: None,
                })
            })?;
            let at = match shown {
                Shown::WithUrl => format!("{what} ({} {})", req.method(), safe_url(req.url())),
                Shown::NameOnly => what.to_owned(),
            };
            let client = if req.url().scheme() == "http" {
                self.clients.plain()
            } else {
                self.clients.tls()
            };
            let resp = match client.execute(req).await {
                Ok(r) => r,
                Err(e) => return Err(send_error(&at, call, e)),
            };
            let status = resp.status();
            let headers = resp.headers().clone();
            let mut retry_after = retry_after(&headers);
            let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            // A retryable answer's body (at most 64 KiB) is kept for the caller,
            // which knows the service's error shapes, in case it is the last.
            let mut answer = None;
            let body = if retryable {
                answer = read_body(resp, 64 * 1024).await.ok();
                // Discord says how long to wait in the 429's JSON body.
                if retry_after.is_none() && status == StatusCode::TOO_MANY_REQUESTS {
                    retry_after = answer.as_deref().and_then(json_retry_after);
                }
                Ok(String::new())
            } else {
                read_body(resp, MAX_BODY).await
            };
            let outcome = match &body {
                Ok(_) => Outcome::Http {
                    status: status.as_u16(),
                    retry_after,
                },
                Err(_) => Outcome::BodyLost {
                    status: status.as_u16(),
                },
            };
            let problem = || match &body {
                Ok(_) => format!("{at} answered {status}"),
                Err(e) => format!("{at} answered {status} but the body could not be read: {e}"),
            };
            match classify(call, outcome) {
                Decision::Answer => Ok(Reply {
                    status,
                    headers,
                    body: body.unwrap_or_default(),
                }),
                Decision::Retry { after: Some(a) } if a > self.max_retry_after => {
                    Err(Attempt::Stop(Failure::GaveUp {
                        message: format!(
                            "{at} answered {status} with Retry-After {}s, longer than http.max_retry_after_seconds ({}s)",
                            a.as_secs(),
                            self.max_retry_after.as_secs()
                        ),
                        last: outcome,
                        answer,
                    }))
                }
                Decision::Retry { after } => Err(Attempt::Retry {
                    message: problem(),
                    after,
                    last: outcome,
                    answer,
                }),
                Decision::Unknown => Err(Attempt::Stop(Failure::Unknown { message: problem() })),
                Decision::Stop => Err(Attempt::Stop(Failure::GaveUp {
                    message: problem(),
                    last: outcome,
                    answer,
                })),
            }
        };
        self.retrying(attempt).await
    }

    /// Runs `attempt` until it succeeds, stops, or the retries (`http.retries`)
    /// are used up, with capped exponential backoff and jitter; a `Retry` with a
    /// wait the server asked for waits that long instead. Every transport (HTTP
    /// here, SMTP in the email channel) retries through this one loop.
    pub(crate) async fn retrying<T, F, Fut>(&self, attempt: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(8))
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.retries as usize);
        attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|e| matches!(e, Attempt::Retry { .. }))
            // `d` is `None` once the retries are used up: a `Retry-After` must not
            // turn that into one more attempt (and so into an endless loop).
            .adjust(|e, d| match (e, d) {
                (Attempt::Retry { after: Some(a), .. }, Some(_)) => Some(*a),
                _ => d,
            })
            .notify(|e, d| {
                if let Attempt::Retry { message, .. } = e {
                    tracing::info!("{message}; retrying in {:.1}s", d.as_secs_f64());
                }
            })
            .await
            .map_err(|e| match e {
                Attempt::Retry {
                    message,
                    last,
                    answer,
                    ..
                } => Failure::GaveUp {
                    message: format!("{message} (gave up after {} attempts)", self.retries + 1),
                    last,
                    answer,
                },
                Attempt::Stop(f) => f,
            })
    }
}

/// A request that got no answer, classified.
fn send_error(at: &str, call: Call, e: reqwest::Error) -> Attempt {
    let e = e.without_url();
    let outcome = if untrusted(&e) {
        Outcome::Untrusted
    } else if e.is_connect() {
        Outcome::NotConnected
    } else if e.is_builder() || e.is_redirect() {
        Outcome::Broken
    } else {
        Outcome::NoAnswer
    };
    let problem = match outcome {
        Outcome::Untrusted => ": TLS failed: the server's certificate is not trusted",
        Outcome::NotConnected => ": cannot connect",
        _ if e.is_timeout() => " timed out",
        _ => " failed",
    };
    let message = format!("{at}{problem}: {}", chain(&e));
    match classify(call, outcome) {
        Decision::Retry { after } => Attempt::Retry {
            message,
            after,
            last: outcome,
            answer: None,
        },
        Decision::Unknown => Attempt::Stop(Failure::Unknown {
            message: format!(
                "{message}; the request was sent, so the provider may have rotated the token"
            ),
        }),
        Decision::Stop if outcome == Outcome::Untrusted => {
            Attempt::Stop(Failure::Untrusted { message })
        }
        Decision::Stop | Decision::Answer => Attempt::Stop(Failure::GaveUp {
            message,
            last: outcome,
            answer: None,
        }),
    }
}

/// `{"retry_after": 0.5, …}` (seconds): Discord's 429 body.
fn json_retry_after(body: &str) -> Option<Duration> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let secs = v.get("retry_after")?.as_f64()?;
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// The error and its sources, on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        // Saturating: a huge value (`18446744073709551615`, `1e300`) is "too long",
        // never an overflow panic.
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
    }
    let at = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let secs = at.as_second() - jiff::Timestamp::now().as_second();
    Some(Duration::from_secs(secs.max(0) as u64))
}

const SECRET_PARAMS: &[&str] = &[
    "access_token",
    "refresh_token",
    "client_secret",
    "code",
    "code_verifier",
    "token",
    "fb_exchange_token",
    "id_token",
    "password",
    "secret_id",
];

/// Whether `url` points at this machine (`localhost`, 127.0.0.0/8, `::1`): where
/// plain `http` is acceptable (a simulator, an `ssh -L` tunnel, a local broker).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

/// The URL with the values of secret-bearing query parameters masked and any
/// userinfo removed: the only form in which a URL may appear in a message.
pub fn safe_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    let _ = u.set_username("");
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let masked = SECRET_PARAMS.contains(&k.as_ref());
                (
                    k.into_owned(),
                    if masked {
                        "***".to_owned()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// Joins a provider path to a configured base URL, keeping only its scheme, host
/// and port (`base_url` replaces only those).
pub fn endpoint(base: &Url, path: &str) -> Url {
    let mut u = base.clone();
    u.set_path(path);
    u.set_query(None);
    u.set_fragment(None);
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_url_masks_query_secrets() {
        let u = Url::parse("https://graph.instagram.com/refresh_access_token?grant_type=ig_refresh_token&access_token=IGtestsecret").unwrap();
        let s = safe_url(&u);
        assert!(!s.contains("IGtestsecret"), "{s}");
        assert!(s.contains("grant_type=ig_refresh_token"), "{s}");
        assert!(s.contains("access_token=***"), "{s}");
    }

    #[test]
    fn endpoint_keeps_the_provider_path() {
        let base = Url::parse("http://127.0.0.1:9999/ignored?x=1").unwrap();
        assert_eq!(
            endpoint(&base, "/v2/oauth/token/").as_str(),
            "http://127.0.0.1:9999/v2/oauth/token/"
        );
    }

    /// The one classifier, as a table: each outcome, for each use (a provider's
    /// safe call, a provider's rotating call, a store write, an alert).
    #[test]
    fn one_classifier_for_providers_stores_and_alerts() {
        use Decision::*;
        let secs = |n| Some(Duration::from_secs(n));
        let http = |status, retry_after| Outcome::Http {
            status,
            retry_after,
        };
        // (outcome, provider safe, provider rotating, store, alert)
        let table = [
            (http(200, None), Answer, Answer),
            (http(202, None), Answer, Answer),
            (http(400, None), Answer, Answer),
            (http(401, None), Answer, Answer),
            (http(404, None), Answer, Answer),
            (http(409, None), Answer, Answer),
            (
                http(429, None),
                Retry { after: None },
                Retry { after: None },
            ),
            (
                http(429, secs(2)),
                Retry { after: secs(2) },
                Retry { after: secs(2) },
            ),
            (
                http(500, None),
                Retry { after: None },
                Retry { after: None },
            ),
            (
                http(503, secs(1)),
                Retry { after: secs(1) },
                Retry { after: secs(1) },
            ),
            (
                Outcome::BodyLost { status: 200 },
                Retry { after: None },
                Unknown,
            ),
            (
                Outcome::BodyLost { status: 500 },
                Retry { after: None },
                Retry { after: None },
            ),
            (
                Outcome::NotConnected,
                Retry { after: None },
                Retry { after: None },
            ),
            (Outcome::NoAnswer, Retry { after: None }, Unknown),
            (Outcome::Untrusted, Stop, Stop),
            (Outcome::Broken, Stop, Stop),
            (
                Outcome::Smtp { code: 421 },
                Retry { after: None },
                Retry { after: None },
            ),
            (
                Outcome::Smtp { code: 451 },
                Retry { after: None },
                Retry { after: None },
            ),
            (Outcome::Smtp { code: 535 }, Stop, Stop),
            (Outcome::Smtp { code: 550 }, Stop, Stop),
            (Outcome::Smtp { code: 250 }, Answer, Answer),
        ];
        // Stores and alert channels repeat a write or a message harmlessly: they
        // classify as safe calls.
        const PROVIDER_SAFE: Call = Call::Safe;
        const PROVIDER_ROTATING: Call = Call::Rotating;
        const STORE: Call = Call::Safe;
        const ALERT: Call = Call::Safe;
        for (outcome, safe, rotating) in table {
            assert_eq!(
                classify(PROVIDER_SAFE, outcome),
                safe,
                "provider safe {outcome:?}"
            );
            assert_eq!(
                classify(PROVIDER_ROTATING, outcome),
                rotating,
                "provider rotating {outcome:?}"
            );
            assert_eq!(classify(STORE, outcome), safe, "store {outcome:?}");
            assert_eq!(classify(ALERT, outcome), safe, "alert {outcome:?}");
        }
    }

    #[test]
    fn an_untrusted_certificate_is_found_inside_an_io_error() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        assert!(untrusted(&io));
        let other = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(!untrusted(&other));
        assert!(!untrusted(&std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::HandshakeNotComplete
        )));
    }

    #[test]
    fn discord_says_how_long_to_wait_in_its_body() {
        assert_eq!(
            json_retry_after(r#"{"message":"You are being rate limited.","retry_after":0.5}"#),
            Some(Duration::from_millis(500))
        );
        assert_eq!(json_retry_after("<html>"), None);
        assert_eq!(json_retry_after(r#"{"retry_after":-1}"#), None);
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
