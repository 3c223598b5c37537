//! The local credentials file: a YAML map from variable name to a value,
//! or to `{value, expires_at, updated_at}`. Both forms are read; evertoken writes
//! the second. Entries evertoken does not manage are kept as they are, in order.
//! Comments are NOT kept when evertoken rewrites the file (documented in the README).
//!
//! The file is 0600 in a 0700 directory, replaced atomically, and refused when
//! others can read it. Writers on one host serialise on a sidecar `.lock` file
//! (rename replaces the inode, so the data file itself cannot carry the lock).
//! Parsed contents are cached and re-read only when the file changed on disk.
//!
//! Memory and speed (issue 15): entries live in a compact ordered map (name →
//! value, expiry, update time), not in generic YAML values. The file's canonical
//! form (what evertoken writes: every scalar double-quoted, so that no YAML reader
//! takes a value for a boolean, a date or a number) is read by a line parser; any
//! other YAML falls back to the full parser, which also words the errors. A flush
//! renders the map once into the new file's bytes; nothing else holds the text.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use jiff::Timestamp;
use serde_norway::Value;

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

/// One entry as held in memory.
#[derive(Clone, Debug)]
pub struct Item {
    pub value: Option<Secret>,
    pub expires_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    /// Written as `KEY: "value"` (a value the user put there), not as a map.
    pub plain: bool,
}

/// The whole file, in order.
pub type Entries = IndexMap<Box<str>, Item>;

struct Loaded {
    stamp: Option<Stamp>,
    doc: Entries,
    /// A flush of this process is replacing the file: the cache is already the
    /// newest content, so readers must not re-parse the file when its stamp moves.
    flushing: bool,
}

pub struct CredentialsFile {
    path: PathBuf,
    cache: Mutex<Option<Loaded>>,
    /// Reads answer from the loaded contents without a `stat` each (see
    /// [`CredentialsFile::hold`]); writes always look at the file.
    held: AtomicBool,
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
            held: AtomicBool::new(false),
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
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // Looked at under the cache lock: a stamp taken before it could predate a
        // flush of this process that finished meanwhile (which updated the cache's
        // stamp), and would send this read to parse the whole file again while
        // the old copy is still alive (issue 15: two copies at the peak of a
        // 10,000-account run, and a cache stamped with the older stamp).
        let stamp = self.stamp().map_err(|e| self.io_err("stat", e))?;
        if let Some(l) = cache.as_mut()
            && (l.flushing || l.stamp == stamp && stamp.is_some())
        {
            return Ok(f(l));
        }
        // The stale copy goes before the new one is built, not after.
        *cache = None;
        let doc = match stamp {
            None => Entries::new(),
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
            flushing: false,
        });
        Ok(f(loaded))
    }

    /// From now on, reads answer from the contents as loaded (read once more now
    /// if the file changed) instead of a `stat` per read to see whether it
    /// changed: for a read-only pass over every account (`auth status`, issue 15:
    /// 20,000 `stat`s at 10,000 accounts), which then reports one consistent
    /// view of the file. Writes still re-read a file another process changed.
    pub fn hold(&self) -> Result<(), StoreError> {
        self.with_doc(|_| ())?;
        self.held.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// [`CredentialsFile::with_doc`] for a read: from the loaded contents alone
    /// while [`CredentialsFile::hold`] is in effect.
    fn with_doc_read<T>(&self, f: impl FnOnce(&Loaded) -> T) -> Result<T, StoreError> {
        if self.held.load(Ordering::Relaxed) {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(l) = cache.as_ref() {
                return Ok(f(l));
            }
        }
        self.with_doc(|l| f(l))
    }

    fn io_err(&self, what: &str, e: std::io::Error) -> StoreError {
        StoreError::permanent(format!(
            "cannot {what} credentials file {}: {e}",
            self.path.display()
        ))
    }

    pub fn get(&self, var: &str) -> Result<Option<FileEntry>, StoreError> {
        self.with_doc_read(|l| {
            l.doc.get(var).map(|i| FileEntry {
                value: i.value.as_ref().map(as_token),
                expires_at: i.expires_at,
                updated_at: i.updated_at,
            })
        })
    }

    /// All variable names in the file.
    pub fn vars(&self) -> Result<Vec<String>, StoreError> {
        self.with_doc_read(|l| l.doc.keys().map(|k| k.to_string()).collect())
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
                    let item = Item {
                        value: with_value.then(|| e.value.clone()),
                        expires_at: e.expires_at,
                        updated_at: Some(e.updated_at),
                        plain: false,
                    };
                    match l.doc.get_mut(e.var.as_str()) {
                        Some(old) => *old = item,
                        None => {
                            l.doc.insert(e.var.as_str().into(), item);
                        }
                    }
                }
            }
            Ok(render(&l.doc))
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

