//! Any OAuth 2.0 service, by configuration alone (`kind: oauth2`): RFC 6749's
//! refresh grant (§6) and authorization-code grant (§4.1), with PKCE S256
//! (RFC 7636) unless `pkce: none`.
//!
//! ```yaml
//! platforms:
//!   acme:                      # the service's name: ACME_REFRESH_TOKEN, ACME_ACCESS_TOKEN
//!     kind: oauth2
//!     token_url: https://auth.acme.example/oauth/token
//!     authorize_url: https://auth.acme.example/oauth/authorize
//!     client_id: my-client
//!     client_auth: basic       # basic | post | none
//!     scopes: [offline_access, posts.write]
//! ```
//!
//! - **Refresh** (§6): `POST token_url` with `grant_type=refresh_token` and the
//!   refresh token. The client authenticates as `client_auth` says: `basic` is
//!   HTTP Basic with the form-urlencoded id and secret (§2.3.1, the method every
//!   server must support), `post` puts `client_id` and `client_secret` in the
//!   body, `none` (a public client) sends only `client_id`.
//! - **Rotation**: a server may answer with a new refresh token (§6, and the
//!   OAuth 2.0 Security BCP §4.14 makes rotation the norm for public clients);
//!   a differing one is journaled before anything else, and the used one is
//!   never sent again, since servers that rotate revoke the whole grant when a
//!   used refresh token comes back (oidc-provider does). No refresh token in the
//!   answer means the old one stays valid (§6).
//! - **Errors** (§5.2): `invalid_grant` is a dead grant (a human logs in again);
//!   `invalid_client` / `unauthorized_client` a configuration problem; anything
//!   else fails and the next run retries.
//! - **Every run** refreshes (a valid access token included): servers that
//!   expire idle refresh tokens keep them alive.
//! - **Lifetimes**: `expires_in` (§5.1) for the access token; a refresh token's
//!   own expiry only when the server states one (`refresh_token_expires_in`, as
//!   Google and GitHub do; the RFC defines none), then `warn_before_days` before
//!   an expiry a refresh does not move is `reauth_required` with that date.
//!
//! Sources: RFC 6749 (datatracker.ietf.org/doc/html/rfc6749), RFC 7636, RFC 9700
//! (OAuth 2.0 Security Best Current Practice), and the certified server the tests
//! run against: github.com/panva/node-oidc-provider (rotateRefreshToken).

use std::sync::Arc;

use base64::Engine as _;
use jiff::{Timestamp, ToSpan};
use serde::Deserialize;
use url::Url;

use super::{
    AccountState, BuildCx, Common, Cx, Grant, Keys, NewToken, OAuthError, Plan, Provider,
    ProviderError, Role, Slot, expiry_text,
};
use crate::error::{Error, Result};
use crate::http::Call;
use crate::login::{self, Flow, Pkce, Tokens};
use crate::platform::upper_snake;
use crate::secret::Secret;

/// The `kind:` that marks a configured service.
pub const KIND: &str = "oauth2";

/// A new access token is fetched when the stored one has less than this left.
const ACCESS_MIN_MINUTES: i64 = 5;

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// HTTP Basic with the form-urlencoded client id and secret (RFC 6749 §2.3.1).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the request body.
    Post,
    /// A public client: `client_id` in the body and no secret.
    None,
}

/// `pkce:` of a configured service.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PkceMethod {
    /// `code_challenge_method=S256` with a base64url challenge.
    #[default]
    S256,
    /// No PKCE (a server that rejects unknown parameters).
    None,
}

#[derive(Clone, Copy, Debug, Deserialize)]
enum Kind {
    #[serde(rename = "oauth2")]
    Oauth2,
}

/// `platforms.<name>` with `kind: oauth2`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[allow(dead_code)]
    kind: Kind,
    #[serde(default = "super::default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default = "super::default_concurrency")]
    pub concurrency: usize,
    /// Shown in messages and alerts; the default is the block's name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The token endpoint, in full.
    #[serde(default)]
    pub token_url: Option<String>,
    /// The authorization endpoint, in full (`auth login`).
    #[serde(default)]
    pub authorize_url: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Scopes `auth login` asks for (space-joined).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// PKCE on login (RFC 7636): `s256` (the default) or `none`.
    #[serde(default)]
    pub pkce: PkceMethod,
    /// Extra query parameters of the authorize request (`prompt: consent`,
    /// `access_type: offline`): what some servers need to issue a refresh token.
    #[serde(default)]
    pub authorize_params: std::collections::BTreeMap<String, String>,
    /// Report `reauth_required` this many days before a refresh token expiry
    /// that refreshing does not move.
    #[serde(default = "default_warn_before_days")]
    pub warn_before_days: i64,
}

