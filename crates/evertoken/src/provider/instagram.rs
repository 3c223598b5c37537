//! Instagram (Instagram API with Instagram Login): a long-lived user token (~60
//! days) refreshed in place with `GET /refresh_access_token?grant_type=ig_refresh_token`
//! once it is at least 24 hours old and not expired; the answer is a new token valid
//! for 60 days from the refresh. Errors are Graph API `OAuthException`s.
//!
//! The 24-hour rule without guessing: the age comes from the store's `updated_at`
//! where the store keeps one (credentials file, Vault, env-file); a token of
//! unknown age is refreshed, and when Instagram refuses, a read-only
//! `GET /me?fields=id` with the token decides, since Meta does not document the
//! refusal's text: the token works ⇒ `ok` (refresh deferred), it does not ⇒
//! `reauth_required`. Only Graph's documented dead-token answer (code 190,
//! "Invalid OAuth 2.0 Access Token": expired, revoked, password changed) skips
//! the check and is `reauth_required` at once.
//!
//! Throttling and outages are never a dead token: Graph's codes 1 (unknown,
//! possibly temporary), 2 (service), 4 / 17 / 32 / 613 (rate limits), 341
//! (application limit) and any error flagged `is_transient: true` may arrive as
//! HTTP 400 or 403. Such a refusal skips the `/me` check, and such an answer from
//! `/me` is `failed` (retried next run), never `reauth_required`.
//! Sources: developers.facebook.com/documentation/instagram-platform/reference/refresh_access_token,
//! developers.facebook.com/docs/instagram-platform/reference/me,
//! developers.facebook.com/docs/graph-api/guides/error-handling,
//! developers.facebook.com/docs/graph-api/overview/rate-limiting
//!
//! ## Login
//! Instagram (API with Instagram Login, "Business Login"): `GET /oauth/authorize`
//! (on `auth_url`, default www.instagram.com), then `POST /oauth/access_token`
//! (api.instagram.com, or `base_url` when set) for a short-lived token, which is
//! exchanged at once with `GET /access_token?grant_type=ig_exchange_token` (on
//! `base_url`, default graph.instagram.com) for the ~60-day token that `auth
//! refresh` keeps alive. Instagram takes no PKCE; the app secret authenticates.
//! Meta accepts only the `https` redirect URIs listed in the app's Business login
//! settings, so this login always runs as a pasted callback (`--redirect-uri`).
//! Source: developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/business-login

use jiff::{Timestamp, ToSpan};
use serde::Deserialize;

use url::Url;

use super::{
    BuildCx, Common, Cx, Grant, Keys, NewToken, Plan, Provider, ProviderError, Role, Slot,
    expiry_text,
};
use crate::error::{Error, Result};
use crate::http::{Call, endpoint};
use crate::login::{self, Flow, Pkce, Tokens};
use crate::secret::Secret;

pub const KEY: &str = "instagram";
pub const DISPLAY: &str = "Instagram";
const DEFAULT_SCOPE: &str = "instagram_business_basic,instagram_business_content_publish";

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
    /// Refresh when the token expires within this many days.
    #[serde(default = "default_refresh_before_days")]
    pub refresh_before_days: i64,
    /// The Instagram app id (used by `auth login`).
    #[serde(default)]
    pub app_id: Option<String>,
    /// Authorization endpoint base for `auth login` (www.instagram.com).
    #[serde(default)]
    pub auth_url: Option<String>,
}

fn default_refresh_before_days() -> i64 {
    15
}

pub const BASE_URL: &str = "https://graph.instagram.com";
pub const AUTH_URL: &str = "https://www.instagram.com";
/// Where the authorization code is exchanged when `base_url` is not set.
const CODE_URL: &str = "https://api.instagram.com";
const SLOTS: &[Slot] = &[Slot {
    role: Role::Access,
    base: "INSTAGRAM_ACCESS_TOKEN",
    durable: true,
}];

