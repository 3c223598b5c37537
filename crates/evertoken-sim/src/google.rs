//! Google OAuth 2.0 (YouTube uploads use these tokens).
//!
//! Docs checked:
//! - <https://developers.google.com/identity/protocols/oauth2/web-server> (authorization
//!   `GET /o/oauth2/v2/auth` with `access_type=offline`, `prompt=consent`, PKCE
//!   `code_challenge`/`code_challenge_method=S256`; token `POST /token` form with
//!   `grant_type=authorization_code|refresh_token`; refresh answer
//!   `{"access_token","expires_in":3599,"scope","token_type":"Bearer"}`; revoke `POST /revoke`).
//! - <https://developers.google.com/identity/protocols/oauth2#expiration> (refresh token
//!   expiry: revoked, unused for six months, and an app in "Testing" publishing status
//!   gets refresh tokens that expire in 7 days).
//! - <https://developers.google.com/google-ads/api/docs/get-started/common-errors> (the
//!   expired/revoked answer is `400 {"error":"invalid_grant","error_description":"Token has
//!   been expired or revoked."}`).
//! - RFC 6749 §5.2 for the error envelope; `invalid_client` is 401.
//! - <https://developers.google.com/identity/protocols/oauth2/native-app> (installed
//!   apps: loopback redirect `http://127.0.0.1:port` with any port; PKCE with
//!   `code_challenge` = BASE64URL(SHA256(code_verifier)) for `S256`, so a hex challenge
//!   does not match) and
//!   <https://developers.google.com/identity/protocols/oauth2/resources/loopback-migration>
//!   (the loopback flow stays supported for desktop clients). A `redirect_uri` that is
//!   not registered is `400 redirect_uri_mismatch` on the consent page; the token
//!   request must repeat the authorize request's `redirect_uri`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::oauth::{self, CodeError, CodeGrant};
use crate::state::Sim;
use crate::util::{alnum, basic_auth, json_response, oauth_error, param, parse_form, parse_query};

const TESTING_TTL: SignedDuration = SignedDuration::from_hours(7 * 24);
const UNUSED_TTL: SignedDuration = SignedDuration::from_hours(183 * 24);
const DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/youtube.upload";
pub(crate) const EXPIRED_OR_REVOKED: &str = "Token has been expired or revoked.";

#[derive(Clone, Debug)]
pub(crate) struct GoogleClient {
    pub secret: String,
    pub testing: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct GoogleRt {
    pub client_id: String,
    pub issued_at: Timestamp,
    pub last_used: Timestamp,
    pub revoked: bool,
    pub scope: String,
}

#[derive(Default)]
pub(crate) struct GoogleState {
    pub clients: HashMap<String, GoogleClient>,
    pub refresh_tokens: HashMap<String, GoogleRt>,
    pub access_tokens: HashMap<String, (String, Timestamp)>,
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/token", post(token))
        .route("/revoke", post(revoke))
        .route("/o/oauth2/v2/auth", get(authorize))
        .route("/o/oauth2/auth", get(authorize))
}

impl Sim {
    pub fn google_add_client(&self, client_id: &str, client_secret: &str) {
        let mut st = self.lock();
        let testing = st.google.clients.get(client_id).is_some_and(|c| c.testing);
        st.google.clients.insert(
            client_id.to_string(),
            GoogleClient {
                secret: client_secret.to_string(),
                testing,
            },
        );
    }

    /// Seeds a refresh token issued now (by the simulator's clock).
    pub fn google_add_refresh_token(&self, client_id: &str, refresh_token: &str) {
        let now = self.now();
        self.google_add_refresh_token_at(client_id, refresh_token, now);
    }

    /// Seeds a refresh token issued at `issued_at`.
    pub fn google_add_refresh_token_at(
        &self,
        client_id: &str,
        refresh_token: &str,
        issued_at: Timestamp,
    ) {
        self.lock().google.refresh_tokens.insert(
            refresh_token.to_string(),
            GoogleRt {
                client_id: client_id.to_string(),
                issued_at,
                last_used: issued_at,
                revoked: false,
                scope: DEFAULT_SCOPE.to_string(),
            },
        );
    }

    /// Revokes a refresh token (the user removed the app's access).
    pub fn google_revoke(&self, refresh_token: &str) {
        if let Some(rt) = self.lock().google.refresh_tokens.get_mut(refresh_token) {
            rt.revoked = true;
        }
    }

    /// Puts a client's consent screen in "Testing" publishing status: its
    /// refresh tokens expire 7 days after issue.
    pub fn google_set_testing_mode(&self, client_id: &str, testing: bool) {
        let mut st = self.lock();
        st.google
            .clients
            .entry(client_id.to_string())
            .or_insert_with(|| GoogleClient {
                secret: String::new(),
                testing,
            })
            .testing = testing;
    }

    /// Whether a refresh grant with this token would succeed now.
    pub fn google_is_valid(&self, refresh_token: &str) -> bool {
        let st = self.lock();
        let now = st.now();
        st.google
            .refresh_tokens
            .get(refresh_token)
            .is_some_and(|rt| rt_dead(&st.google, rt, now).is_none())
    }

