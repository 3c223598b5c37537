//! Providers: one module per platform behind the [`Provider`] trait. A provider
//! knows its token shape (which variables it reads), plans what to do from stored
//! state and the clock (a pure function, so dry-run is right by construction), and
//! speaks its platform's token endpoint. It never touches a store or the journal:
//! the engine does that, in the one order that loses nothing.
//!
//! Adding a platform: one module here holding its config block, refresh
//! behaviour and login flow, plus one name in the [`registry!`] line below. A
//! service that speaks plain RFC 6749 needs no module at all: `kind: oauth2`
//! ([`oauth2`]).

use std::sync::Arc;

use jiff::Timestamp;
use serde::Deserialize;
use url::Url;

use crate::clock::{self, Clock};
pub use crate::clock::{Lifetime, LifetimeCheck};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::{self, Http, Reply};
use crate::platform::{Account, Platform};
use crate::secret::{Secret, Source};

/// A built-in platform's config block: the keys every platform has, then its
/// own (given to the macro as struct fields). Also gives `Config::keys`, the
/// common keys for [`common`].
macro_rules! platform_config {
    ($($(#[$m:meta])* pub $field:ident : $ty:ty),* $(,)?) => {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Config {
            #[serde(default = "super::default_true")]
            pub enabled: bool,
            #[serde(default)]
            pub accounts: Vec<String>,
            #[serde(default = "super::default_concurrency")]
            pub concurrency: usize,
            /// The API's scheme, host and port (a proxy, the simulator).
            #[serde(default)]
            pub base_url: Option<String>,
            /// Where `auth login` sends the browser (scheme, host and port).
            #[serde(default)]
            pub auth_url: Option<String>,
            $($(#[$m])* pub $field: $ty,)*
        }

        impl Config {
            /// The common keys, with the client id as this platform names it:
            /// (key, value, where to find it).
            fn keys<'a>(
                &'a self,
                client_id: (&'static str, Option<&'a str>, &'static str),
            ) -> super::Keys<'a> {
                super::Keys {
                    enabled: self.enabled,
                    accounts: &self.accounts,
                    concurrency: self.concurrency,
                    base_url: self.base_url.as_deref(),
                    auth_url: self.auth_url.as_deref(),
                    client_id,
                }
            }
        }
    };
}

/// The registry: every built-in platform module, in output order. Each module
/// has `KEY`, `DISPLAY` and a `Config` (its block under `platforms:`)
/// implementing [`Section`].
macro_rules! registry {
    ($($module:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// (key, display name) of every built-in platform, in output order.
        pub const BUILTIN: &[(&str, &str)] = &[$(($module::KEY, $module::DISPLAY)),*];

        /// Parses the block of the built-in platform `key`; `None` when no
        /// built-in has that key.
        fn parse_builtin<'de, A: serde::de::MapAccess<'de>>(
            key: &str,
            map: &mut A,
        ) -> Option<std::result::Result<Box<dyn Section>, A::Error>> {
            $(
                if key == $module::KEY {
                    return Some(
                        map.next_value::<$module::Config>()
                            .map(|c| Box::new(c) as Box<dyn Section>),
                    );
                }
            )*
            None
        }
    };
}

registry!(instagram, youtube, tiktok, linkedin, x, threads, pinterest);

mod graph;
pub mod oauth2;
#[cfg(test)]
pub(crate) mod testing;

/// The built-in platform `key`.
pub fn builtin(key: &str) -> Option<Platform> {
    BUILTIN
        .iter()
        .position(|(k, _)| *k == key)
        .map(|i| Platform::new(BUILTIN[i].0, BUILTIN[i].1, i as u32))
}

/// Configured services (`kind: oauth2`) come after the built-ins, by name.
const CONFIGURED_ORDER: u32 = 1000;

/// One parsed block under `platforms:`: plain data until [`Section::build`]
/// checks it (once) and turns it into the platform.
pub trait Section: std::fmt::Debug + Send + Sync {
    fn enabled(&self) -> bool;
    /// The block's numbers for the documented-range check: (key, value).
    fn numbers(&self) -> Vec<(&'static str, f64)>;
    /// Checks every key and builds the platform's provider (refresh and login).
    fn build(&self, cx: &BuildCx<'_>) -> Result<Arc<dyn Provider>>;
    /// The display name of a configured service (`display_name:`).
    fn display_name(&self) -> Option<&str> {
        None
    }
}

/// What building a platform needs: the config (for errors that name the file
/// and key) and the platform's identity.
pub struct BuildCx<'a> {
    pub cfg: &'a Config,
    pub platform: Platform,
}

impl BuildCx<'_> {
    /// `platforms.<name>.<k>`.
    pub fn key(&self, k: &str) -> String {
        format!("platforms.{}.{k}", self.platform)
    }
    /// A config error at `platforms.<name>.<k>`.
    pub fn error(&self, k: &str, what: impl std::fmt::Display) -> Error {
        self.cfg.error_at(&self.key(k), what)
    }
}

/// `platforms:` in the config file: each block parsed by its platform's module
/// (a name no built-in has must say `kind: oauth2`).
#[derive(Debug, Default)]
pub struct PlatformsConfig {
    pub blocks: Vec<(Platform, Box<dyn Section>)>,
}

impl PlatformsConfig {
    /// The block of platform `key`, if configured.
    pub fn get(&self, key: &str) -> Option<&dyn Section> {
        self.blocks
            .iter()
            .find(|(p, _)| p.name() == key)
            .map(|(_, s)| s.as_ref())
    }
}

impl<'de> Deserialize<'de> for PlatformsConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PlatformsConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of platform names to their settings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<PlatformsConfig, A::Error> {
                use serde::de::Error as _;
                let mut out = PlatformsConfig::default();
                while let Some(key) = map.next_key::<String>()? {
                    if out.get(&key).is_some() {
                        return Err(A::Error::custom(format!("platform `{key}` appears twice")));
                    }
                    if let Some(block) = parse_builtin(&key, &mut map) {
                        let platform = builtin(&key).expect("registered");
                        out.blocks.push((platform, block?));
                        continue;
                    }
                    // Any other name is a configured service, which says so.
                    let value: serde_norway::Value = map.next_value()?;
                    let is_oauth2 = value
                        .get("kind")
                        .and_then(serde_norway::Value::as_str)
                        .is_some_and(|k| k == oauth2::KIND);
                    if !is_oauth2 {
                        let mut known: Vec<&'static str> =
                            BUILTIN.iter().map(|(k, _)| *k).collect();
                        known.push("<name>");
                        let known: &'static [&'static str] = Box::leak(known.into_boxed_slice());
                        return Err(A::Error::unknown_field(&key, known));
                    }
                    if !valid_name(&key) {
                        return Err(A::Error::custom(format!(
                            "`{key}`: a service name is lowercase letters, digits, `-` and `_`, starting with a letter"
                        )));
                    }
                    // The block's own errors name their full key, as the
                    // parser's do (`platforms.acme.client_auth: …`).
                    let c: oauth2::Config =
                        serde_path_to_error::deserialize(value).map_err(|e| {
                            let inner = e.path().to_string();
                            let at = if inner.is_empty() || inner == "." {
                                format!("platforms.{key}")
                            } else {
                                format!("platforms.{key}.{inner}")
                            };
                            A::Error::custom(format!("{at}: {}", e.inner()))
                        })?;
                    // A service's name makes its variable names: two that make
                    // the same ones would overwrite each other's tokens.
                    let upper = crate::platform::upper_snake(&key);
                    if let Some((other, _)) = out
                        .blocks
                        .iter()
                        .find(|(p, _)| crate::platform::upper_snake(p.name()) == upper)
                    {
                        return Err(A::Error::custom(format!(
                            "services `{other}` and `{key}` would use the same variables ({upper}_REFRESH_TOKEN, …): rename one"
                        )));
                    }
                    // Shown in terminals, logs and alerts: printable and short.
                    if let Some(d) = &c.display_name
                        && (d.trim().is_empty()
                            || d.chars().count() > 64
                            || d.chars().any(|ch| ch.is_control()))
                    {
                        return Err(A::Error::custom(format!(
                            "platforms.{key}.display_name: must be 1 to 64 printable characters"
                        )));
                    }
                    let name = crate::platform::intern(&key);
                    let display =
                        crate::platform::intern(c.display_name.as_deref().unwrap_or(&key));
                    out.blocks
                        .push((Platform::new(name, display, CONFIGURED_ORDER), Box::new(c)));
                }
                out.blocks.sort_by_key(|(p, _)| *p);
                Ok(out)
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// A configured service's name: it becomes part of variable names.
fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|c| c.is_ascii_lowercase())
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The keys every platform block has, resolved.
#[derive(Clone, Debug)]
pub struct Common {
    pub platform: Platform,
    pub enabled: bool,
    pub accounts: Vec<String>,
    pub concurrency: usize,
    /// Where the token endpoint lives (scheme, host and port).
    pub base_url: Url,
    /// Where `auth login` sends the browser (scheme, host and port).
    pub auth_url: Url,
    client_id: Option<String>,
    client_id_key: String,
    client_id_hint: &'static str,
    file: String,
}

impl Common {
    /// The OAuth client id (TikTok's client key, Instagram's app id), required
    /// to log in and by platforms whose refresh sends it.
    pub fn client_id(&self) -> Result<&str> {
        self.client_id.as_deref().ok_or_else(|| {
            Error::config(format!(
                "{}: `{}`: is required",
                self.file, self.client_id_key
            ))
            .with_hint(self.client_id_hint)
        })
    }
}

/// The keys every platform block has, as written.
pub struct Keys<'a> {
    pub enabled: bool,
    pub accounts: &'a [String],
    pub concurrency: usize,
    pub base_url: Option<&'a str>,
    pub auth_url: Option<&'a str>,
    /// (key, value, hint): the client id as this platform names it.
    pub client_id: (&'static str, Option<&'a str>, &'static str),
}

pub(crate) fn default_true() -> bool {
    true
}
pub(crate) fn default_concurrency() -> usize {
    8
}

/// Builds the providers of every configured, enabled platform.
pub fn build(cfg: &Config) -> Result<Vec<Arc<dyn Provider>>> {
    let mut out: Vec<Arc<dyn Provider>> = Vec::new();
    for (platform, block) in &cfg.file.platforms.blocks {
        let cx = BuildCx {
            cfg,
            platform: *platform,
        };
        let p = block.build(&cx)?;
        if block.enabled() {
            out.push(p);
        }
    }
    distinct_variables(cfg, &out)?;
    Ok(out)
}

/// Refuses two platforms whose variables share a name (service `acme` with
/// account `b_refresh_token` and service `acme_refresh_token_b` both read
/// `ACME_REFRESH_TOKEN_B_REFRESH_TOKEN`): each would rotate the one token and
/// one of the new tokens would be lost. Within one platform the account check
/// ([`assemble`]) already rules this out.
fn distinct_variables(cfg: &Config, providers: &[Arc<dyn Provider>]) -> Result<()> {
    if providers.len() < 2 {
        return Ok(());
    }
    let mut seen: std::collections::HashMap<String, String> = Default::default();
    for p in providers {
        let accounts = p.accounts();
        let vars = accounts
            .iter()
            .flat_map(|a| {
                p.slots()
                    .iter()
                    .map(move |s| (a.to_string(), a.var(s.base)))
            })
            .chain(
                p.client_secret_var()
                    .map(|v| (p.platform().to_string(), v.to_owned())),
            );
        for (owner, var) in vars {
            if let Some(first) = seen.get(&var) {
                if *first == owner {
                    continue;
                }
                return Err(cfg
                    .error_at(
                        &format!("platforms.{}", p.platform()),
                        format!(
                            "`{owner}` and `{first}` would both use the variable {var}, so one rotated token would overwrite the other"
                        ),
                    )
                    .with_hint("rename the service or the account so that every variable name is its own"));
            }
            seen.insert(var, owner);
        }
    }
    Ok(())
}

pub(crate) fn validate(cfg: &Config) -> Result<()> {
    build(cfg).map(|_| ())
}

/// The names a target may use: every built-in and every configured service.
pub fn known_names(cfg: &Config) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = BUILTIN.iter().map(|(k, _)| *k).collect();
    for (p, _) in &cfg.file.platforms.blocks {
        if !names.contains(&p.name()) {
            names.push(p.name());
        }
    }
    names
}

/// Checks the common keys of `platforms.<name>` and resolves its endpoints
/// (`base_url`, `auth_url`: scheme, host and port, checked here and nowhere else).
pub(crate) fn common(
    cx: &BuildCx<'_>,
    k: Keys<'_>,
    default_base: &str,
    default_auth: &str,
) -> Result<Common> {
    let base_url = base(cx, "base_url", k.base_url, default_base)?;
    let auth_url = base(cx, "auth_url", k.auth_url, default_auth)?;
    assemble(cx, k, base_url, auth_url)
}

/// Checks the common keys with endpoints the platform resolved itself.
pub(crate) fn assemble(
    cx: &BuildCx<'_>,
    k: Keys<'_>,
    base_url: Url,
    auth_url: Url,
) -> Result<Common> {
    if k.concurrency == 0 {
        return Err(cx
            .error("concurrency", "must be at least 1")
            .with_hint("the default is 8"));
    }
    let mut seen = std::collections::HashSet::with_capacity(k.accounts.len());
    for a in k.accounts {
        if a.is_empty() || a.chars().any(|c| c.is_whitespace() || c == ':') {
            return Err(cx
                .error(
                    "accounts",
                    format!("account name `{a}` is empty or has whitespace or `:`"),
                )
                .with_hint("use names like `brand-a`"));
        }
        if !seen.insert(crate::platform::upper_snake(a)) {
            return Err(cx
                .error("accounts", format!("account `{a}` maps to the same variable names as another account"))
                .with_hint("account names must differ after upper-snake-casing (`brand-a` and `brand_a` collide)"));
        }
    }
    let (id_key, id, id_hint) = k.client_id;
    Ok(Common {
        platform: cx.platform,
        enabled: k.enabled,
        accounts: k.accounts.to_vec(),
        concurrency: k.concurrency,
        base_url,
        auth_url,
        client_id: id.filter(|s| !s.trim().is_empty()).map(str::to_owned),
        client_id_key: cx.key(id_key),
        client_id_hint: id_hint,
        file: cx.cfg.display_path(),
    })
}

/// An endpoint base from the config (`base_url`, `auth_url`): an http(s) URL
/// with a host and no path, since the provider's paths stay.
pub(crate) fn base(cx: &BuildCx<'_>, key: &str, raw: Option<&str>, default: &str) -> Result<Url> {
    let raw = raw.unwrap_or(default);
    let url = Url::parse(raw).map_err(|e| {
        cx.error(key, format!("`{raw}` is not a URL: {e}"))
            .with_hint("for example `http://127.0.0.1:8080`")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(cx
            .error(key, format!("`{raw}` must be an http(s) URL with a host"))
            .with_hint(format!(
                "{key} replaces only scheme, host and port; the provider's paths stay"
            )));
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(cx
            .error(
                key,
                format!("`{raw}` has a path; {key} replaces only scheme, host and port"),
            )
            .with_hint(format!(
                "use `{}://{}`",
                url.scheme(),
                url[url::Position::BeforeHost..url::Position::AfterPort].to_owned()
            )));
    }
    Ok(url)
}

/// A `*_days` key: between 0 and 3650.
pub(crate) fn check_days(cx: &BuildCx<'_>, key: &str, v: i64) -> Result<()> {
    if !(0..=3650).contains(&v) {
        return Err(cx.error(key, "must be between 0 and 3650"));
    }
    Ok(())
}

/// Which of an account's two token slots a variable fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Access,
    Refresh,
}

/// One variable a platform reads: `TIKTOK_REFRESH_TOKEN` is (Refresh, durable).
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    pub role: Role,
    pub base: &'static str,
    /// The credential that must survive: its store variable must exist (GitLab)
    /// and losing it means a human re-authorises.
    pub durable: bool,
}

