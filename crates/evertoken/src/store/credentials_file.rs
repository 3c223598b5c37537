//! The local credentials file (SPEC §3): a YAML map from variable name to a value,
//! or to `{value, expires_at, updated_at}`. Both forms are read; evertoken writes
//! the second. Entries evertoken does not manage are kept as they are, in order.
//! Comments are NOT kept when evertoken rewrites the file (documented in the README).
//!
//! The file is 0600 in a 0700 directory, replaced atomically, and refused when
//! others can read it. Writers on one host serialise on a sidecar `.lock` file
//! (rename replaces the inode, so the data file itself cannot carry the lock).
//! Parsed contents are cached and re-read only when the file changed on disk.
//!
//! Performance (issue 9): concurrent async writers go through a group commit
//! ([`CredentialsFile::write_grouped`]): each queues its entries, one flusher on a
//! blocking thread applies every queued entry and replaces the file once, and each
//! caller returns only after the replace holding its entries is durable. At
//! 10,000 accounts this turns ~20,000 whole-file rewrites into a few hundred, and
//! the rotation journal protects every token until its caller returns.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde_norway::{Mapping, Value};

use super::{Entry, StoreError};
use crate::error::{Error, Result};
use crate::files;
use crate::lock::FileLock;
use crate::secret::Secret;

/// One entry as read from the file.
#[derive(Clone, Debug)]
pub struct FileEntry {
    /// `None` for a metadata-only entry (the value lives in the keychain).
    pub value: Option<Secret>,
    pub expires_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    dev: u64,
    ino: u64,
    mtime_ns: i128,
    size: u64,
}

struct Loaded {
    stamp: Option<Stamp>,
    doc: Mapping,
    /// Each entry's YAML text as last written (issue 9): a flush re-renders only the
    /// entries it changed and concatenates the rest, instead of serialising and
    /// copying the whole 20,000-entry map each time.
    rendered: std::collections::HashMap<String, String>,
    /// A flush of this process is replacing the file: the cache is already the
    /// newest content, so readers must not re-parse the file when its stamp moves.
    flushing: bool,
}

pub struct CredentialsFile {
    path: PathBuf,
    cache: Mutex<Option<Loaded>>,
    /// The group-commit queue (see the module docs).
    commit: Mutex<Commit>,
}

/// Writers waiting for the next flush, and whether a flusher is running.
#[derive(Default)]
struct Commit {
    queue: Vec<Waiter>,
    flushing: bool,
}

