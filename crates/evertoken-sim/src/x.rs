//! X (Twitter) OAuth 2.0: authorization code with PKCE, rotating refresh tokens.
//!
//! Owns X's clients, codes (through [`crate::oauth`]), access and refresh tokens, and
//! its `/_sim/x/...` control routes. It must never accept what X refuses: a code
//! without PKCE, a confidential client without its Basic credentials, a refresh
//! token that was already used.
//!
//! Docs checked:
//! - <https://docs.x.com/fundamentals/authentication/oauth-2-0/authorization-code>
//!   (also <https://developer.x.com/en/docs/authentication/oauth-2-0/user-context>):
//!   authorize at `https://x.com/i/oauth2/authorize` with `response_type=code`,
//!   `client_id`, `redirect_uri`, `scope`, `state`, `code_challenge`,
//!   `code_challenge_method` (`S256` or `plain`); token at
//!   `POST https://api.x.com/2/oauth2/token`, form encoded (`grant_type`, `code`,
//!   `redirect_uri`, `code_verifier`, or `refresh_token`; `client_id` in the body for a
//!   public client); a confidential client authenticates with HTTP Basic
//!   (`client_id:client_secret`); access tokens live two hours; a refresh token is
//!   issued only with the `offline.access` scope; `POST /2/oauth2/revoke` with `token`
//!   and `token_type_hint`.
//! - Wrong or missing client authentication for a confidential client is answered
//!   `401 {"error":"unauthorized_client","error_description":"Missing valid
//!   authorization header"}` (reported in
//!   <https://github.com/xdevplatform/twitter-api-typescript-sdk/issues/23>,
//!   <https://github.com/tweepy/tweepy/issues/2035>,
//!   <https://github.com/unasuke/omniauth-twitter2/issues/4>).
//! - A dead refresh token (used, revoked, unknown) is answered `400
//!   {"error":"invalid_request","error_description":"Value passed for the token was
//!   invalid."}` — X does not use `invalid_grant` for it.
//!
//! Where the docs are silent (the simulator's choice; clients must not depend on the
//! exact text): a refresh token is rotated on every refresh and the previous one dies
//! at once (X's documentation only shows a new `refresh_token` in the answer; this is
//! how it behaves in practice); refresh tokens have no expiry of their own here
//! (X documents none); the texts for a wrong code, a redirect mismatch and a missing
//! parameter follow X's `Value passed for the … was invalid.` / `Missing required
//! parameter [name].` pattern; the HTTP status of `invalid_request` is 400.

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

use crate::oauth::{self, CodeError, CodeGrant};
use crate::state::Sim;
use crate::util::{alnum, basic_auth, json_response, oauth_error, param, parse_form, parse_query};

/// X's answer for a dead refresh token.
pub(crate) const INVALID_TOKEN: &str = "Value passed for the token was invalid.";
/// X's answer for a confidential client without valid Basic credentials.
pub(crate) const MISSING_AUTH: &str = "Missing valid authorization header";
/// Two hours, X's documented access-token lifetime.
const ACCESS_SECS: i64 = 7200;
const OFFLINE: &str = "offline.access";
const DEFAULT_SCOPE: &str = "tweet.read users.read offline.access";