/// A token as stored, with where it came from and what is known about it.
#[derive(Clone, Debug)]
pub struct Held {
    pub var: String,
    pub value: Secret,
    pub source: Source,
    pub expires_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

/// Everything stored for one account.
#[derive(Clone, Debug, Default)]
pub struct AccountState {
    pub access: Option<Held>,
    pub refresh: Option<Held>,
}

impl AccountState {
    pub fn get(&self, role: Role) -> Option<&Held> {
        match role {
            Role::Access => self.access.as_ref(),
            Role::Refresh => self.refresh.as_ref(),
        }
    }
    pub fn slot_mut(&mut self, role: Role) -> &mut Option<Held> {
        match role {
            Role::Access => &mut self.access,
            Role::Refresh => &mut self.refresh,
        }
    }

    /// The stored refresh token, for a call that sends it.
    pub fn refresh_token(&self) -> Result<&Held, ProviderError> {
        self.refresh.as_ref().ok_or_else(|| ProviderError::Reauth {
            message: "no refresh token".into(),
        })
    }

    /// The stored refresh token if it can still be used at `now`; otherwise the
    /// plan every platform gives: log in again (by its expiry, when known).
    pub fn usable_refresh(&self, now: Timestamp) -> Result<&Held, Plan> {
        let Some(rt) = &self.refresh else {
            return Err(Plan::Reauth {
                message: "no refresh token is stored".into(),
                reauth_by: None,
            });
        };
        match rt.expires_at {
            Some(exp) if exp <= now => Err(Plan::Reauth {
                message: format!("the refresh token expired on {}", crate::clock::date(exp)),
                reauth_by: Some(exp),
            }),
            _ => Ok(rt),
        }
    }
}

/// What should happen to an account, decided offline from its state and the clock.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Healthy, nothing to do.
    Ok { message: String },
    /// Inside a warning window, but there is nothing evertoken can do yet.
    Expiring { message: String },
    /// Call the refresh grant: in place, new access token, or rotation.
    Refresh { reason: String },
    /// Call the refresh grant only to prove the durable token still works.
    HealthCheck { reason: String },
    /// The expiry is unknown; a read-only call (introspection) finds it.
    Introspect,
    /// A human must re-authorise by `reauth_by` (`None`: now).
    Reauth {
        message: String,
        reauth_by: Option<Timestamp>,
    },
}

