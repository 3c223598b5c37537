//! Meta's Graph-style long-lived user tokens, shared by Instagram and Threads
//! (not a platform itself: each platform module configures one [`Graph`]).
//!
//! A long-lived token (~60 days) is refreshed in place with
//! `GET <refresh>?grant_type=<refresh_grant>&access_token=…` once it is at least
//! 24 hours old and not expired; the answer is a new token valid 60 days from the
//! refresh. Errors are Graph API `OAuthException`s
//! (`{"error":{"message","type","code","error_subcode"?,"is_transient"?}}`).
//!
//! The 24-hour rule without guessing: the age comes from the store's `updated_at`
//! where the store keeps one; a token of unknown age is refreshed, and when the
//! platform refuses, a read-only `GET <me>?fields=id` with the token decides,
//! since Meta does not document the refusal's text: the token works ⇒ `ok`
//! (refresh deferred), it does not ⇒ `reauth_required`. Only Graph's documented
//! dead-token answer (code 190, "Invalid OAuth 2.0 Access Token": expired,
//! revoked, password changed) skips the check and is `reauth_required` at once.
//! A refusal that says the token is too young (code 10, or "24 hours" in the
//! message) for a token whose age the store knows is `ok` too.
//!
//! Throttling and outages are never a dead token: Graph's codes 1, 2, 4, 17, 32,
//! 341, 613 and any error flagged `is_transient: true` may arrive as HTTP 400 or
//! 403. Such a refusal skips the `/me` check, and such an answer from `/me` is
//! `failed` (retried next run), never `reauth_required`.
//!
//! Login: authorize (no PKCE; Meta accepts only registered `https` redirect
//! URIs, so the login is always a pasted callback), `POST <code_exchange>` for a
//! short-lived token, exchanged at once with
//! `GET <long_lived>?grant_type=<exchange_grant>` for the long-lived token.
//! Sources: developers.facebook.com/docs/graph-api/guides/error-handling,
//! developers.facebook.com/docs/graph-api/overview/rate-limiting

use jiff::{Timestamp, ToSpan};
use serde::Deserialize;
use url::Url;

use super::{AccountState, Cx, Grant, NewToken, Plan, ProviderError, expiry_text};
use crate::error::{Error, Result};
use crate::http::Call;
use crate::login::{self, Tokens};
use crate::secret::Secret;

/// One platform's Graph endpoints and names.
pub(crate) struct Graph {
    /// The platform's display name in messages.
    pub who: &'static str,
    /// `ig_refresh_token`, `th_refresh_token`.
    pub refresh_grant: &'static str,
    /// `ig_exchange_token`, `th_exchange_token`.
    pub exchange_grant: &'static str,
    /// The app secret's variable (login only).
    pub secret_var: &'static str,
    /// The platform's key, for `auth login <key>` hints.
    pub key: &'static str,
    pub client_id: String,
    pub default_scope: &'static str,
    pub refresh_before_days: i64,
    pub refresh: Url,
    pub me: Url,
    pub authorize: Url,
    pub code_exchange: Url,
    pub long_lived: Url,
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
/// Graph's "application does not have permission for this action": what Meta
/// answers for a token refreshed too early.
const TOO_YOUNG_CODE: i64 = 10;

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

/// A Graph API error as `OAuthException 190/463: message`, or the status and a
/// redacted snippet.
fn describe(reply: &crate::http::Reply) -> String {
    match reply.json::<GraphErrorBody>() {
        Ok(GraphErrorBody { error: e }) => format!(
            "{} {}{}: {}",
            crate::scrub::external_cut(&e.kind, 80),
            e.code,
            e.error_subcode.map(|s| format!("/{s}")).unwrap_or_default(),
            crate::scrub::external_cut(&e.message, 200)
        ),
        Err(_) => format!("{} {}", reply.status, super::redact_body(&reply.snippet())),
    }
}

#[derive(Deserialize)]
struct ShortLived {
    #[serde(default)]
    access_token: Option<String>,
}

/// Meta answers `{"data":[{…}]}` or the bare object.
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

impl Graph {
    fn retry_hint(&self) -> String {
        format!(
            "{} is throttling or briefly unavailable; the next scheduled run retries",
            self.who
        )
    }

