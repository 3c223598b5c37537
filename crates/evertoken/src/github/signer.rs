//! Who signs the GitHub App JWT: the app's key file on this host, or a Vault /
//! OpenBao Transit key that never leaves Vault (`github.apps.<a>.signer`).
//! A host configured with `github.apps.<a>.broker` signs nothing: it asks the
//! token broker (`crate::broker::client`).
//!
//! Transit: `POST /v1/<mount>/sign/<key>/sha2-256` with
//! `signature_algorithm: pkcs1v15` is exactly RS256's RSASSA-PKCS1-v1_5 over
//! SHA-256; Vault answers `vault:v1:<standard base64>`, which becomes the JWS's
//! base64url third part. Auth, namespace and CA file work as for the vault store
//! (the same code). Docs: <https://openbao.org/api-docs/secret/transit/#sign-data>,
//! <https://developer.hashicorp.com/vault/api-docs/secret/transit#sign-data>,
//! <https://openbao.org/api-docs/system/capabilities-self/>.
//!
//! Never logs or returns a private key, a Vault token or a whole JWT.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::app::{App, Issuer};
use super::jwt;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::safe_url;
use crate::store::vault;

/// `github.apps.<a>.signer` as the user writes it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignerConfig {
    pub backend: Backend,
    /// Default `$VAULT_ADDR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default = "default_mount")]
    pub mount: String,
    /// The Transit key's name.
    pub key: String,
    /// Default `$VAULT_NAMESPACE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Default `$VAULT_CACERT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default = "default_approle_mount")]
    pub approle_mount: String,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    VaultTransit,
}

fn default_mount() -> String {
    "transit".into()
}
fn default_approle_mount() -> String {
    "approle".into()
}

/// A Transit key, ready to sign.
pub struct Transit {
    vault: vault::Inner,
    mount: String,
    key: String,
    /// The config key, for messages (`github.apps.NAME.signer`).
    at: String,
}

impl std::fmt::Debug for Transit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transit({}/keys/{})", self.mount, self.key)
    }
}

/// Checks the entry's names (called when the config loads).
pub(crate) fn validate(cfg: &Config, at: &str, c: &SignerConfig) -> Result<()> {
    for (k, v) in [
        ("mount", &c.mount),
        ("key", &c.key),
        ("approle_mount", &c.approle_mount),
    ] {
        let ok = !v.is_empty()
            && v.trim_matches('/').split('/').all(|s| {
                !s.is_empty()
                    && s != "."
                    && s != ".."
                    && s.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
            });
        if !ok || (k == "key" && v.contains('/')) {
            return Err(cfg
                .error_at(&format!("{at}.{k}"), format!("`{v}` is not a Vault name"))
                .with_hint("use letters, digits, `-`, `_` and `.`, e.g. `mount: transit`, `key: github-app`"));
        }
    }
    Ok(())
}

impl Transit {
    /// Builds the client (no network). Auth from `VAULT_TOKEN` or AppRole.
    pub fn connect(cfg: &Config, at: &str, c: &SignerConfig) -> Result<Transit> {
        let vc = vault::Config {
            address: c.address.clone(),
            mount: c.mount.clone(),
            namespace: c.namespace.clone(),
            ca_file: c.ca_file.clone(),
            approle_mount: c.approle_mount.clone(),
            ..vault::Config::default()
        };
        let settings = vault::Settings::resolve(&vc, &cfg.site, at)?;
        let http = crate::http::Http::new(&cfg.file.http);
        Ok(Transit {
            vault: vault::connect(&settings, &cfg.ctx(&http), at)?,
            mount: c.mount.trim_matches('/').to_owned(),
            key: c.key.clone(),
            at: at.to_owned(),
        })
    }