fn default_warn_before_days() -> i64 {
    14
}

impl super::Section for Config {
    fn enabled(&self) -> bool {
        self.enabled
    }
    fn numbers(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("concurrency", self.concurrency as f64),
            ("warn_before_days", self.warn_before_days as f64),
        ]
    }
    fn display_name(&self) -> Option<&str> {
        self.display_name.as_deref()
    }
    fn build(&self, cx: &BuildCx<'_>) -> Result<Arc<dyn Provider>> {
        let c = self;
        let token_url = full_url(cx, "token_url", c.token_url.as_deref())?.ok_or_else(|| {
            cx.error("token_url", "is required").with_hint(
                "the service's token endpoint, e.g. `https://auth.example.com/oauth/token`",
            )
        })?;
        let authorize_url = full_url(cx, "authorize_url", c.authorize_url.as_deref())?;
        let common = super::assemble(
            cx,
            Keys {
                enabled: c.enabled,
                accounts: &c.accounts,
                concurrency: c.concurrency,
                base_url: None,
                auth_url: None,
                client_id: (
                    "client_id",
                    c.client_id.as_deref(),
                    "the client id the service issued for this application",
                ),
            },
            token_url.clone(),
            authorize_url.clone().unwrap_or_else(|| token_url.clone()),
        )?;
        common.client_id()?;
        super::check_days(cx, "warn_before_days", c.warn_before_days)?;
        for k in c.authorize_params.keys() {
            if RESERVED.contains(&k.as_str()) {
                return Err(cx
                    .error(
                        "authorize_params",
                        format!("`{k}` is set by evertoken itself"),
                    )
                    .with_hint(format!(
                        "remove it; evertoken sends {} (`scopes:` sets the scope)",
                        RESERVED.join(", ")
                    )));
            }
        }
        let name = upper_snake(cx.platform.name());
        let var = |suffix: &str| crate::platform::intern(&format!("{name}_{suffix}"));
        let secret_var = (c.client_auth != ClientAuth::None).then(|| var("CLIENT_SECRET"));
        Ok(Arc::new(Oauth2 {
            slots: [
                Slot {
                    role: Role::Refresh,
                    base: var("REFRESH_TOKEN"),
                    durable: true,
                },
                Slot {
                    role: Role::Access,
                    base: var("ACCESS_TOKEN"),
                    durable: false,
                },
            ],
            secret_var,
            common,
            token_url,
            authorize_url,
            client_auth: c.client_auth,
            scopes: c.scopes.join(" "),
            pkce: c.pkce == PkceMethod::S256,
            authorize_params: c.authorize_params.clone(),
            warn_before_days: c.warn_before_days,
        }))
    }
}

/// A full endpoint URL from the config: https, or http on a loopback host
/// (a token must never cross the network in the clear), no fragment.
fn full_url(cx: &BuildCx<'_>, key: &str, raw: Option<&str>) -> Result<Option<Url>> {
    let Some(raw) = raw else { return Ok(None) };
    let url = Url::parse(raw).map_err(|e| {
        cx.error(key, format!("`{raw}` is not a URL: {e}"))
            .with_hint("give the full endpoint, e.g. `https://auth.example.com/oauth/token`")
    })?;
    if url.host().is_none() || url.fragment().is_some() {
        return Err(cx.error(
            key,
            format!("`{raw}` must be an absolute URL with a host and no fragment"),
        ));
    }
    match url.scheme() {
        "https" => Ok(Some(url)),
        "http" if crate::http::is_loopback(&url) => Ok(Some(url)),
        _ => Err(cx
            .error(key, format!("`{raw}` must be an https URL"))
            .with_hint(
                "plain http is accepted only on a loopback host (127.0.0.1, [::1], localhost)",
            )),
    }
}

