//! One GitHub App entry (`github.apps.<name>`): what the user writes, and the
//! resolved settings every command works from (env fallbacks applied, paths
//! expanded, URLs parsed). Commands never read the config or the environment
//! themselves; they get an [`App`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::Config;
use crate::env_vars;
use crate::error::{Error, Result};
use crate::files;

/// The default API root; GitHub Enterprise Server uses `https://HOST/api/v3`.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// Tokens live an hour; refresh well before.
pub const DEFAULT_MAX_AGE_MINUTES: u64 = 55;
/// `github token` mints when the token expires within this many seconds.
pub const EXPIRY_MARGIN_SECS: i64 = 5 * 60;

/// `github.apps.<name>` as written by the user.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The App ID (`iss` of the JWT). Else `GITHUB_APP_ID` (app `default` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<u64>,
    /// The app's client ID, accepted by GitHub as `iss` instead of the app id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Else `GITHUB_APP_INSTALLATION_ID` (app `default` only), else looked up from `owner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<u64>,
    /// Account (organisation or user) the app is installed on, to look the installation up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// With `owner`: look the installation up through this repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Else `GITHUB_APP_PRIVATE_KEY_PATH` (app `default` only), else
    /// `~/.config/evertoken/github-app.pem`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_path: Option<String>,
    /// Default `~/.config/evertoken/github-token.env` (`github-token-<name>.env` for other apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_token_age_minutes: Option<u64>,
    /// Update `gh`'s stored auth after every mint.
    #[serde(default, skip_serializing_if = "is_false")]
    pub gh_cli: bool,
    /// The web host `gh` and git use (default from `api_url`: `github.com`, or the GHES host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Narrow the token to these repositories (names, without the owner).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repository_ids: Vec<u64>,
    /// Narrow the token's permissions, e.g. `{contents: read, issues: write}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub permissions: BTreeMap<String, String>,
    /// Check a new token with one cheap call before it replaces the old one.
    #[serde(default, skip_serializing_if = "is_false")]
    pub verify: bool,
    /// Revoke the previous token once the new one is in place.
    #[serde(default, skip_serializing_if = "is_false")]
    pub revoke_previous: bool,
    /// Sign with a Vault/OpenBao Transit key instead of `private_key_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<super::signer::SignerConfig>,
    /// Get tokens from an `evertoken broker serve`; this host holds no key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<crate::broker::client::BrokerAppConfig>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How the installation is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Id(u64),
    Repository { owner: String, repo: String },
    Owner(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Id(id) => write!(f, "installation {id}"),
            Target::Repository { owner, repo } => write!(f, "the installation on {owner}/{repo}"),
            Target::Owner(o) => write!(f, "the installation on {o}"),
        }
    }
}

/// The JWT issuer: the app id, or the client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuer {
    AppId(u64),
    ClientId(String),
}

impl std::fmt::Display for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Issuer::AppId(id) => write!(f, "app {id}"),
            Issuer::ClientId(c) => write!(f, "app (client id {c})"),
        }
    }
}

/// Command-line values that win over the config (the Takopi plugin passes its own).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub token_env_file: Option<PathBuf>,
    pub max_token_age_minutes: Option<u64>,
}

/// The resolved settings of one app.
#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    /// `None` when neither the config nor the environment gives one; minting then fails.
    pub issuer: Option<Issuer>,
    pub target: Option<Target>,
    pub key_path: PathBuf,
    pub token_file: PathBuf,
    pub max_age_minutes: u64,
    pub gh_cli: bool,
    pub host: String,
    pub api_url: Url,
    pub repositories: Vec<String>,
    pub repository_ids: Vec<u64>,
    pub permissions: BTreeMap<String, String>,
    pub verify: bool,
    pub revoke_previous: bool,
    /// Held while minting, so a timer run and a manual refresh never overlap.
    pub lock_path: PathBuf,
    /// The systemd timer that refreshes this app's token.
    pub timer_unit: String,
    /// The config file, for messages ("(no config file)" when none).
    pub config_display: String,
    /// Key file (`key_path`) or Transit.
    pub signer: super::signer::KeySource,
    /// Set: tokens come from this broker, nothing is signed here.
    pub broker: Option<crate::broker::client::BrokerApp>,
}

/// `evertoken-github-token-refresh` for `default`, `…-refresh-<name>` for others.
pub fn unit_stem(name: &str) -> String {
    if name == "default" {
        "evertoken-github-token-refresh".to_owned()
    } else {
        format!("evertoken-github-token-refresh-{name}")
    }
}

