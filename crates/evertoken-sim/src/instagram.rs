//! Instagram API with Instagram Login.
//!
//! Docs checked:
//! - Refresh: <https://developers.facebook.com/docs/instagram-platform/reference/refresh_access_token>
//!   (`GET /refresh_access_token?grant_type=ig_refresh_token&access_token=…`;
//!   only a long-lived token "at least 24 hours old but has not expired";
//!   refreshed tokens valid 60 days; response `{access_token, token_type:"bearer", expires_in}`).
//! - Exchange: <https://developers.facebook.com/docs/instagram-platform/reference/access_token>
//!   (`GET /access_token?grant_type=ig_exchange_token&client_secret=…&access_token=…`;
//!   `client_secret` is "your Instagram app's secret", i.e. the app the short-lived
//!   token was issued to: another app's secret is refused with code 1 "Error
//!   validating client secret.").
//! - Login: <https://developers.facebook.com/docs/instagram-platform/reference/oauth-authorize>
//!   (`GET /oauth/authorize`, redirect with `code` and a trailing `#_`, which
//!   "is not part of the code itself" and must be stripped by the client: the
//!   simulator redeems the code exactly as sent, so a `#_` left on it fails) and
//!   `POST /oauth/access_token` (form; answers `{"data":[{access_token,user_id,permissions}]}`;
//!   errors `{"error_type","code","error_message"}`).
//! - Errors: Graph API envelope `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`;
//!   an expired token is `OAuthException` code 190 subcode 463 "Error validating access
//!   token: Session has expired on …" (as reported by users of the API).
//!
//! - Me: <https://developers.facebook.com/docs/instagram-platform/reference/me>
//!   (`GET https://graph.instagram.com/{version}/me?fields={fields}&access_token=…`,
//!   read-only, resolves the token's user; the simulator serves the unversioned `/me`
//!   and answers `id`, `user_id` and `username` when asked for them).
//! - Redirect URIs: <https://developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/business-login>
//!   (the `redirect_uri` of the authorize request must be one of the app's "OAuth
//!   redirect URIs" in the Business login settings, an `https` URL; the code exchange
//!   must repeat it identically: "Please make sure your redirect_uri is identical to
//!   the one you used in the OAuth dialog request"). Meta accepts no `http` redirect,
//!   not even on a loopback host.
//!
//! - Throttling and outages: <https://developers.facebook.com/docs/graph-api/guides/error-handling>
//!   (codes 1, 2, 4, 17, 32, 341, 613 and `is_transient`, sent with HTTP 400 or 403;
//!   injected with `Fault::Throttled` on `Route::Instagram` / `Route::InstagramMe`).
//!
//! Simulator choices: an unknown (strict) token is code 190 "Invalid OAuth access
//! token - Cannot parse access token"; a token younger than 24 h gets a 400
//! `OAuthException` code 10 whose message says it must be at least 24 hours old
//! (Meta does not document this body; the message is the stable part, and
//! [`Sim::instagram_set_young_message`] changes it so that clients are tested
//! without it).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::oauth::{self, CodeError, CodeGrant};
use crate::state::Sim;
use crate::util::{alnum, graph_error, json_response, param, parse_form, parse_query};

/// 60 days, the lifetime of a long-lived token.
pub(crate) const LONG_LIVED_SECS: i64 = 60 * 86400;
const SHORT_LIVED_SECS: i64 = 3600;
const MIN_AGE: SignedDuration = SignedDuration::from_hours(24);

#[derive(Clone, Debug)]
pub(crate) struct IgToken {
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub user_id: String,
    pub long_lived: bool,
    /// The app the token was issued to (`None`: seeded by a test without one).
    pub app_id: Option<String>,
}

#[derive(Default)]
pub(crate) struct IgState {
    pub tokens: HashMap<String, IgToken>,
    pub apps: HashMap<String, String>,
    /// Replaces the message of the too-young refusal.
    pub young_message: Option<String>,
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/refresh_access_token", get(refresh))
        .route("/access_token", get(exchange))
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/authorize/", get(authorize))
        .route("/oauth/access_token", post(code_exchange))
        .route("/me", get(me))
}

fn new_token() -> String {
    format!("sim-ig-{}", alnum(48))
}

fn user_id() -> String {
    let n: u64 = rand::random::<u64>() % 9_000_000_000_000_000 + 1_000_000_000_000_000;
    n.to_string()
}

