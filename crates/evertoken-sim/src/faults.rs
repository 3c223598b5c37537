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

use crate::util::{
    GH_DOCS, github_error, gitlab_error, graph_error, json_response, oauth_error, reason,
    tiktok_error,
};

/// The provider endpoint groups faults and counters are keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    Instagram,
    /// Instagram's read-only `GET /me` (the token check after a refused refresh),
    /// kept apart so a fault can hit the check without the refresh, or the reverse.
    InstagramMe,
    Google,
    TikTok,
    LinkedInToken,
    LinkedInIntrospect,
    GitHubApp,
    GitLab,
    GitHubActions,
    Webhook,
    X,
    Pinterest,
    /// Faults pushed here apply to a request on any provider route (after that
    /// route's own queue is empty).
    Any,
}

impl Route {
    /// The stable name used in [`crate::Stats::requests`] and the control API.
    pub fn name(self) -> &'static str {
        match self {
            Route::Instagram => "instagram",
            Route::InstagramMe => "instagram_me",
            Route::Google => "google",
            Route::TikTok => "tiktok",
            Route::LinkedInToken => "linkedin_token",
            Route::LinkedInIntrospect => "linkedin_introspect",
            Route::GitHubApp => "github_app",
            Route::GitLab => "gitlab",
            Route::GitHubActions => "github_actions",
            Route::Webhook => "webhook",
            Route::X => "x",
            Route::Pinterest => "pinterest",
            Route::Any => "any",
        }
    }

    /// Parses [`Route::name`] (and a few aliases).
    pub fn parse(s: &str) -> Option<Route> {
        Some(match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "instagram" => Route::Instagram,
            "instagram_me" => Route::InstagramMe,
            "google" | "youtube" => Route::Google,
            "tiktok" => Route::TikTok,
            "linkedin_token" | "linkedin" => Route::LinkedInToken,
            "linkedin_introspect" => Route::LinkedInIntrospect,
            "github_app" | "github" => Route::GitHubApp,
            "gitlab" => Route::GitLab,
            "github_actions" | "actions" => Route::GitHubActions,
            "webhook" | "webhooks" => Route::Webhook,
            "x" | "twitter" => Route::X,
            "pinterest" => Route::Pinterest,
            "any" | "all" => Route::Any,
            _ => return None,
        })
    }

    /// Which route a (GitHub-prefix-stripped) request path belongs to; `None`
    /// for the control API and unknown paths.
    pub(crate) fn classify(path: &str) -> Option<Route> {
        if path.starts_with("/_sim") {
            return None;
        }
        match path {
            "/refresh_access_token"
            | "/access_token"
            | "/oauth/authorize"
            | "/oauth/authorize/"
            | "/oauth/access_token" => return Some(Route::Instagram),
            "/me" => return Some(Route::InstagramMe),
            "/token" | "/o/oauth2/v2/auth" | "/o/oauth2/auth" | "/revoke" => {
                return Some(Route::Google);
            }
            "/v2/oauth/token/"
            | "/v2/oauth/token"
            | "/v2/auth/authorize/"
            | "/v2/auth/authorize"
            | "/v2/oauth/revoke/" => return Some(Route::TikTok),
            "/oauth/v2/accessToken" | "/oauth/v2/authorization" => {
                return Some(Route::LinkedInToken);
            }
            "/oauth/v2/introspectToken" => return Some(Route::LinkedInIntrospect),
            "/2/oauth2/token" | "/2/oauth2/revoke" | "/i/oauth2/authorize" => {
                return Some(Route::X);
            }
            "/v5/oauth/token" | "/oauth/" => return Some(Route::Pinterest),
            // Threads (graph.threads.net) shares Instagram's Graph error shapes.
            "/v1.0/refresh_access_token" | "/v1.0/access_token" | "/v1.0/oauth/access_token" => {
                return Some(Route::Instagram);
            }
            _ => {}
        }
        if path.starts_with("/api/v4/") {
            return Some(Route::GitLab);
        }
        if path.starts_with("/webhook/") {
            return Some(Route::Webhook);
        }
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let is_actions = matches!(
            segs.as_slice(),
            ["repos", _, _, "actions", "secrets", ..]
                | ["repos", _, _, "environments", _, "secrets", ..]
                | ["orgs", _, "actions", "secrets", ..]
        );
        if is_actions {
            return Some(Route::GitHubActions);
        }
        match segs.first().copied() {
            Some("app" | "installation" | "repos" | "orgs" | "users" | "rate_limit" | "meta") => {
                Some(Route::GitHubApp)
            }
            Some("") => Some(Route::GitHubApp),
            _ => None,
        }
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
pub(crate) fn echo_response(
    route: Route,
    path: &str,
    message: &str,
    now: jiff::Timestamp,
) -> Response {
    match route {
        Route::Instagram | Route::InstagramMe => {
            graph_error(400, message, "OAuthException", 190, None, false)
        }
        Route::Google | Route::LinkedInToken | Route::LinkedInIntrospect => {
            oauth_error(400, "invalid_request", message)
        }
        Route::TikTok => tiktok_error(400, "invalid_request", message, now),
        Route::X => oauth_error(400, "invalid_request", message),
        Route::Pinterest => json_response(400, json!({"code": 1, "message": message})),
        // 4xx, so a client shows the body instead of retrying.
        Route::GitHubApp | Route::GitHubActions | Route::Any => github_error(422, message, GH_DOCS),
        Route::GitLab => gitlab_error(400, message),
        Route::Webhook => match hook_kind(path) {
            Hook::Slack => (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                message.to_owned(),
            )
                .into_response(),
            Hook::Discord => json_response(500, json!({"message": message, "code": 0})),
            Hook::Teams => json_response(
                500,
                json!({"error": {"code": "InternalServerError", "message": message}}),
            ),
        },
    }
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

enum Hook {
    Slack,
    Discord,
    Teams,
}

fn hook_kind(path: &str) -> Hook {
    if path.starts_with("/webhook/discord") {
        Hook::Discord
    } else if path.starts_with("/webhook/teams") {
        Hook::Teams
    } else {
        Hook::Slack
    }
}

fn text(code: u16, body: &'static str) -> Response {
    (
        crate::util::status(code),
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
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

/// The provider's body for an HTTP error `code` on `route`.
pub(crate) fn status_response(
    route: Route,
    path: &str,
    code: u16,
    now: jiff::Timestamp,
) -> Response {
    let server_side = code >= 500;
    match route {
        Route::Instagram | Route::InstagramMe => match code {
            429 => graph_error(
                429,
                "Application request limit reached",
                "OAuthException",
                4,
                None,
                true,
            ),
            401 | 403 => graph_error(
                code,
                "Invalid OAuth access token - Cannot parse access token",
                "OAuthException",
                190,
                None,
                false,
            ),
            c if c >= 500 => graph_error(
                c,
                "An unexpected error has occurred. Please retry your request later.",
                "OAuthException",
                2,
                None,
                true,
            ),
            c => graph_error(c, "Invalid parameter", "OAuthException", 100, None, false),
        },
        Route::Google | Route::LinkedInToken | Route::LinkedInIntrospect => match code {
            503 => oauth_error(
                503,
                "temporarily_unavailable",
                "The service is temporarily unavailable. Try again later.",
            ),
            c if server_side => oauth_error(c, "server_error", reason(c)),
            401 => oauth_error(401, "invalid_client", "Unauthorized"),
            429 => oauth_error(429, "rate_limit_exceeded", "Rate Limit Exceeded"),
            c => oauth_error(c, "invalid_request", reason(c)),
        },
        Route::TikTok => match code {
            503 => tiktok_error(
                503,
                "temporarily_unavailable",
                "Service is temporarily unavailable.",
                now,
            ),
            c if server_side => {
                tiktok_error(c, "server_error", "Other internal server errors.", now)
            }
            429 => tiktok_error(
                429,
                "rate_limit_exceeded",
                "The API rate limit was exceeded. Please try again later.",
                now,
            ),
            401 => tiktok_error(401, "invalid_client", "Client authentication failed.", now),
            c => tiktok_error(
                c,
                "invalid_request",
                "The request misses a required parameter or is otherwise malformed.",
                now,
            ),
        },
        Route::GitHubApp | Route::GitHubActions => match code {
            401 => github_error(401, "Bad credentials", GH_DOCS),
            403 => github_error(403, "Resource not accessible by integration", GH_DOCS),
            404 => github_error(404, "Not Found", GH_DOCS),
            429 => github_error(
                429,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            ),
            500 => github_error(500, "Server Error", GH_DOCS),
            c => github_error(c, reason(c), GH_DOCS),
        },
        Route::GitLab => match code {
            429 => text(429, "Retry later\n"),
            c => gitlab_error(c, &format!("{} {}", c, reason(c))),
        },
        Route::Webhook => match hook_kind(path) {
            Hook::Slack => match code {
                400 => text(400, "invalid_payload"),
                403 => text(403, "invalid_token"),
                404 => text(404, "no_service"),
                410 => text(410, "channel_is_archived"),
                429 => text(429, "rate_limited"),
                c if server_side => (crate::util::status(c), "internal_error").into_response(),
                c => (crate::util::status(c), "invalid_payload").into_response(),
            },
            Hook::Discord => match code {
                429 => discord_429(0.5),
                401 => json_response(401, json!({"message": "401: Unauthorized", "code": 0})),
                404 => json_response(404, json!({"message": "Unknown Webhook", "code": 10015})),
                c => json_response(c, json!({"message": reason(c), "code": 0})),
            },
            Hook::Teams => json_response(
                code,
                json!({"error": {"code": if server_side {"InternalServerError"} else {"BadRequest"}, "message": reason(code)}}),
            ),
        },
        Route::X => crate::x::fault_status(code),
        Route::Pinterest => crate::pinterest::fault_status(code),
        Route::Any => json_response(code, json!({"message": reason(code)})),
    }
}

/// Graph's message for a throttling or outage `code`.
fn throttle_message(code: u32) -> &'static str {
    match code {
        1 => "An unknown error occurred",
        2 => "An unexpected error has occurred. Please retry your request later.",
        4 => "Application request limit reached",
        17 => "User request limit reached",
        32 => "Page request limit reached",
        341 => "Application limit reached",
        613 => "Calls to this api have exceeded the rate limit.",
        _ => "Please retry your request later.",
    }
}

fn discord_429(retry_after: f64) -> Response {
    json_response(
        429,
        json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false}),
    )
}

/// The response of a fault that answers without running the handler.
/// `None` for faults that run the handler (`Hang` sleeps first, then runs it).
pub(crate) fn pre_response(
    route: Route,
    path: &str,
    fault: &Fault,
    now: jiff::Timestamp,
) -> Option<Response> {
    Some(match fault {
        Fault::Status(code) => status_response(route, path, *code, now),
        Fault::TooManyRequests { retry_after_secs } => {
            let mut r = match (route, hook_kind(path)) {
                (Route::Webhook, Hook::Discord) => {
                    discord_429(retry_after_secs.map(|s| s as f64).unwrap_or(0.5))
                }
                _ => status_response(route, path, 429, now),
            };
            if let Some(v) =
                retry_after_secs.and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
            {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            if matches!(route, Route::GitHubApp | Route::GitHubActions) {
                r.headers_mut()
                    .insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            }
            r
        }
        Fault::HtmlErrorPage => html_error_page(),
        Fault::Throttled {
            status,
            code,
            transient,
        } => match route {
            Route::Instagram | Route::InstagramMe => graph_error(
                *status,
                throttle_message(*code),
                "OAuthException",
                *code,
                None,
                *transient,
            ),
            _ => status_response(route, path, 429, now),
        },
        Fault::InvalidGrant => invalid_grant(route, path, now),
        Fault::InvalidClient => invalid_client(route, path, now),
        Fault::Unauthorized => unauthorized(route, path, now),
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

fn invalid_grant(route: Route, path: &str, now: jiff::Timestamp) -> Response {
    match route {
        Route::Instagram | Route::InstagramMe => crate::instagram::expired_error(now, now),
        Route::Google => oauth_error(400, "invalid_grant", "Token has been expired or revoked."),
        Route::TikTok => tiktok_error(
            400,
            "invalid_grant",
            "Refresh token is invalid or expired.",
            now,
        ),
        Route::LinkedInToken => oauth_error(400, "invalid_grant", crate::linkedin::INVALID_REFRESH),
        Route::LinkedInIntrospect => json_response(200, json!({"active": false})),
        Route::X => crate::x::fault_invalid_grant(),
        Route::Pinterest => crate::pinterest::fault_invalid_grant(),
        Route::GitHubApp | Route::GitHubActions | Route::GitLab | Route::Webhook | Route::Any => {
            unauthorized(route, path, now)
        }
    }
}

fn invalid_client(route: Route, path: &str, now: jiff::Timestamp) -> Response {
    match route {
        Route::Instagram | Route::InstagramMe => graph_error(
            400,
            "Error validating client secret.",
            "OAuthException",
            1,
            None,
            false,
        ),
        Route::Google => oauth_error(401, "invalid_client", "Unauthorized"),
        Route::TikTok => tiktok_error(
            401,
            "invalid_client",
            "Client key or secret is incorrect.",
            now,
        ),
        Route::LinkedInToken | Route::LinkedInIntrospect => {
            oauth_error(401, "invalid_client", "Client authentication failed")
        }
        _ => unauthorized(route, path, now),
    }
}

fn unauthorized(route: Route, path: &str, now: jiff::Timestamp) -> Response {
    match route {
        Route::Instagram | Route::InstagramMe => graph_error(
            400,
            "Invalid OAuth access token - Cannot parse access token",
            "OAuthException",
            190,
            None,
            false,
        ),
        Route::Google => oauth_error(401, "unauthorized_client", "Unauthorized"),
        Route::TikTok => tiktok_error(401, "invalid_client", "Client authentication failed.", now),
        Route::LinkedInToken | Route::LinkedInIntrospect => {
            oauth_error(401, "invalid_client", "Client authentication failed")
        }
        Route::GitHubApp | Route::GitHubActions | Route::Any => {
            github_error(401, "Bad credentials", GH_DOCS)
        }
        Route::GitLab => gitlab_error(401, "401 Unauthorized"),
        Route::X => crate::x::fault_unauthorized(),
        Route::Pinterest => crate::pinterest::fault_unauthorized(),
        Route::Webhook => match hook_kind(path) {
            Hook::Slack => text(403, "invalid_token"),
            Hook::Discord => json_response(
                401,
                json!({"message": "Invalid Webhook Token", "code": 50027}),
            ),
            Hook::Teams => json_response(
                401,
                json!({"error": {"code": "DirectApiAuthorizationRequired", "message": "The request is not authorized."}}),
            ),
        },
    }
}
