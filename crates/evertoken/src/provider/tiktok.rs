//! TikTok (Login Kit v2): a short access token and a refresh token good for
//! months. `POST /v2/oauth/token/` (form: client_key, client_secret,
//! grant_type=refresh_token, refresh_token) returns a new access token AND a new
//! refresh token; the previous refresh token stops working. Lifetimes come from the
//! answer's `expires_in` / `refresh_expires_in`, never from constants: TikTok has
//! changed them before. Errors: `{"error","error_description","log_id"}`.
//! Sources: developers.tiktok.com/doc/oauth-user-access-token-management,
//! developers.tiktok.com/doc/oauth-error-handling
//!
//! ## Login
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

use jiff::{Timestamp, ToSpan};
use serde::Deserialize;

use url::Url;

use super::{
    BuildCx, Common, Cx, Grant, NewToken, OAuthError, Plan, Provider, ProviderError, Role,
    Slot, expiry_text,
};
use crate::error::{Error, Result};
use crate::http::{Call, endpoint};
use crate::login::{self, Flow, Pkce, Tokens};
use crate::secret::Secret;

pub const KEY: &str = "tiktok";
pub const DISPLAY: &str = "TikTok";
const DEFAULT_SCOPE: &str = "user.info.basic,video.publish";

platform_config! {
    #[serde(default)]
    pub client_key: Option<String>,
    /// Rotate when the refresh token expires within this many days.
    #[serde(default = "default_refresh_before_days")]
    pub refresh_before_days: i64,
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
pub const AUTH_URL: &str = "https://www.tiktok.com";
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
    token: Url,
    authorize: Url,
    refresh_before_days: i64,
    warn_before_days: i64,
}

impl Tiktok {
    fn client_key(&self) -> &str {
        self.common.client_id().unwrap_or_default()
    }
}

impl super::Section for Config {
    fn enabled(&self) -> bool {
        self.enabled
    }
    fn numbers(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("concurrency", self.concurrency as f64),
            ("refresh_before_days", self.refresh_before_days as f64),
        ]
    }
    fn build(&self, cx: &BuildCx<'_>) -> Result<std::sync::Arc<dyn Provider>> {
        let c = self;
        let common = super::common(
            cx,
            c.keys((
                    "client_key",
                    c.client_key.as_deref(),
                    "the client key from your app page on the TikTok developer portal",
                )),
            BASE_URL,
            AUTH_URL,
        )?;
        if c.enabled {
            common.client_id()?;
        }
        if c.refresh_before_days < 0 {
            return Err(cx.error("refresh_before_days", "must not be negative"));
        }
        super::check_days(cx, "warn_before_days", c.warn_before_days)?;
        Ok(std::sync::Arc::new(Tiktok {
            token: endpoint(&common.base_url, "/v2/oauth/token/"),
            authorize: endpoint(&common.auth_url, "/v2/auth/authorize/"),
            common,
            refresh_before_days: c.refresh_before_days,
            warn_before_days: c.warn_before_days,
        }))
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
        Some("TIKTOK_CLIENT_SECRET")
    }
    fn rotates(&self, _: &super::AccountState) -> bool {
        true
    }

    fn plan(&self, state: &super::AccountState, now: Timestamp) -> Plan {
        let rt = match state.usable_refresh(now) {
            Ok(rt) => rt,
            Err(plan) => return plan,
        };
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
        let rt = state.refresh_token()?;
        let secret = cx.client_secret.map(|s| s.expose()).unwrap_or_default();
        let url = self.token.clone();
        let reply = cx
            .http
            .send("TikTok token endpoint", Call::Rotating, |c| {
                c.post(url.clone()).form(&[
                    ("client_key", self.client_key()),
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

#[async_trait::async_trait]
impl Flow for Tiktok {
    /// A desktop app (loopback redirect host, served or pasted) requires PKCE with
    /// a hex challenge; a web app (an https redirect elsewhere) takes none.
    fn pkce(&self, loopback: bool) -> Option<login::Challenge> {
        loopback.then_some(login::Challenge::Hex)
    }

    fn client_secret_var(&self) -> Option<&'static str> {
        Some("TIKTOK_CLIENT_SECRET")
    }

    fn authorize_url(&self, cx: &login::Cx<'_>, state: &str, pkce: Option<&Pkce>) -> Url {
        let mut u = self.authorize.clone();
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("client_key", self.client_key())
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

    async fn exchange(&self, cx: &login::Cx<'_>, code: &Secret, pkce: Option<&Pkce>) -> Result<Tokens> {
        let reply = cx
            .http
            .send("TikTok token endpoint", Call::Rotating, |c| {
                let mut form = vec![
                    ("client_key", self.client_key()),
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
            .map_err(|f| login::failure("TikTok", f))?;
        if !reply.status.is_success() {
            return Err(login::exchange_error("TikTok", &reply));
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
            return Err(login::exchange_error("TikTok", &reply));
        };
        Ok(Tokens {
            access: Some(NewToken {
                value: at.into(),
                expires_at: login::expiry(cx.clock, body.expires_in),
            }),
            refresh: Some(NewToken {
                value: rt.into(),
                expires_at: login::expiry(cx.clock, body.refresh_expires_in),
            }),
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::provider::testing::{held, kind, provider, t, with as state};

    /// (access expiry, refresh expiry) → plan, at 2026-11-30 12:00 with the
    /// defaults (refresh_before_days 15, warn_before_days 14).
    #[test]
    fn plan_table() {
        let p = provider("tiktok: { client_key: ck }");
        let now = t("2026-11-30T12:00:00Z");
        type Case<'a> = (Option<Option<&'a str>>, Option<Option<&'a str>>, &'a str);
        let far = Some(Some("2027-06-01T00:00:00Z"));
        let cases: &[Case] = &[
            // No refresh token, or an expired one: log in.
            (Some(Some("2026-12-30T00:00:00Z")), None, "reauth"),
            (None, None, "reauth"),
            (far, Some(Some("2026-11-30T12:00:00Z")), "reauth-dated"),
            (None, Some(Some("2026-11-01T00:00:00Z")), "reauth-dated"),
            // The access token is missing, of unknown expiry, expired or
            // expires within the hour: rotate.
            (None, far, "refresh"),
            (Some(None), far, "refresh"),
            (Some(Some("2026-11-30T11:00:00Z")), far, "refresh"),
            (Some(Some("2026-11-30T12:59:00Z")), far, "refresh"),
            (Some(Some("2026-11-30T13:00:00Z")), far, "refresh"),
            // A live access token: the refresh token's window decides.
            (Some(Some("2026-11-30T14:00:00Z")), far, "ok"),
            (Some(Some("2026-11-30T14:00:00Z")), Some(None), "ok"),
            (
                Some(Some("2026-11-30T14:00:00Z")),
                Some(Some("2026-12-10T00:00:00Z")),
                "refresh",
            ),
            (
                Some(Some("2026-11-30T14:00:00Z")),
                Some(Some("2026-12-15T12:00:00Z")),
                "refresh",
            ),
            (
                Some(Some("2026-11-30T14:00:00Z")),
                Some(Some("2026-12-16T00:00:00Z")),
                "ok",
            ),
        ];
        for (access, refresh, want) in cases {
            let st = state(
                access.map(|exp| held(exp, None)),
                refresh.map(|exp| held(exp, None)),
            );
            assert_eq!(
                kind(&p.plan(&st, now)),
                *want,
                "access {access:?} refresh {refresh:?}"
            );
        }
    }
}
