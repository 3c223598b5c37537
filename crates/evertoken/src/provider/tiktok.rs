//! TikTok (Login Kit v2): a short access token and a refresh token good for
//! months. `POST /v2/oauth/token/` (form: client_key, client_secret,
//! grant_type=refresh_token, refresh_token) returns a new access token AND a new
//! refresh token; the previous refresh token stops working. Lifetimes come from the
//! answer's `expires_in` / `refresh_expires_in`, never from constants: TikTok has
//! changed them before. Errors: `{"error","error_description","log_id"}`.
//! Sources: developers.tiktok.com/doc/oauth-user-access-token-management,
//! developers.tiktok.com/doc/oauth-error-handling

use jiff::{Timestamp, ToSpan};
use serde::Deserialize;

use super::{
    Common, Cx, Grant, NewToken, OAuthError, Plan, Provider, ProviderError, Role, Slot, expiry_text,
};
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
    #[serde(default)]
    pub client_key: Option<String>,
    /// Rotate when the refresh token expires within this many days.
    #[serde(default = "default_refresh_before_days")]
    pub refresh_before_days: i64,
    /// Authorization endpoint base for `auth login` (www.tiktok.com).
    #[serde(default)]
    pub auth_url: Option<String>,
    /// Report `reauth_required` this many days before a refresh token expiry that
    /// refreshing does not move.
    #[serde(default = "default_warn_before_days")]
    pub warn_before_days: i64,
}

fn default_refresh_before_days() -> i64 {
    15
}
fn default_warn_before_days() -> i64 {
    14
}

pub const BASE_URL: &str = "https://open.tiktokapis.com";
/// A new access token is fetched when the stored one has less than this left.
const ACCESS_MIN_MINUTES: i64 = 60;
const SLOTS: &[Slot] = &[
    Slot {
        role: Role::Refresh,
        base: "TIKTOK_REFRESH_TOKEN",
        durable: true,
    },
    Slot {
        role: Role::Access,
        base: "TIKTOK_ACCESS_TOKEN",
        durable: false,
    },
];

pub struct Tiktok {
    common: Common,
    client_key: String,
    refresh_before_days: i64,
    warn_before_days: i64,
}

impl Tiktok {
    pub fn new(cfg: &config::Config, c: &Config) -> Result<Self> {
        let common = super::common(
            cfg,
            "tiktok",
            c.enabled,
            &c.accounts,
            c.concurrency,
            c.base_url.as_deref(),
            BASE_URL,
        )?;
        let client_key = match &c.client_key {
            Some(k) if !k.trim().is_empty() => k.clone(),
            _ if !c.enabled => String::new(),
            _ => {
                return Err(cfg
                    .error_at("platforms.tiktok.client_key", "is required")
                    .with_hint(
                        "the client key from your app page on the TikTok developer portal",
                    ));
            }
        };
        if c.refresh_before_days < 0 {
            return Err(cfg.error_at(
                "platforms.tiktok.refresh_before_days",
                "must not be negative",
            ));
        }
        if !(0..=3650).contains(&c.warn_before_days) {
            return Err(cfg.error_at(
                "platforms.tiktok.warn_before_days",
                "must be between 0 and 3650",
            ));
        }
        Ok(Self {
            common,
            client_key,
            refresh_before_days: c.refresh_before_days,
            warn_before_days: c.warn_before_days,
        })
    }
}

/// The token endpoint's answer (refresh and authorization-code grants alike).
#[derive(Deserialize)]
pub(crate) struct TokenReply {
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: super::Lifetime,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub refresh_expires_in: super::Lifetime,
}

#[async_trait::async_trait]
impl Provider for Tiktok {
    fn platform(&self) -> Platform {
        Platform::Tiktok
    }
    fn common(&self) -> &Common {
        &self.common
    }
    fn slots(&self) -> &'static [Slot] {
        SLOTS
    }
    fn client_secret_var(&self) -> Option<&'static str> {
        Some("TIKTOK_CLIENT_SECRET")
    }
    fn rotates(&self, _: &super::AccountState) -> bool {
        true
    }

    fn plan(&self, state: &super::AccountState, now: Timestamp) -> Plan {
        let Some(rt) = &state.refresh else {
            return Plan::Reauth {
                message: "no refresh token is stored".into(),
                reauth_by: None,
            };
        };
        if let Some(exp) = rt.expires_at
            && exp <= now
        {
            return Plan::Reauth {
                message: format!("the refresh token expired on {}", crate::clock::date(exp)),
                reauth_by: Some(exp),
            };
        }
        let access_due = match state.access.as_ref().and_then(|a| a.expires_at) {
            None => Some("access token expiry unknown".to_owned()),
            Some(exp) if exp <= now.checked_add(ACCESS_MIN_MINUTES.minutes()).unwrap_or(now) => {
                Some(format!(
                    "access token {}",
                    if exp <= now {
                        "expired"
                    } else {
                        "expires within the hour"
                    }
                ))
            }
            Some(_) => None,
        };
        if let Some(reason) = access_due {
            return Plan::Refresh { reason };
        }
        // Inside the warning window too: only a refresh tells whether the expiry
        // moves (it may not), and `hard_deadline` reports it if not.
        let window = self.refresh_before_days.max(self.warn_before_days);
        match rt.expires_at {
            Some(exp) if super::within_days(now, exp, window) => Plan::Refresh {
                reason: format!("refresh token {}", expiry_text(now, exp)),
            },
            Some(exp) => Plan::Ok {
                message: format!("refresh token {}", expiry_text(now, exp)),
            },
            None => Plan::Ok {
                message: "access token valid; refresh token expiry unknown".into(),
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
        let url = endpoint(&self.common.base_url, "/v2/oauth/token/");
        let reply = cx
            .http
            .send("TikTok token endpoint", Call::Rotating, |c| {
                c.post(url.clone()).form(&[
                    ("client_key", self.client_key.as_str()),
                    ("client_secret", secret),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.value.expose()),
                ])
            })
            .await?;
        // TikTok may signal errors in a body whatever the status: check it first.
        if OAuthError::from_reply(&reply).is_some() || !reply.status.is_success() {
            return Err(super::oauth_error(
                "TikTok",
                &reply,
                "check platforms.tiktok.client_key and TIKTOK_CLIENT_SECRET",
                |e| e.error == "invalid_grant",
            ));
        }
        let body: TokenReply = reply
            .json()
            .map_err(|e| super::malformed("TikTok token endpoint", &reply, true, e))?;
        let access = body.access_token.filter(|s| !s.is_empty());
        let refresh = body.refresh_token.filter(|s| !s.is_empty());
        let (Some(access), Some(refresh)) = (access, refresh) else {
            return Err(ProviderError::Unknown {
                message: "TikTok answered 200 without a new access_token and refresh_token; the stored refresh token may have been rotated away".into(),
            });
        };
        let mut check = super::LifetimeCheck::default();
        Ok(Grant {
            access: Some(NewToken {
                value: access.into(),
                expires_at: check.at(cx.clock, "expires_in", &body.expires_in),
            }),
            refresh: Some(NewToken {
                value: refresh.into(),
                expires_at: check.at(cx.clock, "refresh_expires_in", &body.refresh_expires_in),
            }),
            note: None,
            problem: check.problem("TikTok"),
        })
    }

    /// TikTok does not promise that a refresh extends the refresh token
    /// (`refresh_expires_in` may count down): inside `warn_before_days` of an
    /// expiry the refresh left where it was, a human must log in again.
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

    fn reauth_causes(&self) -> &'static str {
        "the refresh token expired or was revoked, or another process rotated it and the new one was lost"
    }
}