pub struct Oauth2 {
    common: Common,
    slots: [Slot; 2],
    secret_var: Option<&'static str>,
    token_url: Url,
    authorize_url: Option<Url>,
    client_auth: ClientAuth,
    scopes: String,
    pkce: bool,
    authorize_params: std::collections::BTreeMap<String, String>,
    warn_before_days: i64,
}

/// The authorize parameters evertoken sets; `authorize_params` may not.
const RESERVED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
];

/// RFC 6749 §5.1.
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

impl Oauth2 {
    fn client_id(&self) -> &str {
        self.common.client_id().unwrap_or_default()
    }

    /// A token request with the client authenticated as configured.
    fn request(
        &self,
        c: &reqwest::Client,
        secret: &str,
        form: Vec<(&'static str, String)>,
    ) -> reqwest::RequestBuilder {
        token_request(
            c,
            &self.token_url,
            self.client_auth,
            self.client_id(),
            secret,
            form,
        )
    }

    fn who(&self) -> &'static str {
        self.common.platform.display_name()
    }
}

#[async_trait::async_trait]
impl Provider for Oauth2 {
    fn common(&self) -> &Common {
        &self.common
    }
    fn login(&self) -> &dyn Flow {
        self
    }
    fn slots(&self) -> &[Slot] {
        &self.slots
    }
    fn client_secret_var(&self) -> Option<&'static str> {
        self.secret_var
    }
    /// Whether the server rotates is known only from its answer: every refresh
    /// is treated as one that may (journaled, never resent).
    fn rotates(&self, _: &AccountState) -> bool {
        true
    }

    fn plan(&self, state: &AccountState, now: Timestamp) -> Plan {
        plan(state, now, self.warn_before_days)
    }

    async fn refresh(&self, cx: &Cx<'_>, state: &AccountState) -> Result<Grant, ProviderError> {
        let rt = state.refresh_token()?;
        let secret = cx.client_secret.map(|s| s.expose()).unwrap_or_default();
        let who = format!("{} token endpoint", self.who());
        let reply = cx
            .http
            .send(&who, Call::Rotating, |c| {
                self.request(
                    c,
                    secret,
                    vec![
                        ("grant_type", "refresh_token".into()),
                        ("refresh_token", rt.value.expose().to_owned()),
                    ],
                )
            })
            .await?;
        if !reply.status.is_success() {
            return Err(super::oauth_error(
                self.who(),
                &reply,
                &format!(
                    "check platforms.{}.client_id, client_auth and {}",
                    self.common.platform,
                    self.secret_var.unwrap_or("the client secret")
                ),
                |e| e.error == "invalid_grant",
            ));
        }
        if let Some(e) = OAuthError::from_reply(&reply) {
            return Err(ProviderError::Unknown {
                message: format!(
                    "{who} answered {} with an error ({}) after a rotating request; the refresh token may have been rotated away",
                    reply.status,
                    e.describe()
                ),
            });
        }
        let body: TokenReply = reply
            .json()
            .map_err(|e| super::malformed(&who, &reply, true, e))?;
        let Some(access) = body.access_token.filter(|s| !s.is_empty()) else {
            return Err(ProviderError::Unknown {
                message: format!(
                    "{who} answered {} without an access_token; the refresh token may have been rotated away",
                    reply.status
                ),
            });
        };
        let mut check = super::LifetimeCheck::default();
        let access = NewToken {
            value: access.into(),
            expires_at: check.at(cx.clock, "expires_in", &body.expires_in),
        };
        // No refresh token in the answer: the one sent stays valid (RFC 6749 §6).
        let refresh = body
            .refresh_token
            .filter(|s| !s.is_empty())
            .map(|value| NewToken {
                value: value.into(),
                expires_at: check.at(
                    cx.clock,
                    "refresh_token_expires_in",
                    &body.refresh_token_expires_in,
                ),
            });
        Ok(Grant {
            access: Some(access),
            refresh,
            note: None,
            problem: check.problem(self.who()),
        })
    }

    fn hard_deadline(
        &self,
        old: &AccountState,
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
        "the refresh token expired or was revoked, or a used refresh token was sent again (servers that rotate revoke the grant)"
    }
}

