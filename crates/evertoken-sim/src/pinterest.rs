//! Pinterest API v5 OAuth: authorization code, continuous (rotating) refresh
//! tokens, and legacy refresh tokens with a fixed expiry.
//!
//! Owns Pinterest apps, codes (through [`crate::oauth`]), tokens, the legacy knob and
//! the `/_sim/pinterest/...` control routes. It must never accept a token request
//! without the app's Basic credentials, a rotated-away or expired refresh token, or a
//! redirect URI that is not `https` and registered exactly.
//!
//! Docs checked:
//! - <https://developers.pinterest.com/docs/getting-started/authentication-and-scopes/>
//!   and the generated client's reference
//!   <https://github.com/pinterest/pinterest-python-generated-api-client/blob/main/docs/OauthApi.md>:
//!   authorize at `https://www.pinterest.com/oauth/` (`client_id`, `redirect_uri`,
//!   `response_type=code`, `scope`, `state`); `POST https://api.pinterest.com/v5/oauth/token`
//!   with HTTP Basic `app_id:app_secret`, form `grant_type=authorization_code` (`code`,
//!   `redirect_uri`) or `grant_type=refresh_token` (`refresh_token`, optional `scope`,
//!   `continuous_refresh`); answer `{access_token, token_type:"bearer", expires_in,
//!   scope, refresh_token, refresh_token_expires_in, refresh_token_expires_at,
//!   response_type}`; access tokens last 30 days. The same reference: "Parameter
//!   refresh_on and its corresponding response type everlasting_refresh are now
//!   available to all apps": the simulator takes `refresh_on=true` or
//!   `continuous_refresh=true`, and a refresh that returns a new refresh token says
//!   `response_type: "everlasting_refresh"` (a legacy one, `refresh_token`).
//! - Continuous refresh (announced in Pinterest's changelog, quoted in
//!   <https://github.com/pinterest/pinterest-python-sdk/issues/156>): "continuous refresh
//!   tokens (60-day expiration, refreshable indefinitely) as the sole refresh option",
//!   replacing "the legacy refresh token (365-day expiration, hard limit)". A refresh
//!   with continuous refresh returns a new refresh token; the simulator makes the
//!   previous one stop working at once.
//! - Errors are `{"code": <int>, "message": <text>}`; an invalid grant is
//!   `{"code":283,"message":"The authorization grant is invalid"}` on HTTP 401
//!   (<https://github.com/pinterest/pinterest-python-sdk/issues/114>); failed client
//!   authentication `{"code":2,"message":"Authentication failed."}` (401).
//!
//! Where the docs are silent (the simulator's choice): a legacy refresh (a legacy
//! token, or any token while [`Sim::pinterest_set_legacy`] is on, which models an app
//! not enrolled in continuous refresh) returns a new access token and no
//! `refresh_token`, and the legacy token keeps its fixed expiry; with the legacy knob
//! off, `continuous_refresh=true` turns a legacy token into a continuous one; an
//! invalid code or redirect mismatch is also code 283; a missing parameter is 400
//! `{"code":1,"message":"…"}`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::json;

use crate::oauth::{self, CodeGrant};
use crate::state::Sim;
use crate::util::{alnum, basic_auth, json_response, param, parse_form, parse_query};

/// 30 days.
const ACCESS_SECS: i64 = 30 * 86_400;
/// 60 days, a continuous refresh token.
const CONTINUOUS_SECS: i64 = 60 * 86_400;
/// 365 days, a legacy refresh token (fixed, never extended).
const LEGACY_SECS: i64 = 365 * 86_400;
const DEFAULT_SCOPE: &str = "boards:read,pins:read,pins:write,user_accounts:read";
pub(crate) const INVALID_GRANT: &str = "The authorization grant is invalid";

#[derive(Clone, Debug)]
pub(crate) struct PinApp {
    pub secret: String,
    pub redirect_uris: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PinRtStatus {
    Live,
    RotatedAway,
    Revoked,
}

#[derive(Clone, Debug)]
pub(crate) struct PinRt {
    pub app_id: String,
    pub scope: String,
    pub expires_at: Timestamp,
    pub continuous: bool,
    pub status: PinRtStatus,
}

#[derive(Default)]
pub(crate) struct PinterestState {
    pub apps: HashMap<String, PinApp>,
    pub refresh_tokens: HashMap<String, PinRt>,
    /// Access token → expiry.
    pub access_tokens: HashMap<String, Timestamp>,
    /// Issue legacy refresh tokens and ignore `continuous_refresh`.
    pub legacy: bool,
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/oauth/", get(authorize))
        .route("/v5/oauth/token", post(token))
        .route("/_sim/pinterest/app", post(ctl_app))
        .route(
            "/_sim/pinterest/refresh_token",
            post(ctl_rt).get(ctl_rt_get),
        )
        .route("/_sim/pinterest/legacy", post(ctl_legacy))
}

impl Sim {
    /// Registers a Pinterest app with its `https` redirect URIs (exact match).
    pub fn pinterest_add_app(&self, app_id: &str, app_secret: &str, redirect_uris: &[&str]) {
        self.lock().pinterest.apps.insert(
            app_id.to_string(),
            PinApp {
                secret: app_secret.to_string(),
                redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
            },
        );
    }

