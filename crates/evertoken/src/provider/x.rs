//! X (formerly Twitter), OAuth 2.0 user context: a two-hour access token and a
//! refresh token (issued only with the `offline.access` scope) that rotates on
//! every refresh: `POST /2/oauth2/token` (form: `grant_type=refresh_token`,
//! `refresh_token`) answers a new access token AND a new refresh token, and the
//! one sent stops working. The new refresh token is persisted before anything
//! else ([`Provider::rotates`]).
//!
//! Client authentication follows the app's type in the developer portal: a
//! **confidential** client (Web App, Automated App or Bot) authenticates with
//! HTTP Basic `client_id:X_CLIENT_SECRET`, a **public** client (Native App,
//! Single Page App) sends `client_id` in the body and has no secret. Without
//! `client_type`, the secret decides: set, confidential; absent, public.
//! `client_type: confidential` makes a missing secret an error instead. X refuses a confidential client without its Basic
//! credentials with `401 unauthorized_client` ("Missing valid authorization
//! header"): a configuration problem.
//!
//! A dead refresh token (used, revoked, unknown) is answered `400
//! {"error":"invalid_request","error_description":"Value passed for the token
//! was invalid."}`; X does not use `invalid_grant` for it. Both mean
//! `reauth_required` (the engine re-reads the store once first, in case another
//! run rotated it). X documents no lifetime for refresh tokens.
//! Sources: docs.x.com/fundamentals/authentication/oauth-2-0/authorization-code,
//! docs.x.com/fundamentals/authentication/oauth-2-0/user-access-token
//!
//! ## Login
//! `GET /i/oauth2/authorize` (on `auth_url`, default x.com) with PKCE S256
//! (required by X) and scopes including `offline.access` (without it X issues no
//! refresh token), then `POST /2/oauth2/token` (on `base_url`, default
//! api.x.com) with `grant_type=authorization_code`, `code`, `redirect_uri` and
//! `code_verifier`, the client authenticated as for a refresh. X accepts
//! loopback callback URLs (`http://127.0.0.1:PORT/…`) registered with the app.

use jiff::{Timestamp, ToSpan};
use serde::Deserialize;
use url::Url;

use super::{
    AccountState, BuildCx, Common, Cx, Grant, NewToken, OAuthError, Plan, Provider,
    ProviderError, Role, Slot,
};
use crate::error::Result;
use crate::http::{Call, endpoint};
use crate::login::{self, Flow, Pkce, Tokens};
use crate::secret::Secret;

pub const KEY: &str = "x";
pub const DISPLAY: &str = "X";
const DEFAULT_SCOPE: &str = "tweet.read tweet.write users.read offline.access";
const SECRET_VAR: &str = "X_CLIENT_SECRET";
pub const BASE_URL: &str = "https://api.x.com";
pub const AUTH_URL: &str = "https://x.com";
/// A new access token is fetched when the stored one has less than this left
/// (X's live two hours).
const ACCESS_MIN_MINUTES: i64 = 30;

/// The app's type in the X developer portal.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Web App, Automated App or Bot: HTTP Basic with `X_CLIENT_SECRET`.
    Confidential,
    /// Native App or Single Page App: `client_id` in the body, no secret.
    Public,
}

platform_config! {
    /// The OAuth 2.0 client id (developer portal → the app → Keys and tokens).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Absent: confidential when `X_CLIENT_SECRET` is set, public otherwise.
    #[serde(default)]
    pub client_type: Option<ClientType>,
}

const SLOTS: &[Slot] = &[
    Slot {
        role: Role::Refresh,
        base: "X_REFRESH_TOKEN",
        durable: true,
    },
    Slot {
        role: Role::Access,
        base: "X_ACCESS_TOKEN",
        durable: false,
    },
];

pub struct X {
    common: Common,
    token: Url,
    authorize: Url,
    client_type: Option<ClientType>,
}

