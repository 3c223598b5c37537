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

use jiff::Timestamp;

use url::Url;

use super::graph::Graph;
use super::{BuildCx, Common, Cx, Grant, Plan, Provider, ProviderError, Role, Slot};
use crate::error::Result;
use crate::http::endpoint;
use crate::login::{self, Flow, Pkce, Tokens};
use crate::secret::Secret;

pub const KEY: &str = "instagram";
pub const DISPLAY: &str = "Instagram";
const DEFAULT_SCOPE: &str = "instagram_business_basic,instagram_business_content_publish";

platform_config! {
    /// Refresh when the token expires within this many days.
    #[serde(default = "default_refresh_before_days")]
    pub refresh_before_days: i64,
    /// The Instagram app id (used by `auth login`).
    #[serde(default)]
    pub app_id: Option<String>,
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
    graph: Graph,
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
                    "app_id",
                    c.app_id.as_deref(),
                    "the Instagram app ID from the Meta app dashboard (Instagram → API setup with Instagram login)",
                )),
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
        let graph = Graph {
            who: DISPLAY,
            refresh_grant: "ig_refresh_token",
            exchange_grant: "ig_exchange_token",
            secret_var: SECRET_VAR,
            key: KEY,
            client_id: c.app_id.clone().unwrap_or_default(),
            default_scope: DEFAULT_SCOPE,
            refresh_before_days: c.refresh_before_days,
            refresh: endpoint(&common.base_url, "/refresh_access_token"),
            me: endpoint(&common.base_url, "/me"),
            authorize: endpoint(&common.auth_url, "/oauth/authorize"),
            code_exchange: endpoint(&code_base, "/oauth/access_token"),
            long_lived: endpoint(&common.base_url, "/access_token"),
        };
        Ok(std::sync::Arc::new(Instagram { common, graph }))
    }
}

const SECRET_VAR: &str = "INSTAGRAM_APP_SECRET";

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
        self.graph.plan(state, now)
    }

    async fn refresh(
        &self,
        cx: &Cx<'_>,
        state: &super::AccountState,
    ) -> Result<Grant, ProviderError> {
        self.graph.refresh(cx, state).await
    }

    fn reauth_causes(&self) -> &'static str {
        "the token expired, the user changed their password, or the app's access was removed"
    }
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
        Some(SECRET_VAR)
    }

    fn authorize_url(&self, cx: &login::Cx<'_>, state: &str, _pkce: Option<&Pkce>) -> Url {
        self.graph.authorize_url(cx, state)
    }

    async fn exchange(&self, cx: &login::Cx<'_>, code: &Secret, _pkce: Option<&Pkce>) -> Result<Tokens> {
        self.graph.exchange(cx, code).await
    }
}

#[cfg(test)]
mod tests {
    use crate::provider::testing::{held, kind, provider, t, with as state};

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
