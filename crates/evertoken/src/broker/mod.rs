//! The token broker (`evertoken broker serve`): an HTTP service that holds the
//! GitHub App keys (a key file or a Transit signer) so the hosts and CI jobs that
//! use installation tokens never do. A caller proves who it is with an OIDC ID
//! token (GitHub Actions, GitLab CI `id_tokens`, any issuer with discovery) or a
//! static client secret, names a policy, and gets a token narrowed to that policy's
//! repositories and permissions.
//!
//! One file per concern: this file (the `broker:` config and policy matching),
//! [`oidc`] (discovery, JWKS cache, ID token verification), [`audit`] (the
//! JSON-lines decision log), [`server`] (HTTP, TLS, rate limit, metrics), and
//! [`client`] (the `github token --broker` side).
//!
//! Stateless: several instances behind a load balancer answer alike. Never logs,
//! audits or echoes a bearer or a minted token; a client secret is held only as
//! its SHA-256.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::Result;

pub mod audit;
pub mod client;
pub mod oidc;
pub mod server;

/// Clock leeway for `exp` / `nbf` / `iat` of ID tokens.
pub const LEEWAY_SECS: i64 = 30;

/// `broker:` in the config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The `aud` every ID token must carry.
    #[serde(default = "default_audience")]
    pub audience: String,
    #[serde(default)]
    pub issuers: Vec<String>,
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
    /// Default `broker-audit.jsonl` in the state directory.
    #[serde(default)]
    pub audit_log: Option<String>,
    /// Token requests per caller per minute (default 60).
    #[serde(default = "default_rate")]
    pub rate_limit_per_minute: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: String,
    pub key_file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub name: String,
    /// Hex SHA-256 of the client's bearer secret (`printf %s SECRET | sha256sum`).
    pub token_sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub name: String,
    #[serde(default = "default_app")]
    pub app: String,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub subject_pattern: Option<String>,
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
}

fn default_listen() -> String {
    "127.0.0.1:8717".into()
}
fn default_audience() -> String {
    client::DEFAULT_AUDIENCE.into()
}
fn default_app() -> String {
    "default".into()
}
fn default_rate() -> u32 {
    60
}

/// Who a policy admits.
#[derive(Debug)]
pub enum Admits {
    Oidc {
        issuer: String,
        subject: Subject,
        claims: BTreeMap<String, String>,
    },
    Client(String),
}

#[derive(Debug)]
pub enum Subject {
    Exact(String),
    Pattern(Regex),
}

