//! Threads API (graph.threads.net): login, short → long-lived exchange, and the
//! in-place refresh of long-lived tokens.
//!
//! Owns Threads apps and tokens and the `/_sim/threads/...` control routes. Threads
//! uses the same paths as Instagram (`/refresh_access_token`, `/access_token`,
//! `/oauth/authorize`, `/oauth/access_token`) on another host; the simulator serves
//! both on one host, so [`dispatch`] (a layer in front of the router) sends a request
//! here when it is a Threads one — `grant_type=th_refresh_token` /
//! `th_exchange_token`, a Threads app's `client_id`, a `threads_*` scope, or a code
//! issued by the Threads authorize endpoint — and leaves every other request to
//! `instagram.rs` untouched. The versioned paths (`/v1.0/...`) are Threads-only.
//! It must never refresh a token younger than 24 hours or an expired one, and never
//! redirect to a URI that is not `https` and registered exactly.
//!
//! Docs checked:
//! - <https://developers.facebook.com/docs/threads/get-started/long-lived-tokens/>:
//!   short-lived user tokens last one hour; `GET /access_token?grant_type=th_exchange_token
//!   &client_secret=…&access_token=…` answers `{access_token, token_type:"bearer",
//!   expires_in}` with a 60-day token; `GET /refresh_access_token?grant_type=
//!   th_refresh_token&access_token=…` refreshes a long-lived token that is "at least
//!   24 hours old but [has] not expired", valid 60 days from the refresh.
//! - <https://developers.facebook.com/docs/threads/get-started/get-access-tokens-and-permissions>
//!   (via <https://developers.facebook.com/documentation/threads/get-started>):
//!   authorize at `https://threads.net/oauth/authorize` (`client_id`, `redirect_uri`,
//!   `scope=threads_basic,…`, `response_type=code`, `state`), the redirect carries
//!   `code` with a trailing `#_`; `POST /oauth/access_token` (form: `client_id`,
//!   `client_secret`, `code`, `grant_type=authorization_code`, `redirect_uri`, which
//!   "must be the same URI or the request will be rejected") answers
//!   `{access_token, user_id}`. Meta only accepts `https` redirect URIs registered in
//!   the app dashboard.
//! - Errors use the Graph API envelope `{"error":{"message","type","code",
//!   "error_subcode"?,"fbtrace_id"}}` (same as Instagram, see `instagram.rs`).
//!
//! Where the docs are silent (the simulator's choice, shared with `instagram.rs`): the
//! body for a token younger than 24 hours (400 `OAuthException` code 10, the message
//! says it must be at least 24 hours old; the message is the stable part); an unknown
//! token is code 190 "Invalid OAuth access token - Cannot parse access token"; an
//! expired one code 190 subcode 463; a redirect mismatch at the code exchange is code
//! 100 subcode 36008 with Meta's "Error validating verification code" message.
//! `GET /v1.0/me` answers `{"id"}` only (the fields a token check needs).

use std::collections::HashMap;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::json;

use crate::oauth::{self, CodeError, CodeGrant};
use crate::state::Sim;
use crate::util::{alnum, graph_error, json_response, param, parse_form, parse_query};