/// The `Authorization` header of HTTP Basic client authentication: RFC 6749
/// §2.3.1, each part form-urlencoded before Base64.
pub(crate) fn basic_auth(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The pure planning rule of a `kind: oauth2` service.
pub(crate) fn plan(state: &AccountState, now: Timestamp, warn_before_days: i64) -> Plan {
    if state.refresh.is_none() {
        // Without a refresh token only a still-valid access token keeps it alive.
        return match state.access.as_ref().and_then(|a| a.expires_at) {
            Some(exp) if exp > now && !super::within_days(now, exp, warn_before_days) => Plan::Ok {
                message: format!("access token {}; no refresh token", expiry_text(now, exp)),
            },
            Some(exp) if exp > now => Plan::Reauth {
                message: format!(
                    "access token {} and no refresh token is stored",
                    expiry_text(now, exp)
                ),
                reauth_by: Some(exp),
            },
            _ => Plan::Reauth {
                message: "no refresh token is stored".into(),
                reauth_by: None,
            },
        };
    }
    let rt = match state.usable_refresh(now) {
        Ok(rt) => rt,
        Err(plan) => return plan,
    };
    let access_due = match state.access.as_ref().and_then(|a| a.expires_at) {
        None => Some("access token expiry unknown".to_owned()),
        Some(exp) if exp <= now => Some("access token expired".to_owned()),
        Some(exp) if exp <= now.checked_add(ACCESS_MIN_MINUTES.minutes()).unwrap_or(now) => {
            Some("access token expires within minutes".to_owned())
        }
        Some(_) => None,
    };
    if let Some(reason) = access_due {
        return Plan::Refresh { reason };
    }
    // A configured service is refreshed on every run (the contract): servers
    // that expire idle refresh tokens keep them alive. Inside the warning window
    // it is due (only a refresh tells whether the expiry moves: `hard_deadline`);
    // otherwise, with a valid access token, it checks a healthy grant (`auth
    // status` says `ok`).
    match rt.expires_at {
        Some(exp) if super::within_days(now, exp, warn_before_days) => Plan::Refresh {
            reason: format!("refresh token {}", expiry_text(now, exp)),
        },
        Some(exp) => Plan::HealthCheck {
            reason: format!(
                "refreshed every run; refresh token {}",
                expiry_text(now, exp)
            ),
        },
        None => Plan::HealthCheck {
            reason: "refreshed every run".into(),
        },
    }
}

#[async_trait::async_trait]
impl Flow for Oauth2 {
    fn pkce(&self, _loopback: bool) -> Option<login::Challenge> {
        self.pkce.then_some(login::Challenge::Base64Url)
    }

    fn client_secret_var(&self) -> Option<&'static str> {
        self.secret_var
    }

    fn authorize_url(&self, cx: &login::Cx<'_>, state: &str, pkce: Option<&Pkce>) -> Url {
        let mut u = self
            .authorize_url
            .clone()
            .unwrap_or_else(|| self.token_url.clone());
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", self.client_id())
                .append_pair("redirect_uri", cx.redirect_uri)
                .append_pair("state", state);
            let scope = cx.scope.unwrap_or(&self.scopes);
            if !scope.is_empty() {
                q.append_pair("scope", scope);
            }
            if let Some(p) = pkce {
                q.append_pair("code_challenge", &p.challenge)
                    .append_pair("code_challenge_method", "S256");
            }
            for (k, v) in &self.authorize_params {
                q.append_pair(k, v);
            }
        }
        u
    }

    fn check(&self) -> Result<()> {
        if self.authorize_url.is_none() {
            return Err(Error::config(format!(
                "platforms.{}.authorize_url is not set: `auth login` needs the service's authorization endpoint",
                self.common.platform
            ))
            .with_hint("add `authorize_url: https://…/authorize` to the block"));
        }
        Ok(())
    }

    async fn exchange(
        &self,
        cx: &login::Cx<'_>,
        code: &Secret,
        pkce: Option<&Pkce>,
    ) -> Result<Tokens> {
        let who = self.who();
        exchange_code(who, cx, NO_REFRESH_HINT, |c| {
            self.request(c, cx.client_secret.expose(), code_form(cx, code, pkce))
        })
        .await
    }
}

/// What a login says when the server issued no refresh token.
const NO_REFRESH_HINT: &str =
    "many servers issue one only for a scope such as `offline_access` (set `scopes:`)";

