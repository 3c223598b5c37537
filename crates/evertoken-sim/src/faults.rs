//! Fault injection: which route a request belongs to, and the provider-shaped
//! responses of each [`Fault`].
//!
//! Bodies follow each provider's own error envelope (see the provider modules
//! for the documentation cited). Rate-limit bodies: Discord
//! <https://discord.com/developers/docs/topics/rate-limits> (`message`,
//! `retry_after`, `global`), GitHub
//! <https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api>
//! (secondary rate limit message + `Retry-After`), GitLab rack-attack throttling
//! (plain `Retry later`), TikTok v2 `rate_limit_exceeded`
//! <https://developers.tiktok.com/doc/tiktok-api-v2-error-handling>.
//!
//! The `evil` faults (issue 13) are what a hostile or broken provider, proxy or
//! webhook service may send, so the client's defences can be tested for every
//! route: [`Fault::Patch`] (out-of-range and wrong-typed numbers after a real
//! rotation), [`Fault::EchoSecrets`] (an error envelope quoting every credential
//! the request carried, plus terminal escape sequences), [`Fault::HugeBody`],
//! [`Fault::EndlessBody`] and [`Fault::SlowLoris`]. Real providers must not send
//! these: RFC 6749 section 5.1 defines `expires_in` as "the lifetime in seconds of
//! the access token" and section 5.2 forbids any character outside
//! `%x20-21 / %x23-5B / %x5D-7E` in `error` and `error_description`
//! (<https://www.rfc-editor.org/rfc/rfc6749#section-5.2>), so escapes there are
//! always a fault. The providers' own docs (TikTok, Google, LinkedIn, Meta, GitHub)
//! are silent on upper bounds for lifetimes and on echoing request values; the
//! client must survive all of it whatever the provider does.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use jiff::Timestamp;

use crate::registry::{Errors, FaultCtx, errors_of};
use crate::util::{json_response, reason};

/// The provider endpoint groups faults and counters are keyed by: a name.
///
/// Each provider module declares its routes as constants (`Route::TikTok`,
/// `Route::GitHubApp`, …) and lists them in its registry descriptor
/// ([`crate::registry::Provider::routes`]), which also gives their aliases.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route(pub(crate) &'static str);

#[allow(non_upper_case_globals)]
impl Route {
    /// Faults pushed here apply to a request on any provider route (after that
    /// route's own queue is empty).
    pub const Any: Route = Route("any");
}

impl Route {
    /// The stable name used in [`crate::Stats::requests`] and the control API.
    pub fn name(self) -> &'static str {
        self.0
    }

    /// Parses [`Route::name`] (and the aliases each provider declares).
    pub fn parse(s: &str) -> Option<Route> {
        let s = s.to_ascii_lowercase().replace('-', "_");
        if s == "any" || s == "all" {
            return Some(Route::Any);
        }
        crate::PROVIDERS
            .iter()
            .flat_map(|p| p.routes.iter())
            .find(|(r, aliases)| r.0 == s || aliases.contains(&s.as_str()))
            .map(|(r, _)| *r)
    }

    /// Which route a (GitHub-prefix-stripped) request path belongs to; `None`
    /// for the control API and unknown paths. Providers are asked in registry
    /// order.
    pub(crate) fn classify(path: &str) -> Option<Route> {
        if path.starts_with("/_sim") {
            return None;
        }
        crate::PROVIDERS.iter().find_map(|p| (p.owns)(path))
    }
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Route({})", self.0)
    }
}