/// A token the provider just issued.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub value: Secret,
    pub expires_at: Option<Timestamp>,
}

/// What a refresh call produced.
#[derive(Clone, Debug, Default)]
pub struct Grant {
    pub access: Option<NewToken>,
    pub refresh: Option<NewToken>,
    /// Something worth telling the user ("too young to refresh: just issued").
    pub note: Option<String>,
    /// What was wrong with an answer whose tokens were still usable (an impossible
    /// lifetime): the tokens are journaled and written back, then the credential
    /// is reported as failed with this message.
    pub problem: Option<String>,
}

/// Why a call did not produce a grant.
#[derive(Clone, Debug, PartialEq)]
pub enum ProviderError {
    /// The grant is dead (`invalid_grant` and its equivalents): a human re-authorises.
    Reauth { message: String },
    /// Anything else that failed: transient after retries, bad client, bad answer.
    Failed {
        message: String,
        hint: Option<String>,
    },
    /// A rotating request was sent and its answer lost: the token may have rotated.
    Unknown { message: String },
}

impl From<http::Failure> for ProviderError {
    fn from(f: http::Failure) -> Self {
        match f {
            http::Failure::GaveUp { message, .. } => ProviderError::Failed {
                message,
                hint: Some("a transient failure; the next scheduled run retries".into()),
            },
            http::Failure::Untrusted { message } => ProviderError::Failed {
                message,
                hint: Some(
                    "check the platform's `base_url` and this machine's CA certificates".into(),
                ),
            },
            http::Failure::Unknown { message } => ProviderError::Unknown { message },
        }
    }
}

