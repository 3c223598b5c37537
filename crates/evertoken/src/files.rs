//! Files that hold secrets: created 0600 in 0700 directories whatever the umask,
//! replaced atomically (temp file, fsync, rename, fsync directory), and refused when
//! others can read them. Nothing here ever logs file contents.
//!
//! It also owns trust in what is on disk: every directory evertoken creates is made
//! one component at a time with its mode set explicitly (never `create_dir_all`
//! and the umask), a file it writes gets the mode of its purpose and replaces a
//! symlink instead of writing through it, and [`check_trusted_dir`] refuses a
//! directory another user could have prepared (a symlink, someone else's, or
//! group/other-writable).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use atomic_write_file::unix::OpenOptionsExt as _;

/// Reads a small file whole, refusing what would never end or exhaust memory: a
/// file that is not a regular file (`/dev/zero`, a FIFO, a directory) or one
/// longer than `cap` bytes. The error says which, in the `io::Error`'s message.
pub fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a device, FIFO or directory)",
        ));
    }
    let mut buf = Vec::new();
    fs::File::open(path)?
        .take(cap.saturating_add(1))
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("longer than {cap} bytes"),
        ));
    }
    Ok(buf)
}

/// Creates `dir` (and each missing parent) if missing; every directory evertoken
/// creates is 0700 whatever the umask. An existing directory is left as it is (it
/// may be shared, like `~/.config`).
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    ensure_dir_mode(dir, 0o700)
}

/// Creates `dir` and each missing parent, one component at a time, each with
/// exactly `mode` (set again after creation, so the umask cannot widen or narrow it).
pub fn ensure_dir_mode(dir: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d);
        cur = d.parent();
    }
    for d in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(mode).create(d) {
            Ok(()) => fs::set_permissions(d, fs::Permissions::from_mode(mode))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Why `dir`, if it exists, must not be trusted with secrets or locks: it is a
/// symlink, not a directory, owned by another user, or writable by group or
/// others. `Ok(())` when it is missing (it will be created 0700) or sound. The
/// message names the path; [`trust_hint`] says what to do.
pub fn check_trusted_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let m = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{} cannot be inspected: {e}", dir.display())),
    };
    if m.file_type().is_symlink() {
        return Err(format!(
            "{} is a symbolic link; evertoken keeps tokens only in a directory it owns",
            dir.display()
        ));
    }
    if !m.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if m.uid() != me {
        return Err(format!(
            "{} belongs to user id {}, not to you (user id {me})",
            dir.display(),
            m.uid()
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by other users (mode {:o})",
            dir.display(),
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

/// The hint for a [`check_trusted_dir`] refusal.
pub fn trust_hint(dir: &Path) -> String {
    format!(
        "if the directory is yours and its contents are what you expect: `chmod 700 {0}` (and `chown` it to yourself); if it is a symlink or not yours, move it away (`mv {0} {0}.suspect`) and run again",
        dir.display()
    )
}

/// Writes `contents` to `path` with exactly `mode` (the mode of the file's purpose:
/// 0644 for a unit file, 0600 for a secret), whatever the umask and whatever was
/// there before. The bytes go to a fresh temp file in the same directory that is
/// renamed over `path`: a symlink at `path` is replaced, never written through, so
/// nothing outside evertoken's own files is touched. Missing parents are created
/// (0700 for a private file, 0755 otherwise). Returns whether a symlink was replaced.
pub fn write_file_mode(path: &Path, contents: &[u8], mode: u32) -> io::Result<bool> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure_dir_mode(dir, if mode & 0o077 == 0 { 0o700 } else { 0o755 })?;
    let was_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::File::open(dir)?.sync_all()?;
    Ok(was_link)
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

    /// The umask is process-wide and tests run on threads: the tests that change it
    /// or depend on it take this lock, so none sees another's umask.
    static UMASK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn atomic_write_is_0600_in_a_new_0700_dir_whatever_the_umask() {
        let _umask = UMASK.lock().unwrap_or_else(|e| e.into_inner());
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
    fn dirs_are_0700_per_component_and_files_replace_symlinks() {
        let _umask = UMASK.lock().unwrap_or_else(|e| e.into_inner());
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        // SAFETY: see above.
        let old = unsafe { libc::umask(0o000) };
        let res = ensure_private_dir(&deep);
        let target = tmp.path().join("target.txt");
        fs::write(&target, "theirs").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o777)).unwrap();
        let link = tmp.path().join("unit.service");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let replaced = write_file_mode(&link, b"ours", 0o644);
        unsafe { libc::umask(old) };
        res.unwrap();
        assert!(replaced.unwrap());
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode_of(&tmp.path().join(d)).unwrap(), Some(0o700), "{d}");
        }
        assert_eq!(fs::read_to_string(&target).unwrap(), "theirs");
        assert_eq!(fs::read_to_string(&link).unwrap(), "ours");
        assert!(
            !fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(mode_of(&link).unwrap(), Some(0o644));
    }

    #[test]
    fn untrusted_dirs_are_refused() {
        let _umask = UMASK.lock().unwrap_or_else(|e| e.into_inner());
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            check_trusted_dir(&open)
                .unwrap_err()
                .contains("writable by other users")
        );
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        assert!(
            check_trusted_dir(&link)
                .unwrap_err()
                .contains("symbolic link")
        );
        assert!(check_trusted_dir(&tmp.path().join("missing")).is_ok());
        assert!(check_trusted_dir(tmp.path()).is_ok());
    }

    #[test]
    fn too_open_flags_group_and_other_bits() {
        assert!(!too_open(0o600));
        assert!(!too_open(0o400));
        assert!(too_open(0o640));
        assert!(too_open(0o604));
    }
}
