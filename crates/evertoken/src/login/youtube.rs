//! YouTube (Google OAuth 2.0): `GET /o/oauth2/v2/auth` (on `auth_url`, default
//! accounts.google.com) with `access_type=offline` and `prompt=consent`, so that
//! Google issues a refresh token every time, and PKCE S256; then `POST /token`
//! (on `base_url`) with the code and the verifier. Only the refresh token is
//! stored: access tokens last an hour and are minted from it.
//! Source: developers.google.com/identity/protocols/oauth2/web-server

use serde::Deserialize;
use url::Url;

use super::{Cx, Flow, Pkce, Tokens};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::Call;
use crate::provider::NewToken;
use crate::secret::Secret;

const DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/youtube.upload";

pub struct Youtube {
    client_id: String,
    authorize: Url,
    token: Url,
}

impl Youtube {
    pub fn new(cfg: &Config) -> Result<Self> {
        let c = cfg.file.platforms.youtube.as_ref().ok_or_else(|| {
            cfg.error_at("platforms.youtube", "is not configured")
                .with_hint("add `platforms.youtube: { enabled: true, client_id: … }`")
        })?;
        let client_id = c.client_id.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            cfg.error_at("platforms.youtube.client_id", "is required to log in")
                .with_hint("the OAuth client ID (…apps.googleusercontent.com) from the Google Cloud console")
        })?;
        let authorize = super::endpoint(
            cfg,
            "platforms.youtube.auth_url",
            c.auth_url.as_deref(),
            "https://accounts.google.com",
            "/o/oauth2/v2/auth",
        )?;
        let token = super::endpoint(
            cfg,
            "platforms.youtube.base_url",
            c.base_url.as_deref(),
            crate::provider::youtube::BASE_URL,
            "/token",
        )?;
        Ok(Self {
            client_id,
            authorize,
            token,
        })
    }
}

#[derive(Deserialize)]
struct TokenReply {
    #[serde(default)]
    refresh_token: Option<String>,
    /// Present when the grant is time-limited.
    #[serde(default)]
    refresh_token_expires_in: Option<i64>,
}

#[async_trait::async_trait]
impl Flow for Youtube {
    fn pkce(&self, _loopback: bool) -> Option<super::Challenge> {
        Some(super::Challenge::Base64Url)
    }

    fn client_secret_var(&self) -> &'static str {
        "YOUTUBE_CLIENT_SECRET"
    }

    fn authorize_url(&self, cx: &Cx<'_>, state: &str, pkce: Option<&Pkce>) -> Url {
        let mut u = self.authorize.clone();
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", cx.redirect_uri)
                .append_pair("scope", cx.scope.unwrap_or(DEFAULT_SCOPE))
                .append_pair("access_type", "offline")
                .append_pair("prompt", "consent")
                .append_pair("include_granted_scopes", "true")
                .append_pair("state", state);
            if let Some(p) = pkce {
                q.append_pair("code_challenge", &p.challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        u
    }

    async fn exchange(&self, cx: &Cx<'_>, code: &Secret, pkce: Option<&Pkce>) -> Result<Tokens> {
        let verifier = pkce.map(|p| p.verifier.expose()).unwrap_or_default();
        let reply = cx
            .http
            .send("Google token endpoint", Call::Rotating, |c| {
                let mut form = vec![
                    ("grant_type", "authorization_code"),
                    ("code", code.expose()),
                    ("client_id", self.client_id.as_str()),
                    ("client_secret", cx.client_secret.expose()),
                    ("redirect_uri", cx.redirect_uri),
                ];
                if !verifier.is_empty() {
                    form.push(("code_verifier", verifier));
                }
                c.post(self.token.clone()).form(&form)
            })
            .await
            .map_err(|f| super::failure("Google", f))?;
        if !reply.status.is_success() {
            return Err(super::exchange_error("Google", &reply));
        }
        let body: TokenReply = reply.json().map_err(|e| {
            Error::failed(format!(
                "Google's token endpoint answered {} with a body evertoken cannot read: {e}",
                reply.status
            ))
        })?;
        let Some(rt) = body.refresh_token.filter(|s| !s.is_empty()) else {
            return Err(Error::failed("Google issued no refresh token")
                .with_hint("remove the app's access at myaccount.google.com/permissions and log in again (evertoken asks with prompt=consent and access_type=offline)"));
        };
        let expires_at = super::expiry(cx.clock, body.refresh_token_expires_in);
        let mut warnings = vec![
            "if the Google Cloud app's publishing status is \"Testing\", this refresh token stops working after 7 days: publish the app (OAuth consent screen → Publish app) for a durable one".to_owned(),
        ];
        if let Some(t) = expires_at {
            warnings.push(format!(
                "Google says this refresh token expires on {}: log in again before then",
                crate::clock::date(t)
            ));
        }
        Ok(Tokens {
            access: None,
            refresh: Some(NewToken {
                value: rt.into(),
                expires_at,
            }),
            warnings,
        })
    }
}