/// Where bootstrap installs the key of app `name`.
pub fn default_key_path(name: &str) -> PathBuf {
    let file = if name == "default" {
        "github-app.pem".to_owned()
    } else {
        format!("github-app-{name}.pem")
    };
    files::default_config_dir().join(file)
}

fn default_token_file(name: &str) -> PathBuf {
    let file = if name == "default" {
        "github-token.env".to_owned()
    } else {
        format!("github-token-{name}.env")
    };
    files::default_config_dir().join(file)
}

fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The web host (`gh --hostname`, git's `host=`) for an API URL:
/// `api.github.com` → `github.com`; GitHub Enterprise Cloud with data residency
/// `api.SUBDOMAIN.ghe.com` → `SUBDOMAIN.ghe.com`; GitHub Enterprise Server
/// (`https://HOST/api/v3`) → its host.
pub fn host_for_api(api: &Url) -> String {
    let Some(h) = api.host_str() else {
        return "github.com".to_owned();
    };
    let h = h.to_ascii_lowercase();
    if h == "api.github.com" {
        return "github.com".to_owned();
    }
    if let Some(rest) = h.strip_prefix("api.")
        && rest
            .strip_suffix(".ghe.com")
            .is_some_and(|sub| !sub.is_empty() && !sub.contains('.'))
    {
        return rest.to_owned();
    }
    h
}

fn parse_api_url(cfg: &Config, key: &str, s: &str) -> Result<Url> {
    let url = Url::parse(s).map_err(|e| {
        cfg.error_at(key, format!("`{s}` is not a URL: {e}"))
            .with_hint("for example https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server")
    })?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(cfg
            .error_at(key, format!("`{s}` must be an http(s) URL with a host"))
            .with_hint("for example https://api.github.com"));
    }
    Ok(url)
}

/// Checks every app entry (called when the config loads).
pub(crate) fn validate(cfg: &Config) -> Result<()> {
    for (name, app) in &cfg.file.github.apps {
        check_entry(cfg, name, app)?;
    }
    Ok(())
}

/// Whether `name` is a valid app name: letters, digits, `-` and `_` (it becomes
/// part of file and unit names, so never a `/` or `..`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_entry(cfg: &Config, name: &str, a: &AppConfig) -> Result<()> {
    let key = |k: &str| format!("github.apps.{name}.{k}");
    if !valid_name(name) {
        return Err(cfg
            .error_at(
                &format!("github.apps.{name}"),
                "app names may use letters, digits, `-` and `_` only",
            )
            .with_hint("for example `default` or `ci-bot`"));
    }
    if let Some(u) = &a.api_url {
        parse_api_url(cfg, &key("api_url"), u)?;
    }
    if let Some(m) = a.max_token_age_minutes
        && !(1..=60).contains(&m)
    {
        return Err(cfg
            .error_at(
                &key("max_token_age_minutes"),
                format!("{m} is outside 1..=60"),
            )
            .with_hint("installation tokens live 60 minutes; the default is 55"));
    }
    if a.installation_id.is_some() && a.owner.is_some() {
        return Err(cfg
            .error_at(&key("owner"), "set either `installation_id` or `owner`, not both")
            .with_hint("`owner` (with optional `repository`) looks the installation up; `installation_id` names it"));
    }
    if let Some(r) = &a.repository
        && a.owner.is_none()
        && !r.contains('/')
    {
        return Err(cfg
            .error_at(&key("repository"), format!("`{r}` needs an owner"))
            .with_hint("write `repository: OWNER/REPO`, or set `owner` too"));
    }
    if a.client_id.as_ref().is_some_and(|c| c.trim().is_empty()) {
        return Err(cfg
            .error_at(&key("client_id"), "is empty")
            .with_hint("remove it, or use the app's client ID"));
    }
    if let Some(sc) = &a.signer {
        if a.private_key_path.is_some() {
            return Err(cfg
                .error_at(
                    &key("signer"),
                    "set either `signer` or `private_key_path`, not both",
                )
                .with_hint(
                    "with a Transit signer the key stays in Vault; remove `private_key_path`",
                ));
        }
        super::signer::validate(cfg, &key("signer"), sc)?;
    }
    if let Some(b) = &a.broker {
        if a.signer.is_some() || a.private_key_path.is_some() {
            return Err(cfg
                .error_at(
                    &key("broker"),
                    "a broker app holds no key: remove `signer` / `private_key_path`",
                )
                .with_hint("the broker signs; this host only asks it for tokens"));
        }
        crate::broker::client::validate_app(cfg, &key("broker"), b)?;
    }
    check_repository_names(cfg, &key("repositories"), &a.repositories)?;
    for (perm, level) in &a.permissions {
        if !matches!(level.as_str(), "read" | "write" | "admin") {
            return Err(cfg
                .error_at(
                    &key(&format!("permissions.{perm}")),
                    format!("`{level}` is not a permission level"),
                )
                .with_hint("use read, write or admin"));
        }
    }
    Ok(())
}

