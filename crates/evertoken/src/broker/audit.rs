//! The broker's audit log: one JSON line per decision, appended (`O_APPEND`, so
//! several instances may share a file on one host), flushed before the answer is
//! sent. A line says when, who, which policy, which repositories and permissions,
//! allowed or not and why. It never holds a bearer, an ID token or a minted token:
//! only names, claims the policy matched on, and reasons in words; every text field
//! has its control, line-separator and bidi characters escaped.
//!
//! Refusals anyone can cause without a credential (401, 413, 429) are "noisy": at
//! most [`NOISY_BURST`] of them are written one by one per [`NOISY_INTERVAL`]; the
//! rest are counted and written as one summary line (`status: 0`, `suppressed`:
//! count per status) when the interval ends or the broker stops, so a flood of bad
//! requests cannot fill the disk.
//!
//! The file is opened with `O_NOFOLLOW | O_APPEND`, created 0600 whatever the
//! umask, its missing parents 0700; a symlink, or a file or directory that group
//! or others may write, is refused at start-up.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Noisy lines written one by one per interval.
pub const NOISY_BURST: u64 = 100;
pub const NOISY_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize)]
pub struct Line<'a> {
    pub ts: String,
    /// `iss|sub`, `client:NAME`, or `unauthenticated`.
    pub who: &'a str,
    /// The source address of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<&'a str>,
    pub policy: Option<&'a str>,
    pub repositories: &'a [String],
    pub permissions: Option<&'a BTreeMap<String, String>>,
    pub allowed: bool,
    pub status: u16,
    pub reason: &'a str,
    /// Summary lines only: how many noisy refusals were not written, per status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<&'a BTreeMap<u16, u64>>,
}

struct Noisy {
    start: Instant,
    start_ts: String,
    written: u64,
    suppressed: BTreeMap<u16, u64>,
}

pub struct Audit {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    noisy: Mutex<Noisy>,
}

fn refuse(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, msg)
}

impl Audit {
    pub fn open(path: &Path) -> std::io::Result<Audit> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        match std::fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::files::ensure_private_dir(dir)?
            }
            Err(e) => return Err(e),
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refuse(format!(
                    "its directory {} is a symbolic link",
                    dir.display()
                )));
            }
            Ok(m) if m.mode() & 0o022 != 0 => {
                return Err(refuse(format!(
                    "its directory {} is writable by group or others (mode {:o}); another user could replace the log",
                    dir.display(),
                    m.mode() & 0o7777
                )));
            }
            Ok(_) => {}
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    refuse("it is a symbolic link".into())
                } else {
                    e
                }
            })?;
        let m = file.metadata()?;
        if !m.is_file() {
            return Err(refuse("it is not a regular file".into()));
        }
        if m.mode() & 0o022 != 0 {
            return Err(refuse(format!(
                "it is writable by group or others (mode {:o}); `chmod 600` it",
                m.mode() & 0o7777
            )));
        }
        Ok(Audit {
            path: path.to_owned(),
            file: Mutex::new(file),
            noisy: Mutex::new(Noisy {
                start: Instant::now(),
                start_ts: String::new(),
                written: 0,
                suppressed: BTreeMap::new(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line; a failure is logged, never fatal to the answer.
    pub fn write(&self, line: &Line<'_>) {
        let who = crate::scrub::escape_controls(line.who);
        let policy = line.policy.map(crate::scrub::escape_controls);
        let reason = crate::scrub::escape_controls(line.reason);
        let from = line.from.map(crate::scrub::escape_controls);
        let line = Line {
            who: &who,
            policy: policy.as_deref(),
            reason: &reason,
            from: from.as_deref(),
            ts: line.ts.clone(),
            ..*line
        };
        let Ok(mut s) = serde_json::to_string(&line) else {
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

    /// A refusal anyone can cause: written while within the interval's budget,
    /// otherwise counted for the summary.
    pub fn write_noisy(&self, line: &Line<'_>) {
        let write = {
            let Ok(mut n) = self.noisy.lock() else {
                return;
            };
            self.roll(&mut n, &line.ts);
            if n.written < NOISY_BURST {
                n.written += 1;
                true
            } else {
                *n.suppressed.entry(line.status).or_insert(0) += 1;
                false
            }
        };
        if write {
            self.write(line);
        }
    }

    /// Writes the pending summary when the interval is over (`force`: now).
    pub fn flush(&self, ts: &str, force: bool) {
        let Ok(mut n) = self.noisy.lock() else {
            return;
        };
        if force {
            self.summary(&mut n, ts);
        } else {
            self.roll(&mut n, ts);
        }
    }

    fn roll(&self, n: &mut Noisy, ts: &str) {
        if n.start_ts.is_empty() {
            n.start_ts = ts.to_owned();
        }
        if n.start.elapsed() >= NOISY_INTERVAL {
            self.summary(n, ts);
            n.start = Instant::now();
            n.start_ts = ts.to_owned();
            n.written = 0;
        }
    }

    fn summary(&self, n: &mut Noisy, ts: &str) {
        let total: u64 = n.suppressed.values().sum();
        if total == 0 {
            return;
        }
        let reason = format!(
            "{total} more refusals of unauthenticated or rate-limited requests since {} (over {NOISY_BURST} a minute are counted, not written one by one)",
            n.start_ts
        );
        self.write(&Line {
            ts: ts.to_owned(),
            who: "unauthenticated",
            from: None,
            policy: None,
            repositories: &[],
            permissions: None,
            allowed: false,
            status: 0,
            reason: &reason,
            suppressed: Some(&n.suppressed),
        });
        n.suppressed.clear();
    }
}
