//! TikTok Login Kit, OAuth v2.
//!
//! Docs checked:
//! - <https://developers.tiktok.com/doc/oauth-user-access-token-management> (`POST
//!   /v2/oauth/token/`, form `client_key, client_secret, grant_type, refresh_token` or
//!   `code, redirect_uri, code_verifier`; response `{access_token, expires_in, open_id,
//!   refresh_expires_in, refresh_token, scope, token_type:"Bearer"}`).
//! - <https://developers.tiktok.com/docs/en/oauth-refresh-a-user-access-token> ("Refresh
//!   tokens are rotated: a successful refresh request will return a new refresh_token …
//!   The previous refresh token stops working once a new one is issued").
//! - <https://developers.tiktok.com/doc/oauth-error-handling> (error struct
//!   `{"error","error_description","log_id"}`; categories `invalid_client`,
//!   `invalid_grant`, `invalid_request`, `unsupported_grant_type`, `server_error`,
//!   `temporarily_unavailable`, …).
//! - Authorization: `GET https://www.tiktok.com/v2/auth/authorize/` with `client_key`,
//!   `scope`, `response_type=code`, `redirect_uri`, `state`, `code_challenge`,
//!   `code_challenge_method`; the redirect carries `code`, `scopes`, `state`.
//! - Lifetimes: <https://developers.tiktok.com/docs/en/oauth-user-access-token-management>
//!   ("Access token: 2 hours, `expires_in`; Refresh token: 180 days,
//!   `refresh_expires_in`") and
//!   <https://developers.tiktok.com/docs/en/oauth-refresh-a-user-access-token> ("the
//!   fetched access_token expires within 2 hours"); the simulator's defaults.
//! - <https://developers.tiktok.com/doc/login-kit-web> (web apps: redirect URIs
//!   "must be absolute and begin with https", static, no fragment, registered in
//!   the Login Kit configuration).
//! - <https://developers.tiktok.com/doc/login-kit-desktop> (desktop apps: "Only
//!   localhost or loopback IP 127.0.0.1 are allowed host names", "URIs must have a
//!   port number, and wildcard port number (*) is supported", e.g.
//!   `http://127.0.0.1:*/callback/` and `https://127.0.0.1:3455/callback/`: the
//!   simulator refuses any other host, `127.0.0.2` and `[::1]` included; PKCE is required, the `code_challenge` being
//!   the hex-encoded SHA-256 of the `code_verifier` with `code_challenge_method=S256`,
//!   and the token request carries `code_verifier`).
//!
//! An app is a web app unless registered as a desktop app
//! ([`Sim::tiktok_add_desktop_client`]): a web app gets `https` redirects only, a
//! desktop app loopback redirects only and must send a (hex) PKCE challenge. A
//! base64url challenge, the RFC 7636 encoding, does not match TikTok's hex and the
//! code exchange fails with "Code verifier or code challenge is invalid."
//!
//! TikTok does not document the HTTP status of OAuth errors; the simulator uses 400
//! (`invalid_request`, `invalid_grant`, `unsupported_grant_type`) and 401
//! (`invalid_client`) like RFC 6749, so clients must read the `error` field.
//! Lifetimes are configurable (`tiktok_set_lifetimes`); every issued refresh token
//! gets a fresh `refresh_expires_in`, unless [`Sim::tiktok_set_refresh_extends`]
//! is off: then a refresh's new refresh token keeps the old one's expiry (TikTok
//! does not promise that a refresh extends it) and `refresh_expires_in` counts down.

use std::collections::{HashMap, HashSet};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::oauth::{self, CodeError, CodeGrant};
use crate::state::Sim;
use crate::util::{alnum, json_response, param, parse_form, parse_query, tiktok_error};

const DEFAULT_SCOPE: &str = "user.info.basic,video.publish";
/// Access tokens live 2 hours and refresh tokens 180 days (the token management
/// page's "Token lifetimes" table; older versions of the page said 24 hours and
/// 365 days, so clients read `expires_in` / `refresh_expires_in` instead).
pub(crate) const ACCESS_SECS: i64 = 7_200;
pub(crate) const REFRESH_SECS: i64 = 15_552_000;
pub(crate) const INVALID_RT: &str = "Refresh token is invalid or expired.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RtStatus {
    Live,
    RotatedAway,
    Revoked,
}

#[derive(Clone, Debug)]
pub(crate) struct TikTokRt {
    pub client_key: String,
    pub open_id: String,
    pub expires_at: Timestamp,
    pub scope: String,
    pub status: RtStatus,
}

