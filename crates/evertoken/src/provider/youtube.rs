//! YouTube (Google OAuth 2.0): a durable refresh token and short access tokens.
//! `auth refresh` health-checks the refresh token with the refresh grant at
//! `POST /token` (form: client_id, client_secret, refresh_token,
//! grant_type=refresh_token); the access token it returns is discarded.
//! `invalid_grant` means a human must re-authorise.
//! Source: developers.google.com/identity/protocols/oauth2/web-server#offline
//!
//! ## Login
//! YouTube (Google OAuth 2.0): `GET /o/oauth2/v2/auth` (on `auth_url`, default
//! accounts.google.com) with `access_type=offline` and `prompt=consent`, so that
//! Google issues a refresh token every time, and PKCE S256; then `POST /token`
//! (on `base_url`) with the code and the verifier. Only the refresh token is
//! stored: access tokens last an hour and are minted from it.
//! Source: developers.google.com/identity/protocols/oauth2/web-server

use jiff::Timestamp;
use serde::Deserialize;

use url::Url;

use super::{BuildCx, Common, Cx, Grant, NewToken, Plan, Provider, ProviderError, Role, Slot};
use crate::error::{Error, Result};
use crate::http::{Call, endpoint};
use crate::login::{self, Flow, Pkce, Tokens};
use crate::secret::Secret;

const DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/youtube.upload";

platform_config! {
    /// The OAuth client id (`….apps.googleusercontent.com`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Report `reauth_required` this many days before a time-limited refresh
    /// token's expiry (Google's `refresh_token_expires_in`; it never moves).
    #[serde(default = "default_warn_before_days")]
    pub warn_before_days: i64,
}

fn default_warn_before_days() -> i64 {
    14
}

pub const KEY: &str = "youtube";
pub const DISPLAY: &str = "YouTube";
pub const AUTH_URL: &str = "https://accounts.google.com";
pub const BASE_URL: &str = "https://oauth2.googleapis.com";
const SLOTS: &[Slot] = &[Slot {
    role: Role::Refresh,
    base: "YOUTUBE_REFRESH_TOKEN",
    durable: true,
}];

