//! Host-local locks: an exclusive `flock` on a sidecar file, held from the read of
//! a credential to its write-back, so two runs on one host never rotate twice.
//!
//! The lock is keyed to the store it protects, never to the run's state directory
//! (two runs with different `XDG_STATE_HOME` against one credentials file must
//! still serialise): see [`account_lock_path`]. A lock directory is created 0700
//! and refused when another user could have prepared it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

#[derive(Debug)]
pub struct LockError {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lock {}: {}", self.path.display(), self.message)
    }
}

/// Where the host lock of `account_key` in `store` lives. For a file store (the
/// credentials file, an env file): a hidden directory beside the file,
/// `.<file name>.locks/<account>.lock`, so every run that writes that file takes
/// the same lock. For a remote store (GitLab, Vault, Actions): a per-user
/// directory under `~/.local/state/evertoken/locks/`, one subdirectory per store
/// identity (project or group, organisation or repository, mount and path),
/// deliberately independent of `XDG_STATE_HOME` and `auth.journal_dir`.
pub fn account_lock_path(store: &dyn crate::store::Store, account_key: &str) -> PathBuf {
    let name = format!("{account_key}.lock");
    if let Some(file) = store.local_file() {
        let file = std::path::absolute(&file).unwrap_or(file);
        let dir = file.parent().unwrap_or(Path::new("/"));
        let base = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "store".into());
        return dir.join(format!(".{base}.locks")).join(name);
    }
    use sha2::Digest;
    let h = sha2::Sha256::digest(store.id().as_bytes());
    let short: String = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
    crate::files::home_dir()
        .join(".local/state/evertoken/locks")
        .join(short)
        .join(name)
}

/// Whether `dir` is one of evertoken's own lock directories (see
/// [`account_lock_path`] and the state directory's `locks/`).
fn is_lock_dir(dir: &Path) -> bool {
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let own = name(Some(dir));
    own == "locks" || own.ends_with(".locks") || name(dir.parent()) == "locks"
}

impl FileLock {
    /// Blocks (polling) until the lock is free or `timeout` passes.
    pub fn acquire_blocking(path: &Path, timeout: Duration) -> Result<FileLock, LockError> {
        let err = |message: String| LockError {
            path: path.to_path_buf(),
            message,
        };
        if let Some(dir) = path.parent() {
            crate::files::ensure_private_dir(dir)
                .map_err(|e| err(format!("cannot create directory: {e}")))?;
            // evertoken's own lock directories must be private; a sidecar lock
            // beside a user's file lives in the user's directory, whatever its mode.
            if is_lock_dir(dir) {
                crate::files::check_trusted_dir(dir).map_err(|e| {
                    err(format!(
                        "refusing the lock directory: {e}; {}",
                        crate::files::trust_hint(dir)
                    ))
                })?;
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(path)
            .map_err(|e| err(format!("cannot open: {e}")))?;
        let start = Instant::now();
        let mut wait = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(FileLock {
                        _file: file,
                        path: path.to_path_buf(),
                    });
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= timeout {
                        return Err(err(format!(
                            "still held by another evertoken run after {}s",
                            timeout.as_secs()
                        )));
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(100));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(err(format!("cannot lock: {e}")));
                }
            }
        }
    }

    /// The async form: waits on a blocking thread.
    pub async fn acquire(path: PathBuf, timeout: Duration) -> Result<FileLock, LockError> {
        let p = path.clone();
        tokio::task::spawn_blocking(move || FileLock::acquire_blocking(&p, timeout))
            .await
            .unwrap_or_else(|e| {
                Err(LockError {
                    path,
                    message: format!("lock task failed: {e}"),
                })
            })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl From<LockError> for io::Error {
    fn from(e: LockError) -> Self {
        io::Error::other(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let a = FileLock::acquire_blocking(&p, Duration::from_secs(1)).unwrap();
        let b = FileLock::acquire_blocking(&p, Duration::from_millis(50));
        assert!(b.unwrap_err().message.contains("still held"));
        drop(a);
        FileLock::acquire_blocking(&p, Duration::from_millis(50)).unwrap();
    }
}
