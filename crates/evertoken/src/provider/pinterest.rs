//! Pinterest (API v5): a 30-day access token and a refresh token, both from
//! `POST /v5/oauth/token` with HTTP Basic `client_id:PINTEREST_CLIENT_SECRET` and the
//! form `grant_type=refresh_token`, `refresh_token`, `continuous_refresh=true`.
//!
//! Two kinds of refresh token:
//! - **continuous** (what evertoken asks for): 60 days, and every refresh answers
//!   a new refresh token (`refresh_token`, `refresh_token_expires_in`,
//!   `refresh_token_expires_at`) while the one sent stops working: a rotation,
//!   persisted before anything else;
//! - **legacy** (an app not enrolled in continuous refresh): 365 days, fixed; a
//!   refresh answers only a new access token. Its expiry is a hard deadline:
//!   from `warn_before_days` before it, the account is `reauth_required` with
//!   that date.
//!
//! Errors are `{"code": <int>, "message": <text>}`: code 283 ("The authorization
//! grant is invalid") is a dead grant (`reauth_required`); code 2
//! ("Authentication failed.") a rejected app id or secret (configuration).
//! Sources: developers.pinterest.com/docs/getting-started/authentication-and-scopes,
//! github.com/pinterest/pinterest-python-generated-api-client/blob/main/docs/OauthApi.md,
//! github.com/pinterest/pinterest-python-sdk/issues/114 and /156
//!
//! ## Login
//! `GET /oauth/` (on `auth_url`, default www.pinterest.com) with `client_id`,
//! `redirect_uri`, `response_type=code`, `scope`, `state`; then `POST
//! /v5/oauth/token` (on `base_url`, default api.pinterest.com) with Basic
//! authentication and `grant_type=authorization_code`, `code`, `redirect_uri`,
//! `continuous_refresh=true`. No PKCE. Pinterest redirects only to the URIs
//! registered with the app (`https`), so the login runs as a pasted callback
//! (`--redirect-uri`).

use jiff::{Timestamp, ToSpan};
use serde::Deserialize;
use url::Url;

use super::{
    AccountState, BuildCx, Common, Cx, Grant, NewToken, Plan, Provider, ProviderError, Role,
    Slot, expiry_text,
};
use crate::error::{Error, Result};
use crate::http::{Call, Reply, endpoint};
use crate::login::{self, Flow, Pkce, Tokens};
use crate::secret::Secret;

pub const KEY: &str = "pinterest";
pub const DISPLAY: &str = "Pinterest";
const DEFAULT_SCOPE: &str = "boards:read,pins:read,pins:write,user_accounts:read";
const SECRET_VAR: &str = "PINTEREST_CLIENT_SECRET";
pub const BASE_URL: &str = "https://api.pinterest.com";
pub const AUTH_URL: &str = "https://www.pinterest.com";
/// Pinterest's "the authorization grant is invalid".
const DEAD_GRANT: i64 = 283;
/// Pinterest's "authentication failed" (the app id or secret).
const AUTH_FAILED: i64 = 2;

platform_config! {
    /// The Pinterest app id (developers.pinterest.com → My apps).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Refresh when the access token expires within this many days.
    #[serde(default = "default_refresh_before_days")]
    pub refresh_before_days: i64,
    /// Report `reauth_required` this many days before a refresh token expiry
    /// that refreshing does not move (a legacy refresh token).
    #[serde(default = "default_warn_before_days")]
    pub warn_before_days: i64,
}

fn default_refresh_before_days() -> i64 {
    5
}
fn default_warn_before_days() -> i64 {
    14
}

const SLOTS: &[Slot] = &[
    Slot {
        role: Role::Refresh,
        base: "PINTEREST_REFRESH_TOKEN",
        durable: true,
    },
    Slot {
        role: Role::Access,
        base: "PINTEREST_ACCESS_TOKEN",
        durable: false,
    },
];

