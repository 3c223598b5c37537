//! LinkedIn OAuth 2.0.
//!
//! Docs checked:
//! - <https://learn.microsoft.com/linkedin/shared/authentication/authorization-code-flow>
//!   (`GET /oauth/v2/authorization`, `POST /oauth/v2/accessToken` form
//!   `grant_type=authorization_code, code, client_id, client_secret, redirect_uri`;
//!   access tokens live 60 days; errors `{"error","error_description"}`).
//! - <https://learn.microsoft.com/linkedin/shared/authentication/programmatic-refresh-tokens>
//!   (refresh tokens only for approved partners; `grant_type=refresh_token`; answer
//!   `{access_token, expires_in, refresh_token, refresh_token_expires_in, scope}`; the
//!   refresh token keeps its original one-year TTL, so `refresh_token_expires_in`
//!   decreases, and the same refresh token is returned). [`Sim::linkedin_set_refresh_extends`]
//!   turns on a refresh that restarts the refresh token's lifetime, for contrast.
//! - Redirect URLs (same authorization-code page): the `redirect_uri` must be one of
//!   the "Authorized redirect URLs for your app" on the app's Auth tab, absolute,
//!   without `#`; the token request must send the same value ("appid/redirect uri/code
//!   verifier does not match authorization code"). LinkedIn's page does not say
//!   whether an `http` loopback URL can be registered; the simulator accepts `http`
//!   only on a loopback host and otherwise exact registered strings.
//! - <https://learn.microsoft.com/linkedin/shared/authentication/token-introspection>
//!   (`POST /oauth/v2/introspectToken` form `client_id, client_secret, token`; answer
//!   `{active, client_id, authorized_at, created_at, status, expires_at, scope,
//!   auth_type}`; `status` is `active`, `expired` or `revoked`).

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
use crate::util::{alnum, json_response, oauth_error, param, parse_form, parse_query};

pub(crate) const ACCESS_SECS: i64 = 60 * 86400;
pub(crate) const REFRESH_SECS: i64 = 365 * 86400;
pub(crate) const INVALID_REFRESH: &str =
    "The provided authorization grant or refresh token is invalid, expired or revoked.";
const DEFAULT_SCOPE: &str = "openid,profile,w_member_social";

