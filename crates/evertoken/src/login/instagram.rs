//! Instagram (API with Instagram Login, "Business Login"): `GET /oauth/authorize`
//! (on `auth_url`, default www.instagram.com), then `POST /oauth/access_token`
//! (api.instagram.com, or `base_url` when set) for a short-lived token, which is
//! exchanged at once with `GET /access_token?grant_type=ig_exchange_token` (on
//! `base_url`, default graph.instagram.com) for the ~60-day token that `auth
//! refresh` keeps alive. Instagram takes no PKCE; the app secret authenticates.
//! Meta accepts only the `https` redirect URIs listed in the app's Business login
//! settings, so this login always runs as a pasted callback (`--redirect-uri`).
//! Source: developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/business-login

use serde::Deserialize;
use url::Url;

use super::{Cx, Flow, Pkce, Tokens};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::Call;
use crate::provider::NewToken;
use crate::secret::Secret;

const DEFAULT_SCOPE: &str = "instagram_business_basic,instagram_business_content_publish";

pub struct Instagram {
    app_id: String,
    authorize: Url,
    code_exchange: Url,
    long_lived: Url,
}

impl Instagram {
    pub fn new(cfg: &Config) -> Result<Self> {
        let c = cfg.file.platforms.instagram.as_ref().ok_or_else(|| {
            cfg.error_at("platforms.instagram", "is not configured")
                .with_hint("add `platforms.instagram: { enabled: true, app_id: … }`")
        })?;
        let app_id = c.app_id.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            cfg.error_at("platforms.instagram.app_id", "is required to log in")
                .with_hint("the Instagram app ID from the Meta app dashboard (Instagram → API setup with Instagram login)")
        })?;
        let key = "platforms.instagram.base_url";
        let authorize = super::endpoint(
            cfg,
            "platforms.instagram.auth_url",
            c.auth_url.as_deref(),
            "https://www.instagram.com",
            "/oauth/authorize",
        )?;
        let code_exchange = super::endpoint(
            cfg,
            key,
            c.base_url.as_deref(),
            "https://api.instagram.com",
            "/oauth/access_token",
        )?;
        let long_lived = super::endpoint(
            cfg,
            key,
            c.base_url.as_deref(),
            crate::provider::instagram::BASE_URL,
            "/access_token",
        )?;
        Ok(Self {
            app_id,
            authorize,
            code_exchange,
            long_lived,
        })
    }
}

#[derive(Deserialize)]
struct ShortLived {
    #[serde(default)]
    access_token: Option<String>,
}

/// Instagram answers `{"data":[{…}]}` or the bare object.
#[derive(Deserialize)]
#[serde(untagged)]
enum CodeReply {
    Wrapped { data: Vec<ShortLived> },
    Bare(ShortLived),
}

#[derive(Deserialize)]
struct LongLived {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
}

#[async_trait::async_trait]
impl Flow for Instagram {
    fn pkce(&self, _loopback: bool) -> Option<super::Challenge> {
        None
    }

    /// Meta accepts only registered `https` redirect URIs.
    fn loopback(&self) -> bool {
        false
    }

    fn client_secret_var(&self) -> &'static str {
        "INSTAGRAM_APP_SECRET"
    }

    fn authorize_url(&self, cx: &Cx<'_>, state: &str, _pkce: Option<&Pkce>) -> Url {
        let mut u = self.authorize.clone();
        u.query_pairs_mut()
            .append_pair("client_id", &self.app_id)
            .append_pair("redirect_uri", cx.redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", cx.scope.unwrap_or(DEFAULT_SCOPE))
            .append_pair("state", state);
        u
    }

    async fn exchange(&self, cx: &Cx<'_>, code: &Secret, _pkce: Option<&Pkce>) -> Result<Tokens> {
        let reply = cx
            .http
            .send("Instagram oauth/access_token", Call::Rotating, |c| {
                c.post(self.code_exchange.clone()).form(&[
                    ("client_id", self.app_id.as_str()),
                    ("client_secret", cx.client_secret.expose()),
                    ("grant_type", "authorization_code"),
                    ("redirect_uri", cx.redirect_uri),
                    ("code", code.expose()),
                ])
            })
            .await
            .map_err(|f| super::failure("Instagram", f))?;
        if !reply.status.is_success() {
            return Err(super::exchange_error("Instagram", &reply));
        }
        let short = match reply.json::<CodeReply>() {
            Ok(CodeReply::Wrapped { data }) => data.into_iter().next().and_then(|d| d.access_token),
            Ok(CodeReply::Bare(d)) => d.access_token,
            Err(_) => None,
        }
        .filter(|s| !s.is_empty())
        .map(Secret::new)
        .ok_or_else(|| super::exchange_error("Instagram", &reply))?;

        let reply = cx
            .http
            .send(
                "Instagram access_token (ig_exchange_token)",
                Call::Safe,
                |c| {
                    c.get(self.long_lived.clone()).query(&[
                        ("grant_type", "ig_exchange_token"),
                        ("client_secret", cx.client_secret.expose()),
                        ("access_token", short.expose()),
                    ])
                },
            )
            .await
            .map_err(|f| super::failure("Instagram", f))?;
        if !reply.status.is_success() {
            return Err(Error::failed(format!(
                "Instagram would not exchange the short-lived token for a long-lived one ({}): {}",
                reply.status,
                crate::provider::redact_body(&reply.snippet())
            ))
            .with_hint(
                "check INSTAGRAM_APP_SECRET, then run `evertoken auth login instagram` again",
            ));
        }
        let body: LongLived = reply.json().map_err(|e| {
            Error::failed(format!(
                "Instagram's access_token answered {} with a body evertoken cannot read: {e}",
                reply.status
            ))
        })?;
        let Some(token) = body.access_token.filter(|s| !s.is_empty()) else {
            return Err(Error::failed(
                "Instagram's access_token answered without an access_token",
            ));
        };
        Ok(Tokens {
            access: Some(NewToken {
                value: token.into(),
                expires_at: super::expiry(cx.clock, body.expires_in),
            }),
            refresh: None,
            warnings: Vec::new(),
        })
    }
}