pub struct Pinterest {
    common: Common,
    token: Url,
    authorize: Url,
    refresh_before_days: i64,
    warn_before_days: i64,
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
                    "the app id from developers.pinterest.com → My apps",
                )),
            BASE_URL,
            AUTH_URL,
        )?;
        if c.enabled {
            common.client_id()?;
        }
        if !(0..=29).contains(&c.refresh_before_days) {
            return Err(cx
                .error("refresh_before_days", "must be between 0 and 29")
                .with_hint("Pinterest access tokens live 30 days; the default is 5"));
        }
        super::check_days(cx, "warn_before_days", c.warn_before_days)?;
        Ok(std::sync::Arc::new(Pinterest {
            token: endpoint(&common.base_url, "/v5/oauth/token"),
            authorize: endpoint(&common.auth_url, "/oauth/"),
            common,
            refresh_before_days: c.refresh_before_days,
            warn_before_days: c.warn_before_days,
        }))
    }
}

#[derive(Deserialize)]
struct TokenReply {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: super::Lifetime,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    refresh_token_expires_in: super::Lifetime,
    /// Seconds since the epoch.
    #[serde(default)]
    refresh_token_expires_at: Option<i64>,
}

impl TokenReply {
    /// The new refresh token's expiry: `refresh_token_expires_in`, else the
    /// absolute `refresh_token_expires_at`, both range-checked.
    fn refresh_expiry(&self, clock: crate::clock::Clock, check: &mut super::LifetimeCheck) -> Option<Timestamp> {
        if !matches!(self.refresh_token_expires_in, super::Lifetime::Absent) {
            return check.at(clock, "refresh_token_expires_in", &self.refresh_token_expires_in);
        }
        let at = self
            .refresh_token_expires_at
            .and_then(|s| Timestamp::from_second(s).ok());
        check.absolute(clock.now(), "refresh_token_expires_at", at)
    }
}

#[derive(Deserialize)]
struct PinError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

/// Pinterest's `{"code","message"}` as text from outside.
fn describe(reply: &Reply) -> String {
    match reply.json::<PinError>() {
        Ok(e) if !e.message.is_empty() || e.code != 0 => format!(
            "{} (code {}): {}",
            reply.status,
            e.code,
            crate::scrub::external_cut(&e.message, 200)
        ),
        _ => format!("{}: {}", reply.status, super::redact_body(&reply.snippet())),
    }
}

impl Pinterest {
    fn client_id(&self) -> &str {
        self.common.client_id().unwrap_or_default()
    }