pub(crate) struct TikTokState {
    pub clients: HashMap<String, String>,
    /// Client keys registered as desktop apps (loopback redirects, hex PKCE).
    pub desktop: HashSet<String>,
    /// Whether a refresh gives the new refresh token a fresh lifetime.
    pub refresh_extends: bool,
    pub refresh_tokens: HashMap<String, TikTokRt>,
    pub access_secs: i64,
    pub refresh_secs: i64,
}

impl Default for TikTokState {
    fn default() -> Self {
        TikTokState {
            clients: HashMap::new(),
            desktop: HashSet::new(),
            refresh_extends: true,
            refresh_tokens: HashMap::new(),
            access_secs: ACCESS_SECS,
            refresh_secs: REFRESH_SECS,
        }
    }
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/v2/oauth/token/", post(token))
        .route("/v2/oauth/token", post(token))
        .route("/v2/auth/authorize/", get(authorize))
        .route("/v2/auth/authorize", get(authorize))
}

fn open_id() -> String {
    format!("sim-open-{}", alnum(24))
}

impl Sim {
    pub fn tiktok_add_client(&self, client_key: &str, client_secret: &str) {
        self.lock()
            .tiktok
            .clients
            .insert(client_key.to_string(), client_secret.to_string());
    }

    /// Registers a desktop app: loopback redirects only, PKCE (hex) required.
    pub fn tiktok_add_desktop_client(&self, client_key: &str, client_secret: &str) {
        let mut st = self.lock();
        st.tiktok
            .clients
            .insert(client_key.to_string(), client_secret.to_string());
        st.tiktok.desktop.insert(client_key.to_string());
    }

    /// Off: a refresh's new refresh token keeps the old one's expiry
    /// (default on: a fresh `refresh_expires_in` each time).
    pub fn tiktok_set_refresh_extends(&self, extends: bool) {
        self.lock().tiktok.refresh_extends = extends;
    }

    /// Seeds a live refresh token.
    pub fn tiktok_add_refresh_token(
        &self,
        client_key: &str,
        refresh_token: &str,
        refresh_expires_at: Timestamp,
    ) {
        self.lock().tiktok.refresh_tokens.insert(
            refresh_token.to_string(),
            TikTokRt {
                client_key: client_key.to_string(),
                open_id: open_id(),
                expires_at: refresh_expires_at,
                scope: DEFAULT_SCOPE.to_string(),
                status: RtStatus::Live,
            },
        );
    }

    /// Every refresh token that would work now (after a rotation, only the new one).
    pub fn tiktok_live_refresh_tokens(&self) -> Vec<String> {
        let st = self.lock();
        let now = st.now();
        let mut v: Vec<String> = st
            .tiktok
            .refresh_tokens
            .iter()
            .filter(|(_, r)| r.status == RtStatus::Live && r.expires_at > now)
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }

    pub fn tiktok_is_live(&self, refresh_token: &str) -> bool {
        let st = self.lock();
        let now = st.now();
        st.tiktok
            .refresh_tokens
            .get(refresh_token)
            .is_some_and(|r| r.status == RtStatus::Live && r.expires_at > now)
    }

    /// Revokes a refresh token (the user disconnected the app).
    pub fn tiktok_revoke(&self, refresh_token: &str) {
        if let Some(r) = self.lock().tiktok.refresh_tokens.get_mut(refresh_token) {
            r.status = RtStatus::Revoked;
        }
    }

    /// Lifetimes returned as `expires_in` / `refresh_expires_in`
    /// (defaults 7200 and 15552000: 2 hours and 180 days).
    pub fn tiktok_set_lifetimes(&self, access_secs: i64, refresh_secs: i64) {
        let mut st = self.lock();
        st.tiktok.access_secs = access_secs;
        st.tiktok.refresh_secs = refresh_secs;
    }
}

/// Issues a new access + refresh token pair and renders the response.
/// `keep_expiry`: the refresh token's expiry when it does not extend.
fn issue(
    st: &mut crate::state::State,
    client_key: &str,
    open_id: String,
    scope: String,
    keep_expiry: Option<Timestamp>,
) -> Response {
    let now = st.now();
    let access_secs = st.tiktok.access_secs;
    let refresh_secs = match keep_expiry {
        Some(exp) => exp.duration_since(now).as_secs().max(0),
        None => st.tiktok.refresh_secs,
    };
    let rt = format!("rft.sim-{}", alnum(60));
    let at = format!("act.sim-{}", alnum(60));
    st.tiktok.refresh_tokens.insert(
        rt.clone(),
        TikTokRt {
            client_key: client_key.to_string(),
            open_id: open_id.clone(),
            expires_at: now + SignedDuration::from_secs(refresh_secs),
            scope: scope.clone(),
            status: RtStatus::Live,
        },
    );
    json_response(
        200,
        json!({
            "access_token": at,
            "expires_in": access_secs,
            "open_id": open_id,
            "refresh_expires_in": refresh_secs,
            "refresh_token": rt,
            "scope": scope,
            "token_type": "Bearer",
        }),
    )
}

