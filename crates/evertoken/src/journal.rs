//! The rotation journal: every token a provider issues is written here (0600,
//! atomically, fsynced) before any other step, and removed only after the store
//! holds it. A run killed at any instant therefore loses nothing; the next run
//! finds the record and finishes the write-back first. The journal wins over a
//! stale environment value. It lives under `auth.journal_dir` (default
//! `$XDG_STATE_HOME/evertoken/journal`); its records hold secrets, so its
//! directory is 0700 and nothing here ever prints a value.
//!
//! A record is a token that will be written into a store, so the journal trusts
//! nothing another local user could have put there: [`Journal::check`] refuses a
//! state or journal directory, or a record, that is a symlink, someone else's, or
//! group/other-writable; [`Journal::read_for`] accepts a record only for the store
//! and the variables of the account it is read for.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::files;
use crate::store::Entry;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    /// The store the entries are destined for ([`crate::store::Store::id`]).
    pub store: String,
    /// `platform` or `platform:account`.
    pub account: String,
    pub created_at: Timestamp,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug)]
pub struct Journal {
    dir: PathBuf,
    state_dir: PathBuf,
    /// The directory's entries when [`Journal::listed`] read it: a read then opens
    /// only a record that was there (issue 15: `auth status` over 10,000 accounts
    /// paid one failed `open` per account). `None`: every read opens.
    listing: Option<Arc<HashSet<OsString>>>,
}