/// The file's text in its canonical form: the header, then each entry in order,
/// every scalar double-quoted (YAML 1.1 and 1.2 readers alike see strings, never
/// `no` as false or `2026-01-01` as a date).
fn render(doc: &Entries) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(HEADER.len() + doc.len() * 160);
    out.push_str(HEADER);
    for (k, i) in doc {
        write_key(&mut out, k);
        if i.plain
            && let Some(v) = &i.value
        {
            out.push_str(": ");
            write_quoted(&mut out, v.expose());
            out.push('\n');
            continue;
        }
        out.push_str(":\n");
        if let Some(v) = &i.value {
            out.push_str("  value: ");
            write_quoted(&mut out, v.expose());
            out.push('\n');
        }
        for (name, t) in [("expires_at", i.expires_at), ("updated_at", i.updated_at)] {
            if let Some(t) = t {
                let _ = writeln!(out, "  {name}: \"{}\"", crate::clock::rfc3339(t));
            }
        }
        if i.value.is_none() && i.expires_at.is_none() && i.updated_at.is_none() {
            // Nothing to say but the name: an explicit empty map, not null.
            out.truncate(out.len() - 1);
            out.push_str(" {}\n");
        }
    }
    out.into_bytes()
}

/// YAML 1.1 words for booleans and null: plain keys spelled like these are quoted.
const RESERVED: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

fn plain_key(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(k))
}

fn write_key(out: &mut String, k: &str) {
    if plain_key(k) {
        out.push_str(k);
    } else {
        write_quoted(out, k);
    }
}

/// A YAML double-quoted scalar: printable characters as they are, `"` and `\`
/// escaped, everything else (controls, DEL, C1, BOM, line separators) as `\uXXXX`.
fn write_quoted(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..
                if !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') =>
            {
                out.push(c)
            }
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
}

