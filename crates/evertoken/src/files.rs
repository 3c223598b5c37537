//! Files that hold secrets: created 0600 in 0700 directories whatever the umask,
//! replaced atomically (temp file, fsync, rename, fsync directory), and refused when
//! others can read them. Nothing here ever logs file contents.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use atomic_write_file::unix::OpenOptionsExt as _;

/// Creates `dir` (and parents) if missing; a directory evertoken creates is 0700.
/// An existing directory is left as it is (it may be shared, like `~/.config`).
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        fs::create_dir_all(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Writes `contents` to `path` atomically with mode 0600: readers see the old file
/// or the new one, never a mix, and a crash at any instant leaves one of the two.
pub fn write_private_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        ensure_private_dir(dir)?;
    }
    let mut file = atomic_write_file::OpenOptions::new()
        .preserve_mode(false)
        .try_preserve_owner(false)
        .open(path)?;
    // Set the mode on the open temp file, so it is 0600 before any byte lands and
    // whatever the process umask is.
    file.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)?;
    file.commit()
}

/// Writes `contents` to `path` for the rotation journal: visible under its final
/// name as early as possible, then durable. The bytes go to a fresh 0600 temp file
/// that is renamed into place *before* the fsyncs, so a SIGKILL (which keeps the
/// page cache) right after the rename loses nothing; the fsyncs that follow make it
/// survive a power cut before this returns. Used where the cost of a crash window
/// is a lost token; [`write_private_atomic`] (fsync, then rename) elsewhere.
pub fn write_private_visible_first(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure_private_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    if let Err(e) = f.write_all(contents).and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    f.sync_all()?;
    fs::File::open(dir)?.sync_all()
}

/// The permission bits of a file, or `None` if it does not exist.
pub fn mode_of(path: &Path) -> io::Result<Option<u32>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(m.permissions().mode() & 0o7777)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// True when group or others have any access.
pub fn too_open(mode: u32) -> bool {
    mode & 0o077 != 0
}

/// Expands a leading `~` or `~/` to `$HOME`.
pub fn expand_tilde(path: &str) -> PathBuf {
    if path == "~" {
        return home_dir();
    }
    if let Some(rest) = path.strip_prefix("~/") {
        return home_dir().join(rest);
    }
    PathBuf::from(path)
}

pub fn home_dir() -> PathBuf {
    std::env::var_os(crate::env_vars::HOME)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `$XDG_STATE_HOME/evertoken`, else `~/.local/state/evertoken`.
pub fn default_state_dir() -> PathBuf {
    match std::env::var_os(crate::env_vars::XDG_STATE_HOME) {
        Some(v) if !v.is_empty() => PathBuf::from(v).join("evertoken"),
        _ => home_dir().join(".local/state/evertoken"),
    }
}

/// `$XDG_CONFIG_HOME/evertoken`, else `~/.config/evertoken`.
pub fn default_config_dir() -> PathBuf {
    match std::env::var_os(crate::env_vars::XDG_CONFIG_HOME) {
        Some(v) if !v.is_empty() => PathBuf::from(v).join("evertoken"),
        _ => home_dir().join(".config/evertoken"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_0600_in_a_new_0700_dir_whatever_the_umask() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("new/sub/secret.yaml");
        // SAFETY: umask is process-wide; this test restores it and no other test
        // in this binary depends on it.
        let old = unsafe { libc::umask(0o000) };
        let res = write_private_atomic(&path, b"x: 1\n");
        unsafe { libc::umask(old) };
        res.unwrap();
        assert_eq!(mode_of(&path).unwrap(), Some(0o600));
        assert_eq!(mode_of(path.parent().unwrap()).unwrap(), Some(0o700));
        assert_eq!(fs::read_to_string(&path).unwrap(), "x: 1\n");
        write_private_atomic(&path, b"x: 2\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "x: 2\n");
        assert_eq!(mode_of(&path).unwrap(), Some(0o600));
        write_private_visible_first(&path, b"x: 3\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "x: 3\n");
        assert_eq!(mode_of(&path).unwrap(), Some(0o600));
        let leftovers = fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temp file left behind");
    }

    #[test]
    fn too_open_flags_group_and_other_bits() {
        assert!(!too_open(0o600));
        assert!(!too_open(0o400));
        assert!(too_open(0o640));
        assert!(too_open(0o604));
    }
}