    /// Seeds a refresh token: `continuous` (rotates, 60-day sliding expiry) or
    /// legacy (fixed expiry, never rotated).
    pub fn pinterest_add_refresh_token(
        &self,
        app_id: &str,
        refresh_token: &str,
        expires_at: Timestamp,
        continuous: bool,
    ) {
        self.lock().pinterest.refresh_tokens.insert(
            refresh_token.to_string(),
            PinRt {
                app_id: app_id.to_string(),
                scope: DEFAULT_SCOPE.to_string(),
                expires_at,
                continuous,
                status: PinRtStatus::Live,
            },
        );
    }

    /// Legacy mode: codes yield legacy (365-day, fixed) refresh tokens and a
    /// refresh never rotates, whatever `continuous_refresh` says.
    pub fn pinterest_set_legacy(&self, legacy: bool) {
        self.lock().pinterest.legacy = legacy;
    }

    /// Whether `refresh_token` would be accepted now.
    pub fn pinterest_is_live(&self, refresh_token: &str) -> bool {
        let st = self.lock();
        let now = st.now();
        st.pinterest
            .refresh_tokens
            .get(refresh_token)
            .is_some_and(|r| r.status == PinRtStatus::Live && r.expires_at > now)
    }

    /// The expiry of a known refresh token.
    pub fn pinterest_refresh_expires_at(&self, refresh_token: &str) -> Option<Timestamp> {
        self.lock()
            .pinterest
            .refresh_tokens
            .get(refresh_token)
            .map(|r| r.expires_at)
    }

    /// Revokes a refresh token (the user disconnected the app).
    pub fn pinterest_revoke(&self, refresh_token: &str) {
        if let Some(r) = self.lock().pinterest.refresh_tokens.get_mut(refresh_token) {
            r.status = PinRtStatus::Revoked;
        }
    }