/// 60 days, the lifetime of a long-lived token.
const LONG_LIVED_SECS: i64 = 60 * 86_400;
const SHORT_LIVED_SECS: i64 = 3600;
const MIN_AGE: SignedDuration = SignedDuration::from_hours(24);
const CODE_PREFIX: &str = "sim-th-code-";
const BODY_LIMIT: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub(crate) struct ThToken {
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub user_id: String,
    pub long_lived: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct ThApp {
    pub secret: String,
    pub redirect_uris: Vec<String>,
}

#[derive(Default)]
pub(crate) struct ThreadsState {
    pub apps: HashMap<String, ThApp>,
    pub tokens: HashMap<String, ThToken>,
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/v1.0/refresh_access_token", get(refresh))
        .route("/v1.0/access_token", get(exchange))
        .route("/v1.0/oauth/access_token", post(code_exchange))
        .route("/v1.0/me", get(me))
        .route("/_sim/threads/app", post(ctl_app))
        .route("/_sim/threads/token", post(ctl_token).get(ctl_token_get))
}

impl Sim {
    /// Registers a Threads app (its Threads app id and secret) with the `https`
    /// redirect URIs allowed for its login (exact match).
    pub fn threads_add_app(&self, app_id: &str, app_secret: &str, redirect_uris: &[&str]) {
        self.lock().threads.apps.insert(
            app_id.to_string(),
            ThApp {
                secret: app_secret.to_string(),
                redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
            },
        );
    }

    /// Seeds a long-lived Threads user token.
    pub fn threads_add_token(&self, token: &str, issued_at: Timestamp, expires_at: Timestamp) {
        self.lock().threads.tokens.insert(
            token.to_string(),
            ThToken {
                issued_at,
                expires_at,
                user_id: user_id(),
                long_lived: true,
            },
        );
    }

    /// Whether `token` is known and unexpired at the simulator's clock.
    pub fn threads_is_valid(&self, token: &str) -> bool {
        let st = self.lock();
        let now = st.now();
        st.threads
            .tokens
            .get(token)
            .is_some_and(|t| t.expires_at > now)
    }

    /// The expiry of a known Threads token.
    pub fn threads_expires_at(&self, token: &str) -> Option<Timestamp> {
        self.lock().threads.tokens.get(token).map(|t| t.expires_at)
    }
}

fn new_token() -> String {
    format!("sim-th-{}", alnum(48))
}

fn user_id() -> String {
    let n: u64 = rand::random::<u64>() % 9_000_000_000_000_000 + 1_000_000_000_000_000;
    n.to_string()
}

// ------------------------------------------------------------------ dispatch

/// Whether a request on one of the paths Threads shares with Instagram is a
/// Threads request.
fn is_threads(sim: &Sim, path: &str, q: &HashMap<String, String>) -> bool {
    match path {
        "/refresh_access_token" => param(q, "grant_type") == Some("th_refresh_token"),
        "/access_token" => param(q, "grant_type") == Some("th_exchange_token"),
        "/oauth/authorize" | "/oauth/authorize/" => {
            let st = sim.lock();
            param(q, "client_id").is_some_and(|c| st.threads.apps.contains_key(c))
                || param(q, "scope").is_some_and(|s| s.contains("threads_"))
        }
        "/oauth/access_token" => {
            let st = sim.lock();
            param(q, "client_id").is_some_and(|c| st.threads.apps.contains_key(c))
                || param(q, "code").is_some_and(|c| c.starts_with(CODE_PREFIX))
        }
        _ => false,
    }
}

/// The layer that sends Threads requests on Instagram's paths here. Every other
/// request passes through unchanged.
async fn dispatch(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let shared = matches!(
        path.as_str(),
        "/refresh_access_token"
            | "/access_token"
            | "/oauth/authorize"
            | "/oauth/authorize/"
            | "/oauth/access_token"
    );
    if !shared {
        return next.run(req).await;
    }
    let query = req.uri().query().map(str::to_string);
    if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
        };
        if is_threads(&sim, &path, &parse_form(&bytes)) {
            return code_answer(&sim, &bytes);
        }
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    }
    let q = parse_query(query.as_deref());
    if !is_threads(&sim, &path, &q) {
        return next.run(req).await;
    }
    match path.as_str() {
        "/refresh_access_token" => refresh_answer(&sim, &q),
        "/access_token" => exchange_answer(&sim, &q),
        _ => authorize_answer(&sim, &q),
    }
}

// ------------------------------------------------------------------ handlers

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
        "An access token is required to request this resource.",
        "OAuthException",
        104,
        None,
        false,
    )
}

fn unsupported_grant(expected: &str) -> Response {
    graph_error(
        400,
        &format!("Unsupported grant_type. Set grant_type to {expected}."),
        "OAuthException",
        100,
        None,
        false,
    )
}

async fn refresh(
    State(sim): State<Sim>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    refresh_answer(&sim, &parse_query(q.as_deref()))
}

fn refresh_answer(sim: &Sim, q: &HashMap<String, String>) -> Response {
    let Some(token) = param(q, "access_token") else {
        return missing_token();
    };
    if param(q, "grant_type") != Some("th_refresh_token") {
        return unsupported_grant("th_refresh_token");
    }
    let mut st = sim.lock();
    let now = st.now();
    let tok = match st.threads.tokens.get(token) {
        Some(t) => t.clone(),
        None if st.lenient => {
            let t = ThToken {
                issued_at: now - SignedDuration::from_hours(30 * 24),
                expires_at: now + SignedDuration::from_hours(30 * 24),
                user_id: user_id(),
                long_lived: true,
            };
            st.threads.tokens.insert(token.to_string(), t.clone());
            t
        }
        None => return cannot_parse(),
    };
    if tok.expires_at <= now {
        return crate::instagram::expired_error(tok.expires_at, now);
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
        return graph_error(
            400,
            "The access token can not be refreshed yet: a long-lived token must be at least 24 hours old to be refreshed.",
            "OAuthException",
            10,
            None,
            false,
        );
    }
    let new = new_token();
    st.threads.tokens.insert(
        new.clone(),
        ThToken {
            issued_at: now,
            expires_at: now + SignedDuration::from_secs(LONG_LIVED_SECS),
            user_id: tok.user_id,
            long_lived: true,
        },
    );
    json_response(
        200,
        json!({"access_token": new, "token_type": "bearer", "expires_in": LONG_LIVED_SECS}),
    )
}