    /// The pure planning rule: expired ⇒ re-auth; younger than 24 h ⇒ ok;
    /// unknown expiry or inside `refresh_before_days` ⇒ refresh.
    pub fn plan(&self, state: &AccountState, now: Timestamp) -> Plan {
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
                    "the token expired on {}; {} cannot refresh an expired token",
                    crate::clock::date(exp),
                    self.who
                ),
                reauth_by: Some(exp),
            };
        }
        if let Some(updated) = token.updated_at
            && now < updated.checked_add(24.hours()).unwrap_or(updated)
        {
            return Plan::Ok {
                message: format!(
                    "refreshed or issued less than 24 h ago; {} refreshes only older tokens",
                    self.who
                ),
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

    pub async fn refresh(&self, cx: &Cx<'_>, state: &AccountState) -> Result<Grant, ProviderError> {
        let who = self.who;
        let token = state.access.as_ref().ok_or_else(|| ProviderError::Reauth {
            message: "no access token".into(),
        })?;
        let what = format!("{who} refresh_access_token");
        let reply = cx
            .http
            .send(&what, Call::Safe, |c| {
                c.get(self.refresh.clone()).query(&[
                    ("grant_type", self.refresh_grant),
                    ("access_token", token.value.expose()),
                ])
            })
            .await?;
        if reply.status.is_success() {
            let body: RefreshReply = reply
                .json()
                .map_err(|e| super::malformed(&what, &reply, false, e))?;
            let mut check = super::LifetimeCheck::default();
            let expires_at = check.at(cx.clock, "expires_in", &body.expires_in);
            return Ok(Grant {
                access: Some(NewToken {
                    value: body.access_token.into(),
                    expires_at,
                }),
                refresh: None,
                note: None,
                problem: check.problem(who),
            });
        }
        // Throttled or an outage (whatever the HTTP status): the token is not
        // the problem, and asking `/me` now would only add to the load.
        if transient_error(&reply).is_some() {
            return Err(ProviderError::Failed {
                message: format!("{who} refused the refresh for now ({})", describe(&reply)),
                hint: Some(self.retry_hint()),
            });
        }
        // Age unknown and the refresh refused (not a transient failure, not
        // Graph's documented "invalid access token" answer, code 190): ask
        // the platform whether the token itself still works.
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
                    "{who} answered {}: {}",
                    reply.status,
                    super::redact_body(&reply.snippet())
                ),
                hint: None,
            });
        };
        let lower = e.message.to_lowercase();
        if e.code == TOO_YOUNG_CODE
            || lower.contains("24 hours")
            || lower.contains("too recent")
            || lower.contains("too young")
        {
            // A token of unknown age turned out to be fresh: it was just issued.
            return Ok(Grant {
                note: Some(format!(
                    "{who} says the token is less than 24 h old: it was just issued"
                )),
                ..Grant::default()
            });
        }
        let what = format!("{who} rejected the token ({})", describe(&reply));
        if e.code == 190 || e.kind == "OAuthException" && reply.status.as_u16() == 401 {
            Err(ProviderError::Reauth { message: what })
        } else {
            Err(ProviderError::Failed {
                message: what,
                hint: None,
            })
        }
    }

    /// After a refused refresh of a token of unknown age: `GET /me?fields=id`,
    /// read-only. Works ⇒ the token is valid and merely not refreshable yet.
    async fn check_me(
        &self,
        cx: &Cx<'_>,
        token: &Secret,
        refused: &crate::http::Reply,
    ) -> Result<Grant, ProviderError> {
        let who = self.who;
        let refusal = describe(refused);
        let reply = cx
            .http
            .send(&format!("{who} /me"), Call::Safe, |c| {
                c.get(self.me.clone())
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
                        "refresh deferred: token too young or not yet refreshable ({who} refused the refresh: {refusal}; the token works for GET /me)"
                    )),
                    ..Grant::default()
                });
            }
            return Err(ProviderError::Failed {
                message: format!(
                    "{who} refused the refresh ({refusal}) and GET /me answered {} without an id",
                    reply.status
                ),
                hint: Some("the next scheduled run checks again".into()),
            });
        }
        if transient_error(&reply).is_some() {
            return Err(ProviderError::Failed {
                message: format!(
                    "{who} refused the refresh ({refusal}) and GET /me is throttled or unavailable ({})",
                    describe(&reply)
                ),
                hint: Some(self.retry_hint()),
            });
        }
        if reply.status.is_client_error() && reply.status.as_u16() != 429 {
            return Err(ProviderError::Reauth {
                message: format!(
                    "{who} refused the refresh ({refusal}) and the token no longer works (GET /me: {})",
                    describe(&reply)
                ),
            });
        }
        Err(ProviderError::Failed {
            message: format!(
                "{who} refused the refresh ({refusal}) and GET /me answered {}",
                reply.status
            ),
            hint: Some("a transient failure; the next scheduled run retries".into()),
        })
    }

    pub fn authorize_url(&self, cx: &login::Cx<'_>, state: &str) -> Url {
        let mut u = self.authorize.clone();
        u.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", cx.redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", cx.scope.unwrap_or(self.default_scope))
            .append_pair("state", state);
        u
    }

    /// The code for a short-lived token, then that for the long-lived one.
    pub async fn exchange(&self, cx: &login::Cx<'_>, code: &Secret) -> Result<Tokens> {
        let who = self.who;
        let reply = cx
            .http
            .send(&format!("{who} oauth/access_token"), Call::Rotating, |c| {
                c.post(self.code_exchange.clone()).form(&[
                    ("client_id", self.client_id.as_str()),
                    ("client_secret", cx.client_secret.expose()),
                    ("grant_type", "authorization_code"),
                    ("redirect_uri", cx.redirect_uri),
                    ("code", code.expose()),
                ])
            })
            .await
            .map_err(|f| login::failure(who, f))?;
        if !reply.status.is_success() {
            return Err(login::exchange_error(who, &reply));
        }
        let short = match reply.json::<CodeReply>() {
            Ok(CodeReply::Wrapped { data }) => data.into_iter().next().and_then(|d| d.access_token),
            Ok(CodeReply::Bare(d)) => d.access_token,
            Err(_) => None,
        }
        .filter(|s| !s.is_empty())
        .map(Secret::new)
        .ok_or_else(|| login::exchange_error(who, &reply))?;

        let reply = cx
            .http
            .send(
                &format!("{who} access_token ({})", self.exchange_grant),
                Call::Safe,
                |c| {
                    c.get(self.long_lived.clone()).query(&[
                        ("grant_type", self.exchange_grant),
                        ("client_secret", cx.client_secret.expose()),
                        ("access_token", short.expose()),
                    ])
                },
            )
            .await
            .map_err(|f| login::failure(who, f))?;
        if !reply.status.is_success() {
            return Err(Error::failed(format!(
                "{who} would not exchange the short-lived token for a long-lived one ({}): {}",
                reply.status,
                super::redact_body(&reply.snippet())
            ))
            .with_hint(format!(
                "check {}, then run `evertoken auth login {}` again",
                self.secret_var, self.key
            )));
        }
        let body: LongLived = reply.json().map_err(|e| {
            Error::failed(format!(
                "{who}'s access_token answered {} with a body evertoken cannot read: {e}",
                reply.status
            ))
        })?;
        let Some(token) = body.access_token.filter(|s| !s.is_empty()) else {
            return Err(Error::failed(format!(
                "{who}'s access_token answered without an access_token"
            )));
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
pub(crate) mod tests {
    use super::*;
    pub use crate::provider::testing::{held, kind, t};

    pub fn state(token: Option<(Option<&str>, Option<&str>)>) -> AccountState {
        AccountState {
            access: token.map(|(exp, upd)| held(exp, upd)),
            refresh: None,
        }
    }

    /// The 24-hour rule and the window, for any Graph platform's `plan`.
    pub fn plan_table(plan: impl Fn(&AccountState, Timestamp) -> Plan) {
        let now = t("2026-11-30T12:00:00Z");
        type Case<'a> = (Option<(Option<&'a str>, Option<&'a str>)>, &'a str);
        let cases: &[Case] = &[
            (None, "reauth"),
            (Some((Some("2026-11-30T11:00:00Z"), None)), "reauth-dated"),
            (
                Some((Some("2026-11-30T11:00:00Z"), Some("2026-11-30T10:00:00Z"))),
                "reauth-dated",
            ),
            (Some((None, None)), "refresh"),
            (Some((None, Some("2026-11-30T01:00:00Z"))), "ok"),
            (
                Some((Some("2026-12-05T00:00:00Z"), Some("2026-11-30T01:00:00Z"))),
                "ok",
            ),
            (
                Some((Some("2026-12-05T00:00:00Z"), Some("2026-10-06T00:00:00Z"))),
                "refresh",
            ),
            (Some((Some("2026-12-05T00:00:00Z"), None)), "refresh"),
            (Some((Some("2027-01-20T00:00:00Z"), None)), "ok"),
            (
                Some((Some("2027-01-20T00:00:00Z"), Some("2026-11-21T00:00:00Z"))),
                "ok",
            ),
        ];
        for (token, want) in cases {
            assert_eq!(kind(&plan(&state(*token), now)), *want, "{token:?}");
        }
    }
}