    /// Whether an access token issued by the simulator is unexpired.
    pub fn pinterest_access_token_valid(&self, access_token: &str) -> bool {
        let st = self.lock();
        let now = st.now();
        st.pinterest
            .access_tokens
            .get(access_token)
            .is_some_and(|e| *e > now)
    }
}

fn pin_error(status: u16, code: u32, message: &str) -> Response {
    json_response(status, json!({"code": code, "message": message}))
}

fn auth_failed() -> Response {
    pin_error(401, 2, "Authentication failed.")
}

fn invalid_grant() -> Response {
    pin_error(401, 283, INVALID_GRANT)
}

fn missing(name: &str) -> Response {
    pin_error(400, 1, &format!("Missing request body parameter: {name}"))
}

/// Issues an access token; `refresh` is the refresh token to return with its
/// expiry (`None`: a legacy refresh, which returns none).
fn answer(
    st: &mut crate::state::State,
    scope: &str,
    refresh: Option<(String, Timestamp)>,
    response_type: &str,
) -> Response {
    let now = st.now();
    let at = format!("pina_sim-{}", alnum(64));
    st.pinterest
        .access_tokens
        .insert(at.clone(), now + SignedDuration::from_secs(ACCESS_SECS));
    let mut body = json!({
        "access_token": at,
        "token_type": "bearer",
        "expires_in": ACCESS_SECS,
        "scope": scope,
        "response_type": response_type,
    });
    if let Some((rt, exp)) = refresh {
        body["refresh_token"] = json!(rt);
        body["refresh_token_expires_in"] = json!(exp.duration_since(now).as_secs());
        body["refresh_token_expires_at"] = json!(exp.as_second());
    }
    json_response(200, body)
}

fn new_rt(
    st: &mut crate::state::State,
    app_id: &str,
    scope: &str,
    continuous: bool,
) -> (String, Timestamp) {
    let now = st.now();
    let secs = if continuous {
        CONTINUOUS_SECS
    } else {
        LEGACY_SECS
    };
    let rt = format!("pinr.sim-{}", alnum(64));
    let exp = now + SignedDuration::from_secs(secs);
    st.pinterest.refresh_tokens.insert(
        rt.clone(),
        PinRt {
            app_id: app_id.to_string(),
            scope: scope.to_string(),
            expires_at: exp,
            continuous,
            status: PinRtStatus::Live,
        },
    );
    (rt, exp)
}

async fn token(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let f = parse_form(&body);
    let mut st = sim.lock();
    let now = st.now();
    let Some((app_id, secret)) = basic_auth(&headers) else {
        return auth_failed();
    };
    match st.pinterest.apps.get(&app_id) {
        Some(a) if a.secret == secret => {}
        None if st.lenient => {
            st.pinterest.apps.insert(
                app_id.clone(),
                PinApp {
                    secret,
                    redirect_uris: Vec::new(),
                },
            );
        }
        _ => return auth_failed(),
    }
    match param(&f, "grant_type") {
        Some("refresh_token") => {
            let Some(rt) = param(&f, "refresh_token") else {
                return missing("refresh_token");
            };
            let lenient = st.lenient;
            let entry = match st.pinterest.refresh_tokens.get(rt) {
                Some(e) => e.clone(),
                None if lenient => {
                    let e = PinRt {
                        app_id: app_id.clone(),
                        scope: DEFAULT_SCOPE.to_string(),
                        expires_at: now + SignedDuration::from_secs(CONTINUOUS_SECS),
                        continuous: true,
                        status: PinRtStatus::Live,
                    };
                    st.pinterest
                        .refresh_tokens
                        .insert(rt.to_string(), e.clone());
                    e
                }
                None => return invalid_grant(),
            };
            match entry.status {
                PinRtStatus::RotatedAway => {
                    st.reused_rotated_tokens += 1;
                    return invalid_grant();
                }
                PinRtStatus::Revoked => return invalid_grant(),
                PinRtStatus::Live => {}
            }
            if entry.expires_at <= now || entry.app_id != app_id {
                return invalid_grant();
            }
            // A narrower scope may be asked for; never a wider one.
            let scope = match param(&f, "scope") {
                Some(s) => {
                    let granted: Vec<&str> = entry.scope.split(',').collect();
                    if s.split(',').any(|x| !granted.contains(&x.trim())) {
                        return pin_error(400, 1, "Requested scope exceeds the granted scope.");
                    }
                    s.to_string()
                }
                None => entry.scope.clone(),
            };
            // The OpenAPI spec names the field `refresh_on`; SDKs and older docs
            // `continuous_refresh`: either asks for continuous refresh.
            let asks_continuous = ["refresh_on", "continuous_refresh"]
                .iter()
                .any(|k| param(&f, k) == Some("true"));
            let rotates = !st.pinterest.legacy && (entry.continuous || asks_continuous);
            if !rotates {
                return answer(&mut st, &scope, None, "refresh_token");
            }
            if let Some(e) = st.pinterest.refresh_tokens.get_mut(rt) {
                e.status = PinRtStatus::RotatedAway;
            }
            st.rotations += 1;
            let next = new_rt(&mut st, &app_id, &entry.scope, true);
            answer(&mut st, &scope, Some(next), "everlasting_refresh")
        }
        Some("authorization_code") => {
            let Some(code) = param(&f, "code").map(str::to_string) else {
                return missing("code");
            };
            let Some(redirect) = param(&f, "redirect_uri").map(str::to_string) else {
                return missing("redirect_uri");
            };
            drop(st);
            let r = oauth::redeem(&sim, "pinterest", &code, &app_id, Some(&redirect), None);
            let mut st = sim.lock();
            match r {
                Ok(g) => {
                    let continuous = !st.pinterest.legacy;
                    let next = new_rt(&mut st, &app_id, &g.scope, continuous);
                    answer(&mut st, &g.scope, Some(next), "authorization_code")
                }
                Err(_) => invalid_grant(),
            }
        }
        Some(_) => pin_error(400, 1, "Invalid grant_type."),
        None => missing("grant_type"),
    }
}

/// Pinterest's consent page refuses an unknown app or a redirect URI that is not
/// `https` and registered exactly (no redirect happens).
fn consent_error(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "text/plain; charset=utf-8")],
        message.to_string(),
    )
        .into_response()
}