impl super::Section for Config {
    fn enabled(&self) -> bool {
        self.enabled
    }
    fn numbers(&self) -> Vec<(&'static str, f64)> {
        vec![("concurrency", self.concurrency as f64)]
    }
    fn build(&self, cx: &BuildCx<'_>) -> Result<std::sync::Arc<dyn Provider>> {
        let c = self;
        let common = super::common(
            cx,
            c.keys((
                    "client_id",
                    c.client_id.as_deref(),
                    "the OAuth 2.0 Client ID from the X developer portal (your app → Keys and tokens)",
                )),
            BASE_URL,
            AUTH_URL,
        )?;
        if c.enabled {
            common.client_id()?;
        }
        Ok(std::sync::Arc::new(X {
            token: endpoint(&common.base_url, "/2/oauth2/token"),
            authorize: endpoint(&common.auth_url, "/i/oauth2/authorize"),
            common,
            client_type: c.client_type,
        }))
    }
}

use super::oauth2::TokenReply;

impl X {
    fn client_id(&self) -> &str {
        self.common.client_id().unwrap_or_default()
    }

    fn secret_var(&self) -> Option<&'static str> {
        (self.client_type != Some(ClientType::Public)).then_some(SECRET_VAR)
    }

    /// A token request with the client authenticated as its type says.
    fn request(
        &self,
        c: &reqwest::Client,
        secret: &str,
        form: Vec<(&'static str, String)>,
    ) -> reqwest::RequestBuilder {
        let auth = match self.client_type {
            Some(ClientType::Confidential) => super::oauth2::ClientAuth::Basic,
            Some(ClientType::Public) => super::oauth2::ClientAuth::None,
            None if secret.is_empty() => super::oauth2::ClientAuth::None,
            None => super::oauth2::ClientAuth::Basic,
        };
        super::oauth2::token_request(c, &self.token, auth, self.client_id(), secret, form)
    }
}

/// X's answer for a dead refresh token is `invalid_request` (`Value passed for
/// the token was invalid.`); `invalid_grant` counts too. A missing parameter
/// (also `invalid_request`) is evertoken's fault, not the token's.
fn dead(e: &OAuthError) -> bool {
    e.error == "invalid_grant"
        || e.error == "invalid_request"
            && !e
                .error_description
                .as_deref()
                .is_some_and(|d| d.starts_with("Missing required parameter"))
}

/// The pure planning rule: no refresh token ⇒ re-auth; an access token with
/// less than half an hour left (or of unknown expiry) ⇒ rotate; else ok.
pub(crate) fn plan(state: &AccountState, now: Timestamp) -> Plan {
    if let Err(plan) = state.usable_refresh(now) {
        return plan;
    }
    match state.access.as_ref().and_then(|a| a.expires_at) {
        None => Plan::Refresh {
            reason: "access token expiry unknown".into(),
        },
        Some(exp) if exp <= now => Plan::Refresh {
            reason: "access token expired".into(),
        },
        Some(exp) if exp <= now.checked_add(ACCESS_MIN_MINUTES.minutes()).unwrap_or(now) => {
            Plan::Refresh {
                reason: "access token expires within half an hour".into(),
            }
        }
        Some(exp) => Plan::Ok {
            message: format!(
                "access token valid until {}",
                exp.strftime("%Y-%m-%d %H:%M UTC")
            ),
        },
    }
}