/// A checked policy.
#[derive(Debug)]
pub struct Policy {
    pub name: String,
    pub app: String,
    pub admits: Admits,
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Caller {
    Oidc {
        issuer: String,
        subject: String,
        claims: serde_json::Map<String, serde_json::Value>,
    },
    Client(String),
}

impl Caller {
    /// For the audit log and the rate limit: `iss|sub`, or `client:NAME`.
    pub fn who(&self) -> String {
        match self {
            Caller::Oidc {
                issuer, subject, ..
            } => format!("{issuer}|{}", escape(subject)),
            Caller::Client(n) => format!("client:{n}"),
        }
    }
}

impl Policy {
    /// `Err(reason)` when the caller does not match.
    pub fn admits(&self, caller: &Caller) -> std::result::Result<(), String> {
        match (&self.admits, caller) {
            (Admits::Client(want), Caller::Client(got)) if want == got => Ok(()),
            (Admits::Client(want), _) => Err(format!("policy is for client `{want}`")),
            (
                Admits::Oidc {
                    issuer,
                    subject,
                    claims,
                },
                Caller::Oidc {
                    issuer: iss,
                    subject: sub,
                    claims: got,
                },
            ) => {
                if issuer != iss {
                    return Err("issuer does not match the policy".into());
                }
                let ok = match subject {
                    Subject::Exact(s) => s == sub,
                    Subject::Pattern(r) => r.is_match(sub),
                };
                if !ok {
                    return Err("subject does not match the policy".into());
                }
                for (k, want) in claims {
                    let have = match got.get(k) {
                        Some(serde_json::Value::String(s)) => Some(s.clone()),
                        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                        Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
                        _ => None,
                    };
                    if have.as_deref() != Some(want.as_str()) {
                        return Err(format!("claim `{}` does not match the policy", escape(k)));
                    }
                }
                Ok(())
            }
            (Admits::Oidc { .. }, Caller::Client(_)) => {
                Err("policy is for OIDC callers, not a static client".into())
            }
        }
    }
}

/// External text for messages and the audit log: control, line-separator and
/// bidi/format characters escaped (the project's scrubber), at most 200 characters.
pub fn escape(s: &str) -> String {
    let mut end = s.len();
    let mut cut = false;
    if let Some((i, _)) = s.char_indices().nth(200) {
        end = i;
        cut = true;
    }
    let mut out = crate::scrub::escape_controls(&s[..end]).into_owned();
    if cut {
        out.push('…');
    }
    out
}

/// Hex SHA-256 of a bearer secret.
pub fn sha256_hex(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks the `broker:` block and compiles its policies.
pub fn check(cfg: &Config, b: &BrokerConfig) -> Result<Vec<Policy>> {
    let key = |k: &str| format!("broker.{k}");
    if b.audience.trim().is_empty() {
        return Err(cfg
            .error_at(&key("audience"), "is empty")
            .with_hint("the default is `evertoken`; CI jobs must request ID tokens for it"));
    }
    if b.rate_limit_per_minute == 0 || b.rate_limit_per_minute > 100_000 {
        return Err(cfg
            .error_at(
                &key("rate_limit_per_minute"),
                format!("{} is outside 1..=100000", b.rate_limit_per_minute),
            )
            .with_hint("the default is 60"));
    }
    for (i, iss) in b.issuers.iter().enumerate() {
        client::parse_url(iss).map_err(|e| {
            cfg.error_at(&format!("broker.issuers[{i}]"), e).with_hint(
                "an issuer is an https URL, e.g. https://token.actions.githubusercontent.com",
            )
        })?;
    }
    for (i, c) in b.clients.iter().enumerate() {
        let h = &c.token_sha256;
        if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(cfg
                .error_at(
                    &format!("broker.clients[{i}].token_sha256"),
                    "is not 64 hex digits",
                )
                .with_hint(
                    "store only the secret's SHA-256: `printf %s \"$SECRET\" | sha256sum`",
                ));
        }
        if b.clients[..i].iter().any(|o| o.name == c.name) {
            return Err(cfg.error_at(
                &format!("broker.clients[{i}].name"),
                format!("`{}` is listed twice", c.name),
            ));
        }
    }
    let mut out: Vec<Policy> = Vec::new();
    for (i, p) in b.policies.iter().enumerate() {
        let at = |k: &str| format!("broker.policies[{i}].{k}");
        if out.iter().any(|o| o.name == p.name) {
            return Err(cfg.error_at(&at("name"), format!("`{}` is listed twice", p.name)));
        }
        if p.repositories.is_empty() || p.permissions.is_empty() {
            return Err(cfg
                .error_at(&at(if p.repositories.is_empty() { "repositories" } else { "permissions" }), "is empty")
                .with_hint("every policy narrows its tokens: list the repositories and the permissions it grants"));
        }
        crate::github::app::check_repository_names(cfg, &at("repositories"), &p.repositories)?;
        for (perm, level) in &p.permissions {
            if !matches!(level.as_str(), "read" | "write" | "admin") {
                return Err(cfg
                    .error_at(
                        &at(&format!("permissions.{perm}")),
                        format!("`{level}` is not a permission level"),
                    )
                    .with_hint("use read, write or admin"));
            }
        }
        let admits = match (&p.issuer, &p.client) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(cfg
                    .error_at(&at("issuer"), "set exactly one of `issuer` and `client`")
                    .with_hint("`issuer` for CI jobs with ID tokens, `client` for a host with a static secret"));
            }
            (None, Some(c)) => {
                if !b.clients.iter().any(|x| &x.name == c) {
                    return Err(cfg.error_at(
                        &at("client"),
                        format!("no client `{c}` under broker.clients"),
                    ));
                }
                Admits::Client(c.clone())
            }
            (Some(iss), None) => {
                if !b.issuers.contains(iss) {
                    return Err(cfg
                        .error_at(
                            &at("issuer"),
                            format!("`{iss}` is not under broker.issuers"),
                        )
                        .with_hint("add it to broker.issuers"));
                }
                let subject = match (&p.subject, &p.subject_pattern) {
                    (Some(s), None) => Subject::Exact(s.clone()),
                    (None, Some(pat)) => {
                        Subject::Pattern(Regex::new(&format!("^(?:{pat})$")).map_err(|e| {
                            cfg.error_at(&at("subject_pattern"), format!("is not a regex: {e}"))
                        })?)
                    }
                    _ => {
                        return Err(cfg
                            .error_at(
                                &at("subject"),
                                "set exactly one of `subject` and `subject_pattern`",
                            )
                            .with_hint("e.g. subject: \"repo:acme/site:ref:refs/heads/main\""));
                    }
                };
                Admits::Oidc {
                    issuer: iss.clone(),
                    subject,
                    claims: p.claims.clone(),
                }
            }
        };
        out.push(Policy {
            name: p.name.clone(),
            app: p.app.clone(),
            admits,
            repositories: p.repositories.clone(),
            permissions: p.permissions.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_patterns_are_anchored() {
        let p = Policy {
            name: "p".into(),
            app: "default".into(),
            admits: Admits::Oidc {
                issuer: "https://i".into(),
                subject: Subject::Pattern(Regex::new("^(?:repo:acme/site:.*)$").unwrap()),
                claims: BTreeMap::from([("repository_owner_id".into(), "1234".into())]),
            },
            repositories: vec!["site".into()],
            permissions: BTreeMap::new(),
        };
        let caller = |sub: &str, owner: serde_json::Value| Caller::Oidc {
            issuer: "https://i".into(),
            subject: sub.into(),
            claims: serde_json::json!({ "repository_owner_id": owner })
                .as_object()
                .unwrap()
                .clone(),
        };
        assert!(
            p.admits(&caller("repo:acme/site:ref:refs/heads/main", "1234".into()))
                .is_ok()
        );
        assert!(p.admits(&caller("repo:acme/site:x", 1234.into())).is_ok());
        assert!(
            p.admits(&caller("xrepo:acme/site:x", "1234".into()))
                .is_err()
        );
        assert!(p.admits(&caller("repo:acme/site:x", "999".into())).is_err());
        assert!(p.admits(&Caller::Client("c".into())).is_err());
    }

    #[test]
    fn escape_hides_control_characters() {
        assert_eq!(escape("a\nb\u{1b}"), "a\\nb\\u{1b}");
        assert_eq!(escape(&"x".repeat(300)).chars().count(), 201);
        // Line/paragraph separators and bidi controls from outside are made visible.
        for c in [
            '\u{2028}', '\u{2029}', '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}',
        ] {
            let e = escape(&format!("a{c}b"));
            assert!(!e.contains(c), "{e:?}");
            assert!(e.starts_with("a\\u{"), "{e:?}");
        }
    }
}
