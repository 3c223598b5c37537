//! LinkedIn: 60-day access tokens. Refresh tokens exist only for approved
//! partner apps: with one, `POST /oauth/v2/accessToken` (grant_type=refresh_token)
//! renews the access token (the refresh token keeps its own, non-extending TTL).
//! Without one, evertoken reads the expiry with `POST /oauth/v2/introspectToken`
//! and, from `warn_before_days` before it, reports `reauth_required` with the date.
//! Sources: learn.microsoft.com/linkedin/shared/authentication/programmatic-refresh-tokens,
//! learn.microsoft.com/linkedin/shared/authentication/token-introspection
//!
//! ## Login
//! LinkedIn: `GET /oauth/v2/authorization` (on `auth_url`, default
//! www.linkedin.com), then `POST /oauth/v2/accessToken` with
//! `grant_type=authorization_code` (on `base_url`). The answer is a 60-day access
//! token and, for apps with programmatic refresh tokens, a refresh token with its
//! own lifetime. LinkedIn documents PKCE for native clients only, so a web app's
//! client secret authenticates the exchange.
//! Source: learn.microsoft.com/linkedin/shared/authentication/authorization-code-flow

use jiff::Timestamp;
use serde::Deserialize;

use url::Url;

use super::{
    AccountState, BuildCx, Common, Cx, Grant, NewToken, OAuthError, Plan, Provider,
    ProviderError, Role, Slot, expiry_text,
};
use crate::error::Result;
use crate::http::{Call, endpoint};
use crate::login::{self, Flow, Pkce, Tokens};
use crate::secret::Secret;

const DEFAULT_SCOPE: &str = "openid profile w_member_social";

platform_config! {
    #[serde(default)]
    pub client_id: Option<String>,
    /// Report `reauth_required` this many days before a non-refreshable expiry.
    #[serde(default = "default_warn_before_days")]
    pub warn_before_days: i64,
    /// With a refresh token: renew the access token this many days before expiry.
    #[serde(default = "default_refresh_before_days")]
    pub refresh_before_days: i64,
}

fn default_warn_before_days() -> i64 {
    14
}
fn default_refresh_before_days() -> i64 {
    15
}

pub const KEY: &str = "linkedin";
pub const DISPLAY: &str = "LinkedIn";
pub const AUTH_URL: &str = "https://www.linkedin.com";
pub const BASE_URL: &str = "https://www.linkedin.com";
const SLOTS: &[Slot] = &[
    Slot {
        role: Role::Access,
        base: "LINKEDIN_ACCESS_TOKEN",
        durable: true,
    },
    Slot {
        role: Role::Refresh,
        base: "LINKEDIN_REFRESH_TOKEN",
        durable: false,
    },
];

pub struct Linkedin {
    common: Common,
    token: Url,
    introspect: Url,
    authorize: Url,
    warn_before_days: i64,
    refresh_before_days: i64,
}

