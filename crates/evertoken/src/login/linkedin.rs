//! LinkedIn: `GET /oauth/v2/authorization` (on `auth_url`, default
//! www.linkedin.com), then `POST /oauth/v2/accessToken` with
//! `grant_type=authorization_code` (on `base_url`). The answer is a 60-day access
//! token and, for apps with programmatic refresh tokens, a refresh token with its
//! own lifetime. LinkedIn documents PKCE for native clients only, so a web app's
//! client secret authenticates the exchange.
//! Source: learn.microsoft.com/linkedin/shared/authentication/authorization-code-flow

use url::Url;

use super::{Cx, Flow, Pkce, Tokens};
use crate::config::Config;
use crate::error::Result;
use crate::http::Call;
use crate::provider::NewToken;
use crate::provider::linkedin::TokenReply;
use crate::secret::Secret;

const DEFAULT_SCOPE: &str = "openid profile w_member_social";

pub struct Linkedin {
    client_id: String,
    authorize: Url,
    token: Url,
}

impl Linkedin {
    pub fn new(cfg: &Config) -> Result<Self> {
        let c = cfg.file.platforms.linkedin.as_ref().ok_or_else(|| {
            cfg.error_at("platforms.linkedin", "is not configured")
                .with_hint("add `platforms.linkedin: { enabled: true, client_id: … }`")
        })?;
        let client_id = c
            .client_id
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                cfg.error_at("platforms.linkedin.client_id", "is required to log in")
                    .with_hint(
                        "the Client ID from your app's Auth tab in the LinkedIn developer portal",
                    )
            })?;
        let authorize = super::endpoint(
            cfg,
            "platforms.linkedin.auth_url",
            c.auth_url.as_deref(),
            "https://www.linkedin.com",
            "/oauth/v2/authorization",
        )?;
        let token = super::endpoint(
            cfg,
            "platforms.linkedin.base_url",
            c.base_url.as_deref(),
            crate::provider::linkedin::BASE_URL,
            "/oauth/v2/accessToken",
        )?;
        Ok(Self {
            client_id,
            authorize,
            token,
        })
    }
}

#[async_trait::async_trait]
impl Flow for Linkedin {
    fn pkce(&self, _loopback: bool) -> Option<super::Challenge> {
        None
    }

    fn client_secret_var(&self) -> &'static str {
        "LINKEDIN_CLIENT_SECRET"
    }

    fn authorize_url(&self, cx: &Cx<'_>, state: &str, _pkce: Option<&Pkce>) -> Url {
        let mut u = self.authorize.clone();
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", cx.redirect_uri)
            .append_pair("state", state)
            .append_pair("scope", cx.scope.unwrap_or(DEFAULT_SCOPE));
        u
    }

    async fn exchange(&self, cx: &Cx<'_>, code: &Secret, _pkce: Option<&Pkce>) -> Result<Tokens> {
        let reply = cx
            .http
            .send("LinkedIn accessToken", Call::Rotating, |c| {
                c.post(self.token.clone()).form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.expose()),
                    ("client_id", self.client_id.as_str()),
                    ("client_secret", cx.client_secret.expose()),
                    ("redirect_uri", cx.redirect_uri),
                ])
            })
            .await
            .map_err(|f| super::failure("LinkedIn", f))?;
        if !reply.status.is_success() {
            return Err(super::exchange_error("LinkedIn", &reply));
        }
        let body: TokenReply = reply.json().map_err(|e| {
            crate::error::Error::failed(format!(
                "LinkedIn accessToken answered {} with a body evertoken cannot read: {e}",
                reply.status
            ))
        })?;
        let Some(access) = body.access_token.filter(|s| !s.is_empty()) else {
            return Err(crate::error::Error::failed(
                "LinkedIn accessToken answered without an access_token",
            ));
        };
        let mut t = Tokens {
            access: Some(NewToken {
                value: access.into(),
                expires_at: super::expiry(cx.clock, body.expires_in),
            }),
            ..Tokens::default()
        };
        match body.refresh_token.filter(|s| !s.is_empty()) {
            Some(rt) => t.refresh = Some(NewToken { value: rt.into(), expires_at: super::expiry(cx.clock, body.refresh_token_expires_in) }),
            None => t.warnings.push(
                "LinkedIn issued no refresh token (only approved partner apps get one): this access token cannot be refreshed; `auth refresh` will ask for a new login before it expires".into(),
            ),
        }
        Ok(t)
    }
}
