//! The secret type: every token, client secret and key passphrase lives in a
//! [`Secret`]. It never shows its value through `Debug`, `Display` or `Serialize`;
//! the only ways out are [`Secret::expose`] (for the wire and the store's own code)
//! and [`Secret::prefix`] (for humans).

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A secret string. Cloning copies the value into a new zeroize-on-drop box.
pub struct Secret(SecretString);

impl Secret {
    /// Wraps `value` and makes it known to the scrubber ([`crate::scrub`]), so it
    /// can never appear whole in a provider body, error or alert that is shown.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        crate::scrub::register(&value);
        Self(SecretString::from(value))
    }

    /// A token or secret read from outside (an environment variable, the keychain,
    /// a file): surrounding whitespace is trimmed, because no token contains any
    /// and a trailing newline (`echo "$TOKEN" > file`, `secret-tool store … <<<`)
    /// would otherwise be sent and fail as `invalid_grant`. Says so once per
    /// `origin` (a variable name and where it came from), never with the value.
    pub fn from_outside(value: String, origin: &str) -> Self {
        let trimmed = value.trim();
        if trimmed.len() != value.len() {
            static SAID: std::sync::Mutex<std::collections::BTreeSet<String>> =
                std::sync::Mutex::new(std::collections::BTreeSet::new());
            if SAID.lock().is_ok_and(|mut s| s.insert(origin.to_owned())) {
                tracing::warn!(
                    "{origin} has whitespace around its value (a trailing newline?); evertoken trimmed it"
                );
            }
            return Self::new(trimmed.to_owned());
        }
        Self::new(value)
    }

    /// The whole value. Call only where the value must leave the process: an HTTP
    /// request to the provider, a store write, or an explicit `github token`.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The display form: the first characters and `…`, never the whole value.
    pub fn prefix(&self) -> Prefix {
        Prefix::of(self.expose())
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }

    /// Constant-time-ish equality; tokens are compared to spot another runner's rotation.
    pub fn same_as(&self, other: &Secret) -> bool {
        let (a, b) = (self.expose().as_bytes(), other.expose().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        // The original registered this value with the scrubber, whose registry is
        // never emptied: registering it again would only cost a hash and a lookup
        // (issue 15: two clones per credential in `auth status`).
        Self(SecretString::from(self.expose().to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// The human view of a secret: at most its first 8 characters, then `…`. Short
/// values show less, so that a prefix is never most of the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    pub const MAX: usize = 8;

    pub fn of(value: &str) -> Self {
        let chars = if value.is_ascii() {
            value.len()
        } else {
            value.chars().count()
        };
        let shown = Self::MAX.min(chars / 3);
        let end = value
            .char_indices()
            .nth(shown)
            .map_or(value.len(), |(i, _)| i);
        // The start of a value from outside may hold control characters (a
        // provider's token, a hand-edited file): shown inert.
        let shown = crate::scrub::escape_controls(&value[..end]);
        let mut s = String::with_capacity(shown.len() + '…'.len_utf8());
        s.push_str(&shown);
        s.push('…');
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Prefix({})", self.0)
    }
}

impl serde::Serialize for Prefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Where a secret was found. Shown by `auth status`; never carries the value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Source {
    /// The process environment (variable name).
    Env(String),
    /// The OS keychain (service `evertoken`).
    Keychain,
    /// The local credentials file (path; shared by every value read from it).
    File(std::sync::Arc<str>),
    /// The rotation journal: a token received but not yet written back (path).
    Journal(String),
    /// A remote write-back store (its description).
    Store(String),
}

/// Paths and names come from the config: shown with their controls escaped.
fn inert(s: &str) -> std::borrow::Cow<'_, str> {
    crate::scrub::escape_controls(s)
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Env(var) => write!(f, "env ${}", inert(var)),
            Source::Keychain => f.write_str("keychain"),
            Source::File(path) => write!(f, "file {}", inert(path)),
            Source::Journal(path) => write!(f, "journal {}", inert(path)),
            Source::Store(desc) => f.write_str(&inert(desc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_prefix_never_show_the_value() {
        let s = Secret::new("rft.example-test-secret-value-0123456789");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.prefix().as_str(), "rft.exam…");
        assert!(!format!("{}", s.prefix()).contains("secret-value"));
    }

    #[test]
    fn short_values_show_less_than_a_third() {
        assert_eq!(Prefix::of("abcdef").as_str(), "ab…");
        // A value from outside that starts with control characters.
        let p = Prefix::of("\u{1b}[2J\u{1b}]0;PWNED\u{7}rft-new-secret-value");
        assert!(!p.as_str().chars().any(|c| c.is_control()), "{p:?}");
        assert!(p.as_str().starts_with("\\u{1b}"), "{p:?}");
        assert_eq!(Prefix::of("ab").as_str(), "…");
        assert_eq!(Prefix::of("").as_str(), "…");
    }

    #[test]
    fn values_from_outside_are_trimmed() {
        let s = Secret::from_outside("rft.trim-me-0123456789\n".into(), "TEST_VAR (env)");
        assert_eq!(s.expose(), "rft.trim-me-0123456789");
        let s = Secret::from_outside(" \tabc \r\n".into(), "TEST_VAR (env)");
        assert_eq!(s.expose(), "abc");
    }

    #[test]
    fn same_as_compares_values() {
        assert!(Secret::new("a1").same_as(&Secret::new("a1")));
        assert!(!Secret::new("a1").same_as(&Secret::new("a2")));
        assert!(!Secret::new("a1").same_as(&Secret::new("a12")));
    }
}