    fn sign_path(&self) -> String {
        format!("{}/sign/{}/sha2-256", self.mount, self.key)
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        let (status, v, raw) = self.vault.call(method, path, body).await.map_err(|e| {
            let err = Error::failed(e.message);
            match e.hint {
                Some(h) => err.with_hint(h),
                None => err,
            }
        })?;
        if status.is_success() {
            return Ok((status.as_u16(), v));
        }
        let at = safe_url(&self.vault.url(path));
        let msg = vault::vault_message(&v, &raw);
        Err(match status.as_u16() {
            403 => Error::failed(format!("Vault ({at}) answered 403: {msg}")).with_hint(format!(
                "the Vault token needs `update` on `{}` (see the minimal policy in the keys-off-host guide)",
                self.sign_path()
            )),
            404 | 400 if msg.contains("not found") || status.as_u16() == 404 => Error::failed(format!(
                "Vault ({at}) answered {status}: {msg}"
            ))
            .with_hint(format!(
                "check `{}.key` ({}) and `{}.mount` ({}): `bao read {}/keys/{}` must show an RSA key",
                self.at, self.key, self.at, self.mount, self.mount, self.key
            )),
            _ => Error::failed(format!("Vault ({at}) answered {status}: {msg}")),
        })
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `msg`, done by Vault.
    pub async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let body = json!({
            "input": STANDARD.encode(msg),
            "signature_algorithm": "pkcs1v15",
        });
        let path = self.sign_path();
        let (_, v) = self.call(Method::POST, &path, Some(&body)).await?;
        let sig = v
            .pointer("/data/signature")
            .and_then(Value::as_str)
            .unwrap_or("");
        decode_vault_signature(sig).ok_or_else(|| {
            Error::failed(format!(
                "Vault ({}) answered without a `vault:vN:` signature",
                safe_url(&self.vault.url(&path))
            ))
            .with_hint("check that `mount` is a Transit engine (`bao secrets list`)")
        })
    }

