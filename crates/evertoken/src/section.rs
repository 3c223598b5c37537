//! What a config section (a store, an alert channel) needs from the rest of the
//! configuration, and nothing more: where its relative paths start, the file to
//! name in its errors, and (once opened) the process's HTTP client. Sections get
//! these instead of the whole [`crate::config::Config`], so `config` assembles the
//! sections and no section imports `config` back.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::files;
use crate::http::Http;

/// Where the configuration was read from.
#[derive(Clone, Debug)]
pub struct Site {
    /// The file for messages: its path, or "(no config file)".
    pub file: String,
    /// Relative paths in the config resolve against this directory.
    pub base_dir: PathBuf,
}

impl Site {
    pub fn new(file: Option<&Path>, base_dir: &Path) -> Site {
        Site {
            file: file
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(no config file)".to_owned()),
            base_dir: base_dir.to_path_buf(),
        }
    }

    /// A config error (exit 2) at `key`, naming the file.
    pub fn error_at(&self, key: &str, what: impl std::fmt::Display) -> Error {
        Error::config(format!("{}: `{key}`: {what}", self.file))
    }

    /// A path from the config: `~` expands, relative is relative to the config
    /// file's directory.
    pub fn resolve_path(&self, p: &str) -> PathBuf {
        let expanded = files::expand_tilde(p);
        if expanded.is_absolute() {
            expanded
        } else {
            self.base_dir.join(expanded)
        }
    }
}

/// What a store or alert channel is opened with, besides its own settings.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub site: &'a Site,
    /// The process's one HTTP client (connection pools, timeouts, retries).
    pub http: &'a Http,
}

impl Ctx<'_> {
    pub fn error_at(&self, key: &str, what: impl std::fmt::Display) -> Error {
        self.site.error_at(key, what)
    }
}
