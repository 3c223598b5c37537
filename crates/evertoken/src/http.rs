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
    /// Every attempt failed with a transient error.
    GaveUp { message: String },
    /// A rotating request was sent and no answer came back: the provider may have
    /// rotated the credential. Never reported as success, never blindly retried.
    Unknown { message: String },
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::GaveUp { message } | Failure::Unknown { message } => message,
        }
    }
}

#[derive(Debug)]
enum Attempt {
    Retry {
        message: String,
        after: Option<Duration>,
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
    plain: std::sync::OnceLock<reqwest::Client>,
    tls: std::sync::OnceLock<reqwest::Client>,
}

impl Clients {
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

    /// For `https://` (and anything that is not plain `http://`): the platform's roots.
    fn tls(&self) -> &reqwest::Client {
        self.tls.get_or_init(|| {
            self.builder()
                .build()
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

impl Http {
    pub fn new(cfg: &HttpConfig) -> Self {
        Self {
            clients: std::sync::Arc::new(Clients {
                // The config is range-checked; this guards any other caller.
                timeout: Duration::try_from_secs_f64(cfg.timeout_seconds)
                    .unwrap_or(Duration::from_secs(30))
                    .clamp(Duration::from_millis(1), Duration::from_secs(3600)),
                plain: std::sync::OnceLock::new(),
                tls: std::sync::OnceLock::new(),
            }),
            retries: cfg.retries,
            max_retry_after: Duration::from_secs(cfg.max_retry_after_seconds),
        }
    }

    /// The TLS-capable client, for callers that build their own requests.
    pub fn client(&self) -> &reqwest::Client {
        self.clients.tls()
    }

    /// Sends the request built by `build` (called again for each attempt) and
    /// returns the final answer. `what` names the call in messages, e.g. "TikTok
    /// token endpoint"; the URL is added, with query secrets masked.
    pub async fn send<F>(&self, what: &str, call: Call, build: F) -> Result<Reply, Failure>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let attempt = || async {
            // Requests are built on the cheap client and sent on the one their
            // scheme needs; both clients are configured alike apart from TLS roots.
            let req = build(self.clients.plain()).build().map_err(|e| {
                Attempt::Stop(Failure::GaveUp {
                    message: format!("{what}: bad request: {}", e.without_url()),
                })
            })?;
            let where_ = format!("{} {}", req.method(), safe_url(req.url()));
            let client = if req.url().scheme() == "http" {
                self.clients.plain()
            } else {
                self.clients.tls()
            };
            let resp = match client.execute(req).await {
                Ok(r) => r,
                Err(e) => return Err(classify_send_error(what, &where_, call, e)),
            };
            let status = resp.status();
            let headers = resp.headers().clone();
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                let after = retry_after(&headers);
                if let Some(a) = after
                    && a > self.max_retry_after
                {
                    return Err(Attempt::Stop(Failure::GaveUp {
                        message: format!(
                            "{what} ({where_}) answered {status} with Retry-After {}s, longer than http.max_retry_after_seconds ({}s)",
                            a.as_secs(),
                            self.max_retry_after.as_secs()
                        ),
                    }));
                }
                return Err(Attempt::Retry {
                    message: format!("{what} ({where_}) answered {status}"),
                    after,
                });
            }
            match read_body(resp, MAX_BODY).await {
                Ok(body) => Ok(Reply {
                    status,
                    headers,
                    body,
                }),
                Err(e) => {
                    let message = format!(
                        "{what} ({where_}) answered {status} but the body could not be read: {e}"
                    );
                    if call == Call::Rotating && status.is_success() {
                        Err(Attempt::Stop(Failure::Unknown { message }))
                    } else {
                        Err(Attempt::Retry {
                            message,
                            after: None,
                        })
                    }
                }
            }
        };
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
                Attempt::Retry { message, .. } => Failure::GaveUp {
                    message: format!("{message} (gave up after {} attempts)", self.retries + 1),
                },
                Attempt::Stop(f) => f,
            })
    }
}

fn classify_send_error(what: &str, where_: &str, call: Call, e: reqwest::Error) -> Attempt {
    let e = e.without_url();
    if e.is_connect() {
        // Nothing reached the server: safe to retry even a rotating call.
        return Attempt::Retry {
            message: format!("{what} ({where_}): cannot connect: {}", chain(&e)),
            after: None,
        };
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else {
        "failed"
    };
    let message = format!("{what} ({where_}) {kind}: {}", chain(&e));
    match call {
        Call::Safe => Attempt::Retry {
            message,
            after: None,
        },
        Call::Rotating => Attempt::Stop(Failure::Unknown {
            message: format!(
                "{message}; the request was sent, so the provider may have rotated the token"
            ),
        }),
    }
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

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