impl Journal {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("journal"),
            state_dir: state_dir.to_path_buf(),
            listing: None,
        }
    }

    /// This journal as its directory is now: one `readdir` instead of one `open`
    /// per account, for a read-only pass over many accounts (`auth status`) that
    /// reports a point-in-time view anyway. A record written after this call is
    /// not seen, so a run that acts on what it reads must not use it. When the
    /// directory cannot be listed, reads open every record as usual.
    pub fn listed(&self) -> Journal {
        let listing = match std::fs::read_dir(&self.dir) {
            Ok(rd) => Some(Arc::new(
                rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect(),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Arc::default()),
            Err(_) => None,
        };
        Journal {
            listing,
            ..self.clone()
        }
    }

    /// Refuses (a config error: exit 2, with the `chmod` hint) a state directory,
    /// journal or locks directory, or journal record that another user could have
    /// prepared: a symlink, not owned by this user, or group/other-writable.
    pub fn check(&self) -> crate::error::Result<()> {
        let refuse = |what: String, dir: &Path| {
            crate::error::Error::config(format!("refusing to use the state directory: {what}"))
                .with_hint(files::trust_hint(dir))
        };
        for d in [
            self.state_dir.clone(),
            self.dir.clone(),
            self.state_dir.join("locks"),
        ] {
            files::check_trusted_dir(&d).map_err(|e| refuse(e, &d))?;
        }
        for p in self.pending() {
            check_record_file(&p).map_err(|e| {
                crate::error::Error::config(format!("refusing journal record: {e}")).with_hint(
                    format!(
                        "if you wrote it (or a backup tool did): `chmod 600 {0}`; otherwise move it away (`mv {0} {0}.suspect`) and run again",
                        p.display()
                    ),
                )
            })?;
        }
        Ok(())
    }

    /// [`Journal::read`], accepting the record only if it names `store_id` and
    /// holds nothing but the account's own variables (`vars`): a planted record
    /// cannot write a client secret or another account's variable into the store.
    pub fn read_for(
        &self,
        store_id: &str,
        account_key: &str,
        vars: &[impl AsRef<str>],
    ) -> std::io::Result<Option<Record>> {
        let Some(rec) = self.read(store_id, account_key)? else {
            return Ok(None);
        };
        let path = self.path_for(store_id, account_key);
        let bad = |what: String| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "journal record {} {what}; it is refused and left in place",
                    path.display()
                ),
            )
        };
        if rec.store != store_id {
            return Err(bad(format!(
                "is for another store (`{}`)",
                crate::scrub::external(&rec.store)
            )));
        }
        if let Some(e) = rec
            .entries
            .iter()
            .find(|e| !vars.iter().any(|v| v.as_ref() == e.var))
        {
            return Err(bad(format!(
                "holds `{}`, which is not a variable of this account",
                crate::scrub::external(&e.var)
            )));
        }
        Ok(Some(rec))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record file for one store + account.
    pub fn path_for(&self, store_id: &str, account_key: &str) -> PathBuf {
        self.dir.join(file_name(store_id, account_key))
    }

    pub fn read(&self, store_id: &str, account_key: &str) -> std::io::Result<Option<Record>> {
        let name = file_name(store_id, account_key);
        if let Some(listed) = &self.listing
            && !listed.contains(std::ffi::OsStr::new(&name))
        {
            return Ok(None);
        }
        let path = self.dir.join(name);
        match read_record_file(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "journal record {} is damaged ({e}); it is left in place",
                        path.display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records `entries`, merged over any pending ones for the same variables, and
    /// returns the record's path. Durable when this returns.
    pub fn record(
        &self,
        store_id: &str,
        account: &str,
        account_key: &str,
        entries: &[Entry],
        now: Timestamp,
    ) -> std::io::Result<PathBuf> {
        let path = self.path_for(store_id, account_key);
        let mut merged: Vec<Entry> = match self.read(store_id, account_key) {
            Ok(Some(r)) => r.entries,
            _ => Vec::new(),
        };
        for e in entries {
            merged.retain(|m| m.var != e.var);
            merged.push(e.clone());
        }
        // Durable credentials first: the write-back order follows the record.
        merged.sort_by_key(|e| !e.durable);
        let rec = Record {
            version: 1,
            store: store_id.to_owned(),
            account: account.to_owned(),
            created_at: now,
            entries: merged,
        };
        let json = serde_json::to_vec_pretty(&rec).map_err(std::io::Error::other)?;
        // Visible under its final name before the fsyncs: a kill right after the
        // rename keeps the token (see `files::write_private_visible_first`).
        files::write_private_visible_first(&path, &json)?;
        Ok(path)
    }

    /// Removes the record once the store holds its entries.
    pub fn clear(&self, store_id: &str, account_key: &str) -> std::io::Result<()> {
        let path = self.path_for(store_id, account_key);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                if let Ok(d) = std::fs::File::open(&self.dir) {
                    let _ = d.sync_all();
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every pending record (any store), for `doctor` and status.
    pub fn pending(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `<account key>.<12 hex digits of the store id's SHA-256>.json`.
fn file_name(store_id: &str, account_key: &str) -> String {
    use sha2::Digest;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let h = sha2::Sha256::digest(store_id.as_bytes());
    let mut name = String::with_capacity(account_key.len() + 18);
    name.push_str(account_key);
    name.push('.');
    for b in &h[..6] {
        name.push(HEX[usize::from(b >> 4)] as char);
        name.push(HEX[usize::from(b & 0xf)] as char);
    }
    name.push_str(".json");
    name
}

/// Reads a record without following a symlink, refusing one others could write.
fn read_record_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "journal record {} is a symbolic link; refused",
                        path.display()
                    ),
                )
            } else {
                e
            }
        })?;
    let m = f.metadata()?;
    check_record_meta(path, &m)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut buf = Vec::new();
    // A record is a few hundred bytes; a huge file is not one.
    f.by_ref().take(1 << 20).read_to_end(&mut buf)?;
    Ok(buf)
}

fn check_record_file(path: &Path) -> Result<(), String> {
    let m = std::fs::symlink_metadata(path)
        .map_err(|e| format!("{} cannot be inspected: {e}", path.display()))?;
    if m.file_type().is_symlink() {
        return Err(format!("{} is a symbolic link", path.display()));
    }
    check_record_meta(path, &m)
}