fn sidecar(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Parses and validates the whole file, so that later reads cannot fail: the
/// canonical form by [`parse_canonical`], anything else by the YAML parser.
pub fn parse(text: &str, path: &Path) -> Result<Entries, StoreError> {
    if let Some(doc) = parse_canonical(text) {
        return Ok(doc);
    }
    parse_yaml(text, path)
}

/// The full YAML parser: any form a user may write, and the error messages.
pub fn parse_yaml(text: &str, path: &Path) -> Result<Entries, StoreError> {
    if text.trim().is_empty() {
        return Ok(Entries::new());
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
        Value::Null => return Ok(Entries::new()),
        _ => {
            return Err(StoreError::permanent(format!(
                "credentials file {file} must be a map of VARIABLE: value"
            ))
            .with_hint("for example `TIKTOK_REFRESH_TOKEN: \"rft.…\"`"));
        }
    };
    let mut out = Entries::with_capacity(doc.len());
    for (k, v) in &doc {
        let Some(key) = k.as_str() else {
            return Err(StoreError::permanent(format!(
                "credentials file {file}: key {k:?} is not a variable name"
            )));
        };
        let item = entry_of(v).map_err(|what| {
            StoreError::permanent(format!("credentials file {file}: `{key}`{what}")).with_hint(
                "write `VAR: value` or `VAR: {value: …, expires_at: 2027-01-01T00:00:00Z}`",
            )
        })?;
        out.insert(key.into(), item);
    }
    Ok(out)
}

/// The line parser for the form evertoken writes (and simple hand-written files):
/// comment and blank lines; `KEY: scalar`; `KEY:` followed by `  field: scalar`
/// lines for `value`, `expires_at`, `updated_at`. A scalar is double-quoted, or
/// plain when it cannot be anything but a string (a letter first; no `:`, `#`,
/// spaces or YAML words like `no`) or, for the two times, an RFC 3339 timestamp.
/// `None` for anything else (the full parser then decides): it never guesses.
pub fn parse_canonical(text: &str) -> Option<Entries> {
    let mut out = Entries::new();
    let mut open: Option<(Box<str>, Item)> = None;
    let close = |open: &mut Option<(Box<str>, Item)>, out: &mut Entries| -> Option<()> {
        if let Some((k, item)) = open.take() {
            if item.value.is_none() && item.expires_at.is_none() && item.updated_at.is_none() {
                return None;
            }
            if out.insert(k, item).is_some() {
                return None;
            }
        }
        Some(())
    };
    for line in text.split('\n') {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(field) = line.strip_prefix("  ") {
            let (_, item) = open.as_mut()?;
            let (name, rest) = field.split_once(':')?;
            let raw = rest.strip_prefix(' ')?;
            match name {
                "value" if item.value.is_none() => {
                    item.value = Some(Secret::new(scalar(raw, false)?));
                }
                "expires_at" if item.expires_at.is_none() => {
                    item.expires_at = Some(timestamp(&time_scalar(raw)?)?);
                }
                "updated_at" if item.updated_at.is_none() => {
                    item.updated_at = Some(timestamp(&time_scalar(raw)?)?);
                }
                _ => return None,
            }
            continue;
        }
        close(&mut open, &mut out)?;
        let (key, rest) = split_key(line)?;
        if rest.is_empty() {
            open = Some((
                key.into(),
                Item {
                    value: None,
                    expires_at: None,
                    updated_at: None,
                    plain: false,
                },
            ));
        } else {
            let value = scalar(rest.strip_prefix(' ')?, false)?;
            if out
                .insert(
                    key.into(),
                    Item {
                        value: Some(Secret::new(value)),
                        expires_at: None,
                        updated_at: None,
                        plain: true,
                    },
                )
                .is_some()
            {
                return None;
            }
        }
    }
    close(&mut open, &mut out)?;
    Some(out)
}

/// An RFC 3339 time; `YYYY-MM-DDTHH:MM:SSZ` (what evertoken writes) without the
/// general parser, which is most of the cost of reading 20,000 entries.
fn timestamp(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let exact = b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z';
    if !exact {
        return s.parse().ok();
    }
    let num = |r: std::ops::Range<usize>| -> Option<i16> {
        b[r].iter().try_fold(0i16, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + i16::from(d - b'0'))
        })
    };
    let date = jiff::civil::Date::new(num(0..4)?, num(5..7)? as i8, num(8..10)? as i8).ok()?;
    let time = jiff::civil::Time::new(
        num(11..13)? as i8,
        num(14..16)? as i8,
        num(17..19)? as i8,
        0,
    )
    .ok()?;
    let days = i64::from(
        date.since(jiff::civil::Date::constant(1970, 1, 1))
            .ok()?
            .get_days(),
    );
    let secs = days * 86_400
        + i64::from(time.hour()) * 3600
        + i64::from(time.minute()) * 60
        + i64::from(time.second());
    Timestamp::from_second(secs).ok()
}

/// `KEY:` or `"KEY":` at the start of a line; the rest after the colon.
fn split_key(line: &str) -> Option<(String, &str)> {
    if line.starts_with('"') {
        let end = quoted_end(line)?;
        let key = unquote(&line[..end])?;
        return Some((key, line[end..].strip_prefix(':')?));
    }
    let (key, rest) = line.split_once(':')?;
    plain_key(key).then(|| (key.to_owned(), rest))
}

/// The byte index just past the closing quote of the scalar `s` starts with.
fn quoted_end(s: &str) -> Option<usize> {
    // Bytewise: `"` and `\` never occur inside a multi-byte UTF-8 character.
    let mut escaped = false;
    for (i, &c) in s.as_bytes().iter().enumerate().skip(1) {
        match c {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// A plain timestamp scalar (what evertoken writes), borrowed; anything else
/// (quoted, odd characters) through [`scalar`].
fn time_scalar(raw: &str) -> Option<std::borrow::Cow<'_, str>> {
    let plain = raw.starts_with(|c: char| c.is_ascii_digit())
        && raw
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b':' | b'.' | b'+' | b'-'));
    if plain {
        Some(std::borrow::Cow::Borrowed(raw))
    } else {
        scalar(raw, true).map(std::borrow::Cow::Owned)
    }
}