/// The most repositories one installation token may be narrowed to.
pub(crate) const MAX_REPOSITORIES: usize = 500;

/// Checks a `repositories` list (at config key `key`) before any token is asked
/// for: GitHub narrows a token to repository NAMES of the installation's account
/// ("List of repository names that the token should have access to", up to 500;
/// docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app),
/// so an `owner/name` entry would only come back as a 422 at mint time.
pub(crate) fn check_repository_names(cfg: &Config, key: &str, names: &[String]) -> Result<()> {
    if names.len() > MAX_REPOSITORIES {
        return Err(cfg
            .error_at(
                key,
                format!(
                    "lists {} repositories; GitHub narrows a token to at most {MAX_REPOSITORIES}",
                    names.len()
                ),
            )
            .with_hint("leave `repositories` out for a token on every repository of the installation, or split the list across apps or policies"));
    }
    for (i, name) in names.iter().enumerate() {
        if let Some((owner, repo)) = name.split_once('/') {
            return Err(cfg
                .error_at(
                    &format!("{key}[{i}]"),
                    format!(
                        "`{}` is not a repository name: GitHub wants names without the owner",
                        crate::scrub::escape_controls(name)
                    ),
                )
                .with_hint(format!(
                    "write `{}`, not `{}` (the owner `{}` is the installation's account)",
                    crate::scrub::escape_controls(repo),
                    crate::scrub::escape_controls(name),
                    crate::scrub::escape_controls(owner)
                )));
        }
        if name.trim().is_empty() {
            return Err(cfg
                .error_at(&format!("{key}[{i}]"), "is empty")
                .with_hint("list repository names such as `site`"));
        }
    }
    Ok(())
}

/// Resolves app `name` from the config, with the environment as fallback for
/// `default` (`GITHUB_APP_ID`, `GITHUB_APP_INSTALLATION_ID`,
/// `GITHUB_APP_PRIVATE_KEY_PATH`, as the source script reads them).
pub fn resolve(cfg: &Config, name: &str, ov: &Overrides) -> Result<App> {
    let empty = AppConfig::default();
    let entry = match cfg.file.github.apps.get(name) {
        Some(a) => a,
        None if name == "default" => &empty,
        None => {
            let known: Vec<&str> = cfg.file.github.apps.keys().map(String::as_str).collect();
            let hint = if known.is_empty() {
                "add it under `github.apps` in the config, or run `evertoken github bootstrap --app NAME …`".to_owned()
            } else {
                format!("configured apps: {}", known.join(", "))
            };
            return Err(
                Error::usage(format!("no GitHub App `{name}` in {}", cfg.display_path()))
                    .with_hint(hint),
            );
        }
    };
    let key = |k: &str| format!("github.apps.{name}.{k}");
    let use_env = name == "default";
    let issuer = match (&entry.app_id, &entry.client_id) {
        (Some(id), _) => Some(Issuer::AppId(*id)),
        (None, Some(c)) => Some(Issuer::ClientId(c.clone())),
        (None, None) if use_env => {
            env_nonempty(env_vars::GITHUB_APP_ID).map(|v| match v.parse::<u64>() {
                Ok(id) => Issuer::AppId(id),
                Err(_) => Issuer::ClientId(v),
            })
        }
        _ => None,
    };
    let target = if let Some(id) = entry.installation_id {
        Some(Target::Id(id))
    } else if let Some(owner) = &entry.owner {
        Some(match &entry.repository {
            Some(r) => {
                let repo = r.rsplit('/').next().unwrap_or(r).to_owned();
                Target::Repository {
                    owner: owner.clone(),
                    repo,
                }
            }
            None => Target::Owner(owner.clone()),
        })
    } else if let Some(r) = &entry.repository {
        r.split_once('/').map(|(o, rp)| Target::Repository {
            owner: o.to_owned(),
            repo: rp.to_owned(),
        })
    } else if use_env {
        match env_nonempty(env_vars::GITHUB_APP_INSTALLATION_ID) {
            Some(v) => Some(Target::Id(v.parse::<u64>().map_err(|_| {
                Error::config(format!(
                    "{} is `{v}`, not a number",
                    env_vars::GITHUB_APP_INSTALLATION_ID
                ))
                .with_hint("use the number at the end of github.com/settings/installations/N")
            })?)),
            None => None,
        }
    } else {
        None
    };
    let key_path = match &entry.private_key_path {
        Some(p) => cfg.resolve_path(p),
        None => match env_nonempty(env_vars::GITHUB_APP_PRIVATE_KEY_PATH).filter(|_| use_env) {
            Some(p) => files::expand_tilde(&p),
            None => default_key_path(name),
        },
    };
    let token_file = match (&ov.token_env_file, &entry.token_env_file) {
        (Some(p), _) => files::expand_tilde(&p.to_string_lossy()),
        (None, Some(p)) => cfg.resolve_path(p),
        (None, None) => default_token_file(name),
    };
    let api_url = match &entry.api_url {
        Some(u) => parse_api_url(cfg, &key("api_url"), u)?,
        None => Url::parse(DEFAULT_API_URL).expect("static URL"),
    };
    let host = entry.host.clone().unwrap_or_else(|| host_for_api(&api_url));
    let max_age_minutes = ov
        .max_token_age_minutes
        .or(entry.max_token_age_minutes)
        .unwrap_or(DEFAULT_MAX_AGE_MINUTES);
    if max_age_minutes == 0 {
        return Err(
            Error::usage("the maximum token age must be at least 1 minute")
                .with_hint("installation tokens live 60 minutes; the default is 55"),
        );
    }
    let signer = match &entry.signer {
        Some(sc) => super::signer::KeySource::Transit(std::sync::Arc::new(
            super::signer::Transit::connect(cfg, &key("signer"), sc),
        )),
        None => super::signer::KeySource::File,
    };
    let broker = match &entry.broker {
        Some(b) => Some(crate::broker::client::BrokerApp::resolve(
            cfg,
            &key("broker"),
            b,
        )?),
        None => None,
    };
    Ok(App {
        signer,
        broker,
        name: name.to_owned(),
        issuer,
        target,
        key_path,
        token_file,
        max_age_minutes,
        gh_cli: entry.gh_cli,
        host,
        api_url,
        repositories: entry.repositories.clone(),
        repository_ids: entry.repository_ids.clone(),
        permissions: entry.permissions.clone(),
        verify: entry.verify,
        revoke_previous: entry.revoke_previous,
        lock_path: cfg.journal_dir().join(format!("github-{name}.lock")),
        timer_unit: format!("{}.timer", unit_stem(name)),
        config_display: cfg.display_path(),
    })
}