    /// `doctor`: the key exists, is RSA, and the token may sign with it.
    pub async fn check(&self) -> Result<String> {
        let keys_path = format!("{}/keys/{}", self.mount, self.key);
        let (_, v) = self.call(Method::GET, &keys_path, None).await?;
        let kind = v
            .pointer("/data/type")
            .and_then(Value::as_str)
            .unwrap_or("?");
        if !kind.starts_with("rsa-") {
            return Err(Error::config(format!(
                "the Transit key `{}` at {} is `{kind}`, not RSA; GitHub App JWTs are RS256",
                self.key,
                safe_url(&self.vault.url(&keys_path))
            ))
            .with_hint("import the app's .pem (`bao transit import … type=rsa-2048`) or create an rsa-2048 key"));
        }
        let sign = self.sign_path();
        let (_, caps) = self
            .call(
                Method::POST,
                "sys/capabilities-self",
                Some(&json!({ "paths": [sign] })),
            )
            .await?;
        let list: Vec<&str> = caps
            .get(&sign)
            .or_else(|| caps.get("capabilities"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // Transit's sign endpoint is a write to an existing path: it needs
        // `update` (or `root`); `create` applies only to paths that do not exist
        // yet and `sudo` only to root-protected paths, so neither signs alone.
        // developer.hashicorp.com/vault/docs/concepts/policies#capabilities
        if !list.iter().any(|c| matches!(*c, "update" | "root")) {
            return Err(Error::config(format!(
                "the Vault token may not sign with `{}` (its capabilities on {sign}: {})",
                self.key,
                if list.is_empty() {
                    "none".to_owned()
                } else {
                    list.join(", ")
                }
            ))
            .with_hint(format!(
                "give the token's policy `path \"{sign}\" {{ capabilities = [\"update\"] }}`"
            )));
        }
        Ok(format!(
            "Transit key `{}` ({kind}) at {}, signing allowed",
            self.key,
            safe_url(&self.vault.url(&keys_path))
        ))
    }
}

/// `doctor`'s row for an app that holds no key file: `("signer", …)` for
/// Transit (key exists, is RSA, the token may sign), `("broker", …)` for a broker
/// client; `None` for a key-file app.
pub async fn doctor_check(app: &App) -> Option<(&'static str, Result<String>)> {
    if let Some(b) = &app.broker {
        return Some((
            "broker",
            Ok(format!(
                "tokens come from {} under policy `{}`; no key on this host",
                safe_url(&b.url),
                b.policy
            )),
        ));
    }
    match &app.signer {
        KeySource::File => None,
        KeySource::Transit(_) => Some((
            "signer",
            match app.signer.transit() {
                Ok(t) => t.check().await,
                Err(e) => Err(e),
            },
        )),
    }
}

/// `vault:v1:<base64>` → the raw signature bytes.
pub fn decode_vault_signature(s: &str) -> Option<Vec<u8>> {
    let rest = s.strip_prefix("vault:v")?;
    let (version, b64) = rest.split_once(':')?;
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    STANDARD.decode(b64).ok().filter(|b| !b.is_empty())
}

/// The app JWT's signing input (`base64url(header).base64url(claims)`).
pub fn signing_input(issuer: &Issuer, now: i64) -> String {
    let iss = match issuer {
        Issuer::AppId(id) => json!(id),
        Issuer::ClientId(c) => json!(c),
    };
    let header = json!({"alg": "RS256", "typ": "JWT"});
    let claims = json!({
        "iat": now - jwt::IAT_BACKDATE_SECS,
        "exp": now + jwt::EXP_AHEAD_SECS,
        "iss": iss,
    });
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// `input.base64url(signature)`.
pub fn assemble(input: &str, sig: &[u8]) -> String {
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Where an app's signatures come from, as resolved from the config.
#[derive(Debug, Clone, Default)]
pub enum KeySource {
    /// The key file at `App::key_path`.
    #[default]
    File,
    /// A Transit key; the error (no Vault token, bad CA file) is reported when signing.
    Transit(Arc<std::result::Result<Transit, Error>>),
}

impl KeySource {
    pub fn transit(&self) -> Result<&Transit> {
        match self {
            KeySource::Transit(t) => t.as_ref().as_ref().map_err(|e| {
                let err = Error {
                    kind: e.kind,
                    message: e.message.clone(),
                    hint: None,
                };
                match &e.hint {
                    Some(h) => err.with_hint(h.clone()),
                    None => err,
                }
            }),
            KeySource::File => Err(Error::config(
                "this app signs with its key file, not Transit",
            )),
        }
    }
}

/// Signs app JWTs with whatever the app is configured with.
pub enum Signer {
    Local(Box<jwt::LocalSigner>),
    Transit(Arc<std::result::Result<Transit, Error>>),
}

impl Signer {
    /// Loads the key file (mode checked) or takes the Transit client.
    pub fn for_app(app: &App) -> Result<Signer> {
        match &app.signer {
            KeySource::File => Ok(Signer::Local(Box::new(jwt::load_key(&app.key_path)?))),
            KeySource::Transit(t) => {
                app.signer.transit()?;
                Ok(Signer::Transit(t.clone()))
            }
        }
    }

    /// A JWT for `issuer` at `now` (Unix seconds, skew already applied).
    pub async fn jwt(&self, issuer: &Issuer, now: i64) -> Result<String> {
        match self {
            Signer::Local(k) => jwt::sign(k, issuer, now),
            Signer::Transit(t) => {
                let t = t
                    .as_ref()
                    .as_ref()
                    .map_err(|e| Error::failed(e.message.clone()))?;
                let input = signing_input(issuer, now);
                let sig = t.sign(input.as_bytes()).await?;
                Ok(assemble(&input, &sig))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_signatures_become_base64url() {
        let raw = [0xfbu8, 0xff, 0x01, 0x02];
        let s = format!("vault:v1:{}", STANDARD.encode(raw));
        assert_eq!(decode_vault_signature(&s).unwrap(), raw);
        assert_eq!(assemble("a.b", &raw), "a.b.-_8BAg");
        assert!(decode_vault_signature("vault:v1:").is_none());
        assert!(decode_vault_signature("vault:vx:AAAA").is_none());
        assert!(decode_vault_signature("AAAA").is_none());
    }

    #[test]
    fn transit_jwt_verifies_with_the_apps_public_key() {
        // The signing input signed with the same RSA key locally must verify
        // as RS256: header and claims are what GitHub expects.
        let (pem, public) = evertoken_sim::test_rsa_keypair();
        let input = signing_input(&Issuer::AppId(7), 1_000_000);
        let key = jwt::parse_key(pem.as_bytes(), std::path::Path::new("test.pem")).unwrap();
        let sig = key.sign(input.as_bytes()).unwrap();
        let token = assemble(&input, &sig);
        let pk = evertoken_sim::rs256::parse_public_pem(&public).unwrap();
        assert!(
            evertoken_sim::rs256::verify(&token, &pk),
            "RS256 signature verifies"
        );
        let claims = token.split('.').nth(1).unwrap();
        let data: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(data["iss"], 7);
        assert_eq!(data["iat"], 1_000_000 - 60);
    }
}
