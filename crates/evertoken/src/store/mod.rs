//! Stores: where tokens are read from and written back to, one module per backend
//! behind the [`Store`] trait. A store never decides anything: the engine asks it to
//! read, to check it can take a write (pre-flight), to lock across hosts, and to
//! write. Values cross this boundary only as [`Secret`]s.
//!
//! Adding a backend: one module implementing [`Store`] with its config block (plain
//! serde data) and its resolved `Settings`, the block in [`WritebackConfig`], and
//! one arm in [`Backend`] and in [`Writeback`].

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::secret::{Secret, Source};
use crate::section::{Ctx, Site};

pub mod credentials_file;
pub mod env_file;
pub mod github_actions;
pub mod gitlab;
pub mod keychain;
pub mod local;
pub mod vault;

/// `auth.writeback` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WritebackConfig {
    #[serde(default)]
    pub backend: Backend,
    #[serde(default)]
    pub local: local::Config,
    #[serde(default)]
    pub env_file: Option<env_file::Config>,
    #[serde(default)]
    pub gitlab: Option<gitlab::Config>,
    #[serde(default)]
    pub vault: Option<vault::Config>,
    #[serde(default)]
    pub github_actions: Option<github_actions::Config>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    #[default]
    Local,
    Gitlab,
    Vault,
    GithubActions,
    EnvFile,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Gitlab => "gitlab",
            Backend::Vault => "vault",
            Backend::GithubActions => "github-actions",
            Backend::EnvFile => "env-file",
        }
    }
}

/// A value as a store holds it.
#[derive(Clone, Debug)]
pub struct Stored {
    pub value: Secret,
    pub expires_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub source: Source,
}

/// A value to write.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub var: String,
    #[serde(with = "secret_serde")]
    pub value: Secret,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    /// The durable credential: its destination must exist (GitLab). A non-durable
    /// one (a short access token) is written only where its variable already exists.
    pub durable: bool,
}

/// The journal is the one place a [`Secret`] is serialized outside a store.
pub(crate) mod secret_serde {
    use crate::secret::Secret;

    pub fn serialize<S: serde::Serializer>(v: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.expose())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        Ok(Secret::new(s))
    }
}

#[derive(Debug, Clone)]
pub struct StoreError {
    pub message: String,
    pub hint: Option<String>,
    /// Worth retrying (5xx, timeout, connection); permanent otherwise.
    pub transient: bool,
}

impl StoreError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            transient: false,
        }
    }
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            transient: true,
        }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        let mut err = Error::failed(e.message);
        err.hint = e.hint;
        err
    }
}

/// A lock held in the store itself, across hosts (Vault). Released on drop or by
/// `release`, whichever comes first.
#[async_trait::async_trait]
pub trait RemoteLock: Send + Sync {
    async fn release(self: Box<Self>) -> Result<(), StoreError>;
}

#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// The backend's name, as in the config.
    fn name(&self) -> &'static str;
    /// A stable identity of the destination ("local:/abs/credentials.yaml"), so the
    /// journal finishes a write-back only into the store it was meant for.
    fn id(&self) -> String;
    /// For messages: "credentials file /home/u/.config/evertoken/credentials.yaml".
    fn describe(&self) -> String;
    /// Reads one variable; `Ok(None)` when it is not there.
    async fn read(&self, var: &str) -> Result<Option<Stored>, StoreError>;
    /// Writes the entries: all of them or, on error, as few as the backend allows.
    async fn write(&self, entries: &[Entry]) -> Result<(), StoreError>;
    /// Checks, before anything rotates, that `entries` (values are placeholders
    /// of the right shape) could be written. Default: nothing to check.
    async fn preflight(&self, _vars: &[(String, bool)]) -> Result<(), StoreError> {
        Ok(())
    }
    /// The next read of each of `vars` must come from the store itself, not from
    /// anything cached this run (the engine asks under the account's lock, for the
    /// durable variables, so another run's rotation is seen). Default: every read
    /// already does.
    fn reread(&self, _vars: &[String]) {}
    /// From now on, make no network call: reads answer from what needs none
    /// (`auth status`, which is offline). Default: the store is local anyway.
    fn offline(&self) {}
    /// Takes a lock that other hosts honour too; `None` when the backend has none
    /// (the engine's file lock then covers one host).
    async fn lock(&self, _key: &str) -> Result<Option<Box<dyn RemoteLock>>, StoreError> {
        Ok(None)
    }
    /// The file this store keeps its values in, if it is a file: the engine's
    /// per-account host locks then live beside it (see
    /// [`crate::lock::account_lock_path`]). Default: not a file.
    fn local_file(&self) -> Option<std::path::PathBuf> {
        None
    }
    /// Things worth saying once per run ("no keychain here: using the file").
    fn notices(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether a same-named environment variable hides this store's values from
    /// the next run (true for local stores; false where the environment is filled
    /// from the store itself, like GitLab CI variables).
    fn env_shadows(&self) -> bool {
        true
    }
    /// Where a value this store holds shows up in `auth status`.
    fn source(&self) -> Source {
        Source::Store(self.describe())
    }
}

