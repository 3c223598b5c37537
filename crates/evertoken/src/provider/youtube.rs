//! YouTube (Google OAuth 2.0): a durable refresh token and short access tokens.
//! `auth refresh` health-checks the refresh token with the refresh grant at
//! `POST /token` (form: client_id, client_secret, refresh_token,
//! grant_type=refresh_token); the access token it returns is discarded.
//! `invalid_grant` means a human must re-authorise.
//! Source: developers.google.com/identity/protocols/oauth2/web-server#offline

use jiff::Timestamp;
use serde::Deserialize;

use super::{Common, Cx, Grant, NewToken, Plan, Provider, ProviderError, Role, Slot};
use crate::config;
use crate::error::Result;
use crate::http::{Call, endpoint};
use crate::platform::Platform;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "super::default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default = "super::default_concurrency")]
    pub concurrency: usize,
    #[serde(default)]
    pub base_url: Option<String>,
    /// The OAuth client id (`….apps.googleusercontent.com`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Authorization endpoint base for `auth login` (accounts.google.com).
    #[serde(default)]
    pub auth_url: Option<String>,
    /// Report `reauth_required` this many days before a time-limited refresh
    /// token's expiry (Google's `refresh_token_expires_in`; it never moves).
    #[serde(default = "default_warn_before_days")]
    pub warn_before_days: i64,
}

fn default_warn_before_days() -> i64 {
    14
}

pub const BASE_URL: &str = "https://oauth2.googleapis.com";
const SLOTS: &[Slot] = &[Slot {
    role: Role::Refresh,
    base: "YOUTUBE_REFRESH_TOKEN",
    durable: true,
}];

pub struct Youtube {
    common: Common,
    client_id: String,
    warn_before_days: i64,
}

impl Youtube {
    pub fn new(cfg: &config::Config, c: &Config) -> Result<Self> {
        let common = super::common(
            cfg,
            "youtube",
            c.enabled,
            &c.accounts,
            c.concurrency,
            c.base_url.as_deref(),
            BASE_URL,
        )?;
        let client_id = match &c.client_id {
            Some(id) if !id.trim().is_empty() => id.clone(),
            _ if !c.enabled => String::new(),
            _ => {
                return Err(cfg
                    .error_at("platforms.youtube.client_id", "is required")
                    .with_hint("the OAuth client id from Google Cloud Console, `….apps.googleusercontent.com`"));
            }
        };
        if !(0..=3650).contains(&c.warn_before_days) {
            return Err(cfg.error_at(
                "platforms.youtube.warn_before_days",
                "must be between 0 and 3650",
            ));
        }
        Ok(Self {
            common,
            client_id,
            warn_before_days: c.warn_before_days,
        })
    }
}

#[derive(Deserialize)]
struct TokenReply {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    refresh_token_expires_in: super::Lifetime,
}

#[async_trait::async_trait]
impl Provider for Youtube {
    fn platform(&self) -> Platform {
        Platform::Youtube
    }
    fn common(&self) -> &Common {
        &self.common
    }
    fn slots(&self) -> &'static [Slot] {
        SLOTS
    }
    fn client_secret_var(&self) -> Option<&'static str> {
        Some("YOUTUBE_CLIENT_SECRET")
    }
    fn rotates(&self, _: &super::AccountState) -> bool {
        false
    }

    /// A time-limited grant's refresh token keeps its expiry: inside
    /// `warn_before_days` of it, a human must log in again.
    fn hard_deadline(
        &self,
        old: &super::AccountState,
        grant: &Grant,
        now: Timestamp,
    ) -> Option<Timestamp> {
        super::unmoved_deadline(
            old.refresh.as_ref(),
            grant.refresh.as_ref(),
            now,
            self.warn_before_days,
        )
    }

    fn plan(&self, state: &super::AccountState, now: Timestamp) -> Plan {
        match &state.refresh {
            None => Plan::Reauth {
                message: "no refresh token is stored".into(),
                reauth_by: None,
            },
            Some(t) => match t.expires_at {
                Some(exp) if exp <= now => Plan::Reauth {
                    message: format!("the refresh token expired on {}", crate::clock::date(exp)),
                    reauth_by: Some(exp),
                },
                _ => Plan::HealthCheck {
                    reason: "health-check the refresh token".into(),
                },
            },
        }
    }

    async fn refresh(
        &self,
        cx: &Cx<'_>,
        state: &super::AccountState,
    ) -> Result<Grant, ProviderError> {
        let rt = state
            .refresh
            .as_ref()
            .ok_or_else(|| ProviderError::Reauth {
                message: "no refresh token".into(),
            })?;
        let secret = cx.client_secret.map(|s| s.expose()).unwrap_or_default();
        let url = endpoint(&self.common.base_url, "/token");
        let reply = cx
            .http
            .send("Google token endpoint", Call::Safe, |c| {
                c.post(url.clone()).form(&[
                    ("client_id", self.client_id.as_str()),
                    ("client_secret", secret),
                    ("refresh_token", rt.value.expose()),
                    ("grant_type", "refresh_token"),
                ])
            })
            .await?;
        if reply.status.is_success() {
            let body: TokenReply = reply
                .json()
                .map_err(|e| super::malformed("Google token endpoint", &reply, false, e))?;
            if body.access_token.as_deref().unwrap_or("").is_empty() {
                return Err(super::malformed(
                    "Google token endpoint",
                    &reply,
                    false,
                    "no access_token",
                ));
            }
            let mut check = super::LifetimeCheck::default();
            let refresh_expires_at = check.at(
                cx.clock,
                "refresh_token_expires_in",
                &body.refresh_token_expires_in,
            );
            // Google may hand out a new refresh token; keep it if so, and keep the
            // refresh token's expiry when Google states one (Testing-mode apps).
            let refresh = match body.refresh_token {
                Some(new) if !new.is_empty() => Some(NewToken {
                    value: new.into(),
                    expires_at: refresh_expires_at,
                }),
                _ => refresh_expires_at.map(|e| NewToken {
                    value: rt.value.clone(),
                    expires_at: Some(e),
                }),
            };
            return Ok(Grant {
                access: None,
                refresh,
                note: Some(
                    "the refresh token works (the access token it returned was discarded)".into(),
                ),
                problem: check.problem("Google"),
            });
        }
        Err(super::oauth_error(
            "Google",
            &reply,
            "check platforms.youtube.client_id and YOUTUBE_CLIENT_SECRET",
            |e| e.error == "invalid_grant",
        ))
    }

    fn reauth_causes(&self) -> &'static str {
        "the user revoked access, the OAuth app is in Testing mode (refresh tokens last 7 days), or the token went unused for 6 months"
    }
}
