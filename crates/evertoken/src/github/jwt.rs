//! The app JWT (RS256): `iat` 60 s in the past, `exp` 9 minutes ahead, `iss` the
//! app id or client id. The private key is read only to sign, refused when group
//! or others can read it (like OpenSSH), and never copied or logged.

use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::app::Issuer;
use crate::error::{Error, Result};
use crate::files;

pub const IAT_BACKDATE_SECS: i64 = 60;
pub const EXP_AHEAD_SECS: i64 = 540;

/// Reads and parses the key at `path` after checking its mode.
pub fn load_key(path: &Path) -> Result<EncodingKey> {
    let shown = path.display();
    let mode = files::mode_of(path).map_err(|e| {
        Error::config(format!(
            "cannot read the GitHub App private key {shown}: {e}"
        ))
        .with_hint("check the path (`private_key_path`) and the permissions of its directory")
    })?;
    let Some(mode) = mode else {
        return Err(
            Error::config(format!("the GitHub App private key {shown} does not exist")).with_hint(
                "download a private key from the app's settings page and install it with \
             `evertoken github bootstrap --private-key PATH …`, or fix `private_key_path`",
            ),
        );
    };
    if files::too_open(mode) {
        return Err(Error::config(format!(
            "the GitHub App private key {shown} is readable by others (mode {mode:04o}); refusing to use it"
        ))
        .with_hint(format!("chmod 600 {shown}")));
    }
    let pem = std::fs::read(path).map_err(|e| {
        Error::config(format!(
            "cannot read the GitHub App private key {shown}: {e}"
        ))
        .with_hint("the key must be readable by the user running evertoken")
    })?;
    parse_key(&pem, path)
}

/// Parses PKCS#1 (`BEGIN RSA PRIVATE KEY`, as GitHub downloads it) or PKCS#8.
pub fn parse_key(pem: &[u8], path: &Path) -> Result<EncodingKey> {
    crate::scrub::register_lines(&String::from_utf8_lossy(pem));
    let shown = path.display();
    let text = String::from_utf8_lossy(pem);
    if text.contains("BEGIN OPENSSH PRIVATE KEY") {
        return Err(Error::config(format!(
            "the GitHub App private key {shown} is in OpenSSH format; GitHub App keys are PEM (PKCS#1 or PKCS#8)"
        ))
        .with_hint(format!(
            "convert it in place with `ssh-keygen -p -m PEM -f {shown}`, or to PKCS#8 with \
             `openssl pkcs8 -topk8 -nocrypt -in {shown} -out KEY.pem`; better, download the key again from the app's settings"
        )));
    }
    if text.contains("ENCRYPTED") {
        return Err(Error::config(format!(
            "the GitHub App private key {shown} is encrypted with a passphrase"
        ))
        .with_hint(format!(
            "decrypt it with `openssl pkey -in {shown} -out KEY.pem` (then chmod 600 KEY.pem)"
        )));
    }
    EncodingKey::from_rsa_pem(pem).map_err(|e| {
        Error::config(format!("{shown} is not a usable RSA private key: {e}"))
            .with_hint("use the .pem file downloaded from the GitHub App's settings page (BEGIN RSA PRIVATE KEY)")
    })
}

/// Signs a JWT for `issuer` at `now` (Unix seconds, already corrected for skew).
pub fn sign(key: &EncodingKey, issuer: &Issuer, now: i64) -> Result<String> {
    let iss = match issuer {
        Issuer::AppId(id) => json!(id),
        Issuer::ClientId(c) => json!(c),
    };
    let claims = json!({
        "iat": now - IAT_BACKDATE_SECS,
        "exp": now + EXP_AHEAD_SECS,
        "iss": iss,
    });
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
        .map_err(|e| Error::failed(format!("cannot sign the GitHub App JWT: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jwt: &str) -> serde_json::Value {
        use base64::Engine as _;
        let p = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn pkcs1_and_pkcs8_sign_with_backdated_iat() {
        let (pkcs1, _) = evertoken_sim::test_rsa_keypair();
        let pkcs8 = evertoken_sim::test_rsa_private_pkcs8();
        for pem in [pkcs1, pkcs8] {
            let key = parse_key(pem.as_bytes(), Path::new("k.pem")).unwrap();
            let jwt = sign(&key, &Issuer::AppId(42), 1_000_000).unwrap();
            let c = claims(&jwt);
            assert_eq!(c["iat"], 1_000_000 - 60);
            assert_eq!(c["exp"], 1_000_000 + 540);
            assert_eq!(c["iss"], 42);
        }
    }

    #[test]
    fn openssh_keys_are_refused_with_the_conversion_command() {
        let e = parse_key(
            b"BEGIN OPENSSH PRIVATE KEY\nnot-a-real-key\n",
            Path::new("/k/app.pem"),
        )
        .err()
        .unwrap();
        assert!(
            e.hint
                .unwrap()
                .contains("ssh-keygen -p -m PEM -f /k/app.pem")
        );
    }
}