async fn exchange(
    State(sim): State<Sim>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    exchange_answer(&sim, &parse_query(q.as_deref()))
}

fn exchange_answer(sim: &Sim, q: &HashMap<String, String>) -> Response {
    let Some(token) = param(q, "access_token") else {
        return missing_token();
    };
    if param(q, "grant_type") != Some("th_exchange_token") {
        return unsupported_grant("th_exchange_token");
    }
    let secret = param(q, "client_secret").unwrap_or("");
    let mut st = sim.lock();
    let now = st.now();
    let secret_ok = st.lenient || st.threads.apps.values().any(|a| a.secret == secret);
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
    let Some(tok) = st.threads.tokens.get(token).cloned() else {
        return cannot_parse();
    };
    if tok.expires_at <= now {
        return crate::instagram::expired_error(tok.expires_at, now);
    }
    let new = new_token();
    st.threads.tokens.insert(
        new.clone(),
        ThToken {
            issued_at: now,
            expires_at: now + SignedDuration::from_secs(LONG_LIVED_SECS),
            user_id: tok.user_id,
            long_lived: true,
        },
    );
    json_response(
        200,
        json!({"access_token": new, "token_type": "bearer", "expires_in": LONG_LIVED_SECS}),
    )
}

/// The authorize dialog refuses (an error page, no redirect) an unknown app and
/// a redirect URI that is not `https` or not registered exactly.
fn dialog_error(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "text/plain; charset=utf-8")],
        format!("Error: {message}"),
    )
        .into_response()
}

fn authorize_answer(sim: &Sim, q: &HashMap<String, String>) -> Response {
    let client_id = param(q, "client_id").unwrap_or("");
    let Some(redirect) = param(q, "redirect_uri") else {
        return dialog_error("redirect_uri is required.");
    };
    let app = {
        let st = sim.lock();
        match st.threads.apps.get(client_id) {
            Some(a) => Some(a.clone()),
            None if st.lenient => Some(ThApp {
                secret: String::new(),
                redirect_uris: vec![redirect.to_string()],
            }),
            None => None,
        }
    };
    let Some(app) = app else {
        return dialog_error("Invalid platform app.");
    };
    let https = url::Url::parse(redirect).is_ok_and(|u| u.scheme() == "https");
    if !https || !app.redirect_uris.iter().any(|r| r == redirect) {
        return dialog_error(
            "URL blocked: this redirect failed because the redirect URI is not whitelisted in the app's client OAuth settings.",
        );
    }
    if param(q, "response_type") != Some("code") {
        return oauth::redirect_error(
            redirect,
            "invalid_request",
            "response_type must be code",
            param(q, "state"),
        );
    }
    let grant = CodeGrant {
        provider: "threads",
        client_id: client_id.to_string(),
        redirect_uri: Some(redirect.to_string()),
        code_challenge: None,
        challenge_method: String::new(),
        hex_challenge: false,
        scope: param(q, "scope").unwrap_or("threads_basic").to_string(),
        offline: false,
        consent: false,
        expires_at: Timestamp::UNIX_EPOCH,
        used: false,
    };
    oauth::issue_and_redirect(sim, CODE_PREFIX, grant, param(q, "state"), &[], "#_")
}

async fn code_exchange(State(sim): State<Sim>, body: Bytes) -> Response {
    code_answer(&sim, &body)
}