#[derive(Clone, Debug)]
pub(crate) struct XClient {
    /// `None`: a public client (PKCE only, `client_id` in the body).
    pub secret: Option<String>,
    /// Callback URIs registered in the developer portal (exact match). Empty:
    /// any `https` or loopback URI is accepted.
    pub redirect_uris: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum XRtStatus {
    Live,
    RotatedAway,
    Revoked,
}

#[derive(Clone, Debug)]
pub(crate) struct XRt {
    pub client_id: String,
    pub scope: String,
    pub status: XRtStatus,
}

pub(crate) struct XState {
    pub clients: HashMap<String, XClient>,
    pub refresh_tokens: HashMap<String, XRt>,
    /// Access token → (client, expiry, revoked).
    pub access_tokens: HashMap<String, (String, Timestamp, bool)>,
    pub access_secs: i64,
}

impl Default for XState {
    fn default() -> Self {
        XState {
            clients: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            access_secs: ACCESS_SECS,
        }
    }
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/i/oauth2/authorize", get(authorize))
        .route("/2/oauth2/token", post(token))
        .route("/2/oauth2/revoke", post(revoke))
        .route("/_sim/x/client", post(ctl_client))
        .route("/_sim/x/refresh_token", post(ctl_refresh_token))
        .route("/_sim/x/revoke", post(ctl_revoke))
        .route("/_sim/x/access_secs", post(ctl_access_secs))
        .route("/_sim/x/live", get(ctl_live))
}

impl Sim {
    /// Registers an X OAuth 2.0 client. `secret: None` makes it a public client
    /// (Native App / Single Page App); `Some` a confidential one (Web App, Bot).
    /// `redirect_uris` are the registered callback URIs (empty: any https/loopback).
    pub fn x_add_client(&self, client_id: &str, secret: Option<&str>, redirect_uris: &[&str]) {
        self.lock().x.clients.insert(
            client_id.to_string(),
            XClient {
                secret: secret.map(str::to_string),
                redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
            },
        );
    }

    /// Seeds a live refresh token for `client_id` (scope includes `offline.access`).
    pub fn x_add_refresh_token(&self, client_id: &str, refresh_token: &str) {
        self.lock().x.refresh_tokens.insert(
            refresh_token.to_string(),
            XRt {
                client_id: client_id.to_string(),
                scope: DEFAULT_SCOPE.to_string(),
                status: XRtStatus::Live,
            },
        );
    }

    /// Whether `refresh_token` would be accepted now.
    pub fn x_is_live(&self, refresh_token: &str) -> bool {
        self.lock()
            .x
            .refresh_tokens
            .get(refresh_token)
            .is_some_and(|r| r.status == XRtStatus::Live)
    }

    /// Every live refresh token (after a rotation, only the newest of a chain).
    pub fn x_live_refresh_tokens(&self) -> Vec<String> {
        let st = self.lock();
        let mut v: Vec<String> =
            st.x.refresh_tokens
                .iter()
                .filter(|(_, r)| r.status == XRtStatus::Live)
                .map(|(k, _)| k.clone())
                .collect();
        v.sort();
        v
    }

    /// Revokes a refresh token (the user removed the app's access).
    pub fn x_revoke(&self, refresh_token: &str) {
        if let Some(r) = self.lock().x.refresh_tokens.get_mut(refresh_token) {
            r.status = XRtStatus::Revoked;
        }
    }

    /// Whether an access token issued by the simulator is unexpired and unrevoked.
    pub fn x_access_token_valid(&self, access_token: &str) -> bool {
        let st = self.lock();
        let now = st.now();
        st.x.access_tokens
            .get(access_token)
            .is_some_and(|(_, exp, revoked)| !revoked && *exp > now)
    }

