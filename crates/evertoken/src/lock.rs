//! Host-local locks: an exclusive `flock` on a sidecar file, held from the read of
//! a credential to its write-back, so two runs on one host never rotate twice.

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
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
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