    /// Whether Google issued this access token and it has not expired.
    pub fn google_access_token_valid(&self, access_token: &str) -> bool {
        let st = self.lock();
        let now = st.now();
        st.google
            .access_tokens
            .get(access_token)
            .is_some_and(|(_, exp)| *exp > now)
    }
}

fn rt_dead(g: &GoogleState, rt: &GoogleRt, now: Timestamp) -> Option<&'static str> {
    if rt.revoked {
        return Some(EXPIRED_OR_REVOKED);
    }
    let testing = g.clients.get(&rt.client_id).is_some_and(|c| c.testing);
    if testing && now.duration_since(rt.issued_at) >= TESTING_TTL {
        return Some(EXPIRED_OR_REVOKED);
    }
    if now.duration_since(rt.last_used) >= UNUSED_TTL {
        return Some(EXPIRED_OR_REVOKED);
    }
    None
}

/// Client authentication: form fields or HTTP Basic. `Err` is the response.
fn authenticate(
    st: &mut crate::state::State,
    form: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<String, Response> {
    let basic = basic_auth(headers);
    let (id, secret) = match (param(form, "client_id"), &basic) {
        (Some(id), _) => (
            id.to_string(),
            param(form, "client_secret")
                .map(str::to_string)
                .or_else(|| basic.as_ref().map(|b| b.1.clone())),
        ),
        (None, Some((id, s))) => (id.clone(), Some(s.clone())),
        (None, None) => {
            return Err(oauth_error(
                400,
                "invalid_request",
                "Could not determine client ID from request.",
            ));
        }
    };
    match st.google.clients.get(&id) {
        Some(c) => {
            if secret.as_deref() != Some(c.secret.as_str()) {
                return Err(oauth_error(401, "invalid_client", "Unauthorized"));
            }
        }
        None if st.lenient => {
            st.google.clients.insert(
                id.clone(),
                GoogleClient {
                    secret: secret.unwrap_or_default(),
                    testing: false,
                },
            );
        }
        None => {
            return Err(oauth_error(
                401,
                "invalid_client",
                "The OAuth client was not found.",
            ));
        }
    }
    Ok(id)
}

fn access_token(st: &mut crate::state::State, client_id: &str) -> String {
    let t = format!("ya29.sim-{}", alnum(60));
    let exp = st.now() + SignedDuration::from_secs(3599);
    if st.google.access_tokens.len() > 100_000 {
        st.google.access_tokens.clear();
    }
    st.google
        .access_tokens
        .insert(t.clone(), (client_id.to_string(), exp));
    t
}

async fn token(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let f = parse_form(&body);
    let grant = param(&f, "grant_type").unwrap_or("").to_string();
    if grant != "refresh_token" && grant != "authorization_code" {
        return oauth_error(
            400,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {grant}"),
        );
    }
    let mut st = sim.lock();
    let client_id = match authenticate(&mut st, &f, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let now = st.now();
    if grant == "refresh_token" {
        let Some(rt) = param(&f, "refresh_token") else {
            return oauth_error(
                400,
                "invalid_request",
                "Missing required parameter: refresh_token",
            );
        };
        let lenient = st.lenient;
        let entry = match st.google.refresh_tokens.get(rt) {
            Some(e) => e.clone(),
            None if lenient => {
                let e = GoogleRt {
                    client_id: client_id.clone(),
                    issued_at: now,
                    last_used: now,
                    revoked: false,
                    scope: DEFAULT_SCOPE.to_string(),
                };
                st.google.refresh_tokens.insert(rt.to_string(), e.clone());
                e
            }
            None => return oauth_error(400, "invalid_grant", "Bad Request"),
        };
        if let Some(why) = rt_dead(&st.google, &entry, now) {
            return oauth_error(400, "invalid_grant", why);
        }
        if entry.client_id != client_id {
            return oauth_error(401, "unauthorized_client", "Unauthorized");
        }
        if let Some(e) = st.google.refresh_tokens.get_mut(rt) {
            e.last_used = now;
        }
        let at = access_token(&mut st, &client_id);
        return json_response(
            200,
            json!({"access_token": at, "expires_in": 3599, "scope": entry.scope, "token_type": "Bearer"}),
        );
    }
    // authorization_code
    let Some(code) = param(&f, "code").map(str::to_string) else {
        return oauth_error(400, "invalid_request", "Missing required parameter: code");
    };
    drop(st);
    let res = oauth::redeem(
        &sim,
        "google",
        &code,
        &client_id,
        param(&f, "redirect_uri"),
        param(&f, "code_verifier"),
    );
    let grant = match res {
        Ok(g) => g,
        Err(CodeError::RedirectMismatch) => {
            return oauth_error(400, "redirect_uri_mismatch", "Bad Request");
        }
        Err(CodeError::VerifierMissing) => {
            return oauth_error(400, "invalid_grant", "Missing code verifier.");
        }
        Err(CodeError::VerifierMismatch) => {
            return oauth_error(400, "invalid_grant", "Invalid code verifier.");
        }
        Err(_) => return oauth_error(400, "invalid_grant", "Bad Request"),
    };
    let mut st = sim.lock();
    let now = st.now();
    let at = access_token(&mut st, &client_id);
    let scope = if grant.scope.is_empty() {
        DEFAULT_SCOPE.to_string()
    } else {
        grant.scope.clone()
    };
    let mut body =
        json!({"access_token": at, "expires_in": 3599, "scope": scope, "token_type": "Bearer"});
    if grant.offline && grant.consent {
        let rt = format!("1//sim-{}", alnum(96));
        st.google.refresh_tokens.insert(
            rt.clone(),
            GoogleRt {
                client_id,
                issued_at: now,
                last_used: now,
                revoked: false,
                scope,
            },
        );
        body["refresh_token"] = json!(rt);
    }
    json_response(200, body)
}

async fn revoke(State(sim): State<Sim>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let mut f = parse_form(&body);
    for (k, v) in parse_query(q.as_deref()) {
        f.entry(k).or_insert(v);
    }
    let Some(t) = param(&f, "token") else {
        return oauth_error(400, "invalid_request", "Missing required parameter: token");
    };
    let mut st = sim.lock();
    if let Some(rt) = st.google.refresh_tokens.get_mut(t) {
        rt.revoked = true;
        return json_response(200, json!({}));
    }
    if st.google.access_tokens.remove(t).is_some() {
        return json_response(200, json!({}));
    }
    oauth_error(400, "invalid_token", "Token expired or revoked")
}

fn error_page(code: u16, error: &str, description: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error {code}: {error}</title>\
<p><b>Access blocked: Authorization Error</b></p><p>{description}</p>\
<p>Error {code}: {error}</p></html>"
    );
    (
        crate::util::status(code),
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

async fn authorize(State(sim): State<Sim>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(q.as_deref());
    let Some(client_id) = param(&q, "client_id") else {
        return error_page(
            400,
            "invalid_request",
            "Missing required parameter: client_id",
        );
    };
    let known = {
        let st = sim.lock();
        st.lenient || st.google.clients.contains_key(client_id)
    };
    if !known {
        return error_page(401, "invalid_client", "The OAuth client was not found.");
    }
    let Some(redirect) = param(&q, "redirect_uri") else {
        return error_page(
            400,
            "invalid_request",
            "Missing required parameter: redirect_uri",
        );
    };
    if let Err(why) = oauth::check_redirect(
        &sim,
        "google",
        client_id,
        redirect,
        oauth::RedirectRule::Standard,
        true,
    ) {
        return error_page(400, "redirect_uri_mismatch", &why);
    }
    if param(&q, "response_type") != Some("code") {
        return oauth::redirect_error(
            redirect,
            "unsupported_response_type",
            "Invalid response_type",
            param(&q, "state"),
        );
    }
    if let Some(m) = param(&q, "code_challenge_method")
        && m != "S256"
        && m != "plain"
    {
        return error_page(
            400,
            "invalid_request",
            "Invalid code_challenge_method value.",
        );
    }
    let grant = CodeGrant {
        provider: "google",
        client_id: client_id.to_string(),
        redirect_uri: Some(redirect.to_string()),
        code_challenge: param(&q, "code_challenge").map(str::to_string),
        challenge_method: param(&q, "code_challenge_method")
            .unwrap_or("plain")
            .to_string(),
        hex_challenge: false,
        scope: param(&q, "scope").unwrap_or("").to_string(),
        offline: param(&q, "access_type") == Some("offline"),
        consent: param(&q, "prompt").is_some_and(|p| p.split(' ').any(|x| x == "consent")),
        expires_at: Timestamp::UNIX_EPOCH,
        used: false,
    };
    let scope = grant.scope.clone();
    oauth::issue_and_redirect(
        &sim,
        "4/sim-",
        grant,
        param(&q, "state"),
        &[("scope", scope.as_str())],
        "",
    )
}

// ------------------------------------------------------------ registry

#[allow(non_upper_case_globals)]
impl crate::Route {
    /// Google's token, revoke and authorize endpoints.
    pub const Google: crate::Route = crate::Route("google");
}

pub(crate) type ProviderState = GoogleState;

pub(crate) const PROVIDER: crate::registry::Provider = crate::registry::Provider {
    routes: &[(crate::Route::Google, &["youtube"])],
    owns: |path| {
        matches!(
            path,
            "/token" | "/o/oauth2/v2/auth" | "/o/oauth2/auth" | "/revoke"
        )
        .then_some(crate::Route::Google)
    },
    router: routes,
    wrap: None,
    errors: crate::registry::Errors {
        status: |_, code| crate::util::oauth_fault_status(code),
        invalid_grant: Some(|_| {
            oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        }),
        invalid_client: Some(|_| oauth_error(401, "invalid_client", "Unauthorized")),
        unauthorized: |_| oauth_error(401, "unauthorized_client", "Unauthorized"),
        echo: |_, message| oauth_error(400, "invalid_request", message),
        ..crate::registry::Errors::DEFAULT
    },
};