impl Sim {
    /// Seeds a long-lived Instagram user token.
    pub fn instagram_add_token(&self, token: &str, issued_at: Timestamp, expires_at: Timestamp) {
        self.lock().instagram.tokens.insert(
            token.to_string(),
            IgToken {
                issued_at,
                expires_at,
                user_id: user_id(),
                long_lived: true,
                app_id: None,
            },
        );
    }

    /// Whether `token` is known and unexpired at the simulator's clock.
    pub fn instagram_is_valid(&self, token: &str) -> bool {
        let st = self.lock();
        let now = st.now();
        st.instagram
            .tokens
            .get(token)
            .is_some_and(|t| t.expires_at > now)
    }

    /// The expiry of a known Instagram token.
    pub fn instagram_expires_at(&self, token: &str) -> Option<Timestamp> {
        self.lock()
            .instagram
            .tokens
            .get(token)
            .map(|t| t.expires_at)
    }

    /// Revokes a token (the user removed the app): every call with it fails.
    pub fn instagram_revoke(&self, token: &str) {
        self.lock().instagram.tokens.remove(token);
    }

    /// Makes the too-young refusal say `message` instead of the usual text
    /// (Meta does not document it).
    pub fn instagram_set_young_message(&self, message: &str) {
        self.lock().instagram.young_message = Some(message.to_string());
    }

    /// Registers an Instagram app (for the login flow and `ig_exchange_token`).
    pub fn instagram_add_app(&self, app_id: &str, app_secret: &str) {
        self.lock()
            .instagram
            .apps
            .insert(app_id.to_string(), app_secret.to_string());
    }
}

fn fmt_meta_time(t: Timestamp) -> String {
    // Meta formats these in Pacific time: "Friday, 11-Sep-20 06:41:31 PDT".
    let tz = jiff::tz::TimeZone::get("America/Los_Angeles").unwrap_or(jiff::tz::TimeZone::UTC);
    let z = t.to_zoned(tz);
    z.strftime("%A, %d-%b-%y %H:%M:%S %Z").to_string()
}

/// Graph's answer for an expired token.
pub(crate) fn expired_error(expired_at: Timestamp, now: Timestamp) -> Response {
    graph_error(
        400,
        &format!(
            "Error validating access token: Session has expired on {}. The current time is {}.",
            fmt_meta_time(expired_at),
            fmt_meta_time(now)
        ),
        "OAuthException",
        190,
        Some(463),
        false,
    )
}

fn cannot_parse() -> Response {
    graph_error(
        400,
        "Invalid OAuth access token - Cannot parse access token",
        "OAuthException",
        190,
        None,
        false,
    )
}

fn missing_token() -> Response {
    graph_error(
        400,
        "An active access token must be used to query information about the current user.",
        "IGApiException",
        2500,
        None,
        false,
    )
}

/// Looks a token up; in lenient mode an unknown one is adopted as an
/// old-enough, valid long-lived token.
fn lookup(st: &mut crate::state::State, token: &str) -> Option<IgToken> {
    let now = st.now();
    if let Some(t) = st.instagram.tokens.get(token) {
        return Some(t.clone());
    }
    if st.lenient {
        let t = IgToken {
            issued_at: now - SignedDuration::from_hours(30 * 24),
            expires_at: now + SignedDuration::from_hours(30 * 24),
            user_id: user_id(),
            long_lived: true,
            app_id: None,
        };
        st.instagram.tokens.insert(token.to_string(), t.clone());
        return Some(t);
    }
    None
}

async fn refresh(State(sim): State<Sim>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(q.as_deref());
    let Some(token) = param(&q, "access_token") else {
        return missing_token();
    };
    if param(&q, "grant_type") != Some("ig_refresh_token") {
        return graph_error(
            400,
            "Unsupported grant_type. Set grant_type to ig_refresh_token.",
            "OAuthException",
            100,
            None,
            false,
        );
    }
    let mut st = sim.lock();
    let now = st.now();
    let Some(tok) = lookup(&mut st, token) else {
        return cannot_parse();
    };
    if tok.expires_at <= now {
        return expired_error(tok.expires_at, now);
    }
    if !tok.long_lived {
        return graph_error(
            400,
            "Only long-lived access tokens can be refreshed.",
            "OAuthException",
            190,
            None,
            false,
        );
    }
    if now.duration_since(tok.issued_at) < MIN_AGE {
        let msg = st.instagram.young_message.clone().unwrap_or_else(|| {
            "The access token can not be refreshed yet: a long-lived token must be at least 24 hours old to be refreshed.".to_string()
        });
        return graph_error(400, &msg, "OAuthException", 10, None, false);
    }
    let new = new_token();
    st.instagram.tokens.insert(
        new.clone(),
        IgToken {
            issued_at: now,
            expires_at: now + SignedDuration::from_secs(LONG_LIVED_SECS),
            user_id: tok.user_id,
            long_lived: true,
            app_id: tok.app_id,
        },
    );
    json_response(
        200,
        json!({"access_token": new, "token_type": "bearer", "expires_in": LONG_LIVED_SECS}),
    )
}