    /// The `expires_in` of issued access tokens (default 7200).
    pub fn x_set_access_secs(&self, secs: i64) {
        self.lock().x.access_secs = secs;
    }
}

fn invalid_request(description: &str) -> Response {
    oauth_error(400, "invalid_request", description)
}

fn unauthorized() -> Response {
    oauth_error(401, "unauthorized_client", MISSING_AUTH)
}

/// Authenticates the client of a token/revoke request: Basic for a
/// confidential client, `client_id` in the body for a public one.
fn authenticate(
    st: &mut crate::state::State,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<String, Response> {
    if let Some((id, secret)) = basic_auth(headers) {
        return match st.x.clients.get(&id) {
            Some(XClient {
                secret: Some(s), ..
            }) if *s == secret => Ok(id),
            None if st.lenient => {
                st.x.clients.insert(
                    id.clone(),
                    XClient {
                        secret: Some(secret),
                        redirect_uris: Vec::new(),
                    },
                );
                Ok(id)
            }
            _ => Err(unauthorized()),
        };
    }
    let Some(id) = param(form, "client_id") else {
        return Err(unauthorized());
    };
    match st.x.clients.get(id) {
        Some(XClient { secret: None, .. }) => Ok(id.to_string()),
        // A confidential client must use Basic; its secret in the body is not enough.
        Some(_) => Err(unauthorized()),
        None if st.lenient => {
            st.x.clients.insert(
                id.to_string(),
                XClient {
                    secret: None,
                    redirect_uris: Vec::new(),
                },
            );
            Ok(id.to_string())
        }
        None => Err(unauthorized()),
    }
}

fn issue(st: &mut crate::state::State, client_id: &str, scope: &str) -> Response {
    let now = st.now();
    let secs = st.x.access_secs;
    let at = format!("sim-x-at-{}", alnum(64));
    st.x.access_tokens.insert(
        at.clone(),
        (
            client_id.to_string(),
            now + SignedDuration::from_secs(secs),
            false,
        ),
    );
    let mut body = json!({
        "token_type": "bearer",
        "expires_in": secs,
        "access_token": at,
        "scope": scope,
    });
    if scope.split(' ').any(|s| s == OFFLINE) {
        let rt = format!("sim-x-rt-{}", alnum(64));
        st.x.refresh_tokens.insert(
            rt.clone(),
            XRt {
                client_id: client_id.to_string(),
                scope: scope.to_string(),
                status: XRtStatus::Live,
            },
        );
        body["refresh_token"] = json!(rt);
    }
    json_response(200, body)
}

async fn token(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let f = parse_form(&body);
    let mut st = sim.lock();
    let client_id = match authenticate(&mut st, &headers, &f) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match param(&f, "grant_type") {
        Some("refresh_token") => {
            let Some(rt) = param(&f, "refresh_token") else {
                return invalid_request("Missing required parameter [refresh_token].");
            };
            let entry = match st.x.refresh_tokens.get(rt) {
                Some(e) => e.clone(),
                None if st.lenient => {
                    let e = XRt {
                        client_id: client_id.clone(),
                        scope: DEFAULT_SCOPE.to_string(),
                        status: XRtStatus::Live,
                    };
                    st.x.refresh_tokens.insert(rt.to_string(), e.clone());
                    e
                }
                None => return invalid_request(INVALID_TOKEN),
            };
            match entry.status {
                XRtStatus::RotatedAway => {
                    st.reused_rotated_tokens += 1;
                    return invalid_request(INVALID_TOKEN);
                }
                XRtStatus::Revoked => return invalid_request(INVALID_TOKEN),
                XRtStatus::Live => {}
            }
            if entry.client_id != client_id {
                return invalid_request(INVALID_TOKEN);
            }
            if let Some(e) = st.x.refresh_tokens.get_mut(rt) {
                e.status = XRtStatus::RotatedAway;
            }
            st.rotations += 1;
            issue(&mut st, &client_id, &entry.scope)
        }
        Some("authorization_code") => {
            let Some(code) = param(&f, "code").map(str::to_string) else {
                return invalid_request("Missing required parameter [code].");
            };
            let Some(redirect) = param(&f, "redirect_uri").map(str::to_string) else {
                return invalid_request("Missing required parameter [redirect_uri].");
            };
            let Some(verifier) = param(&f, "code_verifier").map(str::to_string) else {
                return invalid_request("Missing required parameter [code_verifier].");
            };
            drop(st);
            let r = oauth::redeem(
                &sim,
                "x",
                &code,
                &client_id,
                Some(&redirect),
                Some(&verifier),
            );
            let mut st = sim.lock();
            match r {
                Ok(g) => issue(&mut st, &client_id, &g.scope),
                Err(CodeError::RedirectMismatch) => invalid_request(
                    "Value passed for the redirect uri did not match the uri of the authorization code.",
                ),
                Err(CodeError::VerifierMissing | CodeError::VerifierMismatch) => {
                    invalid_request("Value passed for the code verifier was invalid.")
                }
                Err(_) => invalid_request("Value passed for the authorization code was invalid."),
            }
        }
        Some(_) => invalid_request("Value passed for the grant type was invalid."),
        None => invalid_request("Missing required parameter [grant_type]."),
    }
}

async fn revoke(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let f = parse_form(&body);
    let mut st = sim.lock();
    let client_id = match authenticate(&mut st, &headers, &f) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(tok) = param(&f, "token") else {
        return invalid_request("Missing required parameter [token].");
    };
    if let Some(r) = st.x.refresh_tokens.get_mut(tok)
        && r.client_id == client_id
    {
        r.status = XRtStatus::Revoked;
    }
    if let Some(a) = st.x.access_tokens.get_mut(tok)
        && a.0 == client_id
    {
        a.2 = true;
    }
    // X answers the same whether or not the token was known (RFC 7009 §2.2).
    json_response(200, json!({"revoked": true}))
}

fn acceptable_redirect(uri: &str) -> bool {
    match url::Url::parse(uri) {
        Ok(u) => {
            u.scheme() == "https"
                || (u.scheme() == "http"
                    && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")))
        }
        Err(_) => false,
    }
}

/// X shows an error page (no redirect) for an unknown client or an unregistered
/// callback: redirecting there would be an open redirect.
fn error_page(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "text/plain; charset=utf-8")],
        format!("Something went wrong: {message}"),
    )
        .into_response()
}