async fn token(State(sim): State<Sim>, body: Bytes) -> Response {
    let f = parse_form(&body);
    let mut st = sim.lock();
    let now = st.now();
    let Some(client_key) = param(&f, "client_key") else {
        return tiktok_error(400, "invalid_request", "Missing client_key.", now);
    };
    let secret = param(&f, "client_secret").unwrap_or("");
    match st.tiktok.clients.get(client_key) {
        Some(s) if s == secret => {}
        Some(_) => {
            return tiktok_error(
                401,
                "invalid_client",
                "Client key or secret is incorrect.",
                now,
            );
        }
        None if st.lenient => {
            st.tiktok
                .clients
                .insert(client_key.to_string(), secret.to_string());
        }
        None => {
            return tiktok_error(
                401,
                "invalid_client",
                "Client key or secret is incorrect.",
                now,
            );
        }
    }
    match param(&f, "grant_type") {
        Some("refresh_token") => {
            let Some(rt) = param(&f, "refresh_token") else {
                return tiktok_error(400, "invalid_request", "Missing refresh_token.", now);
            };
            let lenient = st.lenient;
            let refresh_secs = st.tiktok.refresh_secs;
            let entry = match st.tiktok.refresh_tokens.get(rt) {
                Some(e) => e.clone(),
                None if lenient => {
                    let e = TikTokRt {
                        client_key: client_key.to_string(),
                        open_id: open_id(),
                        expires_at: now + SignedDuration::from_secs(refresh_secs),
                        scope: DEFAULT_SCOPE.to_string(),
                        status: RtStatus::Live,
                    };
                    st.tiktok.refresh_tokens.insert(rt.to_string(), e.clone());
                    e
                }
                None => return tiktok_error(400, "invalid_grant", INVALID_RT, now),
            };
            match entry.status {
                RtStatus::RotatedAway => {
                    st.reused_rotated_tokens += 1;
                    return tiktok_error(400, "invalid_grant", INVALID_RT, now);
                }
                RtStatus::Revoked => {
                    return tiktok_error(400, "invalid_grant", INVALID_RT, now);
                }
                RtStatus::Live => {}
            }
            if entry.expires_at <= now || entry.client_key != client_key {
                return tiktok_error(400, "invalid_grant", INVALID_RT, now);
            }
            if let Some(e) = st.tiktok.refresh_tokens.get_mut(rt) {
                e.status = RtStatus::RotatedAway;
            }
            st.rotations += 1;
            let keep = (!st.tiktok.refresh_extends).then_some(entry.expires_at);
            issue(&mut st, client_key, entry.open_id, entry.scope, keep)
        }
        Some("authorization_code") => {
            let Some(code) = param(&f, "code").map(str::to_string) else {
                return tiktok_error(400, "invalid_request", "Missing code.", now);
            };
            drop(st);
            let r = oauth::redeem(
                &sim,
                "tiktok",
                &code,
                client_key,
                param(&f, "redirect_uri"),
                param(&f, "code_verifier"),
            );
            let mut st = sim.lock();
            match r {
                Ok(g) => {
                    let scope = if g.scope.is_empty() {
                        DEFAULT_SCOPE.to_string()
                    } else {
                        g.scope
                    };
                    issue(&mut st, client_key, open_id(), scope, None)
                }
                Err(CodeError::VerifierMissing | CodeError::VerifierMismatch) => tiktok_error(
                    400,
                    "invalid_request",
                    "Code verifier or code challenge is invalid.",
                    now,
                ),
                Err(CodeError::RedirectMismatch) => tiktok_error(
                    400,
                    "invalid_grant",
                    "Redirect URI does not match the one used in the authorization request.",
                    now,
                ),
                Err(_) => tiktok_error(400, "invalid_grant", "Authorization code is expired.", now),
            }
        }
        Some(other) => tiktok_error(
            400,
            "unsupported_grant_type",
            &format!("Grant type {other} is not supported."),
            now,
        ),
        None => tiktok_error(400, "invalid_request", "Missing grant_type.", now),
    }
}