fn check_record_meta(path: &Path, m: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if !m.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if m.uid() != me {
        return Err(format!(
            "{} belongs to user id {}, not to you",
            path.display(),
            m.uid()
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by other users (mode {:o})",
            path.display(),
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn entry(var: &str, v: &str, durable: bool) -> Entry {
        Entry {
            var: var.into(),
            value: Secret::new(v),
            expires_at: None,
            updated_at: Timestamp::UNIX_EPOCH,
            durable,
        }
    }

    #[test]
    fn record_merges_and_orders_durable_first() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        j.record(
            "s",
            "tiktok",
            "tiktok",
            &[entry("A", "1", false)],
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        let p = j
            .record(
                "s",
                "tiktok",
                "tiktok",
                &[entry("R", "2", true), entry("A", "3", false)],
                Timestamp::UNIX_EPOCH,
            )
            .unwrap();
        assert_eq!(files::mode_of(&p).unwrap(), Some(0o600));
        let r = j.read("s", "tiktok").unwrap().unwrap();
        let got: Vec<_> = r
            .entries
            .iter()
            .map(|e| (e.var.as_str(), e.value.expose()))
            .collect();
        assert_eq!(got, vec![("R", "2"), ("A", "3")]);
        assert!(j.read("other-store", "tiktok").unwrap().is_none());
        j.clear("s", "tiktok").unwrap();
        assert!(j.read("s", "tiktok").unwrap().is_none());
    }

    #[test]
    fn a_listed_journal_reads_the_records_that_were_there_and_checks_them() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        // No journal directory yet: nothing pending.
        assert!(j.listed().read("s", "tiktok").unwrap().is_none());
        j.record(
            "s",
            "tiktok",
            "tiktok",
            &[entry("R", "1", true)],
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        let listed = j.listed();
        assert!(listed.read("s", "tiktok").unwrap().is_some());
        assert!(listed.read("s", "other").unwrap().is_none());
        assert!(listed.read("other-store", "tiktok").unwrap().is_none());
        // Still checked as it is read.
        use std::os::unix::fs::PermissionsExt;
        let p = j.path_for("s", "tiktok");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(listed.read("s", "tiktok").is_err());
        // The name is the one the unlisted journal opens.
        assert_eq!(p.file_name().unwrap().to_str().unwrap(), {
            use sha2::Digest;
            let h = sha2::Sha256::digest(b"s");
            let short: String = h.iter().take(6).map(|b| format!("{b:02x}")).collect();
            format!("tiktok.{short}.json")
        });
    }

    #[test]
    fn records_are_accepted_only_for_the_accounts_own_variables() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        let own = vec![
            "TIKTOK_REFRESH_TOKEN".to_owned(),
            "TIKTOK_ACCESS_TOKEN".to_owned(),
        ];
        j.record(
            "s",
            "tiktok",
            "tiktok",
            &[entry("TIKTOK_CLIENT_SECRET", "planted", true)],
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        let e = j.read_for("s", "tiktok", &own).unwrap_err();
        assert!(
            e.to_string().contains("not a variable of this account"),
            "{e}"
        );
        j.record(
            "s",
            "tiktok",
            "tiktok",
            &[entry("TIKTOK_REFRESH_TOKEN", "ok", true)],
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        // The planted entry is still merged in: refused as a whole.
        assert!(j.read_for("s", "tiktok", &own).is_err());
        j.clear("s", "tiktok").unwrap();
        j.record(
            "s",
            "tiktok",
            "tiktok",
            &[entry("TIKTOK_REFRESH_TOKEN", "ok", true)],
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        assert!(j.read_for("s", "tiktok", &own).unwrap().is_some());
        assert!(j.check().is_ok());
        let p = j.path_for("s", "tiktok");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(j.read("s", "tiktok").is_err());
        assert_eq!(j.check().unwrap_err().exit_code(), 2);
    }
}