impl super::Section for Config {
    fn enabled(&self) -> bool {
        self.enabled
    }
    fn numbers(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("concurrency", self.concurrency as f64),
            ("refresh_before_days", self.refresh_before_days as f64),
            ("warn_before_days", self.warn_before_days as f64),
        ]
    }
    fn build(&self, cx: &BuildCx<'_>) -> Result<std::sync::Arc<dyn Provider>> {
        let c = self;
        let common = super::common(
            cx,
            c.keys((
                    "client_id",
                    c.client_id.as_deref(),
                    "the Client ID from your app's Auth tab in the LinkedIn developer portal",
                )),
            BASE_URL,
            AUTH_URL,
        )?;
        if c.enabled {
            common.client_id()?;
        }
        for (k, v) in [
            ("warn_before_days", c.warn_before_days),
            ("refresh_before_days", c.refresh_before_days),
        ] {
            if !(0..=59).contains(&v) {
                return Err(cx.error(k, "must be between 0 and 59"));
            }
        }
        Ok(std::sync::Arc::new(Linkedin {
            token: endpoint(&common.base_url, "/oauth/v2/accessToken"),
            introspect: endpoint(&common.base_url, "/oauth/v2/introspectToken"),
            authorize: endpoint(&common.auth_url, "/oauth/v2/authorization"),
            common,
            warn_before_days: c.warn_before_days,
            refresh_before_days: c.refresh_before_days,
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
    pub refresh_token_expires_in: super::Lifetime,
}

#[derive(Deserialize)]
struct Introspection {
    active: bool,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    expires_at: Option<i64>,
}

#[async_trait::async_trait]
impl Provider for Linkedin {
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
        Some("LINKEDIN_CLIENT_SECRET")
    }
    fn rotates(&self, state: &AccountState) -> bool {
        state.refresh.is_some()
    }

    fn plan(&self, state: &AccountState, now: Timestamp) -> Plan {
        let date = crate::clock::date;
        if let Some(rt) = &state.refresh {
            let access_due = state
                .access
                .as_ref()
                .and_then(|a| a.expires_at)
                .is_none_or(|exp| super::within_days(now, exp, self.refresh_before_days));
            if let Some(exp) = rt.expires_at
                && exp > now
                && access_due
                && super::within_days(now, exp, self.warn_before_days)
            {
                // Keep the access token alive up to the deadline; the refresh's
                // result reports the deadline (`hard_deadline`).
                return Plan::Refresh {
                    reason: format!(
                        "access token due; the refresh token {}",
                        expiry_text(now, exp)
                    ),
                };
            }
            if let Some(exp) = rt.expires_at
                && super::within_days(now, exp, self.warn_before_days)
            {
                return Plan::Reauth {
                    message: format!(
                        "the refresh token {}; LinkedIn refresh tokens do not extend",
                        expiry_text(now, exp)
                    ),
                    reauth_by: Some(exp),
                };
            }
            return match state.access.as_ref().and_then(|a| a.expires_at) {
                None => Plan::Refresh {
                    reason: "access token missing or expiry unknown".into(),
                },
                Some(exp) if super::within_days(now, exp, self.refresh_before_days) => {
                    Plan::Refresh {
                        reason: format!("access token {}", expiry_text(now, exp)),
                    }
                }
                Some(exp) => Plan::Ok {
                    message: format!("access token {}", expiry_text(now, exp)),
                },
            };
        }
        let Some(at) = &state.access else {
            return Plan::Reauth {
                message: "no access token is stored".into(),
                reauth_by: None,
            };
        };
        match at.expires_at {
            None => Plan::Introspect,
            Some(exp) if exp <= now => Plan::Reauth {
                message: format!("the access token expired on {}", date(exp)),
                reauth_by: Some(exp),
            },
            Some(exp) if super::within_days(now, exp, self.warn_before_days) => Plan::Reauth {
                message: format!(
                    "the access token {}; LinkedIn cannot refresh it without a partner refresh token",
                    expiry_text(now, exp)
                ),
                reauth_by: Some(exp),
            },
            Some(exp) => Plan::Ok {
                message: format!("access token {}", expiry_text(now, exp)),
            },
        }
    }

    async fn introspect(&self, cx: &Cx<'_>, state: &mut AccountState) -> Result<(), ProviderError> {
        let Some(at) = state.access.as_mut() else {
            return Ok(());
        };
        let secret = cx.client_secret.map(|s| s.expose()).unwrap_or_default();
        let url = self.introspect.clone();
        let value = at.value.clone();
        let reply = cx
            .http
            .send("LinkedIn introspectToken", Call::Safe, |c| {
                c.post(url.clone()).form(&[
                    ("client_id", self.common.client_id().unwrap_or_default()),
                    ("client_secret", secret),
                    ("token", value.expose()),
                ])
            })
            .await?;
        if !reply.status.is_success() {
            let detail = OAuthError::from_reply(&reply)
                .map(|e| e.describe())
                .unwrap_or_else(|| reply.snippet());
            return Err(ProviderError::Failed {
                message: format!(
                    "LinkedIn introspectToken answered {}: {detail}",
                    reply.status
                ),
                hint: Some("check platforms.linkedin.client_id and LINKEDIN_CLIENT_SECRET".into()),
            });
        }
        let body: Introspection = reply
            .json()
            .map_err(|e| super::malformed("LinkedIn introspectToken", &reply, false, e))?;
        if !body.active {
            return Err(ProviderError::Reauth {
                message: format!(
                    "LinkedIn says the access token is not active (status: {})",
                    body.status.as_deref().unwrap_or("inactive")
                ),
            });
        }
        let mut check = super::LifetimeCheck::default();
        let exp = body.expires_at.and_then(|s| Timestamp::from_second(s).ok());
        let exp = check.absolute(cx.clock.now(), "expires_at", exp);
        if let Some(p) = check.problem("LinkedIn introspectToken") {
            return Err(ProviderError::Failed {
                message: p,
                hint: None,
            });
        }
        match exp {
            Some(t) => at.expires_at = Some(t),
            None => {
                return Err(super::malformed(
                    "LinkedIn introspectToken",
                    &reply,
                    false,
                    "no expires_at in an active token",
                ));
            }
        }
        Ok(())
    }

    async fn refresh(&self, cx: &Cx<'_>, state: &AccountState) -> Result<Grant, ProviderError> {
        let rt = state.refresh_token()?;
        let secret = cx.client_secret.map(|s| s.expose()).unwrap_or_default();
        let url = self.token.clone();
        let reply = cx
            .http
            .send("LinkedIn accessToken", Call::Rotating, |c| {
                c.post(url.clone()).form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.value.expose()),
                    ("client_id", self.common.client_id().unwrap_or_default()),
                    ("client_secret", secret),
                ])
            })
            .await?;
        if !reply.status.is_success() {
            return Err(super::oauth_error(
                "LinkedIn",
                &reply,
                "check platforms.linkedin.client_id and LINKEDIN_CLIENT_SECRET",
                |e| {
                    e.error == "invalid_grant"
                        || e.error == "invalid_request" && e.describe().contains("refresh token")
                },
            ));
        }
        let body: TokenReply = reply
            .json()
            .map_err(|e| super::malformed("LinkedIn accessToken", &reply, true, e))?;
        let Some(access) = body.access_token.filter(|s| !s.is_empty()) else {
            return Err(super::malformed(
                "LinkedIn accessToken",
                &reply,
                true,
                "no access_token",
            ));
        };
        let mut check = super::LifetimeCheck::default();
        let refresh = match body.refresh_token.filter(|s| !s.is_empty()) {
            Some(v) => Some(NewToken {
                value: v.into(),
                expires_at: check.at(
                    cx.clock,
                    "refresh_token_expires_in",
                    &body.refresh_token_expires_in,
                ),
            }),
            // LinkedIn usually returns the same refresh token; if it leaves it out,
            // the stored one stays as it is.
            None => None,
        };
        Ok(Grant {
            access: Some(NewToken {
                value: access.into(),
                expires_at: check.at(cx.clock, "expires_in", &body.expires_in),
            }),
            refresh,
            note: None,
            problem: check.problem("LinkedIn"),
        })
    }

    fn reauth_causes(&self) -> &'static str {
        "LinkedIn access tokens last 60 days and standard apps cannot refresh them"
    }

    /// A partner refresh token keeps its original expiry (LinkedIn documents a
    /// decreasing `refresh_token_expires_in`): inside `warn_before_days` of it, a
    /// human must log in again.
    fn hard_deadline(
        &self,
        old: &AccountState,
        grant: &Grant,
        now: Timestamp,
    ) -> Option<Timestamp> {
        old.refresh.as_ref()?;
        super::unmoved_deadline(
            old.refresh.as_ref(),
            grant.refresh.as_ref(),
            now,
            self.warn_before_days,
        )
    }
}