/// What a provider needs for a call.
pub struct Cx<'a> {
    pub http: &'a Http,
    pub clock: Clock,
    /// The client secret, when the platform has one and it is set.
    pub client_secret: Option<&'a Secret>,
}

#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    fn common(&self) -> &Common;
    fn platform(&self) -> Platform {
        self.common().platform
    }
    /// The platform's side of `auth login` (its authorize URL and code exchange).
    fn login(&self) -> &dyn crate::login::Flow;
    /// The variables this platform reads, per account.
    fn slots(&self) -> &[Slot];
    /// The client secret's variable, if the token endpoint needs one.
    fn client_secret_var(&self) -> Option<&'static str>;
    /// Whether the client secret may be absent (its absence then means a
    /// public client, as for X without `client_type`).
    fn client_secret_optional(&self) -> bool {
        false
    }
    /// Whether a refresh issues a new refresh token and kills the old one.
    fn rotates(&self, state: &AccountState) -> bool;
    /// The pure planning rule.
    fn plan(&self, state: &AccountState, now: Timestamp) -> Plan;
    /// A read-only call that fills in what `plan` asked for with [`Plan::Introspect`].
    async fn introspect(
        &self,
        _cx: &Cx<'_>,
        _state: &mut AccountState,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
    /// Calls the token endpoint for a [`Plan::Refresh`] or [`Plan::HealthCheck`].
    async fn refresh(&self, cx: &Cx<'_>, state: &AccountState) -> Result<Grant, ProviderError>;
    /// Likely causes when the grant is dead, for the message.
    fn reauth_causes(&self) -> &'static str {
        ""
    }

    /// After a successful refresh: a date a human must meet that refreshing did
    /// not move (the refresh token's own expiry inside `warn_before_days`). The
    /// engine reports it as `reauth_required` with that date.
    fn hard_deadline(
        &self,
        _old: &AccountState,
        _grant: &Grant,
        _now: Timestamp,
    ) -> Option<Timestamp> {
        None
    }

    fn accounts(&self) -> Vec<Account> {
        let c = self.common();
        if c.accounts.is_empty() {
            vec![Account::new(self.platform(), None)]
        } else {
            c.accounts
                .iter()
                .map(|a| Account::new(self.platform(), Some(a.clone())))
                .collect()
        }
    }

    fn login_command(&self, account: &Account) -> String {
        match &account.name {
            None => format!("evertoken auth login {}", self.platform()),
            Some(n) => format!("evertoken auth login {} --account {n}", self.platform()),
        }
    }
}