async fn me(State(sim): State<Sim>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(q.as_deref());
    let Some(token) = param(&q, "access_token") else {
        return missing_token();
    };
    let mut st = sim.lock();
    let now = st.now();
    let Some(tok) = lookup(&mut st, token) else {
        return cannot_parse();
    };
    if tok.expires_at <= now {
        return expired_error(tok.expires_at, now);
    }
    let mut body = serde_json::Map::new();
    for f in param(&q, "fields").unwrap_or("id").split(',') {
        match f.trim() {
            "id" | "user_id" => {
                body.insert(f.trim().to_string(), json!(tok.user_id));
            }
            "username" => {
                body.insert(
                    "username".into(),
                    json!(format!("sim_{}", &tok.user_id[..6])),
                );
            }
            "" => {}
            other => {
                return graph_error(
                    400,
                    &format!("Tried accessing nonexisting field ({other}) on node type (User)"),
                    "IGApiException",
                    100,
                    None,
                    false,
                );
            }
        }
    }
    body.entry("id").or_insert_with(|| json!(tok.user_id));
    json_response(200, serde_json::Value::Object(body))
}

async fn exchange(State(sim): State<Sim>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(q.as_deref());
    let Some(token) = param(&q, "access_token") else {
        return missing_token();
    };
    if param(&q, "grant_type") != Some("ig_exchange_token") {
        return graph_error(
            400,
            "Unsupported grant_type. Set grant_type to ig_exchange_token.",
            "OAuthException",
            100,
            None,
            false,
        );
    }
    let secret = param(&q, "client_secret").unwrap_or("");
    let mut st = sim.lock();
    let now = st.now();
    let Some(tok) = st.instagram.tokens.get(token).cloned() else {
        return cannot_parse();
    };
    // The secret of the app the token was issued to; another app's secret is
    // refused like a wrong one. A token seeded without an app takes any
    // registered app's secret.
    let secret_ok = st.lenient
        || match &tok.app_id {
            Some(app) => st.instagram.apps.get(app).is_some_and(|s| s == secret),
            None => st.instagram.apps.values().any(|s| s == secret),
        };
    if !secret_ok {
        return graph_error(
            400,
            "Error validating client secret.",
            "OAuthException",
            1,
            None,
            false,
        );
    }
    if tok.expires_at <= now {
        return expired_error(tok.expires_at, now);
    }
    let new = new_token();
    st.instagram.tokens.insert(
        new.clone(),
        IgToken {
            issued_at: now,
            expires_at: now + SignedDuration::from_secs(LONG_LIVED_SECS),
            user_id: tok.user_id,
            long_lived: true,
            app_id: tok.app_id,
        },
    );
    json_response(
        200,
        json!({"access_token": new, "token_type": "bearer", "expires_in": LONG_LIVED_SECS}),
    )
}

fn legacy_error(message: &str) -> Response {
    json_response(
        400,
        json!({"error_type": "OAuthException", "code": 400, "error_message": message}),
    )
}

async fn authorize(State(sim): State<Sim>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(q.as_deref());
    let client_id = param(&q, "client_id").unwrap_or("");
    let known = {
        let st = sim.lock();
        st.lenient || st.instagram.apps.contains_key(client_id)
    };
    if !known {
        return legacy_error("Invalid platform app");
    }
    let Some(redirect) = param(&q, "redirect_uri") else {
        return legacy_error("Invalid redirect_uri");
    };
    if let Err(why) = oauth::check_redirect(
        &sim,
        "instagram",
        client_id,
        redirect,
        oauth::RedirectRule::HttpsOnly,
        false,
    ) {
        return legacy_error(&format!("Invalid redirect_uri: {why}"));
    }
    if param(&q, "response_type") != Some("code") {
        return legacy_error("Invalid response_type");
    }
    let grant = CodeGrant {
        provider: "instagram",
        client_id: client_id.to_string(),
        redirect_uri: param(&q, "redirect_uri").map(str::to_string),
        code_challenge: None,
        challenge_method: String::new(),
        hex_challenge: false,
        scope: param(&q, "scope").unwrap_or("").to_string(),
        offline: false,
        consent: false,
        expires_at: Timestamp::UNIX_EPOCH,
        used: false,
    };
    oauth::issue_and_redirect(&sim, "AQsim", grant, param(&q, "state"), &[], "#_")
}