#[async_trait::async_trait]
impl Flow for Linkedin {
    fn pkce(&self, _loopback: bool) -> Option<login::Challenge> {
        None
    }

    fn client_secret_var(&self) -> Option<&'static str> {
        Some("LINKEDIN_CLIENT_SECRET")
    }

    fn authorize_url(&self, cx: &login::Cx<'_>, state: &str, _pkce: Option<&Pkce>) -> Url {
        let mut u = self.authorize.clone();
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", self.common.client_id().unwrap_or_default())
            .append_pair("redirect_uri", cx.redirect_uri)
            .append_pair("state", state)
            .append_pair("scope", cx.scope.unwrap_or(DEFAULT_SCOPE));
        u
    }

    async fn exchange(&self, cx: &login::Cx<'_>, code: &Secret, _pkce: Option<&Pkce>) -> Result<Tokens> {
        let reply = cx
            .http
            .send("LinkedIn accessToken", Call::Rotating, |c| {
                c.post(self.token.clone()).form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.expose()),
                    ("client_id", self.common.client_id().unwrap_or_default()),
                    ("client_secret", cx.client_secret.expose()),
                    ("redirect_uri", cx.redirect_uri),
                ])
            })
            .await
            .map_err(|f| login::failure("LinkedIn", f))?;
        if !reply.status.is_success() {
            return Err(login::exchange_error("LinkedIn", &reply));
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
                expires_at: login::expiry(cx.clock, body.expires_in),
            }),
            ..Tokens::default()
        };
        match body.refresh_token.filter(|s| !s.is_empty()) {
            Some(rt) => t.refresh = Some(NewToken { value: rt.into(), expires_at: login::expiry(cx.clock, body.refresh_token_expires_in) }),
            None => t.warnings.push(
                "LinkedIn issued no refresh token (only approved partner apps get one): this access token cannot be refreshed; `auth refresh` will ask for a new login before it expires".into(),
            ),
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use crate::provider::testing::{held, kind, provider, t, with as state};

    /// (access expiry, refresh expiry) → plan, at 2026-11-30 12:00 with the
    /// defaults (warn_before_days 14, refresh_before_days 15).
    #[test]
    fn plan_table() {
        let p = provider("linkedin: { client_id: cid }");
        let now = t("2026-11-30T12:00:00Z");
        type Case<'a> = (Option<Option<&'a str>>, Option<Option<&'a str>>, &'a str);
        let far = Some(Some("2027-06-01T00:00:00Z"));
        let cases: &[Case] = &[
            // Without a refresh token (most apps): the access token's expiry,
            // read by introspection when unknown; a dated deadline in the window.
            (None, None, "reauth"),
            (Some(None), None, "introspect"),
            (Some(Some("2026-11-30T11:00:00Z")), None, "reauth-dated"),
            (Some(Some("2026-12-10T00:00:00Z")), None, "reauth-dated"),
            (Some(Some("2026-12-14T12:00:00Z")), None, "reauth-dated"),
            (Some(Some("2026-12-15T00:00:00Z")), None, "ok"),
            (Some(Some("2027-01-20T00:00:00Z")), None, "ok"),
            // With a partner refresh token far from its expiry: the access
            // token is renewed inside refresh_before_days.
            (None, far, "refresh"),
            (Some(None), far, "refresh"),
            (Some(Some("2026-12-10T00:00:00Z")), far, "refresh"),
            (Some(Some("2027-01-20T00:00:00Z")), far, "ok"),
            (Some(Some("2027-01-20T00:00:00Z")), Some(None), "ok"),
            // The refresh token's fixed expiry in the warning window: keep the
            // access token alive while due, else report the deadline.
            (
                Some(Some("2026-12-10T00:00:00Z")),
                Some(Some("2026-12-08T00:00:00Z")),
                "refresh",
            ),
            (
                Some(Some("2027-01-20T00:00:00Z")),
                Some(Some("2026-12-08T00:00:00Z")),
                "reauth-dated",
            ),
            (
                Some(Some("2026-12-10T00:00:00Z")),
                Some(Some("2026-11-29T00:00:00Z")),
                "reauth-dated",
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
