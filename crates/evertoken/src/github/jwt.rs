//! The app JWT (RS256): `iat` 60 s in the past, `exp` 9 minutes ahead, `iss` the
//! app id or client id, signed with RSASSA-PKCS1-v1_5 SHA-256 on `ring` (see
//! SECURITY.md, "Cryptography backend": no per-process entropy seeding).
//!
//! It owns the JWT's assembly ([`signing_input`], [`assemble`]) and the local
//! signer ([`LocalSigner`], a key file on this host); other signers (a key held
//! elsewhere) sign the same signing input. The private key is read only to sign,
//! refused when group or others can read it (like OpenSSH), and never copied,
//! printed or logged.

use std::path::Path;

use base64::Engine as _;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};

use super::app::Issuer;
use crate::error::{Error, Result};
use crate::files;

pub const IAT_BACKDATE_SECS: i64 = 60;
pub const EXP_AHEAD_SECS: i64 = 540;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A GitHub App private key on this host, parsed once, ready to sign.
pub struct LocalSigner {
    key: RsaKeyPair,
}

impl std::fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LocalSigner(RSA {} bits, private key redacted)",
            self.key.public().modulus_len() * 8
        )
    }
}

impl LocalSigner {
    /// RS256: the PKCS#1 v1.5 SHA-256 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let mut sig = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                msg,
                &mut sig,
            )
            .map_err(|_| Error::failed("cannot sign the GitHub App JWT with the local key"))?;
        Ok(sig)
    }
}

/// The JOSE header every app JWT carries.
pub fn header() -> Value {
    json!({"alg": "RS256", "typ": "JWT"})
}

/// The claims GitHub checks, for `issuer` at `now` (Unix seconds, already
/// corrected for skew).
pub fn claims(issuer: &Issuer, now: i64) -> Value {
    let iss = match issuer {
        Issuer::AppId(id) => json!(id),
        Issuer::ClientId(c) => json!(c),
    };
    json!({
        "iat": now - IAT_BACKDATE_SECS,
        "exp": now + EXP_AHEAD_SECS,
        "iss": iss,
    })
}

/// `base64url(header) "." base64url(claims)`: the bytes a signer signs.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

/// The compact JWT: the signing input, `.`, base64url(signature).
pub fn assemble(signing_input: &str, sig: &[u8]) -> String {
    format!("{signing_input}.{}", B64.encode(sig))
}

/// Reads and parses the key at `path` after checking its mode.
pub fn load_key(path: &Path) -> Result<LocalSigner> {
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
pub fn parse_key(pem: &[u8], path: &Path) -> Result<LocalSigner> {
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
    let unusable = |why: String| {
        Error::config(format!("{shown} is not a usable RSA private key: {why}"))
            .with_hint("use the .pem file downloaded from the GitHub App's settings page (BEGIN RSA PRIVATE KEY)")
    };
    let blocks = pem::parse_many(pem).map_err(|e| unusable(e.to_string()))?;
    let key = blocks
        .iter()
        .find_map(|b| match b.tag() {
            "RSA PRIVATE KEY" => Some(RsaKeyPair::from_der(b.contents())),
            "PRIVATE KEY" => Some(RsaKeyPair::from_pkcs8(b.contents())),
            _ => None,
        })
        .ok_or_else(|| unusable("no `BEGIN RSA PRIVATE KEY` or `BEGIN PRIVATE KEY` block".into()))?
        .map_err(|e| unusable(e.to_string()))?;
    Ok(LocalSigner { key })
}

/// Signs a JWT for `issuer` at `now` (Unix seconds, already corrected for skew).
pub fn sign(key: &LocalSigner, issuer: &Issuer, now: i64) -> Result<String> {
    let input = signing_input(&header(), &claims(issuer, now));
    let sig = key.sign(input.as_bytes())?;
    Ok(assemble(&input, &sig))
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
    fn the_simulator_verifies_what_this_signs() {
        let (pkcs1, public) = evertoken_sim::test_rsa_keypair();
        let key = parse_key(pkcs1.as_bytes(), Path::new("k.pem")).unwrap();
        let jwt = sign(&key, &Issuer::ClientId("Iv23abc".into()), 1_000_000).unwrap();
        let public = evertoken_sim::rs256::parse_public_pem(&public).unwrap();
        assert!(evertoken_sim::rs256::verify(&jwt, &public));
        // RS256 is deterministic: the same input signs to the same JWT.
        assert_eq!(
            jwt,
            sign(&key, &Issuer::ClientId("Iv23abc".into()), 1_000_000).unwrap()
        );
        assert!(format!("{key:?}").contains("redacted"));
    }

    #[test]
    fn garbage_is_not_a_key() {
        for junk in [
            &b"not a pem"[..],
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            let e = parse_key(junk, Path::new("/k/app.pem")).err().unwrap();
            assert!(
                e.to_string().contains("not a usable RSA private key"),
                "{e}"
            );
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