/// A token request (RFC 6749 §4.1.3, §6) to `url`, the client authenticated as
/// `auth` says: HTTP Basic (§2.3.1), the secret in the body, or a public client.
pub(crate) fn token_request(
    c: &reqwest::Client,
    url: &Url,
    auth: ClientAuth,
    client_id: &str,
    secret: &str,
    mut form: Vec<(&'static str, String)>,
) -> reqwest::RequestBuilder {
    let req = c.post(url.clone());
    match auth {
        ClientAuth::Basic => req
            .header(
                reqwest::header::AUTHORIZATION,
                basic_auth(client_id, secret),
            )
            .form(&form),
        ClientAuth::Post => {
            form.push(("client_id", client_id.to_owned()));
            form.push(("client_secret", secret.to_owned()));
            req.form(&form)
        }
        ClientAuth::None => {
            form.push(("client_id", client_id.to_owned()));
            req.form(&form)
        }
    }
}

/// The authorization-code grant's form (RFC 6749 §4.1.3, RFC 7636 §4.5).
pub(crate) fn code_form(
    cx: &login::Cx<'_>,
    code: &Secret,
    pkce: Option<&Pkce>,
) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.expose().to_owned()),
        ("redirect_uri", cx.redirect_uri.to_owned()),
    ];
    if let Some(p) = pkce {
        form.push(("code_verifier", p.verifier.expose().to_owned()));
    }
    form
}

/// Sends an authorization-code exchange built by `request` and reads its RFC
/// 6749 answer: an access token is required; a missing refresh token is a
/// warning naming `no_refresh_hint`.
pub(crate) async fn exchange_code(
    who: &str,
    cx: &login::Cx<'_>,
    no_refresh_hint: &str,
    request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
) -> Result<Tokens> {
    let reply = cx
        .http
        .send(&format!("{who} token endpoint"), Call::Rotating, request)
        .await
        .map_err(|f| login::failure(who, f))?;
    if !reply.status.is_success() {
        return Err(login::exchange_error(who, &reply));
    }
    let body: TokenReply = reply.json().map_err(|e| {
        Error::failed(format!(
            "{who}'s token endpoint answered {} with a body evertoken cannot read: {e}",
            reply.status
        ))
    })?;
    let Some(at) = body.access_token.filter(|s| !s.is_empty()) else {
        return Err(login::exchange_error(who, &reply));
    };
    let mut warnings = Vec::new();
    let refresh = match body.refresh_token.filter(|s| !s.is_empty()) {
        Some(rt) => Some(NewToken {
            value: rt.into(),
            expires_at: login::expiry(cx.clock, body.refresh_token_expires_in),
        }),
        None => {
            warnings.push(format!(
                "{who} issued no refresh token: the access token cannot be renewed without you; {no_refresh_hint}"
            ));
            None
        }
    };
    Ok(Tokens {
        access: Some(NewToken {
            value: at.into(),
            expires_at: login::expiry(cx.clock, body.expires_in),
        }),
        refresh,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::testing::{Case, check_table, t};

    #[test]
    fn plan_table() {
        let now = t("2026-11-30T12:00:00Z");
        let cases: &[Case] = &[
            // (access expiry, refresh expiry, expected plan kind)
            (None, None, "reauth"),
            (Some(Some("2026-11-30T11:00:00Z")), None, "reauth"),
            (Some(Some("2027-06-01T00:00:00Z")), None, "ok"),
            (Some(Some("2026-12-05T00:00:00Z")), None, "reauth-dated"),
            (None, Some(None), "refresh"),
            (Some(None), Some(None), "refresh"),
            (Some(Some("2026-11-30T11:00:00Z")), Some(None), "refresh"),
            (Some(Some("2026-11-30T12:03:00Z")), Some(None), "refresh"),
            (
                Some(Some("2026-11-30T13:00:00Z")),
                Some(None),
                "health-check",
            ),
            (
                Some(Some("2026-11-30T13:00:00Z")),
                Some(Some("2026-12-02T00:00:00Z")),
                "refresh",
            ),
            (
                Some(Some("2026-11-30T13:00:00Z")),
                Some(Some("2027-03-01T00:00:00Z")),
                "health-check",
            ),
            (
                Some(Some("2026-11-30T13:00:00Z")),
                Some(Some("2026-11-29T00:00:00Z")),
                "reauth-dated",
            ),
        ];
        check_table(cases, |s| plan(s, now, 14));
    }
}
