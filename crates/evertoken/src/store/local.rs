//! The `local` store (default): the OS keychain when one is usable, else the
//! credentials file beside the config. With the keychain, values live there and
//! the file keeps only their metadata (expiry, update time), never a value.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::credentials_file::CredentialsFile;
use super::keychain::{self, Keychain, Mode};
use super::{Entry, Store, StoreError, Stored};
use crate::error::Result;
use crate::secret::Source;
use crate::section::Site;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `auto` (default), `off` or `required`.
    #[serde(default)]
    pub keychain: Mode,
    /// The credentials file; default `credentials.yaml` beside the config.
    #[serde(default)]
    pub file: Option<String>,
}

/// `auth.writeback.local`, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub keychain: Mode,
    /// The credentials file, absolute (or relative to the working directory
    /// when there is no config file).
    pub file: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            keychain: Mode::default(),
            file: PathBuf::from("credentials.yaml"),
        }
    }
}

impl Settings {
    pub fn resolve(c: &Config, site: &Site) -> Settings {
        Settings {
            keychain: c.keychain,
            file: match &c.file {
                Some(p) => site.resolve_path(p),
                None => site.base_dir.join("credentials.yaml"),
            },
        }
    }
}

pub struct LocalStore {
    keychain: Option<Keychain>,
    /// Shared with the group-commit flusher (issue 9).
    file: Arc<CredentialsFile>,
    /// Where a value read from the file came from, made once (`auth status`
    /// reads 20,000 values).
    file_source: Source,
    notice: Option<String>,
}

impl LocalStore {
    pub fn open(s: &Settings, site: &Site) -> Result<Self> {
        let path = s.file.clone();
        let file = Arc::new(CredentialsFile::open(path.clone())?);
        let (keychain, notice) = match s.keychain {
            Mode::Off => (None, None),
            Mode::Auto => match keychain::probe() {
                Ok(k) => (Some(k), None),
                Err(why) => (
                    None,
                    Some(format!(
                        "{why}; using the credentials file {} (mode 0600)",
                        path.display()
                    )),
                ),
            },
            Mode::Required => match keychain::probe() {
                Ok(k) => (Some(k), None),
                Err(why) => {
                    return Err(site.error_at("auth.writeback.local.keychain", format!("is `required`, but {why}")).with_hint(
                        "run where a keychain is unlocked (a desktop session), or set `keychain: auto` to fall back to the credentials file",
                    ));
                }
            },
        };
        let file_source = Source::File(path.display().to_string().into());
        Ok(Self {
            keychain,
            file,
            file_source,
            notice,
        })
    }

    pub fn uses_keychain(&self) -> bool {
        self.keychain.is_some()
    }
}

#[async_trait::async_trait]
impl Store for LocalStore {
    fn name(&self) -> &'static str {
        "local"
    }
    fn local_file(&self) -> Option<PathBuf> {
        Some(self.file.path().to_path_buf())
    }

    fn id(&self) -> String {
        let p = std::path::absolute(self.file.path())
            .unwrap_or_else(|_| self.file.path().to_path_buf());
        if self.keychain.is_some() {
            format!("local:keychain+{}", p.display())
        } else {
            format!("local:{}", p.display())
        }
    }

    fn describe(&self) -> String {
        match &self.keychain {
            Some(_) => format!("OS keychain (service `{}`)", keychain::SERVICE),
            None => format!("credentials file {}", self.file.path().display()),
        }
    }

    fn source(&self) -> Source {
        match &self.keychain {
            Some(_) => Source::Keychain,
            None => self.file_source.clone(),
        }
    }

    async fn read(&self, var: &str) -> Result<Option<Stored>, StoreError> {
        let entry = self.file.get(var)?;
        let (expires_at, updated_at) = entry
            .as_ref()
            .map(|e| (e.expires_at, e.updated_at))
            .unwrap_or((None, None));
        if let Some(k) = &self.keychain
            && let Some(value) = k.get(var).map_err(StoreError::transient)?
        {
            return Ok(Some(Stored {
                value,
                expires_at,
                updated_at,
                source: Source::Keychain,
            }));
        }
        Ok(entry.and_then(|e| {
            e.value.map(|value| Stored {
                value,
                expires_at,
                updated_at,
                source: self.file_source.clone(),
            })
        }))
    }

    /// `auth status`: the file as it is now serves every read (no `stat` per read).
    fn offline(&self) {
        if let Err(e) = self.file.hold() {
            tracing::debug!("credentials file not held: {}", e.message);
        }
    }

    async fn write(&self, entries: &[Entry]) -> Result<(), StoreError> {
        if let Some(k) = &self.keychain {
            for e in entries {
                k.set(&e.var, &e.value).map_err(StoreError::transient)?;
            }
        }
        let with_value = self.keychain.is_none();
        // Group commit (issue 9): concurrent accounts share one atomic replace of
        // the file, written on a blocking thread; this returns once ours is durable.
        self.file.write_grouped(entries.to_vec(), with_value).await
    }

    fn notices(&self) -> Vec<String> {
        self.notice.iter().cloned().collect()
    }
}