/// `auth.writeback`, resolved: the selected store and its checked settings. Built
/// once when the config loads ([`Writeback::resolve`]); a store is opened from
/// it with a [`Ctx`] (the environment's credentials are read then).
#[derive(Debug)]
pub enum Writeback {
    Local(local::Settings),
    EnvFile(env_file::Settings),
    Gitlab(gitlab::Settings),
    Vault(vault::Settings),
    GithubActions(github_actions::Settings),
}

impl Default for Writeback {
    /// The credentials file beside the config (or in the current directory).
    fn default() -> Self {
        Writeback::Local(local::Settings::default())
    }
}

impl Writeback {
    /// Checks every block of `auth.writeback` that is present (so a block kept
    /// for `auth login --store` is checked too) and keeps the selected one.
    pub fn resolve(c: &WritebackConfig, site: &Site) -> Result<Writeback> {
        let local = local::Settings::resolve(&c.local, site);
        let env_file = c
            .env_file
            .as_ref()
            .map(|e| env_file::Settings::resolve(e, site));
        let gitlab = gitlab::Settings::resolve(c.gitlab.as_ref(), site)?;
        let vault = vault::Settings::resolve(
            c.vault.as_ref().unwrap_or(&vault::Config::default()),
            site,
            "auth.writeback.vault",
        )?;
        let github_actions = github_actions::Settings::resolve(c.github_actions.as_ref(), site)?;
        Ok(match c.backend {
            Backend::Local => Writeback::Local(local),
            Backend::EnvFile => Writeback::EnvFile(env_file.ok_or_else(|| {
                site.error_at(
                    "auth.writeback.env_file",
                    "is required when backend is env-file",
                )
                .with_hint("for example `env_file: { path: ~/.config/evertoken/tokens.env }`")
            })?),
            Backend::Gitlab => Writeback::Gitlab(gitlab),
            Backend::Vault => Writeback::Vault(vault),
            Backend::GithubActions => Writeback::GithubActions(github_actions),
        })
    }

    pub fn backend(&self) -> Backend {
        match self {
            Writeback::Local(_) => Backend::Local,
            Writeback::EnvFile(_) => Backend::EnvFile,
            Writeback::Gitlab(_) => Backend::Gitlab,
            Writeback::Vault(_) => Backend::Vault,
            Writeback::GithubActions(_) => Backend::GithubActions,
        }
    }

    /// Opens the store: the environment's credentials (`GITLAB_TOKEN`,
    /// `VAULT_TOKEN`, …) are read here, so a missing one is an error (exit 2)
    /// naming the key and the variable.
    pub fn open(&self, ctx: &Ctx) -> Result<Arc<dyn Store>> {
        Ok(match self {
            Writeback::Local(s) => Arc::new(local::LocalStore::open(s, ctx.site)?),
            Writeback::EnvFile(s) => Arc::new(env_file::EnvFileStore::open(s, ctx.site)?),
            Writeback::Gitlab(s) => Arc::new(gitlab::GitLabStore::open(s, ctx)?),
            Writeback::Vault(s) => Arc::new(vault::VaultStore::open(s, ctx)?),
            Writeback::GithubActions(s) => Arc::new(github_actions::ActionsStore::open(s, ctx)?),
        })
    }
}

/// Reads several variables (a convenience over [`Store::read`]).
pub async fn read_all(
    store: &dyn Store,
    vars: &[String],
) -> Result<BTreeMap<String, Stored>, StoreError> {
    let mut out = BTreeMap::new();
    for v in vars {
        if let Some(s) = store.read(v).await? {
            out.insert(v.clone(), s);
        }
    }
    Ok(out)
}