struct Waiter {
    entries: Vec<Entry>,
    with_value: bool,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

const FIELDS: &[&str] = &["value", "expires_at", "updated_at"];

impl CredentialsFile {
    /// Opens (and, if present, parses and checks) the file. Errors here are
    /// configuration errors: exit 2 before anything is contacted.
    pub fn open(path: PathBuf) -> Result<Self> {
        let f = Self {
            path,
            cache: Mutex::new(None),
            commit: Mutex::new(Commit::default()),
        };
        f.check_mode()?;
        f.with_doc(|_| ()).map_err(|e| {
            let mut err = Error::config(e.message);
            err.hint = e.hint;
            err
        })?;
        Ok(f)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_mode(&self) -> Result<()> {
        let mode = files::mode_of(&self.path).map_err(|e| {
            Error::config(format!(
                "cannot stat credentials file {}: {e}",
                self.path.display()
            ))
        })?;
        if let Some(m) = mode
            && files::too_open(m)
        {
            return Err(Error::config(format!(
                "credentials file {} is readable by others (mode {m:04o}); refusing to use it",
                self.path.display()
            ))
            .with_hint(format!(
                "run `chmod 600 {}` (and check who may have read it)",
                self.path.display()
            )));
        }
        Ok(())
    }

    fn stamp(&self) -> std::io::Result<Option<Stamp>> {
        match fs::metadata(&self.path) {
            Ok(m) => Ok(Some(Stamp {
                dev: m.dev(),
                ino: m.ino(),
                mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
                size: m.size(),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Runs `f` on the current document, re-read from disk only if the file
    /// changed. The cache lock is held while parsing, so concurrent readers wait for
    /// one parse instead of each doing their own.
    fn with_doc<T>(&self, f: impl FnOnce(&mut Loaded) -> T) -> Result<T, StoreError> {
        let stamp = self.stamp().map_err(|e| self.io_err("stat", e))?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = cache.as_mut()
            && (l.flushing || l.stamp == stamp && stamp.is_some())
        {
            return Ok(f(l));
        }
        let doc = match stamp {
            None => Mapping::new(),
            Some(_) => {
                let text = match fs::read_to_string(&self.path) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                    Err(e) => return Err(self.io_err("read", e)),
                };
                parse(&text, &self.path)?
            }
        };
        let loaded = cache.insert(Loaded {
            stamp,
            doc,
            rendered: Default::default(),
            flushing: false,
        });
        Ok(f(loaded))
    }

    fn io_err(&self, what: &str, e: std::io::Error) -> StoreError {
        StoreError::permanent(format!(
            "cannot {what} credentials file {}: {e}",
            self.path.display()
        ))
    }

    pub fn get(&self, var: &str) -> Result<Option<FileEntry>, StoreError> {
        self.with_doc(|l| {
            l.doc
                .get(var)
                .map(|v| entry_of(v).expect("validated when parsed"))
        })
    }

    /// All variable names in the file.
    pub fn vars(&self) -> Result<Vec<String>, StoreError> {
        self.with_doc(|l| {
            l.doc
                .keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
    }

    /// Read-modify-write under the sidecar lock: re-reads the file from disk,
    /// applies `entries`, and replaces the file atomically. `with_value: false`
    /// writes metadata only (the value went to the keychain).
    pub fn write(&self, entries: &[Entry], with_value: bool) -> Result<(), StoreError> {
        self.write_many(&[(entries, with_value)])
    }

    /// Group commit for async callers: queues `entries` and waits until a replace
    /// of the file that holds them is durable. Concurrent callers share one
    /// replace; the flush runs on a blocking thread, never on an async worker.
    pub async fn write_grouped(
        self: &Arc<Self>,
        entries: Vec<Entry>,
        with_value: bool,
    ) -> Result<(), StoreError> {
        let (done, wait) = tokio::sync::oneshot::channel();
        let lead = {
            let mut c = self.commit.lock().unwrap_or_else(|p| p.into_inner());
            c.queue.push(Waiter {
                entries,
                with_value,
                done,
            });
            !std::mem::replace(&mut c.flushing, true)
        };
        if lead {
            let me = self.clone();
            tokio::task::spawn_blocking(move || me.flush_queue());
        }
        wait.await.unwrap_or_else(|_| {
            Err(StoreError::transient(format!(
                "the writer of credentials file {} stopped before writing",
                self.path.display()
            )))
        })
    }

    /// The flusher: writes queued batches until the queue is empty, answering
    /// every waiter of a batch with that batch's outcome.
    fn flush_queue(&self) {
        loop {
            let batch = {
                let mut c = self.commit.lock().unwrap_or_else(|p| p.into_inner());
                if c.queue.is_empty() {
                    c.flushing = false;
                    return;
                }
                std::mem::take(&mut c.queue)
            };
            let jobs: Vec<(&[Entry], bool)> = batch
                .iter()
                .map(|w| (w.entries.as_slice(), w.with_value))
                .collect();
            // A panic must not strand the waiters (they would wait forever).
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.write_many(&jobs)))
                    .unwrap_or_else(|_| {
                        Err(StoreError::permanent(format!(
                            "internal error while writing credentials file {}",
                            self.path.display()
                        )))
                    });
            drop(jobs);
            for w in batch {
                let _ = w.done.send(result.clone());
            }
        }
    }

    /// One locked read-modify-write applying several writers' entries in order.
    fn write_many(&self, jobs: &[(&[Entry], bool)]) -> Result<(), StoreError> {
        let lock_path = sidecar(&self.path);
        let _lock = FileLock::acquire_blocking(&lock_path, std::time::Duration::from_secs(60))
            .map_err(|e| StoreError::transient(e.to_string()))?;
        // Apply to the cached document (re-read first if another process changed
        // the file) and build the new text; the file is written outside the cache
        // lock so readers are not held up by the fsync.
        let bytes = self.with_doc(|l| -> Result<Vec<u8>, StoreError> {
            l.flushing = true;
            for (entries, with_value) in jobs {
                for e in entries.iter() {
                    let mut m = Mapping::new();
                    if *with_value {
                        m.insert("value".into(), e.value.expose().into());
                    }
                    if let Some(t) = e.expires_at {
                        m.insert("expires_at".into(), crate::clock::rfc3339(t).into());
                    }
                    m.insert(
                        "updated_at".into(),
                        crate::clock::rfc3339(e.updated_at).into(),
                    );
                    l.doc
                        .insert(Value::String(e.var.clone()), Value::Mapping(m));
                    l.rendered.remove(&e.var);
                }
            }
            render(l)
        })?;
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                // The cache holds entries the file does not: drop it, re-read.
                *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
                return Err(e);
            }
        };
        let written = files::write_private_atomic(&self.path, &bytes)
            .map_err(|e| self.io_err("write", e))
            .and_then(|()| self.stamp().map_err(|e| self.io_err("stat", e)));
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        match written {
            // The cache now describes what is on disk.
            Ok(stamp) => {
                if let Some(l) = cache.as_mut() {
                    l.stamp = stamp;
                    l.flushing = false;
                }
                Ok(())
            }
            Err(e) => {
                // The cache holds entries the file does not: drop it, re-read.
                *cache = None;
                Err(e)
            }
        }
    }
}

const HEADER: &str =
    "# evertoken credentials: written by evertoken (comments are not kept). Mode 0600.\n";

/// The file's text: the header and each entry's YAML, in order. Entries rendered
/// by an earlier write are reused; a top-level block mapping is the concatenation
/// of its entries, so this equals serialising the whole map (tested below).
fn render(l: &mut Loaded) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(
        HEADER.len() + l.rendered.values().map(String::len).sum::<usize>() + 4096,
    );
    out.extend_from_slice(HEADER.as_bytes());
    for (k, v) in &l.doc {
        let Some(key) = k.as_str() else { continue };
        if !l.rendered.contains_key(key) {
            let mut one = Mapping::with_capacity(1);
            one.insert(k.clone(), v.clone());
            let text = serde_norway::to_string(&one).map_err(|e| {
                StoreError::permanent(format!("cannot serialise credentials file: {e}"))
            })?;
            l.rendered.insert(key.to_owned(), text);
        }
        if let Some(text) = l.rendered.get(key) {
            out.extend_from_slice(text.as_bytes());
        }
    }
    Ok(out)
}

fn sidecar(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Parses and validates the whole file, so that later reads cannot fail.
pub fn parse(text: &str, path: &Path) -> Result<Mapping, StoreError> {
    if text.trim().is_empty() {
        return Ok(Mapping::new());
    }
    let file = path.display();
    crate::config::check_nesting(text)
        .map_err(|e| StoreError::permanent(format!("credentials file {file}: {e}")))?;
    let value: Value = serde_norway::from_str(text).map_err(|e| {
        let loc = e
            .location()
            .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
            .unwrap_or_default();
        StoreError::permanent(format!(
            "credentials file {file}{loc} is not valid YAML: {}",
            strip_loc(&e.to_string())
        ))
        .with_hint("fix the YAML, or move the file away and re-run `evertoken auth login`")
    })?;
    let doc = match value {
        Value::Mapping(m) => m,
        Value::Null => Mapping::new(),
        _ => {
            return Err(StoreError::permanent(format!(
                "credentials file {file} must be a map of VARIABLE: value"
            ))
            .with_hint("for example `TIKTOK_REFRESH_TOKEN: \"rft.…\"`"));
        }
    };
    for (k, v) in &doc {
        let Some(key) = k.as_str() else {
            return Err(StoreError::permanent(format!(
                "credentials file {file}: key {k:?} is not a variable name"
            )));
        };
        entry_of(v).map_err(|what| {
            StoreError::permanent(format!("credentials file {file}: `{key}`{what}")).with_hint(
                "write `VAR: value` or `VAR: {value: …, expires_at: 2027-01-01T00:00:00Z}`",
            )
        })?;
    }
    Ok(doc)
}

fn strip_loc(msg: &str) -> &str {
    msg.find(" at line ").map(|i| &msg[..i]).unwrap_or(msg)
}

/// One entry's value, or what is wrong with it (suffix for "`KEY`…").
fn entry_of(v: &Value) -> std::result::Result<FileEntry, String> {
    match v {
        Value::String(s) => Ok(FileEntry {
            value: Some(Secret::from_outside(
                s.clone(),
                "a value in the credentials file",
            )),
            expires_at: None,
            updated_at: None,
        }),
        Value::Mapping(m) => {
            let mut out = FileEntry {
                value: None,
                expires_at: None,
                updated_at: None,
            };
            for (k, val) in m {
                let key = k.as_str().unwrap_or("");
                match key {
                    "value" => match val {
                        Value::String(s) => {
                            out.value = Some(Secret::from_outside(
                                s.clone(),
                                "a value in the credentials file",
                            ))
                        }
                        _ => return Err(".value: must be a string (quote it)".into()),
                    },
                    "expires_at" | "updated_at" => {
                        let t = match val {
                            Value::Null => None,
                            Value::String(s) => Some(s.parse::<Timestamp>().map_err(|e| {
                                format!(".{key}: `{s}` is not an RFC 3339 timestamp ({e})")
                            })?),
                            _ => {
                                return Err(format!(
                                    ".{key}: must be an RFC 3339 timestamp like 2027-01-01T00:00:00Z"
                                ));
                            }
                        };
                        if key == "expires_at" {
                            out.expires_at = t
                        } else {
                            out.updated_at = t
                        }
                    }
                    other => {
                        let cands: Vec<String> = FIELDS.iter().map(|s| s.to_string()).collect();
                        let hint = crate::config::did_you_mean(other, &cands)
                            .map(|s| format!(" (did you mean `{s}`?)"))
                            .unwrap_or_default();
                        return Err(format!(".{other}: unknown key{hint}"));
                    }
                }
            }
            Ok(out)
        }
        Value::Number(_) | Value::Bool(_) => Err(": must be a string (quote it)".into()),
        Value::Null => Err(": has no value".into()),
        _ => Err(": must be a string or a map with `value`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_forms() {
        let doc = parse(
            "A: plain-value-1\nB:\n  value: \"v2\"\n  expires_at: 2027-11-20T09:00:00Z\n",
            Path::new("c.yaml"),
        )
        .unwrap();
        let a = entry_of(doc.get("A").unwrap()).unwrap();
        assert_eq!(a.value.unwrap().expose(), "plain-value-1");
        let b = entry_of(doc.get("B").unwrap()).unwrap();
        assert_eq!(b.expires_at.unwrap().to_string(), "2027-11-20T09:00:00Z");
    }

    #[test]
    fn bad_entries_name_the_key() {
        let e = parse("B:\n  valeu: x\n", Path::new("c.yaml")).unwrap_err();
        assert!(
            e.message
                .contains("`B`.valeu: unknown key (did you mean `value`?)"),
            "{}",
            e.message
        );
        let e = parse("B: {value: x, expires_at: soon}\n", Path::new("c.yaml")).unwrap_err();
        assert!(e.message.contains("`B`.expires_at"), "{}", e.message);
        let e = parse("- a\n- b\n", Path::new("c.yaml")).unwrap_err();
        assert!(e.message.contains("must be a map"), "{}", e.message);
        let e = parse("A: [unclosed\n", Path::new("c.yaml")).unwrap_err();
        assert!(e.message.contains("not valid YAML"), "{}", e.message);
    }

    #[test]
    fn write_keeps_other_entries_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.yaml");
        fs::write(&path, "OTHER: keep-me\n").unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let f = CredentialsFile::open(path.clone()).unwrap();
        let now: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        f.write(
            &[Entry {
                var: "X".into(),
                value: Secret::new("new-value"),
                expires_at: Some(now),
                updated_at: now,
                durable: true,
            }],
            true,
        )
        .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("OTHER: keep-me"), "{text}");
        assert_eq!(
            f.get("X").unwrap().unwrap().value.unwrap().expose(),
            "new-value"
        );
        assert_eq!(files::mode_of(&path).unwrap(), Some(0o600));
        // A fresh reader sees the same.
        let g = CredentialsFile::open(path).unwrap();
        assert_eq!(g.get("X").unwrap().unwrap().expires_at, Some(now));
    }

    #[test]
    fn rendering_entry_by_entry_equals_serialising_the_whole_map() {
        let text = "A: plain-value-1\nB:\n  value: \"v: 2 # not a comment\"\n  expires_at: 2027-11-20T09:00:00Z\n'weird key': \"yes\"\nC: \"line\\nbreak\"\nD: '123'\n";
        let doc = parse(text, Path::new("c.yaml")).unwrap();
        let whole = serde_norway::to_string(&doc).unwrap();
        let mut l = Loaded {
            stamp: None,
            doc: doc.clone(),
            rendered: Default::default(),
            flushing: false,
        };
        let out = String::from_utf8(render(&mut l).unwrap()).unwrap();
        assert_eq!(out, format!("{HEADER}{whole}"));
        assert_eq!(parse(&out, Path::new("c.yaml")).unwrap(), doc);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_grouped_writes_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.yaml");
        fs::write(&path, "OTHER: keep-me\n").unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let f = Arc::new(CredentialsFile::open(path.clone()).unwrap());
        let now: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let writes = (0..100).map(|i| {
            let f = f.clone();
            async move {
                let e = Entry {
                    var: format!("V{i}"),
                    value: Secret::new(format!("value-{i}")),
                    expires_at: None,
                    updated_at: now,
                    durable: true,
                };
                f.write_grouped(vec![e], true).await
            }
        });
        for r in futures::future::join_all(writes).await {
            r.unwrap();
        }
        let g = CredentialsFile::open(path).unwrap();
        for i in 0..100 {
            let v = g.get(&format!("V{i}")).unwrap().unwrap().value.unwrap();
            assert_eq!(v.expose(), format!("value-{i}"));
        }
        assert_eq!(
            g.get("OTHER").unwrap().unwrap().value.unwrap().expose(),
            "keep-me"
        );
    }

    #[test]
    fn refuses_a_file_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.yaml");
        fs::write(&path, "A: b\n").unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let e = CredentialsFile::open(path).err().unwrap();
        assert!(e.message.contains("readable by others"), "{}", e.message);
        assert!(e.hint.unwrap().contains("chmod 600"));
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// No credentials file content panics the parser; every rejection names the file.
        #[test]
        fn arbitrary_credentials_text_never_panics(text in "\\PC{0,200}") {
            if let Err(e) = parse(&text, Path::new("/f/credentials.yaml")) {
                prop_assert!(e.message.contains("/f/credentials.yaml"), "{}", e.message);
            }
        }

        #[test]
        fn entries_of_any_shape_never_panic(key in "[A-Z_]{1,10}", field in "[a-z_]{1,12}", value in "\\PC{0,30}") {
            let text = format!("{key}:\n  {field}: {value:?}\n");
            let _ = parse(&text, Path::new("/f/credentials.yaml"));
        }
    }
}