#[derive(Clone, Debug)]
pub(crate) struct LiClient {
    pub secret: String,
    pub refresh_enabled: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct LiAccess {
    pub client_id: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub scope: String,
    pub revoked: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct LiRefresh {
    pub client_id: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub scope: String,
    pub revoked: bool,
}

#[derive(Default)]
pub(crate) struct LinkedInState {
    /// Off (the documented behaviour): a refresh keeps the refresh token's expiry.
    pub refresh_extends: bool,
    pub clients: HashMap<String, LiClient>,
    pub access: HashMap<String, LiAccess>,
    pub refresh: HashMap<String, LiRefresh>,
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/oauth/v2/accessToken", post(access_token))
        .route("/oauth/v2/introspectToken", post(introspect))
        .route("/oauth/v2/authorization", get(authorize))
}

impl Sim {
    /// On: a refresh restarts the refresh token's one-year lifetime (LinkedIn
    /// documents that it does not; default off).
    pub fn linkedin_set_refresh_extends(&self, extends: bool) {
        self.lock().linkedin.refresh_extends = extends;
    }

    pub fn linkedin_add_client(&self, client_id: &str, client_secret: &str) {
        let mut st = self.lock();
        let refresh_enabled = st
            .linkedin
            .clients
            .get(client_id)
            .is_some_and(|c| c.refresh_enabled);
        st.linkedin.clients.insert(
            client_id.to_string(),
            LiClient {
                secret: client_secret.to_string(),
                refresh_enabled,
            },
        );
    }

    /// Whether the authorization-code exchange also issues a refresh token
    /// (LinkedIn grants programmatic refresh tokens to approved partners only).
    pub fn linkedin_set_programmatic_refresh(&self, client_id: &str, enabled: bool) {
        let mut st = self.lock();
        st.linkedin
            .clients
            .entry(client_id.to_string())
            .or_insert_with(|| LiClient {
                secret: String::new(),
                refresh_enabled: enabled,
            })
            .refresh_enabled = enabled;
    }

    /// Seeds an access token (created 60 days before `expires_at`).
    pub fn linkedin_add_access_token(&self, token: &str, expires_at: Timestamp) {
        self.lock().linkedin.access.insert(
            token.to_string(),
            LiAccess {
                client_id: None,
                created_at: expires_at - SignedDuration::from_secs(ACCESS_SECS),
                expires_at,
                scope: DEFAULT_SCOPE.to_string(),
                revoked: false,
            },
        );
    }

    /// Seeds a programmatic refresh token.
    pub fn linkedin_add_refresh_token(
        &self,
        client_id: &str,
        refresh_token: &str,
        refresh_expires_at: Timestamp,
    ) {
        self.lock().linkedin.refresh.insert(
            refresh_token.to_string(),
            LiRefresh {
                client_id: client_id.to_string(),
                created_at: refresh_expires_at - SignedDuration::from_secs(REFRESH_SECS),
                expires_at: refresh_expires_at,
                scope: DEFAULT_SCOPE.to_string(),
                revoked: false,
            },
        );
    }

    /// Whether an access token is known, unrevoked and unexpired.
    pub fn linkedin_is_valid_access(&self, token: &str) -> bool {
        let st = self.lock();
        let now = st.now();
        st.linkedin
            .access
            .get(token)
            .is_some_and(|a| !a.revoked && a.expires_at > now)
    }

    /// Revokes an access or refresh token.
    pub fn linkedin_revoke(&self, token: &str) {
        let mut st = self.lock();
        if let Some(a) = st.linkedin.access.get_mut(token) {
            a.revoked = true;
        }
        if let Some(r) = st.linkedin.refresh.get_mut(token) {
            r.revoked = true;
        }
    }
}

fn missing(name: &str) -> Response {
    oauth_error(
        400,
        "invalid_request",
        &format!("A required parameter \"{name}\" is missing"),
    )
}

/// Client authentication from the form. `Err` is the response.
fn authenticate(
    st: &mut crate::state::State,
    f: &HashMap<String, String>,
) -> Result<String, Response> {
    let Some(id) = param(f, "client_id") else {
        return Err(missing("client_id"));
    };
    let Some(secret) = param(f, "client_secret") else {
        return Err(missing("client_secret"));
    };
    match st.linkedin.clients.get(id) {
        Some(c) if c.secret == secret => Ok(id.to_string()),
        Some(_) => Err(oauth_error(
            401,
            "invalid_client",
            "Client authentication failed",
        )),
        None if st.lenient => {
            st.linkedin.clients.insert(
                id.to_string(),
                LiClient {
                    secret: secret.to_string(),
                    refresh_enabled: true,
                },
            );
            Ok(id.to_string())
        }
        None => Err(oauth_error(
            401,
            "invalid_client",
            "Client authentication failed",
        )),
    }
}

fn new_access(st: &mut crate::state::State, client_id: &str, scope: &str) -> String {
    let now = st.now();
    let t = format!("sim-li-at-{}", alnum(64));
    st.linkedin.access.insert(
        t.clone(),
        LiAccess {
            client_id: Some(client_id.to_string()),
            created_at: now,
            expires_at: now + SignedDuration::from_secs(ACCESS_SECS),
            scope: scope.to_string(),
            revoked: false,
        },
    );
    t
}

async fn access_token(State(sim): State<Sim>, body: Bytes) -> Response {
    let f = parse_form(&body);
    let Some(grant) = param(&f, "grant_type").map(str::to_string) else {
        return missing("grant_type");
    };
    if grant != "refresh_token" && grant != "authorization_code" {
        return oauth_error(
            400,
            "unsupported_grant_type",
            &format!("Unsupported grant type: {grant}"),
        );
    }
    let mut st = sim.lock();
    let client_id = match authenticate(&mut st, &f) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let now = st.now();
    if grant == "refresh_token" {
        let Some(rt) = param(&f, "refresh_token") else {
            return missing("refresh_token");
        };
        let lenient = st.lenient;
        let entry = match st.linkedin.refresh.get(rt) {
            Some(e) => e.clone(),
            None if lenient => {
                let e = LiRefresh {
                    client_id: client_id.clone(),
                    created_at: now,
                    expires_at: now + SignedDuration::from_secs(REFRESH_SECS),
                    scope: DEFAULT_SCOPE.to_string(),
                    revoked: false,
                };
                st.linkedin.refresh.insert(rt.to_string(), e.clone());
                e
            }
            None => return oauth_error(400, "invalid_grant", INVALID_REFRESH),
        };
        if entry.revoked || entry.expires_at <= now || entry.client_id != client_id {
            return oauth_error(400, "invalid_grant", INVALID_REFRESH);
        }
        let at = new_access(&mut st, &client_id, &entry.scope);
        if st.linkedin.refresh_extends
            && let Some(e) = st.linkedin.refresh.get_mut(rt)
        {
            e.expires_at = now + SignedDuration::from_secs(REFRESH_SECS);
        }
        let remaining = st
            .linkedin
            .refresh
            .get(rt)
            .map_or(entry.expires_at, |e| e.expires_at)
            .duration_since(now)
            .as_secs();
        return json_response(
            200,
            json!({
                "access_token": at,
                "expires_in": ACCESS_SECS,
                "refresh_token": rt,
                "refresh_token_expires_in": remaining,
                "scope": entry.scope,
            }),
        );
    }
    let Some(code) = param(&f, "code").map(str::to_string) else {
        return missing("code");
    };
    if param(&f, "redirect_uri").is_none() {
        return missing("redirect_uri");
    }
    drop(st);
    let r = oauth::redeem(
        &sim,
        "linkedin",
        &code,
        &client_id,
        param(&f, "redirect_uri"),
        param(&f, "code_verifier"),
    );
    let g = match r {
        Ok(g) => g,
        Err(CodeError::Expired) => {
            return oauth_error(
                400,
                "invalid_request",
                "Unable to retrieve access token: authorization code expired",
            );
        }
        Err(_) => {
            return oauth_error(
                400,
                "invalid_request",
                "Unable to retrieve access token: appid/redirect uri/code verifier does not match authorization code. Or authorization code expired. Or external member binding exists",
            );
        }
    };
    let mut st = sim.lock();
    let now = st.now();
    let scope = if g.scope.is_empty() {
        DEFAULT_SCOPE.to_string()
    } else {
        g.scope.replace(' ', ",")
    };
    let at = new_access(&mut st, &client_id, &scope);
    let mut body = json!({"access_token": at, "expires_in": ACCESS_SECS, "scope": scope});
    let refresh_enabled = st
        .linkedin
        .clients
        .get(&client_id)
        .is_some_and(|c| c.refresh_enabled);
    if refresh_enabled {
        let rt = format!("sim-li-rt-{}", alnum(64));
        st.linkedin.refresh.insert(
            rt.clone(),
            LiRefresh {
                client_id,
                created_at: now,
                expires_at: now + SignedDuration::from_secs(REFRESH_SECS),
                scope,
                revoked: false,
            },
        );
        body["refresh_token"] = json!(rt);
        body["refresh_token_expires_in"] = json!(REFRESH_SECS);
    }
    json_response(200, body)
}

async fn introspect(State(sim): State<Sim>, body: Bytes) -> Response {
    let f = parse_form(&body);
    let mut st = sim.lock();
    let client_id = match authenticate(&mut st, &f) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(token) = param(&f, "token") else {
        return missing("token");
    };
    let now = st.now();
    let info = if let Some(a) = st.linkedin.access.get(token) {
        let owner = a.client_id.clone().unwrap_or_else(|| client_id.clone());
        Some((
            a.created_at,
            a.expires_at,
            a.scope.clone(),
            a.revoked,
            owner,
        ))
    } else if let Some(r) = st.linkedin.refresh.get(token) {
        Some((
            r.created_at,
            r.expires_at,
            r.scope.clone(),
            r.revoked,
            r.client_id.clone(),
        ))
    } else if st.lenient {
        let a = LiAccess {
            client_id: Some(client_id.clone()),
            created_at: now - SignedDuration::from_hours(30 * 24),
            expires_at: now + SignedDuration::from_hours(30 * 24),
            scope: DEFAULT_SCOPE.to_string(),
            revoked: false,
        };
        let out = (
            a.created_at,
            a.expires_at,
            a.scope.clone(),
            false,
            client_id.clone(),
        );
        st.linkedin.access.insert(token.to_string(), a);
        Some(out)
    } else {
        None
    };
    let Some((created, expires, scope, revoked, owner)) = info else {
        return json_response(200, json!({"active": false}));
    };
    let status = if revoked {
        "revoked"
    } else if expires <= now {
        "expired"
    } else {
        "active"
    };
    json_response(
        200,
        json!({
            "active": status == "active",
            "client_id": owner,
            "authorized_at": created.as_second(),
            "created_at": created.as_second(),
            "status": status,
            "expires_at": expires.as_second(),
            "scope": scope,
            "auth_type": "3L",
        }),
    )
}

async fn authorize(State(sim): State<Sim>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(q.as_deref());
    let client_id = param(&q, "client_id").unwrap_or("");
    let Some(redirect) = param(&q, "redirect_uri") else {
        return oauth_error(
            400,
            "invalid_request",
            "A required parameter \"redirect_uri\" is missing",
        );
    };
    let known = {
        let st = sim.lock();
        st.lenient || st.linkedin.clients.contains_key(client_id)
    };
    if !known {
        return oauth_error(400, "invalid_request", "Invalid client_id");
    }
    if let Err(why) = oauth::check_redirect(
        &sim,
        "linkedin",
        client_id,
        redirect,
        oauth::RedirectRule::Standard,
        false,
    ) {
        return oauth_error(
            400,
            "invalid_request",
            &format!("The redirect_uri does not match the registered value: {why}"),
        );
    }
    if param(&q, "response_type") != Some("code") {
        return oauth::redirect_error(
            redirect,
            "unsupported_response_type",
            "We only support a response_type of \"code\", but you passed something else",
            param(&q, "state"),
        );
    }
    let grant = CodeGrant {
        provider: "linkedin",
        client_id: client_id.to_string(),
        redirect_uri: Some(redirect.to_string()),
        code_challenge: param(&q, "code_challenge").map(str::to_string),
        challenge_method: param(&q, "code_challenge_method")
            .unwrap_or("S256")
            .to_string(),
        hex_challenge: false,
        scope: param(&q, "scope").unwrap_or("").to_string(),
        offline: true,
        consent: true,
        expires_at: Timestamp::UNIX_EPOCH,
        used: false,
    };
    oauth::issue_and_redirect(&sim, "AQSim", grant, param(&q, "state"), &[], "")
}

// ------------------------------------------------------------ registry

#[allow(non_upper_case_globals)]
impl crate::Route {
    /// LinkedIn's token and authorization endpoints.
    pub const LinkedInToken: crate::Route = crate::Route("linkedin_token");
    /// LinkedIn's token introspection.
    pub const LinkedInIntrospect: crate::Route = crate::Route("linkedin_introspect");
}

pub(crate) type ProviderState = LinkedInState;

pub(crate) const PROVIDER: crate::registry::Provider = crate::registry::Provider {
    routes: &[
        (crate::Route::LinkedInToken, &["linkedin"]),
        (crate::Route::LinkedInIntrospect, &[]),
    ],
    owns: |path| match path {
        "/oauth/v2/accessToken" | "/oauth/v2/authorization" => Some(crate::Route::LinkedInToken),
        "/oauth/v2/introspectToken" => Some(crate::Route::LinkedInIntrospect),
        _ => None,
    },
    router: routes,
    wrap: None,
    errors: crate::registry::Errors {
        status: |_, code| crate::util::oauth_fault_status(code),
        invalid_grant: Some(|ctx| {
            if ctx.route == crate::Route::LinkedInIntrospect {
                json_response(200, json!({"active": false}))
            } else {
                oauth_error(400, "invalid_grant", INVALID_REFRESH)
            }
        }),
        invalid_client: None,
        unauthorized: |_| oauth_error(401, "invalid_client", "Client authentication failed"),
        echo: |_, message| oauth_error(400, "invalid_request", message),
        ..crate::registry::Errors::DEFAULT
    },
};
