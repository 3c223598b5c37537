//! Threads (graph.threads.net): a long-lived user token (~60 days) refreshed in
//! place with `GET /refresh_access_token?grant_type=th_refresh_token` once it is
//! at least 24 hours old and not expired; the answer is a new token valid 60
//! days from the refresh. The rules are Instagram's (the shared Graph helper,
//! [`super::graph`]): a token younger than 24 hours is `ok` (its age from the
//! store's `updated_at`, else the refusal, code 10 or "24 hours", and a
//! read-only `GET /v1.0/me?fields=id` decide); code 190 is `reauth_required`;
//! throttling and outages are `failed` and retried.
//! Sources: developers.facebook.com/docs/threads/get-started/long-lived-tokens,
//! developers.facebook.com/docs/threads/threads-profiles
//!
//! ## Login
//! `GET /oauth/authorize` (on `auth_url`, default threads.net) with `client_id`
//! (the Threads app id), `scope=threads_basic,…`, then `POST /oauth/access_token`
//! (on `base_url`) for a short-lived token, exchanged at once with
//! `GET /access_token?grant_type=th_exchange_token` for the 60-day token. No
//! PKCE; the Threads app secret (`THREADS_CLIENT_SECRET`) authenticates. Meta accepts
//! only the `https` redirect URIs registered in the app dashboard, so this login
//! always runs as a pasted callback (`--redirect-uri`).
//! Source: developers.facebook.com/docs/threads/get-started/get-access-tokens-and-permissions

use jiff::Timestamp;
use url::Url;

use super::graph::Graph;
use super::{BuildCx, Common, Cx, Grant, Plan, Provider, ProviderError, Role, Slot};
use crate::error::Result;
use crate::http::endpoint;
use crate::login::{self, Flow, Pkce, Tokens};
use crate::secret::Secret;

pub const KEY: &str = "threads";
pub const DISPLAY: &str = "Threads";
const DEFAULT_SCOPE: &str = "threads_basic,threads_content_publish";
const SECRET_VAR: &str = "THREADS_CLIENT_SECRET";

platform_config! {
    /// The Threads app id (used by `auth login`).
    #[serde(default)]
    pub app_id: Option<String>,
    /// Refresh when the token expires within this many days.
    #[serde(default = "default_refresh_before_days")]
    pub refresh_before_days: i64,
}

fn default_refresh_before_days() -> i64 {
    15
}

pub const BASE_URL: &str = "https://graph.threads.net";
pub const AUTH_URL: &str = "https://threads.net";
const SLOTS: &[Slot] = &[Slot {
    role: Role::Access,
    base: "THREADS_ACCESS_TOKEN",
    durable: true,
}];

pub struct Threads {
    common: Common,
    graph: Graph,
}

fn graph(common: &Common, app_id: Option<&str>, refresh_before_days: i64) -> Graph {
    Graph {
        who: DISPLAY,
        refresh_grant: "th_refresh_token",
        exchange_grant: "th_exchange_token",
        secret_var: SECRET_VAR,
        key: KEY,
        client_id: app_id.unwrap_or_default().to_owned(),
        default_scope: DEFAULT_SCOPE,
        refresh_before_days,
        refresh: endpoint(&common.base_url, "/refresh_access_token"),
        me: endpoint(&common.base_url, "/v1.0/me"),
        authorize: endpoint(&common.auth_url, "/oauth/authorize"),
        code_exchange: endpoint(&common.base_url, "/oauth/access_token"),
        long_lived: endpoint(&common.base_url, "/access_token"),
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
                    "app_id",
                    c.app_id.as_deref(),
                    "the Threads app ID from the Meta app dashboard (Use cases → Access the Threads API → Settings)",
                )),
            BASE_URL,
            AUTH_URL,
        )?;
        if c.refresh_before_days < 1 || c.refresh_before_days > 59 {
            return Err(cx
                .error("refresh_before_days", "must be between 1 and 59")
                .with_hint("Threads tokens live 60 days; the default is 15"));
        }
        let graph = graph(&common, c.app_id.as_deref(), c.refresh_before_days);
        Ok(std::sync::Arc::new(Threads { common, graph }))
    }
}

#[async_trait::async_trait]
impl Provider for Threads {
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
impl Flow for Threads {
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
    async fn exchange(
        &self,
        cx: &login::Cx<'_>,
        code: &Secret,
        _pkce: Option<&Pkce>,
    ) -> Result<Tokens> {
        self.graph.exchange(cx, code).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_table() {
        let base: Url = "https://graph.threads.net".parse().unwrap();
        let common = Common {
            platform: crate::provider::builtin(KEY).unwrap(),
            enabled: true,
            accounts: Vec::new(),
            concurrency: 1,
            base_url: base.clone(),
            auth_url: base,
            client_id: None,
            client_id_key: String::new(),
            client_id_hint: "",
            file: String::new(),
        };
        let g = graph(&common, Some("app"), 15);
        assert_eq!(g.refresh.path(), "/refresh_access_token");
        assert_eq!(g.refresh_grant, "th_refresh_token");
        crate::provider::graph::tests::plan_table(|s, now| g.plan(s, now));
    }
}