impl App {
    /// The issuer, or a config error saying where to set it.
    pub fn require_issuer(&self) -> Result<&Issuer> {
        self.issuer.as_ref().ok_or_else(|| {
            Error::config(format!(
                "{}: `github.apps.{}.app_id` is not set",
                self.config_display, self.name
            ))
            .with_hint(if self.name == "default" {
                format!("set it in the config, or export {}=<App ID> (the app's settings page shows it)", env_vars::GITHUB_APP_ID)
            } else {
                "set it in the config (the app's settings page shows the App ID)".to_owned()
            })
        })
    }

    pub fn require_target(&self) -> Result<&Target> {
        self.target.as_ref().ok_or_else(|| {
            Error::config(format!(
                "{}: neither `github.apps.{}.installation_id` nor `owner` is set",
                self.config_display, self.name
            ))
            .with_hint(if self.name == "default" {
                format!(
                    "set installation_id (github.com/settings/installations/N shows it) or owner, or export {}",
                    env_vars::GITHUB_APP_INSTALLATION_ID
                )
            } else {
                "set installation_id (github.com/settings/installations/N shows it) or owner".to_owned()
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gh_host_follows_the_api_url() {
        assert_eq!(
            host_for_api(&Url::parse("https://api.github.com").unwrap()),
            "github.com"
        );
        assert_eq!(
            host_for_api(&Url::parse("https://ghe.example.com/api/v3").unwrap()),
            "ghe.example.com"
        );
        // GitHub Enterprise Cloud with data residency.
        assert_eq!(
            host_for_api(&Url::parse("https://api.octocorp.ghe.com").unwrap()),
            "octocorp.ghe.com"
        );
        assert_eq!(
            host_for_api(&Url::parse("https://API.Octocorp.GHE.com/").unwrap()),
            "octocorp.ghe.com"
        );
        // Only the api. host of one subdomain; anything else is a GHES host.
        assert_eq!(
            host_for_api(&Url::parse("https://api.a.b.ghe.com").unwrap()),
            "api.a.b.ghe.com"
        );
        assert_eq!(
            host_for_api(&Url::parse("https://api.example.com/api/v3").unwrap()),
            "api.example.com"
        );
    }
}