impl Serialize for Route {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Route {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Route, D::Error> {
        let s = String::deserialize(d)?;
        Route::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown route `{s}`")))
    }
}

/// A fault injected into one (or every) request on a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and the provider's own error body for it.
    Status(u16),
    /// 429 with the provider's rate-limit body, and `Retry-After` when given.
    TooManyRequests { retry_after_secs: Option<u64> },
    /// Sleep, then answer normally (a client timeout before anything happened).
    Hang(Duration),
    /// Perform the request (e.g. rotate the token), then sleep before
    /// answering: an "unknown outcome" for a client that times out.
    HangAfterProcessing(Duration),
    /// Perform the request, then answer 200 with a body that is not JSON.
    MalformedJson,
    /// Perform the request, then announce the full `Content-Length` but close
    /// the connection after half of the body.
    TruncatedBody,
    /// 502 with an HTML page, as a reverse proxy in front of the provider sends.
    HtmlErrorPage,
    /// The provider's "grant is dead" answer (`invalid_grant`, Graph code 190,
    /// GitHub/GitLab 401 …) without touching state.
    InvalidGrant,
    /// The provider's "client authentication failed" answer.
    InvalidClient,
    /// The provider's 401 for a missing/bad credential.
    Unauthorized,
    /// Perform the request, then answer 200 without `refresh_token` in the body.
    DropRotatedToken,
    /// Evil: perform the request (a rotation happens), then overwrite these
    /// top-level fields of the JSON answer, e.g. `{"expires_in": 9223372036854775807}`
    /// or `{"expires_in": "soon"}`.
    Patch(serde_json::Map<String, serde_json::Value>),
    /// Evil: without touching state, answer with the route's own error envelope
    /// whose message quotes the request's body, query, path and decoded
    /// `Authorization` credentials, followed by terminal escape sequences
    /// (window title, clear screen, a fake "all good" line).
    EchoSecrets,
    /// Evil: the same echo, as a 200 answer that is not JSON (a proxy's debug page).
    EchoSecretsOk,
    /// Evil: without touching state, answer 200 with a JSON body of this many bytes.
    HugeBody(usize),
    /// Evil: without touching state, answer 200 with a body that never ends.
    EndlessBody,
    /// Evil: wait this long before the headers, then trickle the body one byte
    /// every 200 ms, never finishing (a slow-loris server).
    SlowLoris(Duration),
    /// Throttling that does not look like a 429: on the Instagram routes Graph's
    /// error envelope with this HTTP `status` and Graph `code` (e.g. 403 and code 4,
    /// "Application request limit reached"), `is_transient` as given; Meta sends its
    /// rate-limit and outage codes (1, 2, 4, 17, 32, 341, 613) with 400 or 403
    /// (<https://developers.facebook.com/docs/graph-api/guides/error-handling>).
    /// On other routes the route's own 429.
    Throttled {
        status: u16,
        code: u32,
        transient: bool,
    },
}

/// The escape sequences [`Fault::EchoSecrets`] appends: OSC 0 (window title),
/// CSI 2 J (clear screen), a carriage return and a fake status line.
pub const ESCAPES: &str =
    "\u{1b}]0;evertoken: all good\u{7}\u{1b}[2J\r\u{1b}[32m✓ all credentials ok\u{1b}[0m\n";

/// The route's error envelope carrying `message` (for [`Fault::EchoSecrets`]).
pub(crate) fn echo_response(route: Route, path: &str, message: &str, now: Timestamp) -> Response {
    let ctx = FaultCtx { route, path, now };
    (errors_of(route).echo)(&ctx, message)
}

impl Fault {
    /// Faults that run the real handler (and its state change) first.
    pub(crate) fn is_post_processing(&self) -> bool {
        matches!(
            self,
            Fault::HangAfterProcessing(_)
                | Fault::MalformedJson
                | Fault::TruncatedBody
                | Fault::DropRotatedToken
                | Fault::Patch(_)
        )
    }

    /// Parses the control API's JSON form: either a string
    /// (`"malformed_json"`, `"invalid_grant"`, …) or an object with `kind`
    /// (`{"kind":"status","status":503}`, `{"kind":"too_many_requests",
    /// "retry_after_secs":2}`, `{"kind":"hang","ms":1500}`,
    /// `{"kind":"hang_after_processing","ms":1500}`). A bare number is a status.
    pub fn from_json(v: &serde_json::Value) -> Option<Fault> {
        if let Some(n) = v.as_u64() {
            return u16::try_from(n).ok().map(Fault::Status);
        }
        let (kind, obj) = match v {
            serde_json::Value::String(s) => (s.as_str(), None),
            serde_json::Value::Object(o) => {
                // Also accept {"status":503} / {"hang":{"ms":..}}-less forms.
                let k = o.get("kind").and_then(|k| k.as_str());
                match k {
                    Some(k) => (k, Some(o)),
                    None if o.contains_key("status") => ("status", Some(o)),
                    None => return None,
                }
            }
            _ => return None,
        };
        let get_u64 = |k: &str| obj.and_then(|o| o.get(k)).and_then(|x| x.as_u64());
        let ms = || {
            get_u64("ms")
                .map(Duration::from_millis)
                .or_else(|| get_u64("secs").map(Duration::from_secs))
                .unwrap_or(Duration::from_secs(30))
        };
        Some(match kind.to_ascii_lowercase().replace('-', "_").as_str() {
            "status" => Fault::Status(u16::try_from(get_u64("status")?).ok()?),
            "too_many_requests" | "rate_limit" | "429" => Fault::TooManyRequests {
                retry_after_secs: get_u64("retry_after_secs"),
            },
            "hang" => Fault::Hang(ms()),
            "hang_after_processing" => Fault::HangAfterProcessing(ms()),
            "malformed_json" => Fault::MalformedJson,
            "truncated_body" => Fault::TruncatedBody,
            "html_error_page" | "html" => Fault::HtmlErrorPage,
            "invalid_grant" => Fault::InvalidGrant,
            "invalid_client" => Fault::InvalidClient,
            "unauthorized" => Fault::Unauthorized,
            "drop_rotated_token" => Fault::DropRotatedToken,
            "patch" => Fault::Patch(obj?.get("set")?.as_object()?.clone()),
            "echo_secrets" | "echo" => Fault::EchoSecrets,
            "echo_secrets_200" | "echo_ok" => Fault::EchoSecretsOk,
            "huge_body" => Fault::HugeBody(
                get_u64("bytes")
                    .and_then(|b| usize::try_from(b).ok())
                    .unwrap_or(8 << 20),
            ),
            "endless_body" => Fault::EndlessBody,
            "slow_loris" => Fault::SlowLoris(ms()),
            "throttled" => Fault::Throttled {
                status: get_u64("status")
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(403),
                code: get_u64("code")
                    .and_then(|c| u32::try_from(c).ok())
                    .unwrap_or(4),
                transient: obj
                    .and_then(|o| o.get("transient"))
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false),
            },
            _ => return None,
        })
    }
}