pub struct Instagram {
    common: Common,
    refresh_before_days: i64,
    authorize: Url,
    code_exchange: Url,
    long_lived: Url,
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
            Keys {
                enabled: c.enabled,
                accounts: &c.accounts,
                concurrency: c.concurrency,
                base_url: c.base_url.as_deref(),
                auth_url: c.auth_url.as_deref(),
                client_id: (
                    "app_id",
                    c.app_id.as_deref(),
                    "the Instagram app ID from the Meta app dashboard (Instagram → API setup with Instagram login)",
                ),
            },
            BASE_URL,
            AUTH_URL,
        )?;
        if c.refresh_before_days < 1 || c.refresh_before_days > 59 {
            return Err(cx
                .error("refresh_before_days", "must be between 1 and 59")
                .with_hint("Instagram tokens live 60 days; the default is 15"));
        }
        let code_base = match c.base_url {
            Some(_) => common.base_url.clone(),
            None => super::base(cx, "base_url", None, CODE_URL)?,
        };
        Ok(std::sync::Arc::new(Instagram {
            authorize: endpoint(&common.auth_url, "/oauth/authorize"),
            code_exchange: endpoint(&code_base, "/oauth/access_token"),
            long_lived: endpoint(&common.base_url, "/access_token"),
            common,
            refresh_before_days: c.refresh_before_days,
        }))
    }
}

#[derive(Deserialize)]
struct RefreshReply {
    access_token: String,
    #[serde(default)]
    expires_in: super::Lifetime,
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    code: i64,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    is_transient: bool,
}

/// Graph's throttling and outage codes: retry later, the token is not the problem.
const TRANSIENT_CODES: &[i64] = &[1, 2, 4, 17, 32, 341, 613];

impl GraphError {
    fn is_transient(&self) -> bool {
        self.is_transient || TRANSIENT_CODES.contains(&self.code)
    }
}

/// The Graph error of `reply` when it is a throttling or outage answer.
fn transient_error(reply: &crate::http::Reply) -> Option<GraphError> {
    reply
        .json::<GraphErrorBody>()
        .ok()
        .map(|b| b.error)
        .filter(GraphError::is_transient)
}

const RETRY_HINT: &str =
    "Instagram is throttling or briefly unavailable; the next scheduled run retries";

#[async_trait::async_trait]
impl Provider for Instagram {
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
        None
    }
    fn rotates(&self, _: &super::AccountState) -> bool {
        false
    }

    fn plan(&self, state: &super::AccountState, now: Timestamp) -> Plan {
        let Some(token) = &state.access else {
            return Plan::Reauth {
                message: "no access token is stored".into(),
                reauth_by: None,
            };
        };
        if let Some(exp) = token.expires_at
            && exp <= now
        {
            return Plan::Reauth {
                message: format!(
                    "the token expired on {}; Instagram cannot refresh an expired token",
                    crate::clock::date(exp)
                ),
                reauth_by: Some(exp),
            };
        }
        if let Some(updated) = token.updated_at
            && now < updated.checked_add(24.hours()).unwrap_or(updated)
        {
            return Plan::Ok {
                message:
                    "refreshed or issued less than 24 h ago; Instagram refreshes only older tokens"
                        .into(),
            };
        }
        match token.expires_at {
            None => Plan::Refresh {
                reason: "expiry unknown".into(),
            },
            Some(exp) if super::within_days(now, exp, self.refresh_before_days) => Plan::Refresh {
                reason: format!(
                    "{}, inside refresh_before_days ({})",
                    expiry_text(now, exp),
                    self.refresh_before_days
                ),
            },
            Some(exp) => Plan::Ok {
                message: expiry_text(now, exp),
            },
        }
    }

    async fn refresh(
        &self,
        cx: &Cx<'_>,
        state: &super::AccountState,
    ) -> Result<Grant, ProviderError> {
        let token = state.access.as_ref().ok_or_else(|| ProviderError::Reauth {
            message: "no access token".into(),
        })?;
        let url = endpoint(&self.common.base_url, "/refresh_access_token");
        let reply = cx
            .http
            .send("Instagram refresh_access_token", Call::Safe, |c| {
                c.get(url.clone()).query(&[
                    ("grant_type", "ig_refresh_token"),
                    ("access_token", token.value.expose()),
                ])
            })
            .await?;
        if reply.status.is_success() {
            let body: RefreshReply = reply.json().map_err(|e| {
                super::malformed("Instagram refresh_access_token", &reply, false, e)
            })?;
            let mut check = super::LifetimeCheck::default();
            let expires_at = check.at(cx.clock, "expires_in", &body.expires_in);
            return Ok(Grant {
                access: Some(NewToken {
                    value: body.access_token.into(),
                    expires_at,
                }),
                refresh: None,
                note: None,
                problem: check.problem("Instagram"),
            });
        }
        // Throttled or an outage (whatever the HTTP status): the token is not
        // the problem, and asking `/me` now would only add to the load.
        if transient_error(&reply).is_some() {
            return Err(ProviderError::Failed {
                message: format!(
                    "Instagram refused the refresh for now ({})",
                    describe(&reply)
                ),
                hint: Some(RETRY_HINT.into()),
            });
        }
        // Age unknown and the refresh refused (not a transient failure, not
        // Graph's documented "invalid access token" answer, code 190): ask
        // Instagram whether the token itself still works.
        let dead = reply
            .json::<GraphErrorBody>()
            .is_ok_and(|b| b.error.code == 190);
        if token.updated_at.is_none()
            && !dead
            && reply.status.is_client_error()
            && reply.status.as_u16() != 429
        {
            return self.check_me(cx, &token.value, &reply).await;
        }
        let Ok(GraphErrorBody { error: e }) = reply.json::<GraphErrorBody>() else {
            return Err(ProviderError::Failed {
                message: format!(
                    "Instagram answered {}: {}",
                    reply.status,
                    super::redact_body(&reply.snippet())
                ),
                hint: None,
            });
        };
        let lower = e.message.to_lowercase();
        if lower.contains("24 hours") || lower.contains("too recent") || lower.contains("too young")
        {
            // A token of unknown age turned out to be fresh: it was just issued.
            return Ok(Grant {
                note: Some(
                    "Instagram says the token is less than 24 h old: it was just issued".into(),
                ),
                ..Grant::default()
            });
        }
        let what = format!(
            "Instagram rejected the token ({} {}{}: {})",
            e.kind,
            e.code,
            e.error_subcode.map(|s| format!("/{s}")).unwrap_or_default(),
            e.message
        );
        if e.code == 190 || e.kind == "OAuthException" && reply.status.as_u16() == 401 {
            Err(ProviderError::Reauth { message: what })
        } else {
            Err(ProviderError::Failed {
                message: what,
                hint: None,
            })
        }
    }

    fn reauth_causes(&self) -> &'static str {
        "the token expired, the user changed their password, or the app's access was removed"
    }
}