    /// A token request: Pinterest takes HTTP Basic client authentication.
    fn request(
        &self,
        c: &reqwest::Client,
        secret: &str,
        form: Vec<(&'static str, String)>,
    ) -> reqwest::RequestBuilder {
        super::oauth2::token_request(
            c,
            &self.token,
            super::oauth2::ClientAuth::Basic,
            self.client_id(),
            secret,
            form,
        )
    }
}

/// The pure planning rule.
pub(crate) fn plan(
    state: &AccountState,
    now: Timestamp,
    refresh_before_days: i64,
    warn_before_days: i64,
) -> Plan {
    let rt = match state.usable_refresh(now) {
        Ok(rt) => rt,
        Err(plan) => return plan,
    };
    match state.access.as_ref().and_then(|a| a.expires_at) {
        None => {
            return Plan::Refresh {
                reason: "access token expiry unknown".into(),
            };
        }
        Some(exp) if exp <= now.checked_add(1.hour()).unwrap_or(now) => {
            return Plan::Refresh {
                reason: format!("access token {}", expiry_text(now, exp)),
            };
        }
        Some(exp) if super::within_days(now, exp, refresh_before_days) => {
            return Plan::Refresh {
                reason: format!(
                    "access token {}, inside refresh_before_days ({refresh_before_days})",
                    expiry_text(now, exp)
                ),
            };
        }
        Some(_) => {}
    }
    // Inside the warning window: only a refresh tells whether the expiry moves
    // (a continuous token's does, a legacy one's does not: `hard_deadline`).
    match rt.expires_at {
        Some(exp) if super::within_days(now, exp, warn_before_days) => Plan::Refresh {
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

#[async_trait::async_trait]
impl Provider for Pinterest {
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
        Some(SECRET_VAR)
    }
    /// Continuous refresh is asked for on every refresh: the answer may carry a
    /// new refresh token, and the one sent is then dead.
    fn rotates(&self, _: &AccountState) -> bool {
        true
    }
    fn plan(&self, state: &AccountState, now: Timestamp) -> Plan {
        plan(state, now, self.refresh_before_days, self.warn_before_days)
    }

    async fn refresh(&self, cx: &Cx<'_>, state: &AccountState) -> Result<Grant, ProviderError> {
        let rt = state.refresh_token()?;
        let secret = cx.client_secret.map(|s| s.expose()).unwrap_or_default();
        let reply = cx
            .http
            .send("Pinterest token endpoint", Call::Rotating, |c| {
                self.request(
                    c,
                    secret,
                    vec![
                        ("grant_type", "refresh_token".into()),
                        ("refresh_token", rt.value.expose().to_owned()),
                        ("continuous_refresh", "true".into()),
                    ],
                )
            })
            .await?;
        if !reply.status.is_success() {
            let code = reply.json::<PinError>().map(|e| e.code).ok();
            return Err(match code {
                Some(DEAD_GRANT) => ProviderError::Reauth {
                    message: format!("Pinterest answered {}", describe(&reply)),
                },
                Some(AUTH_FAILED) => ProviderError::Failed {
                    message: format!("Pinterest rejected the app: {}", describe(&reply)),
                    hint: Some(format!(
                        "check platforms.pinterest.client_id and {SECRET_VAR} (developers.pinterest.com → My apps)"
                    )),
                },
                _ => ProviderError::Failed {
                    message: format!("Pinterest answered {}", describe(&reply)),
                    hint: None,
                },
            });
        }
        let body: TokenReply = reply
            .json()
            .map_err(|e| super::malformed("Pinterest token endpoint", &reply, true, e))?;
        let Some(access) = body.access_token.clone().filter(|s| !s.is_empty()) else {
            return Err(ProviderError::Unknown {
                message: "Pinterest answered without an access_token; the stored refresh token may have been rotated away".into(),
            });
        };
        let mut check = super::LifetimeCheck::default();
        let access = NewToken {
            value: access.into(),
            expires_at: check.at(cx.clock, "expires_in", &body.expires_in),
        };
        // A new refresh token: continuous refresh, the old one is dead. None: a
        // legacy refresh token, which keeps its fixed expiry.
        let refresh = body
            .refresh_token
            .clone()
            .filter(|s| !s.is_empty())
            .map(|v| NewToken {
                value: v.into(),
                expires_at: body.refresh_expiry(cx.clock, &mut check),
            });
        let note = refresh.is_none().then(|| {
            "legacy refresh token (fixed expiry): Pinterest did not switch it to continuous refresh"
                .to_owned()
        });
        Ok(Grant {
            access: Some(access),
            refresh,
            note,
            problem: check.problem("Pinterest"),
        })
    }

    /// A legacy refresh token's fixed expiry, inside `warn_before_days`.
    fn hard_deadline(&self, old: &AccountState, grant: &Grant, now: Timestamp) -> Option<Timestamp> {
        super::unmoved_deadline(
            old.refresh.as_ref(),
            grant.refresh.as_ref(),
            now,
            self.warn_before_days,
        )
    }

    fn reauth_causes(&self) -> &'static str {
        "the refresh token expired or was revoked (the user disconnected the app), or it rotated and the new one was lost"
    }
}

#[async_trait::async_trait]
impl Flow for Pinterest {
    fn pkce(&self, _loopback: bool) -> Option<login::Challenge> {
        None
    }
    /// Pinterest redirects only to registered `https` URIs.
    fn loopback(&self) -> bool {
        false
    }
    fn client_secret_var(&self) -> Option<&'static str> {
        Some(SECRET_VAR)
    }
    fn authorize_url(&self, cx: &login::Cx<'_>, state: &str, _pkce: Option<&Pkce>) -> Url {
        let mut u = self.authorize.clone();
        u.query_pairs_mut()
            .append_pair("client_id", self.client_id())
            .append_pair("redirect_uri", cx.redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", cx.scope.unwrap_or(DEFAULT_SCOPE))
            .append_pair("state", state);
        u
    }
    async fn exchange(
        &self,
        cx: &login::Cx<'_>,
        code: &Secret,
        _pkce: Option<&Pkce>,
    ) -> Result<Tokens> {
        let reply = cx
            .http
            .send("Pinterest token endpoint", Call::Rotating, |c| {
                let mut form = super::oauth2::code_form(cx, code, None);
                form.push(("continuous_refresh", "true".into()));
                self.request(c, cx.client_secret.expose(), form)
            })
            .await
            .map_err(|f| login::failure("Pinterest", f))?;
        if !reply.status.is_success() {
            return Err(Error::failed(format!(
                "Pinterest refused the authorization code ({})",
                describe(&reply)
            ))
            .with_hint(format!("codes are single-use and short-lived: run `evertoken auth login pinterest` again; check platforms.pinterest.client_id, {SECRET_VAR} and that the redirect URI is registered")));
        }
        let body: TokenReply = reply.json().map_err(|e| {
            Error::failed(format!(
                "Pinterest's token endpoint answered {} with a body evertoken cannot read: {e}",
                reply.status
            ))
        })?;
        let (Some(at), Some(rt)) = (
            body.access_token.clone().filter(|s| !s.is_empty()),
            body.refresh_token.clone().filter(|s| !s.is_empty()),
        ) else {
            return Err(login::exchange_error("Pinterest", &reply));
        };
        let mut check = super::LifetimeCheck::default();
        let refresh_exp = body.refresh_expiry(cx.clock, &mut check);
        let mut warnings = Vec::new();
        if let Some(p) = check.problem("Pinterest") {
            warnings.push(format!("{p}; the refresh token's expiry is recorded as unknown"));
        }
        Ok(Tokens {
            access: Some(NewToken {
                value: at.into(),
                expires_at: login::expiry(cx.clock, body.expires_in),
            }),
            refresh: Some(NewToken {
                value: rt.into(),
                expires_at: refresh_exp,
            }),
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::testing::{Case, check_table, held, t};



    #[test]
    fn plan_table() {
        let now = t("2026-11-30T12:00:00Z");
        let cases: &[Case] = &[
            // (access expiry, refresh expiry, expected)
            (None, None, "reauth"),
            (Some(Some("2026-12-20T00:00:00Z")), None, "reauth"),
            (None, Some(Some("2027-01-20T00:00:00Z")), "refresh"),
            (Some(None), Some(Some("2027-01-20T00:00:00Z")), "refresh"),
            (Some(Some("2026-11-30T12:30:00Z")), Some(None), "refresh"),
            (Some(Some("2026-12-03T00:00:00Z")), Some(None), "refresh"),
            (Some(Some("2026-12-20T00:00:00Z")), Some(None), "ok"),
            (Some(Some("2026-12-20T00:00:00Z")), Some(Some("2027-01-20T00:00:00Z")), "ok"),
            // Inside warn_before_days: only a refresh tells whether it moves.
            (Some(Some("2026-12-20T00:00:00Z")), Some(Some("2026-12-10T00:00:00Z")), "refresh"),
            (Some(Some("2026-12-20T00:00:00Z")), Some(Some("2026-11-29T00:00:00Z")), "reauth-dated"),
        ];
        check_table(cases, |s| plan(s, now, 5, 14));
    }

    #[test]
    fn legacy_expiry_is_a_hard_deadline() {
        let now = t("2026-11-30T12:00:00Z");
        let old = AccountState {
            access: None,
            refresh: Some(held(Some("2026-12-08T00:00:00Z"), None)),
        };
        let legacy = Grant::default();
        assert_eq!(
            super::super::unmoved_deadline(old.refresh.as_ref(), legacy.refresh.as_ref(), now, 14),
            Some(t("2026-12-08T00:00:00Z"))
        );
        let continuous = NewToken {
            value: Secret::new("n"),
            expires_at: Some(t("2027-01-29T12:00:00Z")),
        };
        assert_eq!(
            super::super::unmoved_deadline(old.refresh.as_ref(), Some(&continuous), now, 14),
            None
        );
    }
}