#[async_trait::async_trait]
impl Provider for X {
    fn common(&self) -> &Common {
        &self.common
    }
    fn login(&self) -> &dyn Flow {
        self
    }
    fn slots(&self) -> &[Slot] {
        SLOTS
    }
    fn client_secret_var(&self) -> Option<&'static str> {
        self.secret_var()
    }
    fn client_secret_optional(&self) -> bool {
        self.client_type.is_none()
    }
    fn rotates(&self, _: &AccountState) -> bool {
        true
    }
    fn plan(&self, state: &AccountState, now: Timestamp) -> Plan {
        plan(state, now)
    }

    async fn refresh(&self, cx: &Cx<'_>, state: &AccountState) -> Result<Grant, ProviderError> {
        let rt = state.refresh_token()?;
        let secret = cx.client_secret.map(|s| s.expose()).unwrap_or_default();
        let reply = cx
            .http
            .send("X token endpoint", Call::Rotating, |c| {
                self.request(
                    c,
                    secret,
                    vec![
                        ("grant_type", "refresh_token".into()),
                        ("refresh_token", rt.value.expose().to_owned()),
                    ],
                )
            })
            .await?;
        if !reply.status.is_success() {
            let hint = match self.client_type {
                Some(ClientType::Confidential) | None => format!(
                    "check platforms.x.client_id and {SECRET_VAR}; a Native App or Single Page App is a public client: set `client_type: public`"
                ),
                Some(ClientType::Public) => "check platforms.x.client_id; a Web App, Automated App or Bot is a confidential client: remove `client_type: public` and set X_CLIENT_SECRET".to_owned(),
            };
            return Err(super::oauth_error("X", &reply, &hint, dead));
        }
        let body: TokenReply = reply
            .json()
            .map_err(|e| super::malformed("X token endpoint", &reply, true, e))?;
        let Some(access) = body.access_token.filter(|s| !s.is_empty()) else {
            return Err(ProviderError::Unknown {
                message: "X answered without an access_token; the stored refresh token may have been rotated away".into(),
            });
        };
        let mut check = super::LifetimeCheck::default();
        let access = NewToken {
            value: access.into(),
            expires_at: check.at(cx.clock, "expires_in", &body.expires_in),
        };
        let refresh = body
            .refresh_token
            .filter(|s| !s.is_empty())
            .map(|v| NewToken {
                value: v.into(),
                expires_at: None,
            });
        let mut problem = check.problem("X");
        if refresh.is_none() {
            problem = Some(
                "X answered without a new refresh_token: the one sent is used up, so the next refresh needs a login (`evertoken auth login x`, with the offline.access scope)".into(),
            );
        }
        Ok(Grant {
            access: Some(access),
            refresh,
            note: None,
            problem,
        })
    }

    fn reauth_causes(&self) -> &'static str {
        "the refresh token was revoked (the user removed the app's access) or already used: X rotates it on every refresh, so another process may have rotated it and the new one was lost"
    }
}

#[async_trait::async_trait]
impl Flow for X {
    /// X requires PKCE on every authorization request.
    fn pkce(&self, _loopback: bool) -> Option<login::Challenge> {
        Some(login::Challenge::Base64Url)
    }

    fn client_secret_var(&self) -> Option<&'static str> {
        self.secret_var()
    }

    fn authorize_url(&self, cx: &login::Cx<'_>, state: &str, pkce: Option<&Pkce>) -> Url {
        let mut u = self.authorize.clone();
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", self.client_id())
                .append_pair("redirect_uri", cx.redirect_uri)
                .append_pair("scope", cx.scope.unwrap_or(DEFAULT_SCOPE))
                .append_pair("state", state);
            if let Some(p) = pkce {
                q.append_pair("code_challenge", &p.challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        u
    }

    async fn exchange(
        &self,
        cx: &login::Cx<'_>,
        code: &Secret,
        pkce: Option<&Pkce>,
    ) -> Result<Tokens> {
        super::oauth2::exchange_code(
            "X",
            cx,
            "log in again with the `offline.access` scope (X access tokens live two hours)",
            |c| {
                self.request(
                    c,
                    cx.client_secret.expose(),
                    super::oauth2::code_form(cx, code, pkce),
                )
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::testing::{Case, check_table, t};



    #[test]
    fn plan_table() {
        let now = t("2026-11-30T12:00:00Z");
        let cases: &[Case] = &[
            // (access expiry, refresh expiry, expected)
            (None, None, "reauth"),
            (Some(Some("2026-11-30T13:30:00Z")), None, "reauth"),
            (None, Some(None), "refresh"),
            (Some(None), Some(None), "refresh"),
            (Some(Some("2026-11-30T11:00:00Z")), Some(None), "refresh"),
            (Some(Some("2026-11-30T12:20:00Z")), Some(None), "refresh"),
            (Some(Some("2026-11-30T13:30:00Z")), Some(None), "ok"),
            (
                Some(Some("2026-11-30T13:30:00Z")),
                Some(Some("2026-11-29T00:00:00Z")),
                "reauth-dated",
            ),
        ];
        check_table(cases, |s| plan(s, now));
    }

    #[test]
    fn dead_token_answers() {
        let e = |error: &str, d: Option<&str>| OAuthError {
            error: error.into(),
            error_description: d.map(str::to_owned),
        };
        assert!(dead(&e(
            "invalid_request",
            Some("Value passed for the token was invalid.")
        )));
        assert!(dead(&e("invalid_grant", None)));
        assert!(!dead(&e(
            "invalid_request",
            Some("Missing required parameter [refresh_token].")
        )));
        assert!(!dead(&e("unauthorized_client", None)));
    }
}