impl Instagram {
    /// After a refused refresh of a token of unknown age: `GET /me?fields=id`,
    /// read-only. Works ⇒ the token is valid and merely not refreshable yet.
    async fn check_me(
        &self,
        cx: &Cx<'_>,
        token: &crate::secret::Secret,
        refused: &crate::http::Reply,
    ) -> Result<Grant, ProviderError> {
        let refusal = describe(refused);
        let url = endpoint(&self.common.base_url, "/me");
        let reply = cx
            .http
            .send("Instagram /me", Call::Safe, |c| {
                c.get(url.clone())
                    .query(&[("fields", "id"), ("access_token", token.expose())])
            })
            .await?;
        if reply.status.is_success() {
            let works = reply
                .json::<serde_json::Value>()
                .ok()
                .is_some_and(|v| v.get("id").is_some_and(|id| id.is_string() || id.is_u64()));
            if works {
                return Ok(Grant {
                    note: Some(format!(
                        "refresh deferred: token too young or not yet refreshable (Instagram refused the refresh: {refusal}; the token works for GET /me)"
                    )),
                    ..Grant::default()
                });
            }
            return Err(ProviderError::Failed {
                message: format!(
                    "Instagram refused the refresh ({refusal}) and GET /me answered {} without an id",
                    reply.status
                ),
                hint: Some("the next scheduled run checks again".into()),
            });
        }
        if transient_error(&reply).is_some() {
            return Err(ProviderError::Failed {
                message: format!(
                    "Instagram refused the refresh ({refusal}) and GET /me is throttled or unavailable ({})",
                    describe(&reply)
                ),
                hint: Some(RETRY_HINT.into()),
            });
        }
        if reply.status.is_client_error() && reply.status.as_u16() != 429 {
            return Err(ProviderError::Reauth {
                message: format!(
                    "Instagram refused the refresh ({refusal}) and the token no longer works (GET /me: {})",
                    describe(&reply)
                ),
            });
        }
        Err(ProviderError::Failed {
            message: format!(
                "Instagram refused the refresh ({refusal}) and GET /me answered {}",
                reply.status
            ),
            hint: Some("a transient failure; the next scheduled run retries".into()),
        })
    }
}