async fn authorize(State(sim): State<Sim>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(q.as_deref());
    let client_id = param(&q, "client_id").unwrap_or("");
    let Some(redirect) = param(&q, "redirect_uri") else {
        return error_page("redirect_uri is required");
    };
    let state = param(&q, "state");
    let client = {
        let st = sim.lock();
        match st.x.clients.get(client_id) {
            Some(c) => Some(c.clone()),
            None if st.lenient => Some(XClient {
                secret: None,
                redirect_uris: Vec::new(),
            }),
            None => None,
        }
    };
    let Some(client) = client else {
        return error_page("You weren't able to give access to the App.");
    };
    let registered = if client.redirect_uris.is_empty() {
        acceptable_redirect(redirect)
    } else {
        client.redirect_uris.iter().any(|r| r == redirect)
    };
    if !registered {
        return error_page("the callback URL is not registered for this App");
    }
    if param(&q, "response_type") != Some("code") {
        return oauth::redirect_error(
            redirect,
            "unsupported_response_type",
            "response_type must be code",
            state,
        );
    }
    let Some(challenge) = param(&q, "code_challenge") else {
        return oauth::redirect_error(
            redirect,
            "invalid_request",
            "Missing required parameter [code_challenge].",
            state,
        );
    };
    let method = param(&q, "code_challenge_method").unwrap_or("plain");
    if !(method.eq_ignore_ascii_case("S256") || method.eq_ignore_ascii_case("plain")) {
        return oauth::redirect_error(
            redirect,
            "invalid_request",
            "Value passed for the code challenge method was invalid.",
            state,
        );
    }
    if state.is_none() {
        return oauth::redirect_error(
            redirect,
            "invalid_request",
            "Missing required parameter [state].",
            None,
        );
    }
    let scope = param(&q, "scope").unwrap_or("").to_string();
    if scope.is_empty() {
        return oauth::redirect_error(
            redirect,
            "invalid_request",
            "Missing required parameter [scope].",
            state,
        );
    }
    let grant = CodeGrant {
        provider: "x",
        client_id: client_id.to_string(),
        redirect_uri: Some(redirect.to_string()),
        code_challenge: Some(challenge.to_string()),
        challenge_method: method.to_string(),
        hex_challenge: false,
        scope,
        offline: false,
        consent: true,
        expires_at: Timestamp::UNIX_EPOCH,
        used: false,
    };
    oauth::issue_and_redirect(&sim, "sim-x-code-", grant, state, &[], "")
}

// ------------------------------------------------------------- control routes