/// The 502 page a reverse proxy (nginx-style) sends when the upstream fails.
pub(crate) fn html_error_page() -> Response {
    let body = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "text/html")],
        body,
    )
        .into_response()
}

/// The `any` route's body for an HTTP error status ([`Errors::DEFAULT`]).
pub(crate) fn default_status(_: &FaultCtx, code: u16) -> Response {
    json_response(code, json!({"message": reason(code)}))
}

/// The answer for an unknown path that belongs to `route`.
pub(crate) fn not_found(route: Option<Route>, path: &str, now: Timestamp) -> Response {
    let errors = route.map_or(Errors::DEFAULT, errors_of);
    match (route, errors.not_found) {
        (Some(route), Some(f)) => f(&FaultCtx { route, path, now }),
        _ => json_response(404, json!({"message": "Not Found"})),
    }
}

/// The response of a fault that answers without running the handler.
/// `None` for faults that run the handler (`Hang` sleeps first, then runs it).
pub(crate) fn pre_response(
    route: Route,
    path: &str,
    fault: &Fault,
    now: Timestamp,
) -> Option<Response> {
    let ctx = FaultCtx { route, path, now };
    let errors = errors_of(route);
    let unauthorized = errors.unauthorized;
    Some(match fault {
        Fault::Status(code) => (errors.status)(&ctx, *code),
        Fault::TooManyRequests { retry_after_secs } => {
            let mut r = match errors.too_many_requests {
                Some(f) => f(&ctx, *retry_after_secs),
                None => (errors.status)(&ctx, 429),
            };
            if let Some(v) =
                retry_after_secs.and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
            {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Fault::HtmlErrorPage => html_error_page(),
        Fault::Throttled {
            status,
            code,
            transient,
        } => match errors.throttled {
            Some(f) => f(&ctx, *status, *code, *transient),
            None => (errors.status)(&ctx, 429),
        },
        Fault::InvalidGrant => errors.invalid_grant.unwrap_or(unauthorized)(&ctx),
        Fault::InvalidClient => errors.invalid_client.unwrap_or(unauthorized)(&ctx),
        Fault::Unauthorized => unauthorized(&ctx),
        Fault::HugeBody(n) => {
            let mut body = String::with_capacity(*n + 16);
            body.push_str("{\"pad\":\"");
            body.extend(std::iter::repeat_n('x', n.saturating_sub(12)));
            body.push_str("\"}");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        Fault::EndlessBody => {
            use futures::StreamExt as _;
            let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
            let stream = futures::stream::repeat(chunk).map(Ok::<_, std::io::Error>);
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                axum::body::Body::from_stream(stream),
            )
                .into_response()
        }
        Fault::Hang(_)
        | Fault::HangAfterProcessing(_)
        | Fault::MalformedJson
        | Fault::TruncatedBody
        | Fault::DropRotatedToken
        | Fault::Patch(_)
        | Fault::EchoSecrets
        | Fault::EchoSecretsOk
        | Fault::SlowLoris(_) => return None,
    })
}