pub struct Youtube {
    common: Common,
    token: Url,
    authorize: Url,
    warn_before_days: i64,
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
                    "the OAuth client id from Google Cloud Console, `….apps.googleusercontent.com`",
                )),
            BASE_URL,
            AUTH_URL,
        )?;
        if c.enabled {
            common.client_id()?;
        }
        super::check_days(cx, "warn_before_days", c.warn_before_days)?;
        Ok(std::sync::Arc::new(Youtube {
            token: endpoint(&common.base_url, "/token"),
            authorize: endpoint(&common.auth_url, "/o/oauth2/v2/auth"),
            common,
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
}

#[async_trait::async_trait]
impl Provider for Youtube {
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
        match state.usable_refresh(now) {
            Ok(_) => Plan::HealthCheck {
                reason: "health-check the refresh token".into(),
            },
            Err(plan) => plan,
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
            .send("Google token endpoint", Call::Safe, |c| {
                c.post(url.clone()).form(&[
                    ("client_id", self.common.client_id().unwrap_or_default()),
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
            let access = body.access_token.map(|v| NewToken {
                value: v.into(),
                expires_at: check.at(cx.clock, "expires_in", &body.expires_in),
            });
            return Ok(Grant {
                // Not stored (YouTube keeps no access token slot); `auth token` hands it over.
                access,
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

#[derive(Deserialize)]
struct CodeReply {
    #[serde(default)]
    refresh_token: Option<String>,
    /// Present when the grant is time-limited.
    #[serde(default)]
    refresh_token_expires_in: Option<i64>,
}

#[async_trait::async_trait]
impl Flow for Youtube {
    fn pkce(&self, _loopback: bool) -> Option<login::Challenge> {
        Some(login::Challenge::Base64Url)
    }

    fn client_secret_var(&self) -> Option<&'static str> {
        Some("YOUTUBE_CLIENT_SECRET")
    }

    fn authorize_url(&self, cx: &login::Cx<'_>, state: &str, pkce: Option<&Pkce>) -> Url {
        let mut u = self.authorize.clone();
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", self.common.client_id().unwrap_or_default())
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

    async fn exchange(&self, cx: &login::Cx<'_>, code: &Secret, pkce: Option<&Pkce>) -> Result<Tokens> {
        let verifier = pkce.map(|p| p.verifier.expose()).unwrap_or_default();
        let reply = cx
            .http
            .send("Google token endpoint", Call::Rotating, |c| {
                let mut form = vec![
                    ("grant_type", "authorization_code"),
                    ("code", code.expose()),
                    ("client_id", self.common.client_id().unwrap_or_default()),
                    ("client_secret", cx.client_secret.expose()),
                    ("redirect_uri", cx.redirect_uri),
                ];
                if !verifier.is_empty() {
                    form.push(("code_verifier", verifier));
                }
                c.post(self.token.clone()).form(&form)
            })
            .await
            .map_err(|f| login::failure("Google", f))?;
        if !reply.status.is_success() {
            return Err(login::exchange_error("Google", &reply));
        }
        let body: CodeReply = reply.json().map_err(|e| {
            Error::failed(format!(
                "Google's token endpoint answered {} with a body evertoken cannot read: {e}",
                reply.status
            ))
        })?;
        let Some(rt) = body.refresh_token.filter(|s| !s.is_empty()) else {
            return Err(Error::failed("Google issued no refresh token")
                .with_hint("remove the app's access at myaccount.google.com/permissions and log in again (evertoken asks with prompt=consent and access_type=offline)"));
        };
        let expires_at = login::expiry(cx.clock, body.refresh_token_expires_in);
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

#[cfg(test)]
mod tests {
    use crate::provider::testing::{held, kind, provider, t, with as state};
    use crate::provider::{Grant, NewToken};
    use crate::secret::Secret;

    /// The refresh token's expiry → plan: a live one is health-checked (YouTube
    /// keeps no access token to watch), a missing or expired one is a login.
    #[test]
    fn plan_table() {
        let p = provider("youtube: { client_id: cid }");
        let now = t("2026-11-30T12:00:00Z");
        let cases: &[(Option<Option<&str>>, &str)] = &[
            (None, "reauth"),
            (Some(None), "health-check"),
            (Some(Some("2027-06-01T00:00:00Z")), "health-check"),
            // Inside warn_before_days: still checked; the refresh result carries
            // the deadline (see `hard_deadline_table`).
            (Some(Some("2026-12-03T00:00:00Z")), "health-check"),
            (Some(Some("2026-11-30T12:00:00Z")), "reauth-dated"),
            (Some(Some("2026-11-01T00:00:00Z")), "reauth-dated"),
        ];
        for (refresh, want) in cases {
            let st = state(None, refresh.map(|exp| held(exp, None)));
            assert_eq!(kind(&p.plan(&st, now)), *want, "refresh {refresh:?}");
        }
    }

    /// A time-limited grant: a refresh that does not move the refresh token's
    /// expiry inside `warn_before_days` (14) is a dated deadline.
    #[test]
    fn hard_deadline_table() {
        let p = provider("youtube: { client_id: cid }");
        let now = t("2026-11-30T12:00:00Z");
        let new = |exp: &str| NewToken {
            value: Secret::new("n"),
            expires_at: Some(t(exp)),
        };
        let cases: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
            // (stored expiry, expiry in the answer, deadline)
            (Some("2026-12-05T00:00:00Z"), None, Some("2026-12-05T00:00:00Z")),
            (
                Some("2026-12-05T00:00:00Z"),
                Some("2026-12-05T00:30:00Z"),
                Some("2026-12-05T00:30:00Z"),
            ),
            (Some("2026-12-05T00:00:00Z"), Some("2027-06-01T00:00:00Z"), None),
            (Some("2027-06-01T00:00:00Z"), None, None),
            (None, None, None),
            (None, Some("2026-12-05T00:00:00Z"), Some("2026-12-05T00:00:00Z")),
        ];
        for (old, answer, want) in cases {
            let st = state(None, Some(held(*old, None)));
            let grant = Grant {
                refresh: answer.map(new),
                ..Grant::default()
            };
            assert_eq!(
                p.hard_deadline(&st, &grant, now),
                want.map(t),
                "stored {old:?} answer {answer:?}"
            );
        }
    }
}
