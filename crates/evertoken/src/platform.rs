//! Platforms, accounts and the variable names a publisher reads.

use std::fmt;

use serde::Serialize;

/// A platform: the key it has under `platforms:` and in targets (`tiktok`, or the
/// name of a `kind: oauth2` block), its display name, and its place in the output
/// order. It is data handed out by the registry in [`crate::provider`]: adding a
/// platform never touches this type.
#[derive(Clone, Copy, Debug)]
pub struct Platform {
    key: &'static str,
    display: &'static str,
    order: u32,
}

impl Platform {
    /// A platform handed out by the registry (`order`: its place in the output).
    pub const fn new(key: &'static str, display: &'static str, order: u32) -> Platform {
        Platform {
            key,
            display,
            order,
        }
    }

    pub fn name(self) -> &'static str {
        self.key
    }

    pub fn display_name(self) -> &'static str {
        self.display
    }

    /// A built-in platform by its key (`tiktok`); configured `kind: oauth2`
    /// services are known only to a loaded configuration.
    pub fn builtin(s: &str) -> Option<Platform> {
        crate::provider::builtin(s)
    }
}

impl PartialEq for Platform {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Platform {}
impl std::hash::Hash for Platform {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}
impl PartialOrd for Platform {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Platform {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.order, self.key).cmp(&(other.order, other.key))
    }
}
impl Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.key)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key)
    }
}

/// A string that lives as long as the process: the names of configured
/// platforms and the variables derived from them. Each distinct string is kept
/// once, however often a configuration is loaded.
pub fn intern(s: &str) -> &'static str {
    use std::collections::BTreeSet;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(k) = seen.get(s) {
        return k;
    }
    let k: &'static str = Box::leak(s.to_owned().into_boxed_str());
    seen.insert(k);
    k
}

/// One account of one platform. `name` is `None` when the platform lists no
/// `accounts:` (the single, unnamed account, shown as `default`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Account {
    pub platform: Platform,
    pub name: Option<String>,
}

impl Account {
    pub fn new(platform: Platform, name: Option<String>) -> Self {
        Self { platform, name }
    }

    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or("default")
    }

    /// The variable a publisher reads for this account: `TIKTOK_REFRESH_TOKEN`, or
    /// `TIKTOK_REFRESH_TOKEN_BRAND_A` for account `brand-a`.
    pub fn var(&self, base: &str) -> String {
        match &self.name {
            None => base.to_owned(),
            Some(name) => {
                // Built in place: `auth status` names 20,000 variables.
                let mut v = String::with_capacity(base.len() + 1 + name.len());
                v.push_str(base);
                v.push('_');
                push_upper_snake(&mut v, name);
                v
            }
        }
    }

    /// A file-name-safe key, for locks and journal entries.
    pub fn key(&self) -> String {
        match &self.name {
            None => self.platform.name().to_owned(),
            Some(name) => {
                let platform = self.platform.name();
                let mut k = String::with_capacity(platform.len() + 1 + name.len());
                k.push_str(platform);
                k.push('-');
                k.extend(name.chars().map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                }));
                k
            }
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            None => write!(f, "{}", self.platform),
            Some(n) => write!(f, "{}:{n}", self.platform),
        }
    }
}

/// `brand-a` → `BRAND_A`; every character outside `[A-Za-z0-9]` becomes `_`.
pub fn upper_snake(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    push_upper_snake(&mut s, name);
    s
}

/// [`upper_snake`] appended to `out`.
fn push_upper_snake(out: &mut String, name: &str) {
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
}

/// What `auth refresh|status` was asked to look at. Platform names are checked
/// against the configuration when the target is used ([`crate::engine::Engine::select`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    All,
    Platform(String),
    Account(String, String),
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, String> {
        if s == "all" {
            return Ok(Target::All);
        }
        let (p, account) = match s.split_once(':') {
            Some((p, a)) => (p, Some(a)),
            None => (s, None),
        };
        if p.is_empty() {
            return Err(format!(
                "target `{s}` names no platform: expected `all`, a platform or `platform:account`"
            ));
        }
        match account {
            None => Ok(Target::Platform(p.to_owned())),
            Some("") => Err(format!("target `{s}` names no account after `:`")),
            Some(a) => Ok(Target::Account(p.to_owned(), a.to_owned())),
        }
    }

    /// The platform the target names, if it names one.
    pub fn platform(&self) -> Option<&str> {
        match self {
            Target::All => None,
            Target::Platform(p) | Target::Account(p, _) => Some(p),
        }
    }

    pub fn includes(&self, account: &Account) -> bool {
        match self {
            Target::All => true,
            Target::Platform(p) => p == account.platform.name(),
            Target::Account(p, a) => {
                p == account.platform.name() && account.name.as_deref() == Some(a.as_str())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_follow_the_spec() {
        let tiktok = Platform::builtin("tiktok").unwrap();
        let a = Account::new(tiktok, Some("brand-a".into()));
        assert_eq!(
            a.var("TIKTOK_REFRESH_TOKEN"),
            "TIKTOK_REFRESH_TOKEN_BRAND_A"
        );
        let d = Account::new(tiktok, None);
        assert_eq!(d.var("TIKTOK_REFRESH_TOKEN"), "TIKTOK_REFRESH_TOKEN");
        assert_eq!(a.to_string(), "tiktok:brand-a");
        assert_eq!(d.label(), "default");
    }

    #[test]
    fn targets_parse() {
        assert_eq!(Target::parse("all").unwrap(), Target::All);
        assert_eq!(
            Target::parse("tiktok").unwrap(),
            Target::Platform("tiktok".into())
        );
        assert_eq!(
            Target::parse("tiktok:brand-a").unwrap(),
            Target::Account("tiktok".into(), "brand-a".into())
        );
        assert!(Target::parse(":a").is_err());
        assert!(Target::parse("tiktok:").is_err());
    }
}