/// One scalar that is the whole rest of a line.
fn scalar(raw: &str, time: bool) -> Option<String> {
    if raw.starts_with('"') {
        return (quoted_end(raw)? == raw.len())
            .then(|| unquote(raw))
            .flatten();
    }
    let ok = if time {
        raw.starts_with(|c: char| c.is_ascii_digit())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '+' | '-'))
    } else {
        raw.starts_with(|c: char| c.is_ascii_alphabetic())
            && raw.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, '.' | '_' | '-' | '~' | '+' | '/' | '=' | '@')
            })
            && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(raw))
    };
    ok.then(|| raw.to_owned())
}

/// A double-quoted scalar's text, for the escapes [`write_quoted`] writes (and
/// JSON's); `None` for any other escape (the full parser knows them all).
fn unquote(q: &str) -> Option<String> {
    let inner = q.strip_prefix('"')?.strip_suffix('"')?;
    // Raw control characters are not YAML: the full parser says so, with a line.
    let control = |c: char| c.is_control() && c != '\t';
    let has_control = if inner.is_ascii() {
        inner.bytes().any(|b| control(char::from(b)))
    } else {
        inner.chars().any(control)
    };
    if has_control {
        return None;
    }
    if !inner.contains('\\') {
        return Some(inner.to_owned());
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let hex = |n: usize, chars: &mut std::str::Chars| -> Option<char> {
            let h: String = chars.by_ref().take(n).collect();
            // Hex digits only (`from_str_radix` would also take a sign).
            (h.len() == n && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u32::from_str_radix(&h, 16).ok())
                .flatten()
                .and_then(char::from_u32)
        };
        match chars.next()? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'u' => out.push(hex(4, &mut chars)?),
            'U' => out.push(hex(8, &mut chars)?),
            _ => return None,
        }
    }
    Some(out)
}

fn strip_loc(msg: &str) -> &str {
    msg.find(" at line ").map(|i| &msg[..i]).unwrap_or(msg)
}

/// A value as a token: trimmed of surrounding whitespace (a stray newline in a
/// hand-edited file), with a warning. The file keeps the value as written, so a
/// rewrite leaves entries evertoken does not manage byte for byte.
fn as_token(v: &Secret) -> Secret {
    let raw = v.expose();
    if raw.trim().len() == raw.len() {
        v.clone()
    } else {
        Secret::from_outside(raw.to_owned(), "a value in the credentials file")
    }
}