async fn authorize(State(sim): State<Sim>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(q.as_deref());
    let client_id = param(&q, "client_id").unwrap_or("");
    let Some(redirect) = param(&q, "redirect_uri") else {
        return consent_error("redirect_uri is required");
    };
    let app = {
        let st = sim.lock();
        match st.pinterest.apps.get(client_id) {
            Some(a) => Some(a.clone()),
            None if st.lenient => Some(PinApp {
                secret: String::new(),
                redirect_uris: vec![redirect.to_string()],
            }),
            None => None,
        }
    };
    let Some(app) = app else {
        return consent_error("Invalid client_id");
    };
    let https = url::Url::parse(redirect).is_ok_and(|u| u.scheme() == "https");
    if !https || !app.redirect_uris.iter().any(|r| r == redirect) {
        return consent_error(
            "Invalid redirect_uri: it must match a redirect URI registered for the app",
        );
    }
    if param(&q, "response_type") != Some("code") {
        return oauth::redirect_error(
            redirect,
            "unsupported_response_type",
            "response_type must be code",
            param(&q, "state"),
        );
    }
    let grant = CodeGrant {
        provider: "pinterest",
        client_id: client_id.to_string(),
        redirect_uri: Some(redirect.to_string()),
        code_challenge: None,
        challenge_method: String::new(),
        hex_challenge: false,
        scope: param(&q, "scope").unwrap_or(DEFAULT_SCOPE).to_string(),
        offline: true,
        consent: true,
        expires_at: Timestamp::UNIX_EPOCH,
        used: false,
    };
    oauth::issue_and_redirect(&sim, "sim-pin-code-", grant, param(&q, "state"), &[], "")
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
struct CtlRt {
    app_id: String,
    refresh_token: String,
    expires_at: Timestamp,
    #[serde(default = "yes")]
    continuous: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct CtlLegacy {
    legacy: bool,
}

/// `POST /_sim/pinterest/app` `{"app_id","app_secret","redirect_uris":[…]}`.
async fn ctl_app(State(sim): State<Sim>, axum::Json(b): axum::Json<CtlApp>) -> Response {
    let uris: Vec<&str> = b.redirect_uris.iter().map(String::as_str).collect();
    sim.pinterest_add_app(&b.app_id, &b.app_secret, &uris);
    json_response(200, json!({"ok": true}))
}

/// `POST /_sim/pinterest/refresh_token`
/// `{"app_id","refresh_token","expires_at","continuous"?:true}`.
async fn ctl_rt(State(sim): State<Sim>, axum::Json(b): axum::Json<CtlRt>) -> Response {
    sim.pinterest_add_refresh_token(&b.app_id, &b.refresh_token, b.expires_at, b.continuous);
    json_response(200, json!({"ok": true}))
}

/// `GET /_sim/pinterest/refresh_token?refresh_token=…`: `{"live","expires_at"}`.
async fn ctl_rt_get(State(sim): State<Sim>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(q.as_deref());
    let Some(t) = param(&q, "refresh_token") else {
        return json_response(400, json!({"error": "missing `refresh_token`"}));
    };
    json_response(
        200,
        json!({
            "live": sim.pinterest_is_live(t),
            "expires_at": sim.pinterest_refresh_expires_at(t).map(|e| e.to_string()),
        }),
    )
}

/// `POST /_sim/pinterest/legacy` `{"legacy":true}`.
async fn ctl_legacy(State(sim): State<Sim>, axum::Json(b): axum::Json<CtlLegacy>) -> Response {
    sim.pinterest_set_legacy(b.legacy);
    json_response(200, json!({"ok": true}))
}

// ------------------------------------------------------------ injected faults

/// The body of an injected HTTP error on Pinterest's OAuth routes: always
/// Pinterest's `{"code","message"}`. Which `code` Pinterest puts in a 429 or 5xx
/// answer is not documented; the simulator uses 8 ("rate limit") and 0.
fn fault_status(code: u16) -> Response {
    match code {
        401 => auth_failed(),
        429 => pin_error(429, 8, "Rate limit exceeded. Please try again later."),
        c if c >= 500 => pin_error(c, 0, crate::util::reason(c)),
        c => pin_error(c, 1, crate::util::reason(c)),
    }
}

/// An injected dead-grant answer (code 283).
fn fault_invalid_grant() -> Response {
    invalid_grant()
}

/// An injected client-authentication failure (code 2).
fn fault_unauthorized() -> Response {
    auth_failed()
}

// ------------------------------------------------------------ registry

#[allow(non_upper_case_globals)]
impl crate::Route {
    /// Pinterest's token endpoint and authorize page.
    pub const Pinterest: crate::Route = crate::Route("pinterest");
}

pub(crate) type ProviderState = PinterestState;

pub(crate) const PROVIDER: crate::registry::Provider = crate::registry::Provider {
    routes: &[(crate::Route::Pinterest, &[])],
    owns: |path| matches!(path, "/v5/oauth/token" | "/oauth/").then_some(crate::Route::Pinterest),
    router: routes,
    wrap: None,
    errors: crate::registry::Errors {
        status: |_, code| fault_status(code),
        invalid_grant: Some(|_| fault_invalid_grant()),
        unauthorized: |_| fault_unauthorized(),
        echo: |_, message| json_response(400, json!({"code": 1, "message": message})),
        ..crate::registry::Errors::DEFAULT
    },
};
