//! RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3) on `ring`, for the
//! simulated GitHub App JWTs: parse an app's public key, verify a compact JWT's
//! signature, and (for tests) sign one with a private key.
//!
//! It checks the header and the signature only; the claims (`iss`, `iat`, `exp`)
//! are `github.rs`'s business. It never accepts a JWT whose `alg` is not `RS256`
//! (GitHub: "JWTs must be signed using the RS256 algorithm",
//! <https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app>).

use base64::Engine as _;
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};
use serde_json::Value;

/// An RSA public key as PKCS#1 `RSAPublicKey` DER (what ring verifies with).
#[derive(Clone, Debug)]
pub struct PublicKey(Vec<u8>);

/// The DER of the `rsaEncryption` OID, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// One DER TLV: `(tag, contents, rest)`.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// `SubjectPublicKeyInfo` → the `RSAPublicKey` inside its BIT STRING (RFC 5280 §4.1,
/// RFC 8017 §A.1.1). `None` for anything that is not an RSA key.
fn rsa_public_key_of_spki(spki: &[u8]) -> Option<Vec<u8>> {
    let (0x30, body, _) = der_tlv(spki)? else {
        return None;
    };
    let (0x30, alg, rest) = der_tlv(body)? else {
        return None;
    };
    let (0x06, oid, _) = der_tlv(alg)? else {
        return None;
    };
    if oid != RSA_ENCRYPTION_OID {
        return None;
    }
    let (0x03, bits, _) = der_tlv(rest)? else {
        return None;
    };
    // A BIT STRING starts with its count of unused bits: 0 for a DER key.
    let (0, key) = bits.split_first()? else {
        return None;
    };
    Some(key.to_vec())
}

/// Parses SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`) PEM.
pub fn parse_public_pem(pem: &str) -> Result<PublicKey, String> {
    for item in pem::parse_many(pem).map_err(|e| format!("bad PEM: {e}"))? {
        match item.tag() {
            "PUBLIC KEY" => {
                return rsa_public_key_of_spki(item.contents())
                    .map(PublicKey)
                    .ok_or_else(|| "not an RSA public key".to_owned());
            }
            "RSA PUBLIC KEY" => return Ok(PublicKey(item.into_contents())),
            _ => {}
        }
    }
    Err("no public key in the PEM".to_owned())
}

/// Whether `jwt` is a compact JWS with header `alg: RS256` signed by `key`.
pub fn verify(jwt: &str, key: &PublicKey) -> bool {
    let mut parts = jwt.rsplitn(2, '.');
    let (Some(sig), Some(signing_input)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Some((header, _)) = signing_input.split_once('.') else {
        return false;
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Ok(header) = b64.decode(header) else {
        return false;
    };
    let Ok(header) = serde_json::from_slice::<Value>(&header) else {
        return false;
    };
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return false;
    }
    let Ok(sig) = b64.decode(sig) else {
        return false;
    };
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &key.0)
        .verify(signing_input.as_bytes(), &sig)
        .is_ok()
}

/// Signs `claims` as an RS256 JWT with a PKCS#1 or PKCS#8 PEM private key. For
/// tests and the demo: the simulator itself never signs app JWTs.
pub fn sign(private_pem: &str, claims: &Value) -> Result<String, String> {
    let mut key = None;
    for item in pem::parse_many(private_pem).map_err(|e| format!("bad PEM: {e}"))? {
        key = match item.tag() {
            "RSA PRIVATE KEY" => Some(RsaKeyPair::from_der(item.contents())),
            "PRIVATE KEY" => Some(RsaKeyPair::from_pkcs8(item.contents())),
            _ => continue,
        };
        break;
    }
    let key = key
        .ok_or("no private key in the PEM")?
        .map_err(|e| format!("unusable RSA key: {e}"))?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!(
        "{}.{}",
        b64.encode(br#"{"typ":"JWT","alg":"RS256"}"#),
        b64.encode(claims.to_string())
    );
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(
        &signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| "signing failed".to_owned())?;
    Ok(format!("{input}.{}", b64.encode(sig)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_with_pkcs1_and_pkcs8_and_rejects_tampering() {
        let (pkcs1, public) = crate::test_rsa_keypair();
        let key = parse_public_pem(&public).unwrap();
        let claims = serde_json::json!({"iss": 1, "iat": 2, "exp": 3});
        for pem in [pkcs1, crate::test_rsa_private_pkcs8()] {
            let jwt = sign(&pem, &claims).unwrap();
            assert!(verify(&jwt, &key));
            let mut bad = jwt.clone();
            bad.insert(jwt.find('.').unwrap() + 2, 'x');
            assert!(!verify(&bad, &key));
        }
        assert!(!verify("a.b", &key));
        assert!(parse_public_pem("not pem").is_err());
    }
}
