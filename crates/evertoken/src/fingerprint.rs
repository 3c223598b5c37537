//! Fingerprints of what evertoken last wrote to a store, kept beside the rotation
//! journal, so that a value that changed behind evertoken's back (not through its
//! journal) is noticed on the next read and reported with its likely cause: a
//! second rotator (a publisher refreshing on its own, an old refresh script) or a
//! human pasting a token into the store.
//!
//! A fingerprint is the first 16 hex digits of the value's SHA-256: enough to tell
//! two tokens apart, nothing that helps recover one. This module owns the
//! `fingerprints/` directory under the state directory; it never stores a value,
//! never fails a run (an unreadable or unwritable file only means no report), and
//! never decides anything: the engine asks it whether a read value is the one it
//! wrote.
//!
//! File format: one append-only file per store (`<store hash>.log`), one line per
//! write, `VAR FINGERPRINT`; the last line for a variable wins. Appends are single
//! `write(2)` calls on an `O_APPEND` file, so concurrent runs on one host do not
//! interleave lines. The file is compacted when it is mostly superseded lines.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::Digest;

use crate::secret::Secret;
use crate::store::Entry;

/// The fingerprint of one value: 16 hex digits of its SHA-256.
pub fn of(value: &Secret) -> String {
    format!("{:016x}", raw(value))
}

/// [`of`] as the number it spells (what the maps hold: 8 bytes, not a string).
fn raw(value: &Secret) -> u64 {
    let h = sha2::Sha256::digest(value.expose().as_bytes());
    u64::from_be_bytes(h[..8].try_into().expect("a SHA-256 has 32 bytes"))
}

/// The likely causes, for the warning.
pub const LIKELY_CAUSE: &str = "likely a second rotator (a publishing job or script that refreshes the token itself, or another evertoken installation with its own state directory) or a token pasted in by hand; make evertoken the only process that refreshes it and have jobs read tokens with `evertoken auth token` or `evertoken auth env`";

/// What evertoken last wrote to one variable.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Known {
    fp: u64,
    expires_at: Option<jiff::Timestamp>,
}

/// An [`Entry`] this process wrote, without its variable (the map's key).
struct Written {
    value: Secret,
    expires_at: Option<jiff::Timestamp>,
    updated_at: jiff::Timestamp,
    durable: bool,
}

/// The fingerprints of one store, loaded once per process.
pub struct Fingerprints {
    path: PathBuf,
    /// `None` until first used. Per variable: the fingerprint and, when known, the
    /// expiry of the value evertoken last wrote.
    /// (Issue 15: compact, 20,000 of each at 10,000 accounts.)
    known: Mutex<Option<HashMap<Box<str>, Known>>>,
    /// Variables whose store value differs from what evertoken last wrote.
    drift: Mutex<BTreeMap<String, ()>>,
    /// What this process wrote (values in memory only, never persisted): a store
    /// that cannot be read back (hidden GitLab variables, Actions secrets) still
    /// lets `auth token` hand out the token it just stored. Kept only once
    /// [`Fingerprints::keep_written`] asked for it (issue 15: a 10,000-account
    /// `auth refresh` held a second copy of all 20,000 tokens it never read).
    written: Mutex<HashMap<Box<str>, Written>>,
    keep_written: std::sync::atomic::AtomicBool,
}

