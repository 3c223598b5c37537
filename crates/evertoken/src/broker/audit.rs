//! The broker's audit log: one JSON line per decision, appended (`O_APPEND`, so
//! several instances may share a file on one host), flushed before the answer is
//! sent. A line says when, who, which policy, which repositories and permissions,
//! allowed or not and why. It never holds a bearer, an ID token or a minted token:
//! only names, claims the policy matched on, and reasons in words.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Line<'a> {
    pub ts: String,
    /// `iss|sub`, `client:NAME`, or `unauthenticated`.
    pub who: &'a str,
    pub policy: Option<&'a str>,
    pub repositories: &'a [String],
    pub permissions: Option<&'a BTreeMap<String, String>>,
    pub allowed: bool,
    pub status: u16,
    pub reason: &'a str,
}

pub struct Audit {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl Audit {
    pub fn open(path: &Path) -> std::io::Result<Audit> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut o = std::fs::OpenOptions::new();
        o.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        Ok(Audit {
            path: path.to_owned(),
            file: Mutex::new(o.open(path)?),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line; a failure is logged, never fatal to the answer.
    pub fn write(&self, line: &Line<'_>) {
        let Ok(mut s) = serde_json::to_string(line) else {
            return;
        };
        s.push('\n');
        let r = match self.file.lock() {
            Ok(mut f) => f.write_all(s.as_bytes()),
            Err(_) => return,
        };
        if let Err(e) = r {
            tracing::error!(
                "cannot append to the audit log {}: {e}",
                self.path.display()
            );
        }
    }
}
