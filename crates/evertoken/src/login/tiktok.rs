//! TikTok (Login Kit v2): `GET /v2/auth/authorize/` (on `auth_url`, default
//! www.tiktok.com) with `client_key`, then `POST /v2/oauth/token/` (on
//! `base_url`) with `grant_type=authorization_code`. Both tokens and both
//! lifetimes come from the answer (`expires_in`, `refresh_expires_in`), never from
//! documentation, which has changed.
//!
//! Two app types, two flows: a **desktop** app redirects to a loopback URI
//! (`localhost` or `127.0.0.1` with a port, `http` or `https`, e.g.
//! `https://127.0.0.1:3455/callback/`) and must use PKCE, TikTok's way:
//! `code_challenge` = lowercase hex of SHA-256(code_verifier),
//! `code_challenge_method=S256`, `code_verifier` in the token request; a **web**
//! app redirects only to a registered `https` URI on a real host (the
//! pasted-callback flow here) and takes no PKCE. Which one is decided by the
//! redirect's host, not by whether evertoken listens: an `https` loopback
//! redirect is a desktop app whose address the user pastes. The client secret authenticates
//! both exchanges.
//! Sources: developers.tiktok.com/doc/login-kit-desktop, developers.tiktok.com/doc/login-kit-web,
//! developers.tiktok.com/doc/oauth-user-access-token-management

use url::Url;

use super::{Cx, Flow, Pkce, Tokens};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::Call;
use crate::provider::NewToken;
use crate::provider::tiktok::TokenReply;
use crate::secret::Secret;

const DEFAULT_SCOPE: &str = "user.info.basic,video.publish";

pub struct Tiktok {
    client_key: String,
    authorize: Url,
    token: Url,
}

impl Tiktok {
    pub fn new(cfg: &Config) -> Result<Self> {
        let c = cfg.file.platforms.tiktok.as_ref().ok_or_else(|| {
            cfg.error_at("platforms.tiktok", "is not configured")
                .with_hint("add `platforms.tiktok: { enabled: true, client_key: … }`")
        })?;
        let client_key = c
            .client_key
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                cfg.error_at("platforms.tiktok.client_key", "is required to log in")
                    .with_hint("the Client key from the TikTok developer portal")
            })?;
        let authorize = super::endpoint(
            cfg,
            "platforms.tiktok.auth_url",
            c.auth_url.as_deref(),
            "https://www.tiktok.com",
            "/v2/auth/authorize/",
        )?;
        let token = super::endpoint(
            cfg,
            "platforms.tiktok.base_url",
            c.base_url.as_deref(),
            crate::provider::tiktok::BASE_URL,
            "/v2/oauth/token/",
        )?;
        Ok(Self {
            client_key,
            authorize,
            token,
        })
    }
}

#[async_trait::async_trait]
impl Flow for Tiktok {
    /// A desktop app (loopback redirect host, served or pasted) requires PKCE with
    /// a hex challenge; a web app (an https redirect elsewhere) takes none.
    fn pkce(&self, loopback: bool) -> Option<super::Challenge> {
        loopback.then_some(super::Challenge::Hex)
    }

    fn client_secret_var(&self) -> &'static str {
        "TIKTOK_CLIENT_SECRET"
    }

    fn authorize_url(&self, cx: &Cx<'_>, state: &str, pkce: Option<&Pkce>) -> Url {
        let mut u = self.authorize.clone();
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("client_key", &self.client_key)
                .append_pair("response_type", "code")
                .append_pair("scope", cx.scope.unwrap_or(DEFAULT_SCOPE))
                .append_pair("redirect_uri", cx.redirect_uri)
                .append_pair("state", state);
            if let Some(p) = pkce {
                q.append_pair("code_challenge", &p.challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        u
    }

    async fn exchange(&self, cx: &Cx<'_>, code: &Secret, pkce: Option<&Pkce>) -> Result<Tokens> {
        let reply = cx
            .http
            .send("TikTok token endpoint", Call::Rotating, |c| {
                let mut form = vec![
                    ("client_key", self.client_key.as_str()),
                    ("client_secret", cx.client_secret.expose()),
                    ("code", code.expose()),
                    ("grant_type", "authorization_code"),
                    ("redirect_uri", cx.redirect_uri),
                ];
                if let Some(p) = pkce {
                    form.push(("code_verifier", p.verifier.expose()));
                }
                c.post(self.token.clone()).form(&form)
            })
            .await
            .map_err(|f| super::failure("TikTok", f))?;
        if !reply.status.is_success() {
            return Err(super::exchange_error("TikTok", &reply));
        }
        let body: TokenReply = reply.json().map_err(|e| {
            Error::failed(format!(
                "TikTok's token endpoint answered {} with a body evertoken cannot read: {e}",
                reply.status
            ))
        })?;
        // TikTok answers some errors with 200 and an `error` field.
        let (Some(at), Some(rt)) = (
            body.access_token.filter(|s| !s.is_empty()),
            body.refresh_token.filter(|s| !s.is_empty()),
        ) else {
            return Err(super::exchange_error("TikTok", &reply));
        };
        Ok(Tokens {
            access: Some(NewToken {
                value: at.into(),
                expires_at: super::expiry(cx.clock, body.expires_in),
            }),
            refresh: Some(NewToken {
                value: rt.into(),
                expires_at: super::expiry(cx.clock, body.refresh_expires_in),
            }),
            warnings: Vec::new(),
        })
    }
}