impl Fingerprints {
    /// The fingerprints of `store_id`, under `state_dir` (beside the journal).
    pub fn new(state_dir: &Path, store_id: &str) -> Self {
        let h = sha2::Sha256::digest(store_id.as_bytes());
        let short: String = h.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Self {
            path: state_dir.join("fingerprints").join(format!("{short}.log")),
            known: Mutex::new(None),
            drift: Mutex::new(BTreeMap::new()),
            written: Mutex::new(HashMap::new()),
            keep_written: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_known<T>(&self, f: impl FnOnce(&mut HashMap<Box<str>, Known>) -> T) -> T {
        let mut guard = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let map = guard.get_or_insert_with(|| load(&self.path));
        f(map)
    }

    /// Compares a value just read from the store with what evertoken last wrote
    /// there. Returns true (and remembers it for [`Fingerprints::drifted`]) when
    /// they differ; a variable evertoken never wrote is not compared.
    pub fn check(&self, var: &str, value: &Secret) -> bool {
        // Hashed only for a variable evertoken wrote (issue 15: `auth status` over
        // 10,000 accounts hashed every value read).
        let mut fp = 0;
        let mut differs = self.with_known(|m| {
            m.get(var).is_some_and(|last| {
                fp = raw(value);
                last.fp != fp
            })
        });
        if differs {
            // Another evertoken process on this host may have written it since this
            // one loaded the file: look again before calling it drift.
            let fresh = load(&self.path);
            differs = fresh.get(var).is_some_and(|last| last.fp != fp);
            self.with_known(|m| *m = fresh);
        }
        if differs {
            self.drift
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(var.to_owned(), ());
        }
        differs
    }

    /// Records what was just written (after the store took it).
    pub fn record(&self, entries: &[Entry]) {
        let mut lines = String::new();
        self.with_known(|m| {
            for e in entries {
                let fp = raw(&e.value);
                match e.expires_at {
                    Some(t) => lines.push_str(&format!("{} {fp:016x} {t}\n", e.var)),
                    None => lines.push_str(&format!("{} {fp:016x}\n", e.var)),
                }
                m.insert(
                    e.var.as_str().into(),
                    Known {
                        fp,
                        expires_at: e.expires_at,
                    },
                );
            }
        });
        if self.keep_written.load(std::sync::atomic::Ordering::Relaxed) {
            let mut w = self.written.lock().unwrap_or_else(|e| e.into_inner());
            for e in entries {
                w.insert(
                    e.var.as_str().into(),
                    Written {
                        value: e.value.clone(),
                        expires_at: e.expires_at,
                        updated_at: e.updated_at,
                        durable: e.durable,
                    },
                );
            }
        }
        // Written by us, so no longer drifted.
        {
            let mut d = self.drift.lock().unwrap_or_else(|e| e.into_inner());
            for e in entries {
                d.remove(&e.var);
            }
        }
        if let Err(e) = append(&self.path, lines.as_bytes()) {
            tracing::debug!("cannot record fingerprints in {}: {e}", self.path.display());
        }
    }

    /// The expiry evertoken recorded when it last wrote `value` to `var`; `None`
    /// when it did not write this value or knew no expiry. For stores that keep no
    /// metadata beside a value (GitLab variables, Actions secrets).
    pub fn expiry_of(&self, var: &str, value: &Secret) -> Option<jiff::Timestamp> {
        self.with_known(|m| {
            m.get(var)
                .filter(|k| k.expires_at.is_some() && k.fp == raw(value))
                .and_then(|k| k.expires_at)
        })
    }

    /// From now on, remember what is written for [`Fingerprints::written`].
    pub fn keep_written(&self) {
        self.keep_written
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The entry this process last wrote for `var` since
    /// [`Fingerprints::keep_written`], if any.
    pub fn written(&self, var: &str) -> Option<Entry> {
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(var)
            .map(|w| Entry {
                var: var.to_owned(),
                value: w.value.clone(),
                expires_at: w.expires_at,
                updated_at: w.updated_at,
                durable: w.durable,
            })
    }

    /// Variables found changed behind evertoken's back during this process.
    pub fn drifted(&self) -> Vec<String> {
        self.drift
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// The warning for one drifted variable.
    pub fn warning(var: &str) -> String {
        format!(
            "{var} changed in the store since evertoken last wrote it, not through evertoken's journal: {LIKELY_CAUSE}"
        )
    }

    /// Adds a drift warning to every result that reads a drifted variable.
    pub fn annotate(&self, results: &mut [crate::report::AccountResult]) {
        let drifted = self.drifted();
        if drifted.is_empty() {
            return;
        }
        for r in results {
            for c in &r.credentials {
                if drifted.contains(&c.var) {
                    r.warnings.push(Self::warning(&c.var));
                }
            }
        }
    }
}

fn load(path: &Path) -> HashMap<Box<str>, Known> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    let mut map: HashMap<Box<str>, Known> = HashMap::new();
    let mut lines = 0usize;
    for line in text.lines() {
        let mut it = line.split(' ');
        let (Some(var), Some(fp)) = (it.next(), it.next()) else {
            continue;
        };
        let expires_at = match it.next() {
            None => None,
            Some(t) => match t.parse::<jiff::Timestamp>() {
                Ok(t) => Some(t),
                Err(_) => continue,
            },
        };
        if it.next().is_some()
            || var.is_empty()
            || fp.len() != 16
            || !fp.bytes().all(|b| b.is_ascii_hexdigit())
        {
            continue;
        }
        // Validated above: 16 hex digits.
        let Ok(fp) = u64::from_str_radix(fp, 16) else {
            continue;
        };
        map.insert(var.into(), Known { fp, expires_at });
        lines += 1;
    }
    // Mostly superseded lines: rewrite it with the current ones only.
    if lines > 2 * map.len() + 1000 {
        let mut out = String::new();
        let mut sorted: Vec<_> = map.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (v, k) in sorted {
            match k.expires_at {
                Some(t) => out.push_str(&format!("{v} {:016x} {t}\n", k.fp)),
                None => out.push_str(&format!("{v} {:016x}\n", k.fp)),
            }
        }
        let _ = crate::files::write_private_atomic(path, out.as_bytes());
    }
    map
}

fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        crate::files::ensure_private_dir(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_16_lowercase_hex_digits_of_the_sha256() {
        let h = sha2::Sha256::digest(b"rt-1");
        let want: String = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
        assert_eq!(of(&Secret::new("rt-1")), want);
    }

    fn entry(var: &str, v: &str) -> Entry {
        Entry {
            var: var.into(),
            value: Secret::new(v),
            expires_at: None,
            updated_at: jiff::Timestamp::UNIX_EPOCH,
            durable: true,
        }
    }

    #[test]
    fn a_value_written_elsewhere_is_reported_and_one_written_here_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let f = Fingerprints::new(dir.path(), "local:/x");
        // Never written by evertoken: nothing to compare.
        assert!(!f.check("TIKTOK_REFRESH_TOKEN", &Secret::new("rt-1")));
        f.record(&[entry("TIKTOK_REFRESH_TOKEN", "rt-1")]);
        assert!(!f.check("TIKTOK_REFRESH_TOKEN", &Secret::new("rt-1")));
        // A new process reads the file: same answers, and a foreign value drifts.
        let g = Fingerprints::new(dir.path(), "local:/x");
        assert!(!g.check("TIKTOK_REFRESH_TOKEN", &Secret::new("rt-1")));
        assert!(g.check("TIKTOK_REFRESH_TOKEN", &Secret::new("rt-from-elsewhere")));
        assert_eq!(g.drifted(), vec!["TIKTOK_REFRESH_TOKEN".to_owned()]);
        // Another store's fingerprints are separate.
        let h = Fingerprints::new(dir.path(), "gitlab:1");
        assert!(!h.check("TIKTOK_REFRESH_TOKEN", &Secret::new("rt-from-elsewhere")));
        // The file never holds the value.
        let text = std::fs::read_to_string(g.path()).unwrap();
        assert!(!text.contains("rt-1"));
    }

    #[test]
    fn written_entries_are_kept_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let f = Fingerprints::new(dir.path(), "s");
        f.record(&[entry("A", "value-1")]);
        assert!(f.written("A").is_none());
        f.keep_written();
        f.record(&[entry("A", "value-2")]);
        let e = f.written("A").unwrap();
        assert_eq!((e.var.as_str(), e.value.expose()), ("A", "value-2"));
        assert!(e.durable);
    }

    #[test]
    fn the_recorded_expiry_applies_only_to_the_value_written() {
        let dir = tempfile::tempdir().unwrap();
        let f = Fingerprints::new(dir.path(), "gitlab:1");
        let exp: jiff::Timestamp = "2026-11-24T09:00:00Z".parse().unwrap();
        let mut e = entry("TIKTOK_ACCESS_TOKEN", "act-1");
        e.expires_at = Some(exp);
        f.record(&[e]);
        let g = Fingerprints::new(dir.path(), "gitlab:1");
        assert_eq!(
            g.expiry_of("TIKTOK_ACCESS_TOKEN", &Secret::new("act-1")),
            Some(exp)
        );
        assert_eq!(
            g.expiry_of("TIKTOK_ACCESS_TOKEN", &Secret::new("act-2")),
            None
        );
        assert_eq!(g.expiry_of("OTHER", &Secret::new("act-1")), None);
    }

    #[test]
    fn damaged_lines_are_ignored_and_superseded_lines_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let f = Fingerprints::new(dir.path(), "s");
        std::fs::create_dir_all(f.path().parent().unwrap()).unwrap();
        let mut text = String::from("garbage\nA zz\n\u{0}\n");
        for _ in 0..1500 {
            text.push_str(&format!("A {}\n", of(&Secret::new("old"))));
        }
        text.push_str(&format!("A {}\n", of(&Secret::new("new"))));
        std::fs::write(f.path(), text).unwrap();
        assert!(!f.check("A", &Secret::new("new")));
        assert!(f.check("A", &Secret::new("old")));
        let after = std::fs::read_to_string(f.path()).unwrap();
        assert_eq!(after.lines().count(), 1);
    }
}