/// True when `t` is within `days` of `now` (or past). Saturates: no `days` panics.
pub fn within_days(now: Timestamp, t: Timestamp, days: i64) -> bool {
    t <= clock::add_days(now, days)
}

/// The refresh token's expiry after a refresh, when it is within `warn_days` of
/// `now` and the refresh did not move it (later by more than an hour than the
/// stored one; an unknown stored expiry counts as not moved).
pub fn unmoved_deadline(
    old: Option<&Held>,
    new: Option<&NewToken>,
    now: Timestamp,
    warn_days: i64,
) -> Option<Timestamp> {
    let old_exp = old.and_then(|o| o.expires_at);
    let exp = new.and_then(|n| n.expires_at).or(old_exp)?;
    if !within_days(now, exp, warn_days) {
        return None;
    }
    match old_exp.and_then(|o| o.checked_add(jiff::SignedDuration::from_hours(1)).ok()) {
        Some(limit) if exp > limit => None,
        _ => Some(exp),
    }
}

/// "expires 2026-12-01 (8 days)" style text.
pub fn expiry_text(now: Timestamp, t: Timestamp) -> String {
    let d = clock::days_left(now, t);
    if t <= now {
        format!("expired {}", clock::date(t))
    } else {
        format!("expires {} ({d} days)", clock::date(t))
    }
}

