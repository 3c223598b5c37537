//! The `env-file` store: a `KEY=value` file for systemd `EnvironmentFile=` and
//! shell `source`. Lines evertoken does not manage (comments, other variables)
//! are kept in place; each managed variable may carry a `<KEY>_EXPIRES_AT` line.
//! Mode 0600, atomic replace, serialised by a sidecar lock.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Deserialize;

use super::{Entry, Store, StoreError, Stored};
use crate::error::Result;
use crate::files;
use crate::lock::FileLock;
use crate::secret::{Secret, Source};
use crate::section::Site;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub path: String,
}

/// `auth.writeback.env_file`, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub path: PathBuf,
}

impl Settings {
    pub fn resolve(c: &Config, site: &Site) -> Settings {
        Settings {
            path: site.resolve_path(&c.path),
        }
    }
}

pub struct EnvFileStore {
    path: PathBuf,
}

impl EnvFileStore {
    pub fn open(s: &Settings, site: &Site) -> Result<Self> {
        let path = s.path.clone();
        if let Ok(Some(mode)) = files::mode_of(&path)
            && files::too_open(mode)
        {
            return Err(site
                .error_at(
                    "auth.writeback.env_file.path",
                    format!("{} is readable by others (mode {mode:04o})", path.display()),
                )
                .with_hint(format!("run `chmod 600 {}`", path.display())));
        }
        Ok(Self { path })
    }

    fn read_text(&self) -> Result<String, StoreError> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(StoreError::permanent(format!(
                "cannot read env file {}: {e}",
                self.path.display()
            ))),
        }
    }
}

/// `KEY=value`, `export KEY=value`, with optional single or double quotes.
pub fn parse_line(line: &str) -> Option<(&str, String)> {
    let t = line.trim_start();
    if t.starts_with('#') || t.is_empty() {
        return None;
    }
    let t = t.strip_prefix("export ").unwrap_or(t);
    let (k, v) = t.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let v = v.trim_end_matches(['\r', '\n']);
    let v = if v.len() >= 2
        && (v.starts_with('\'') && v.ends_with('\'') || v.starts_with('"') && v.ends_with('"'))
    {
        v[1..v.len() - 1].to_owned()
    } else {
        v.trim().to_owned()
    };
    Some((k, v))
}

/// Quotes a value only when it needs it, in a form both systemd and sh read the
/// same way: bare, or in single quotes. `None` for a value neither can hold
/// (a single quote or a line break), which no token has.
pub fn quote(v: &str) -> Option<String> {
    if v.contains(['\'', '\n', '\r']) {
        None
    } else if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._~+/=-:@,".contains(c))
    {
        Some(v.to_owned())
    } else {
        Some(format!("'{v}'"))
    }
}

fn lookup(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(parse_line)
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .next_back()
}