async fn code_exchange(State(sim): State<Sim>, body: Bytes) -> Response {
    let f = parse_form(&body);
    let (Some(client_id), Some(code)) = (param(&f, "client_id"), param(&f, "code")) else {
        return legacy_error("Missing required field client_id or code");
    };
    if param(&f, "grant_type") != Some("authorization_code") {
        return legacy_error("Invalid grant_type");
    }
    let secret = param(&f, "client_secret").unwrap_or("");
    {
        let st = sim.lock();
        let ok = match st.instagram.apps.get(client_id) {
            Some(s) => s == secret,
            None => st.lenient,
        };
        if !ok {
            return legacy_error("Error validating client secret.");
        }
    }
    // The code is redeemed as sent: Meta appends `#_` to the redirect and says
    // the client must strip it; a code still carrying it is not a valid code.
    match oauth::redeem(
        &sim,
        "instagram",
        code,
        client_id,
        param(&f, "redirect_uri"),
        None,
    ) {
        Ok(grant) => {
            let token = new_token();
            let uid = user_id();
            let mut st = sim.lock();
            let now = st.now();
            st.instagram.tokens.insert(
                token.clone(),
                IgToken {
                    issued_at: now,
                    expires_at: now + SignedDuration::from_secs(SHORT_LIVED_SECS),
                    user_id: uid.clone(),
                    long_lived: false,
                    app_id: Some(client_id.to_string()),
                },
            );
            json_response(
                200,
                json!({"data": [{"access_token": token, "user_id": uid, "permissions": grant.scope}]}),
            )
        }
        Err(CodeError::RedirectMismatch) => legacy_error(
            "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
        ),
        Err(_) => legacy_error("Matching code was not found or was already used"),
    }
}

// ------------------------------------------------------------ registry

#[allow(non_upper_case_globals)]
impl crate::Route {
    /// The token routes: refresh, exchange, authorize and code exchange.
    pub const Instagram: crate::Route = crate::Route("instagram");
    /// Instagram's read-only `GET /me` (the token check after a refused refresh),
    /// kept apart so a fault can hit the check without the refresh, or the reverse.
    pub const InstagramMe: crate::Route = crate::Route("instagram_me");
}

pub(crate) type ProviderState = IgState;

pub(crate) const PROVIDER: crate::registry::Provider = crate::registry::Provider {
    routes: &[(crate::Route::Instagram, &[]), (crate::Route::InstagramMe, &[])],
    owns: |path| match path {
        "/refresh_access_token"
        | "/access_token"
        | "/oauth/authorize"
        | "/oauth/authorize/"
        | "/oauth/access_token" => Some(crate::Route::Instagram),
        "/me" => Some(crate::Route::InstagramMe),
        _ => None,
    },
    router: routes,
    wrap: None,
    errors: ERRORS,
};

/// Graph's error envelopes, also Threads' (graph.threads.net).
const ERRORS: crate::registry::Errors = crate::registry::Errors {
    status: |_, code| match code {
        429 => graph_error(
            429,
            "Application request limit reached",
            "OAuthException",
            4,
            None,
            true,
        ),
        401 | 403 => graph_error(code, INVALID_TOKEN, "OAuthException", 190, None, false),
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
    too_many_requests: None,
    throttled: Some(|_, status, code, transient| {
        graph_error(
            status,
            throttle_message(code),
            "OAuthException",
            code,
            None,
            transient,
        )
    }),
    invalid_grant: Some(|ctx| expired_error(ctx.now, ctx.now)),
    invalid_client: Some(|_| {
        graph_error(
            400,
            "Error validating client secret.",
            "OAuthException",
            1,
            None,
            false,
        )
    }),
    unauthorized: |_| graph_error(400, INVALID_TOKEN, "OAuthException", 190, None, false),
    echo: |_, message| graph_error(400, message, "OAuthException", 190, None, false),
    not_found: Some(|ctx| {
        if ctx.route == crate::Route::Instagram {
            graph_error(
                400,
                "Unsupported get request.",
                "GraphMethodException",
                100,
                Some(33),
                false,
            )
        } else {
            json_response(404, json!({"message": "Not Found"}))
        }
    }),
};

const INVALID_TOKEN: &str = "Invalid OAuth access token - Cannot parse access token";

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