/// One entry's value, or what is wrong with it (suffix for "`KEY`…").
fn entry_of(v: &Value) -> std::result::Result<Item, String> {
    match v {
        Value::String(s) => Ok(Item {
            value: Some(Secret::new(s.clone())),
            expires_at: None,
            updated_at: None,
            plain: true,
        }),
        Value::Mapping(m) => {
            let mut out = Item {
                value: None,
                expires_at: None,
                updated_at: None,
                plain: false,
            };
            for (k, val) in m {
                let key = k.as_str().unwrap_or("");
                match key {
                    "value" => match val {
                        Value::String(s) => out.value = Some(Secret::new(s.clone())),
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
    fn the_fast_reader_takes_only_what_yaml_takes() {
        // A signed `\u` escape and a raw control character are not YAML: the
        // line parser leaves them to the full parser, which refuses them.
        for text in [
            "A:\n  value: \"\\u+041BCDEFGHIJK\"\n",
            "A:\n  value: \"esc\u{1b}[2Jvalue\"\n",
        ] {
            assert!(parse_canonical(text).is_none(), "{text:?}");
            assert!(parse(text, Path::new("c.yaml")).is_err(), "{text:?}");
        }
        let ok = parse_canonical("A:\n  value: \"\\u0041tab\there\"\n").unwrap();
        assert_eq!(
            ok.get("A").unwrap().value.as_ref().unwrap().expose(),
            "Atab\there"
        );
    }

    #[test]
    fn reads_both_forms() {
        let doc = parse(
            "A: plain-value-1\nB:\n  value: \"v2\"\n  expires_at: 2027-11-20T09:00:00Z\n",
            Path::new("c.yaml"),
        )
        .unwrap();
        let a = doc.get("A").unwrap().clone();
        assert_eq!(a.value.unwrap().expose(), "plain-value-1");
        let b = doc.get("B").unwrap().clone();
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

    /// Writes `X: new-value` (expiring now) as a rotation would; returns now.
    fn write_x(f: &CredentialsFile) -> Timestamp {
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
        now
    }

    #[test]
    fn entries_it_does_not_manage_keep_their_exact_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.yaml");
        let pem = "-----BEGIN KEY-----\nAAAAtest-not-a-real-key\n-----END KEY-----\n";
        fs::write(
            &path,
            format!(
                "PASS: \"  pass phrase with spaces  \"\nPEM: |\n  {}\n",
                pem.trim_end().replace('\n', "\n  ")
            ),
        )
        .unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let f = CredentialsFile::open(path.clone()).unwrap();
        // Read as tokens: trimmed.
        let got = |f: &CredentialsFile, k: &str| {
            f.get(k)
                .unwrap()
                .unwrap()
                .value
                .unwrap()
                .expose()
                .to_owned()
        };
        assert_eq!(got(&f, "PASS"), "pass phrase with spaces");
        write_x(&f);
        // Written back as they were: spaces and the final newline kept.
        let doc = parse(&fs::read_to_string(&path).unwrap(), &path).unwrap();
        let raw = |k: &str| {
            doc.get(k)
                .unwrap()
                .value
                .as_ref()
                .unwrap()
                .expose()
                .to_owned()
        };
        assert_eq!(raw("PASS"), "  pass phrase with spaces  ");
        assert_eq!(raw("PEM"), pem);
    }

    #[test]
    fn write_keeps_other_entries_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.yaml");
        fs::write(&path, "OTHER: keep-me\n").unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let f = CredentialsFile::open(path.clone()).unwrap();
        let now = write_x(&f);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("OTHER: \"keep-me\""), "{text}");
        assert_eq!(
            f.get("X").unwrap().unwrap().value.unwrap().expose(),
            "new-value"
        );
        assert_eq!(files::mode_of(&path).unwrap(), Some(0o600));
        // A fresh reader sees the same.
        let g = CredentialsFile::open(path).unwrap();
        assert_eq!(g.get("X").unwrap().unwrap().expires_at, Some(now));
    }

    /// One entry's name, value and times, comparable.
    pub(super) type View = (String, Option<String>, Option<Timestamp>, Option<Timestamp>);

    /// What an entry says, comparable (secrets exposed: tests only).
    pub(super) fn view(doc: &Entries) -> Vec<View> {
        doc.iter()
            .map(|(k, i)| {
                (
                    k.to_string(),
                    i.value.as_ref().map(|v| v.expose().to_owned()),
                    i.expires_at,
                    i.updated_at,
                )
            })
            .collect()
    }

    #[test]
    fn the_written_form_reads_back_the_same_with_both_parsers() {
        let text = "A: plain-value-1\nB:\n  value: \"v: 2 # not a comment\"\n  expires_at: 2027-11-20T09:00:00Z\n'weird key': \"yes\"\nC: \"line\\nbreak\\u0007\"\nD: '123'\nE: \"tab\\there \\\"q\\\" back\\\\slash é \\u2028\"\n";
        let doc = parse(text, Path::new("c.yaml")).unwrap();
        let out = String::from_utf8(render(&doc)).unwrap();
        assert!(out.starts_with(HEADER));
        let fast = parse_canonical(&out).expect("the canonical form takes the fast path");
        let full = parse_yaml(&out, Path::new("c.yaml")).unwrap();
        assert_eq!(view(&fast), view(&doc));
        assert_eq!(view(&full), view(&doc));
    }

    #[test]
    fn unmanaged_values_yaml_would_retype_are_written_quoted() {
        // Issue 13: `"no"`, `"yes"`, `"on"`, `"2026-01-01"` came back unquoted, so other
        // YAML readers saw booleans and dates.
        let text = "A: \"no\"\nB: 'yes'\nC: \"on\"\nD: \"2026-01-01\"\nE: \"123\"\nF: \"null\"\n\"off\": \"~\"\n";
        let doc = parse(text, Path::new("c.yaml")).unwrap();
        let out = String::from_utf8(render(&doc)).unwrap();
        for line in [
            "A: \"no\"\n",
            "B: \"yes\"\n",
            "C: \"on\"\n",
            "D: \"2026-01-01\"\n",
            "E: \"123\"\n",
            "F: \"null\"\n",
            "\"off\": \"~\"\n",
        ] {
            assert!(out.contains(line), "{line:?} in\n{out}");
        }
        assert_eq!(
            view(&parse_yaml(&out, Path::new("c.yaml")).unwrap()),
            view(&doc)
        );
    }

    #[test]
    fn the_fast_timestamp_reads_what_jiff_reads() {
        for t in [
            "1970-01-01T00:00:00Z",
            "2027-11-20T09:00:00Z",
            "2024-02-29T23:59:59Z",
            "2099-12-31T12:34:56Z",
            "2026-11-23T09:00:00.5Z",
            "2026-11-23T09:00:00+02:00",
        ] {
            assert_eq!(timestamp(t), Some(t.parse::<Timestamp>().unwrap()), "{t}");
        }
        for bad in [
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-1x-01T00:00:00Z",
        ] {
            assert_eq!(timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_fast_path_declines_what_it_does_not_know() {
        for text in [
            "A: yes\n",
            "A: 123\n",
            "A: 2026-01-01\n",
            "A: ~\n",
            "A: 'single'\n",
            "A: x # comment\n",
            "A:\n  valeu: x\n",
            "A:\n",
            "A: {value: x}\n",
            "A: x\nA: y\n",
            "---\nA: x\n",
            "A: x\r\n",
            "A:\n   value: x\n",
            "A: \"bad \\q escape\"\n",
            "A: \"unterminated\n",
        ] {
            assert!(parse_canonical(text).is_none(), "{text:?}");
        }
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

        /// Whatever the fast path accepts, the YAML parser reads the same way.
        #[test]
        fn the_fast_path_agrees_with_the_yaml_parser(
            key in "[A-Za-z_][A-Za-z0-9_]{0,8}",
            v1 in "[a-zA-Z0-9 \"\\\\:#'.~+/=@_-]{0,12}",
            v2 in "\\PC{0,12}",
            quote in proptest::bool::ANY,
        ) {
            let v1 = if quote { format!("{v1:?}") } else { v1 };
            for text in [format!("{key}: {v1}\n"), format!("{key}:\n  value: {v1}\n  updated_at: 2026-11-23T09:00:00Z\n"), format!("{key}: {v2:?}\n")] {
                if let Some(fast) = parse_canonical(&text) {
                    let full = parse_yaml(&text, Path::new("/f/c.yaml"));
                    prop_assert!(full.is_ok(), "{text:?}: {:?}", full.err());
                    prop_assert_eq!(tests::view(&fast), tests::view(&full.unwrap()), "{:?}", text);
                }
            }
        }

        /// Any values render to text both parsers read back as they were,
        /// whitespace included (a token is trimmed when it is read, not here).
        #[test]
        fn any_value_round_trips(key in "\\PC{1,10}", value in "\\PC{0,20}") {
            let mut doc = Entries::new();
            doc.insert(key.as_str().into(), Item { value: Some(Secret::new(value)), expires_at: None, updated_at: None, plain: true });
            let out = String::from_utf8(render(&doc)).unwrap();
            let full = parse_yaml(&out, Path::new("/f/c.yaml"));
            prop_assert!(full.is_ok(), "{out:?}: {:?}", full.err());
            prop_assert_eq!(tests::view(&full.unwrap()), tests::view(&doc));
            if let Some(fast) = parse_canonical(&out) {
                prop_assert_eq!(tests::view(&fast), tests::view(&doc));
            }
        }

        #[test]
        fn entries_of_any_shape_never_panic(key in "[A-Z_]{1,10}", field in "[a-z_]{1,12}", value in "\\PC{0,30}") {
            let text = format!("{key}:\n  {field}: {value:?}\n");
            let _ = parse(&text, Path::new("/f/credentials.yaml"));
        }
    }
}