/// Replaces or appends `key=value` lines, keeping everything else (comments,
/// other variables, their order, an `export ` prefix). A key written twice is
/// replaced where it is read: the last line, as `source` and systemd take the
/// last assignment.
pub fn upsert(text: &str, pairs: &[(String, String)]) -> Result<String, String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for (k, v) in pairs {
        let q = quote(v).ok_or_else(|| {
            format!("the value of {k} has a quote or line break, which an env file cannot hold")
        })?;
        match lines
            .iter()
            .rposition(|l| parse_line(l).is_some_and(|(lk, _)| lk == k))
        {
            // Keep an `export ` the user wrote, so `source` still exports it.
            Some(i) => {
                let export = if lines[i].trim_start().starts_with("export ") {
                    "export "
                } else {
                    ""
                };
                lines[i] = format!("{export}{k}={q}");
            }
            None => lines.push(format!("{k}={q}")),
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    Ok(out)
}

fn expires_key(var: &str) -> String {
    format!("{var}_EXPIRES_AT")
}

fn updated_key(var: &str) -> String {
    format!("{var}_UPDATED_AT")
}

#[async_trait::async_trait]
impl Store for EnvFileStore {
    fn name(&self) -> &'static str {
        "env-file"
    }
    fn local_file(&self) -> Option<std::path::PathBuf> {
        Some(self.path.clone())
    }
    fn id(&self) -> String {
        format!(
            "env-file:{}",
            std::path::absolute(&self.path)
                .unwrap_or_else(|_| self.path.clone())
                .display()
        )
    }
    fn describe(&self) -> String {
        format!("env file {}", self.path.display())
    }
    fn source(&self) -> Source {
        Source::File(self.path.display().to_string().into())
    }

    async fn read(&self, var: &str) -> Result<Option<Stored>, StoreError> {
        let text = self.read_text()?;
        let Some(value) = lookup(&text, var) else {
            return Ok(None);
        };
        let ts = |k: String| lookup(&text, &k).and_then(|v| v.parse::<Timestamp>().ok());
        Ok(Some(Stored {
            value: Secret::from_outside(value, &format!("{var} in {}", self.path.display())),
            expires_at: ts(expires_key(var)),
            updated_at: ts(updated_key(var)),
            source: self.source(),
        }))
    }

    async fn write(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let path: &Path = &self.path;
        tokio::task::block_in_place(|| {
            let mut lock_path = path.as_os_str().to_owned();
            lock_path.push(".lock");
            let _lock = FileLock::acquire_blocking(
                Path::new(&lock_path),
                std::time::Duration::from_secs(60),
            )
            .map_err(|e| StoreError::transient(e.to_string()))?;
            let text = self.read_text()?;
            let mut pairs = Vec::new();
            for e in entries {
                pairs.push((e.var.clone(), e.value.expose().to_owned()));
                if let Some(t) = e.expires_at {
                    pairs.push((expires_key(&e.var), crate::clock::rfc3339(t)));
                }
                pairs.push((updated_key(&e.var), crate::clock::rfc3339(e.updated_at)));
            }
            // The value itself was refused (not the file's access): say so, and
            // that nothing was written, so nobody goes fixing permissions.
            let new = upsert(&text, &pairs).map_err(|m| {
                StoreError::permanent(format!("{m}; the value was refused and {} was not changed", path.display()))
                    .with_hint("no real provider issues such a token: check where it came from (`evertoken -vv auth refresh`); the token stays in the journal, and a store that can hold any value (`local`, `vault`) takes it")
            })?;
            files::write_private_atomic(path, new.as_bytes()).map_err(|e| {
                StoreError::permanent(format!("cannot write env file {}: {e}", path.display()))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_keeps_other_lines() {
        let text = "# my tokens\nOTHER=1\nexport TIKTOK_REFRESH_TOKEN='old'\n";
        let out = upsert(
            text,
            &[
                ("TIKTOK_REFRESH_TOKEN".into(), "rft.new".into()),
                ("NEW".into(), "a b".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            "# my tokens\nOTHER=1\nexport TIKTOK_REFRESH_TOKEN=rft.new\nNEW='a b'\n"
        );
        assert_eq!(lookup(&out, "NEW").unwrap(), "a b");
    }

    #[test]
    fn a_key_written_twice_is_replaced_where_it_is_read() {
        let text = "K=first\n# override\nK=second\n";
        let out = upsert(text, &[("K".into(), "new".into())]).unwrap();
        assert_eq!(out, "K=first\n# override\nK=new\n");
        assert_eq!(lookup(&out, "K").unwrap(), "new");
    }

    #[test]
    fn quoting_round_trips() {
        for v in ["plain", "with space", "a\"b", "", "x=y"] {
            let line = format!("K={}", quote(v).unwrap());
            assert_eq!(parse_line(&line).unwrap().1, v, "{line}");
        }
        assert!(quote("it's").is_none());
        assert!(upsert("", &[("K".into(), "a\nb".into())]).is_err());
    }
}