/// A Graph API error as `OAuthException 190/463: message`, or the status and a
/// redacted snippet.
fn describe(reply: &crate::http::Reply) -> String {
    match reply.json::<GraphErrorBody>() {
        Ok(GraphErrorBody { error: e }) => format!(
            "{} {}{}: {}",
            e.kind,
            e.code,
            e.error_subcode.map(|s| format!("/{s}")).unwrap_or_default(),
            e.message
                .chars()
                .take(200)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>()
        ),
        Err(_) => format!("{} {}", reply.status, super::redact_body(&reply.snippet())),
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
    fn pkce(&self, _loopback: bool) -> Option<login::Challenge> {
        None
    }

    /// Meta accepts only registered `https` redirect URIs.
    fn loopback(&self) -> bool {
        false
    }

    fn client_secret_var(&self) -> Option<&'static str> {
        Some("INSTAGRAM_APP_SECRET")
    }

    fn authorize_url(&self, cx: &login::Cx<'_>, state: &str, _pkce: Option<&Pkce>) -> Url {
        let mut u = self.authorize.clone();
        u.query_pairs_mut()
            .append_pair("client_id", self.common.client_id().unwrap_or_default())
            .append_pair("redirect_uri", cx.redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", cx.scope.unwrap_or(DEFAULT_SCOPE))
            .append_pair("state", state);
        u
    }

    async fn exchange(&self, cx: &login::Cx<'_>, code: &Secret, _pkce: Option<&Pkce>) -> Result<Tokens> {
        let reply = cx
            .http
            .send("Instagram oauth/access_token", Call::Rotating, |c| {
                c.post(self.code_exchange.clone()).form(&[
                    ("client_id", self.common.client_id().unwrap_or_default()),
                    ("client_secret", cx.client_secret.expose()),
                    ("grant_type", "authorization_code"),
                    ("redirect_uri", cx.redirect_uri),
                    ("code", code.expose()),
                ])
            })
            .await
            .map_err(|f| login::failure("Instagram", f))?;
        if !reply.status.is_success() {
            return Err(login::exchange_error("Instagram", &reply));
        }
        let short = match reply.json::<CodeReply>() {
            Ok(CodeReply::Wrapped { data }) => data.into_iter().next().and_then(|d| d.access_token),
            Ok(CodeReply::Bare(d)) => d.access_token,
            Err(_) => None,
        }
        .filter(|s| !s.is_empty())
        .map(Secret::new)
        .ok_or_else(|| login::exchange_error("Instagram", &reply))?;

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
            .map_err(|f| login::failure("Instagram", f))?;
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
                expires_at: login::expiry(cx.clock, body.expires_in),
            }),
            refresh: None,
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::provider::fixture::{held, kind, provider, state, t};

    /// (expires_at, updated_at) of the one token → plan, at 2026-11-30 12:00
    /// with the default `refresh_before_days` (15).
    #[test]
    fn plan_table() {
        let p = provider("instagram: {}");
        let now = t("2026-11-30T12:00:00Z");
        type Case<'a> = (Option<(Option<&'a str>, Option<&'a str>)>, &'a str);
        let cases: &[Case] = &[
            // No token: log in.
            (None, "reauth"),
            // Expired (or expiring this instant): Instagram cannot refresh it.
            (Some((Some("2026-11-30T11:00:00Z"), None)), "reauth-dated"),
            (Some((Some("2026-11-30T12:00:00Z"), None)), "reauth-dated"),
            (
                Some((Some("2026-11-30T11:00:00Z"), Some("2026-11-30T10:00:00Z"))),
                "reauth-dated",
            ),
            // The 24-hour rule: a token younger than a day is left alone.
            (
                Some((Some("2026-12-05T00:00:00Z"), Some("2026-11-29T13:00:00Z"))),
                "ok",
            ),
            (Some((None, Some("2026-11-30T00:00:00Z"))), "ok"),
            (
                Some((Some("2026-12-05T00:00:00Z"), Some("2026-11-29T12:00:00Z"))),
                "refresh",
            ),
            (
                Some((Some("2026-12-05T00:00:00Z"), Some("2026-11-29T11:00:00Z"))),
                "refresh",
            ),
            // Unknown expiry (and age): refresh, Instagram's answer decides.
            (Some((None, None)), "refresh"),
            // Inside refresh_before_days (boundary included), outside it.
            (Some((Some("2026-12-10T00:00:00Z"), None)), "refresh"),
            (Some((Some("2026-12-15T12:00:00Z"), None)), "refresh"),
            (Some((Some("2026-12-15T12:00:01Z"), None)), "ok"),
            (Some((Some("2027-01-29T00:00:00Z"), None)), "ok"),
        ];
        for (token, want) in cases {
            let access = token.map(|(exp, upd)| held(exp, upd));
            let got = kind(&p.plan(&state(access, None), now));
            assert_eq!(got, *want, "token {token:?}");
        }
    }
}