#[derive(Deserialize)]
struct CtlClient {
    client_id: String,
    client_secret: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

#[derive(Deserialize)]
struct CtlRt {
    client_id: String,
    refresh_token: String,
}

#[derive(Deserialize)]
struct CtlRevoke {
    refresh_token: String,
}

#[derive(Deserialize)]
struct CtlSecs {
    access_secs: i64,
}

fn ok() -> Response {
    json_response(200, json!({"ok": true}))
}

/// `POST /_sim/x/client` `{"client_id","client_secret"?,"redirect_uris"?}`.
async fn ctl_client(State(sim): State<Sim>, axum::Json(b): axum::Json<CtlClient>) -> Response {
    let uris: Vec<&str> = b.redirect_uris.iter().map(String::as_str).collect();
    sim.x_add_client(&b.client_id, b.client_secret.as_deref(), &uris);
    ok()
}

/// `POST /_sim/x/refresh_token` `{"client_id","refresh_token"}`.
async fn ctl_refresh_token(State(sim): State<Sim>, axum::Json(b): axum::Json<CtlRt>) -> Response {
    sim.x_add_refresh_token(&b.client_id, &b.refresh_token);
    ok()
}

/// `POST /_sim/x/revoke` `{"refresh_token"}`.
async fn ctl_revoke(State(sim): State<Sim>, axum::Json(b): axum::Json<CtlRevoke>) -> Response {
    sim.x_revoke(&b.refresh_token);
    ok()
}

/// `POST /_sim/x/access_secs` `{"access_secs":7200}`.
async fn ctl_access_secs(State(sim): State<Sim>, axum::Json(b): axum::Json<CtlSecs>) -> Response {
    sim.x_set_access_secs(b.access_secs);
    ok()
}

/// `GET /_sim/x/live`: `{"refresh_tokens":[…]}`, the live refresh tokens.
async fn ctl_live(State(sim): State<Sim>) -> Response {
    json_response(200, json!({"refresh_tokens": sim.x_live_refresh_tokens()}))
}

// ------------------------------------------------------------ injected faults

/// The body of an injected HTTP error on X's OAuth routes. X's API v2 answers
/// rate limits and server errors with its problem JSON (`title`, `detail`, `type`,
/// `status`); for the token endpoint the docs are silent, so the simulator uses the
/// same shape there, and the OAuth error JSON for 401 and other 4xx.
fn fault_status(code: u16) -> Response {
    match code {
        401 => unauthorized(),
        c if c == 429 || c >= 500 => {
            let title = crate::util::reason(c);
            json_response(
                c,
                json!({"title": title, "detail": title, "type": "about:blank", "status": c}),
            )
        }
        c => oauth_error(c, "invalid_request", crate::util::reason(c)),
    }
}

/// An injected dead-grant answer: X's `invalid_request` for a refresh token.
fn fault_invalid_grant() -> Response {
    invalid_request(INVALID_TOKEN)
}

/// An injected client-authentication failure.
fn fault_unauthorized() -> Response {
    unauthorized()
}

// ------------------------------------------------------------ registry

#[allow(non_upper_case_globals)]
impl crate::Route {
    /// X's token, revoke and authorize endpoints.
    pub const X: crate::Route = crate::Route("x");
}

pub(crate) type ProviderState = XState;

pub(crate) const PROVIDER: crate::registry::Provider = crate::registry::Provider {
    routes: &[(crate::Route::X, &["twitter"])],
    owns: |path| {
        matches!(
            path,
            "/2/oauth2/token" | "/2/oauth2/revoke" | "/i/oauth2/authorize"
        )
        .then_some(crate::Route::X)
    },
    router: routes,
    wrap: None,
    errors: crate::registry::Errors {
        status: |_, code| fault_status(code),
        invalid_grant: Some(|_| fault_invalid_grant()),
        unauthorized: |_| fault_unauthorized(),
        echo: |_, message| oauth_error(400, "invalid_request", message),
        ..crate::registry::Errors::DEFAULT
    },
};