async fn authorize(State(sim): State<Sim>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(q.as_deref());
    let client_key = param(&q, "client_key").unwrap_or("");
    let Some(redirect) = param(&q, "redirect_uri") else {
        return json_response(
            400,
            json!({"error": "invalid_request", "error_description": "redirect_uri is required"}),
        );
    };
    let known = {
        let st = sim.lock();
        st.lenient || st.tiktok.clients.contains_key(client_key)
    };
    if !known {
        return oauth::redirect_error(
            redirect,
            "invalid_client",
            "client_key is invalid",
            param(&q, "state"),
        );
    }
    let desktop = sim.lock().tiktok.desktop.contains(client_key);
    let rule = if desktop {
        oauth::RedirectRule::LoopbackOnly
    } else {
        oauth::RedirectRule::HttpsOnly
    };
    // A redirect TikTok will not use gets an error page, not a redirect.
    if let Err(why) = oauth::check_redirect(&sim, "tiktok", client_key, redirect, rule, false) {
        return json_response(
            400,
            json!({"error": "invalid_request", "error_description": format!("redirect_uri: {why}")}),
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
    if desktop
        && (param(&q, "code_challenge").is_none_or(str::is_empty)
            || param(&q, "code_challenge_method") != Some("S256"))
    {
        return oauth::redirect_error(
            redirect,
            "invalid_request",
            "code_challenge and code_challenge_method=S256 are required for desktop apps",
            param(&q, "state"),
        );
    }
    let scope = param(&q, "scope").unwrap_or(DEFAULT_SCOPE).to_string();
    let grant = CodeGrant {
        provider: "tiktok",
        client_id: client_key.to_string(),
        redirect_uri: Some(redirect.to_string()),
        code_challenge: param(&q, "code_challenge").map(str::to_string),
        challenge_method: param(&q, "code_challenge_method")
            .unwrap_or("S256")
            .to_string(),
        hex_challenge: true,
        scope: scope.clone(),
        offline: true,
        consent: true,
        expires_at: Timestamp::UNIX_EPOCH,
        used: false,
    };
    oauth::issue_and_redirect(
        &sim,
        "sim-code-",
        grant,
        param(&q, "state"),
        &[("scopes", scope.as_str())],
        "",
    )
}

// ------------------------------------------------------------ registry

#[allow(non_upper_case_globals)]
impl crate::Route {
    /// TikTok's token, authorize and revoke endpoints.
    pub const TikTok: crate::Route = crate::Route("tiktok");
}

pub(crate) type ProviderState = TikTokState;

pub(crate) const PROVIDER: crate::registry::Provider = crate::registry::Provider {
    routes: &[(crate::Route::TikTok, &[])],
    owns: |path| {
        matches!(
            path,
            "/v2/oauth/token/"
                | "/v2/oauth/token"
                | "/v2/auth/authorize/"
                | "/v2/auth/authorize"
                | "/v2/oauth/revoke/"
        )
        .then_some(crate::Route::TikTok)
    },
    router: routes,
    wrap: None,
    errors: crate::registry::Errors {
        status: |ctx, code| match code {
            503 => tiktok_error(
                503,
                "temporarily_unavailable",
                "Service is temporarily unavailable.",
                ctx.now,
            ),
            c if c >= 500 => {
                tiktok_error(c, "server_error", "Other internal server errors.", ctx.now)
            }
            429 => tiktok_error(
                429,
                "rate_limit_exceeded",
                "The API rate limit was exceeded. Please try again later.",
                ctx.now,
            ),
            401 => tiktok_error(401, "invalid_client", "Client authentication failed.", ctx.now),
            c => tiktok_error(
                c,
                "invalid_request",
                "The request misses a required parameter or is otherwise malformed.",
                ctx.now,
            ),
        },
        invalid_grant: Some(|ctx| {
            tiktok_error(
                400,
                "invalid_grant",
                "Refresh token is invalid or expired.",
                ctx.now,
            )
        }),
        invalid_client: Some(|ctx| {
            tiktok_error(
                401,
                "invalid_client",
                "Client key or secret is incorrect.",
                ctx.now,
            )
        }),
        unauthorized: |ctx| {
            tiktok_error(401, "invalid_client", "Client authentication failed.", ctx.now)
        },
        echo: |ctx, message| tiktok_error(400, "invalid_request", message, ctx.now),
        ..crate::registry::Errors::DEFAULT
    },
};