fn code_answer(sim: &Sim, body: &[u8]) -> Response {
    let f = parse_form(body);
    let (Some(client_id), Some(code)) = (param(&f, "client_id"), param(&f, "code")) else {
        return graph_error(
            400,
            "Missing required parameter client_id or code.",
            "OAuthException",
            100,
            None,
            false,
        );
    };
    if param(&f, "grant_type") != Some("authorization_code") {
        return unsupported_grant("authorization_code");
    }
    let Some(redirect) = param(&f, "redirect_uri") else {
        return graph_error(
            400,
            "Missing redirect_uri parameter.",
            "OAuthException",
            191,
            None,
            false,
        );
    };
    let secret = param(&f, "client_secret").unwrap_or("");
    {
        let st = sim.lock();
        let ok = match st.threads.apps.get(client_id) {
            Some(a) => a.secret == secret,
            None => st.lenient,
        };
        if !ok {
            return graph_error(
                400,
                "Error validating client secret.",
                "OAuthException",
                1,
                None,
                false,
            );
        }
    }
    let code = code.trim_end_matches("#_");
    match oauth::redeem(sim, "threads", code, client_id, Some(redirect), None) {
        Ok(_) => {
            let token = new_token();
            let uid = user_id();
            let mut st = sim.lock();
            let now = st.now();
            st.threads.tokens.insert(
                token.clone(),
                ThToken {
                    issued_at: now,
                    expires_at: now + SignedDuration::from_secs(SHORT_LIVED_SECS),
                    user_id: uid.clone(),
                    long_lived: false,
                },
            );
            json_response(200, json!({"access_token": token, "user_id": uid}))
        }
        Err(CodeError::RedirectMismatch) => graph_error(
            400,
            "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
            "OAuthException",
            100,
            Some(36008),
            false,
        ),
        Err(_) => graph_error(
            400,
            "This authorization code has been used or has expired.",
            "OAuthException",
            100,
            Some(36007),
            false,
        ),
    }
}

/// `GET /v1.0/me?fields=id&access_token=…`: the token's user, read-only
/// (<https://developers.facebook.com/docs/threads/threads-profiles>). A short-lived
/// token works too; an unknown token is code 190, an expired one 190/463.
async fn me(
    State(sim): State<Sim>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let q = parse_query(q.as_deref());
    let Some(token) = param(&q, "access_token") else {
        return missing_token();
    };
    let st = sim.lock();
    let now = st.now();
    let Some(tok) = st.threads.tokens.get(token) else {
        return cannot_parse();
    };
    if tok.expires_at <= now {
        return crate::instagram::expired_error(tok.expires_at, now);
    }
    json_response(200, json!({"id": tok.user_id}))
}

// ------------------------------------------------------------- control routes

#[derive(Deserialize)]
struct CtlApp {
    app_id: String,
    app_secret: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

#[derive(Deserialize)]
struct CtlToken {
    token: String,
    issued_at: Timestamp,
    expires_at: Timestamp,
}

/// `POST /_sim/threads/app` `{"app_id","app_secret","redirect_uris":[…]}`.
async fn ctl_app(State(sim): State<Sim>, axum::Json(b): axum::Json<CtlApp>) -> Response {
    let uris: Vec<&str> = b.redirect_uris.iter().map(String::as_str).collect();
    sim.threads_add_app(&b.app_id, &b.app_secret, &uris);
    json_response(200, json!({"ok": true}))
}

/// `POST /_sim/threads/token` `{"token","issued_at","expires_at"}` (RFC 3339).
async fn ctl_token(State(sim): State<Sim>, axum::Json(b): axum::Json<CtlToken>) -> Response {
    sim.threads_add_token(&b.token, b.issued_at, b.expires_at);
    json_response(200, json!({"ok": true}))
}

/// `GET /_sim/threads/token?token=…`: `{"valid","expires_at"}`.
async fn ctl_token_get(
    State(sim): State<Sim>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let q = parse_query(q.as_deref());
    let Some(t) = param(&q, "token") else {
        return json_response(400, json!({"error": "missing `token`"}));
    };
    json_response(
        200,
        json!({
            "valid": sim.threads_is_valid(t),
            "expires_at": sim.threads_expires_at(t).map(|e| e.to_string()),
        }),
    )
}

// ------------------------------------------------------------ registry

pub(crate) type ProviderState = ThreadsState;

/// Threads has no route of its own: its requests count and fail as
/// `Route::Instagram` (graph.threads.net shares Instagram's Graph error shapes).
pub(crate) const PROVIDER: crate::registry::Provider = crate::registry::Provider {
    owns: |path| {
        matches!(
            path,
            "/v1.0/refresh_access_token" | "/v1.0/access_token" | "/v1.0/oauth/access_token"
        )
        .then_some(crate::Route::Instagram)
    },
    router: routes,
    wrap: Some(|router, sim| router.layer(axum::middleware::from_fn_with_state(sim, dispatch))),
    ..crate::registry::Provider::ROUTES_ONLY
};