/// The standard OAuth error body `{"error": "...", "error_description": "..."}`.
#[derive(Debug, Default, Deserialize)]
pub struct OAuthError {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

impl OAuthError {
    pub fn from_reply(r: &Reply) -> Option<OAuthError> {
        r.json::<OAuthError>().ok().filter(|e| !e.error.is_empty())
    }
    /// `error: description`, from outside: secrets the provider echoed are replaced
    /// by their prefix form and control characters escaped.
    pub fn describe(&self) -> String {
        let text = match &self.error_description {
            Some(d) if !d.is_empty() => format!("{}: {d}", self.error),
            _ => self.error.clone(),
        };
        crate::scrub::external(&text).into_owned()
    }
}

/// A provider's OAuth error answer as a [`ProviderError`]: `dead` says which
/// errors mean the grant is gone (a human re-authorises); a rejected client is a
/// configuration problem (`client_hint` names the keys to check); anything else,
/// or a body without an OAuth error, is a plain failure quoting the redacted body.
pub fn oauth_error(
    who: &str,
    reply: &Reply,
    client_hint: &str,
    dead: impl Fn(&OAuthError) -> bool,
) -> ProviderError {
    match OAuthError::from_reply(reply) {
        Some(e) if dead(&e) => ProviderError::Reauth {
            message: format!("{who} answered {}", e.describe()),
        },
        Some(e) if e.error == "invalid_client" || e.error == "unauthorized_client" => {
            ProviderError::Failed {
                message: format!("{who} rejected the OAuth client: {}", e.describe()),
                hint: Some(client_hint.to_owned()),
            }
        }
        Some(e) => ProviderError::Failed {
            message: format!("{who} answered {}: {}", reply.status, e.describe()),
            hint: None,
        },
        None => ProviderError::Failed {
            message: format!(
                "{who} answered {}: {}",
                reply.status,
                redact_body(&reply.snippet())
            ),
            hint: None,
        },
    }
}

/// A 2xx answer that could not be parsed. After a rotating call the provider has
/// probably rotated already, so the outcome is unknown rather than failed.
pub fn malformed(
    what: &str,
    reply: &Reply,
    rotating: bool,
    e: impl std::fmt::Display,
) -> ProviderError {
    let message = format!(
        "{what} answered {} with a body evertoken cannot read ({e}): {}",
        reply.status,
        redact_body(&reply.snippet())
    );
    if rotating {
        ProviderError::Unknown {
            message: format!("{message}; the provider may have rotated the token"),
        }
    } else {
        ProviderError::Failed {
            message,
            hint: Some("a provider or proxy fault; the next run retries".into()),
        }
    }
}

/// Masks anything token-shaped in a provider body before it goes into a message:
/// values of JSON keys that name tokens or secrets.
pub fn redact_body(s: &str) -> String {
    let mut out = s.to_owned();
    for key in [
        "access_token",
        "refresh_token",
        "token",
        "id_token",
        "client_secret",
    ] {
        let pat = format!("\"{key}\":");
        let mut from = 0;
        while let Some(i) = out[from..].find(&pat) {
            let start = from + i + pat.len();
            let rest = &out[start..];
            let trimmed = rest.trim_start();
            let lead = rest.len() - trimmed.len();
            if let Some(body) = trimmed.strip_prefix('"') {
                let end = body.find('"').unwrap_or(body.len());
                let replace_end = start + lead + 1 + end;
                out.replace_range(start + lead + 1..replace_end, "***");
                from = start + lead + 4;
            } else {
                from = start;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_body_masks_token_values() {
        let s =
            redact_body(r#"{"access_token": "abc123", "expires_in": 5, "refresh_token":"zzz"}"#);
        assert!(!s.contains("abc123") && !s.contains("zzz"), "{s}");
        assert!(s.contains("expires_in"));
    }

    #[test]
    fn within_days_window() {
        let now: Timestamp = "2026-11-23T00:00:00Z".parse().unwrap();
        let t: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        assert!(within_days(now, t, 15));
        assert!(!within_days(now, t, 7));
        assert!(within_days(now, t, 8));
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Malformed provider bodies go through the same redaction and error
        /// parsing as real ones: nothing panics, and a token value never survives.
        #[test]
        fn redaction_and_error_parsing_never_panic(body in "\\PC{0,300}", token in "[A-Za-z0-9._-]{12,40}") {
            let _ = redact_body(&body);
            let with_token = format!("{{\"access_token\": \"{token}\", {body}");
            prop_assert!(!redact_body(&with_token).contains(&token));
            let reply = Reply { status: reqwest::StatusCode::BAD_REQUEST, headers: Default::default(), body };
            let _ = OAuthError::from_reply(&reply);
            let _ = reply.snippet();
        }
    }
}
