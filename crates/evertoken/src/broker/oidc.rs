//! OIDC ID token verification for the broker: per configured issuer, discovery
//! (`<iss>/.well-known/openid-configuration` → `jwks_uri`) and a JWKS cache that
//! is refreshed when a token names an unknown `kid` (at most once per
//! [`REFRESH_EVERY`], at most [`MAX_KEYS`] keys kept). RS256 and ES256 signatures
//! are checked with `ring`; `iss`, `aud`, `exp`, `nbf` (and a future `iat`) with
//! [`super::LEEWAY_SECS`] of leeway.
//!
//! Docs: <https://openid.net/specs/openid-connect-discovery-1_0.html>,
//! <https://www.rfc-editor.org/rfc/rfc7517> (JWK), <https://www.rfc-editor.org/rfc/rfc7518#section-3.4>
//! (ES256 is the 64-byte `r || s`, not DER),
//! <https://docs.github.com/en/actions/reference/security/oidc> (GitHub's claims).
//!
//! Never logs or returns a token; a rejection says why in words only.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use url::Url;

use super::{Caller, LEEWAY_SECS, client, escape};
use crate::http::{Call, Http, safe_url};

pub const MAX_KEYS: usize = 32;
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// ID tokens are a few kB; anything much larger is not one.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

#[derive(Clone)]
enum Key {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256 { point: Vec<u8> },
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, Key>,
    fetched: bool,
    /// The last fetch an unknown `kid` caused (at most one per [`REFRESH_EVERY`]).
    refetched: Option<Instant>,
}

/// The issuers the broker trusts, with their cached keys.
pub struct Verifier {
    audience: String,
    issuers: HashMap<String, Mutex<Cache>>,
    http: Http,
}

/// Why a token was refused (always a 401).
#[derive(Debug)]
pub struct Reject(pub String);

fn part(s: &str) -> Result<Map<String, Value>, Reject> {
    let raw = URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| Reject("not a JWT (bad base64url)".into()))?;
    match serde_json::from_slice::<Value>(&raw) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Reject("not a JWT (a part is not a JSON object)".into())),
    }
}

/// The latest NumericDate the broker accepts: 9999-12-31T23:59:59Z. Anything
/// later (or before 1970) is not a date an issuer means.
pub const MAX_NUMERIC_DATE: i64 = 253_402_300_799;

#[derive(Clone, Copy)]
enum Round {
    /// `exp`: a fraction of a second never extends a token's life.
    Down,
    /// `nbf`, `iat`: a fraction of a second never brings them earlier.
    Up,
}

/// A NumericDate claim (RFC 7519 section 2: seconds since the epoch, a JSON
/// number that may be non-integer): `None` when absent; refused when it is not a
/// number, not finite or outside 1970..=9999.
fn numeric_date(claims: &Map<String, Value>, k: &str, round: Round) -> Result<Option<i64>, Reject> {
    let Some(v) = claims.get(k) else {
        return Ok(None);
    };
    let out_of_range = || {
        Reject(format!(
            "`{k}` is out of range (a date between 1970 and 9999)"
        ))
    };
    let Value::Number(n) = v else {
        return Err(Reject(format!(
            "`{k}` is not a NumericDate (a number of seconds)"
        )));
    };
    if let Some(i) = n.as_i64() {
        return if (0..=MAX_NUMERIC_DATE).contains(&i) {
            Ok(Some(i))
        } else {
            Err(out_of_range())
        };
    }
    if n.is_u64() {
        return Err(out_of_range());
    }
    let f = n
        .as_f64()
        .filter(|f| f.is_finite())
        .ok_or_else(|| Reject(format!("`{k}` is not a finite number")))?;
    let f = match round {
        Round::Down => f.floor(),
        Round::Up => f.ceil(),
    };
    if !(0.0..=MAX_NUMERIC_DATE as f64).contains(&f) {
        return Err(out_of_range());
    }
    // In range and integral, so the conversion is exact.
    Ok(Some(f as i64))
}

impl Verifier {
    pub fn new(audience: String, issuers: &[String], http: Http) -> Self {
        Self {
            audience,
            issuers: issuers
                .iter()
                .map(|i| (i.clone(), Mutex::new(Cache::default())))
                .collect(),
            http,
        }
    }

    /// Verifies `token` at `now` (Unix seconds) and returns the caller.
    pub async fn verify(&self, token: &str, now: i64) -> Result<Caller, Reject> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Reject("ID token too large".into()));
        }
        let mut it = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(Reject("not a JWT".into()));
        };
        let header = part(h)?;
        let claims = part(p)?;
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| Reject("not a JWT (bad signature encoding)".into()))?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        if !matches!(alg, "RS256" | "ES256") {
            return Err(Reject(format!(
                "algorithm `{}` is not accepted (RS256, ES256)",
                escape(alg)
            )));
        }
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        let Some(cache) = self.issuers.get(iss) else {
            return Err(Reject(format!("unknown issuer `{}`", escape(iss))));
        };
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let key = self.key(iss, cache, &kid).await?;
        let msg = &token.as_bytes()[..h.len() + 1 + p.len()];
        let ok = match (&key, alg) {
            (Key::Rsa { n, e }, "RS256") => ring::signature::RsaPublicKeyComponents { n, e }
                .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, msg, &sig)
                .is_ok(),
            (Key::P256 { point }, "ES256") => ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                point,
            )
            .verify(msg, &sig)
            .is_ok(),
            _ => false,
        };
        if !ok {
            return Err(Reject("bad signature".into()));
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == &self.audience,
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(&self.audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(Reject(format!(
                "wrong audience (expected `{}`)",
                self.audience
            )));
        }
        // Range-checked before any arithmetic; the leeway sums then cannot overflow.
        let exp = numeric_date(&claims, "exp", Round::Down)?
            .ok_or_else(|| Reject("no `exp` claim".into()))?;
        if exp.saturating_add(LEEWAY_SECS) < now {
            return Err(Reject("expired".into()));
        }
        if let Some(nbf) = numeric_date(&claims, "nbf", Round::Up)?
            && nbf.saturating_sub(LEEWAY_SECS) > now
        {
            return Err(Reject("not valid yet (`nbf`)".into()));
        }
        if let Some(iat) = numeric_date(&claims, "iat", Round::Up)?
            && iat.saturating_sub(LEEWAY_SECS) > now
        {
            return Err(Reject("issued in the future (`iat`)".into()));
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Reject("no `sub` claim".into()))?
            .to_owned();
        Ok(Caller::Oidc {
            issuer: iss.to_owned(),
            subject: sub,
            claims,
        })
    }

    async fn key(&self, iss: &str, cache: &Mutex<Cache>, kid: &str) -> Result<Key, Reject> {
        let mut c = cache.lock().await;
        let pick = |c: &Cache| -> Option<Key> {
            if kid.is_empty() && c.keys.len() == 1 {
                return c.keys.values().next().cloned();
            }
            c.keys.get(kid).cloned()
        };
        if let Some(k) = pick(&c) {
            return Ok(k);
        }
        let due = !c.fetched || c.refetched.is_none_or(|t| t.elapsed() >= REFRESH_EVERY);
        if due {
            if c.fetched {
                c.refetched = Some(Instant::now());
            }
            c.fetched = true;
            match self.fetch(iss).await {
                Ok(keys) => c.keys = keys,
                Err(e) => {
                    tracing::warn!("JWKS of {iss}: {e}");
                    return Err(Reject(format!("cannot fetch the issuer's keys: {e}")));
                }
            }
        }
        pick(&c).ok_or_else(|| Reject(format!("unknown key id `{}`", escape(kid))))
    }

    async fn get_json(&self, what: &str, url: &Url) -> Result<Value, String> {
        let reply = self
            .http
            .send(what, Call::Safe, |c| c.get(url.clone()))
            .await
            .map_err(|f| f.message().to_owned())?;
        if !reply.status.is_success() {
            return Err(format!("{} from {}", reply.status.as_u16(), safe_url(url)));
        }
        reply
            .json::<Value>()
            .map_err(|e| format!("{} is not JSON: {e}", safe_url(url)))
    }

    async fn fetch(&self, iss: &str) -> Result<HashMap<String, Key>, String> {
        let disc = Url::parse(&format!(
            "{}/.well-known/openid-configuration",
            iss.trim_end_matches('/')
        ))
        .map_err(|e| e.to_string())?;
        let d = self.get_json("OIDC discovery", &disc).await?;
        if d.get("issuer").and_then(Value::as_str) != Some(iss) {
            return Err(format!(
                "the discovery document at {} names another issuer",
                safe_url(&disc)
            ));
        }
        let jwks = d
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{} has no jwks_uri", safe_url(&disc)))?;
        let jwks = client::parse_url(jwks)?;
        let v = self.get_json("OIDC JWKS", &jwks).await?;
        let mut out = HashMap::new();
        for k in v
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if out.len() >= MAX_KEYS {
                break;
            }
            let s = |f: &str| k.get(f).and_then(Value::as_str);
            let b = |f: &str| s(f).and_then(|x| URL_SAFE_NO_PAD.decode(x).ok());
            if s("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let kid = s("kid").unwrap_or("").to_owned();
            let key = match (s("kty"), s("crv")) {
                (Some("RSA"), _) => match (b("n"), b("e")) {
                    (Some(n), Some(e)) => Key::Rsa { n, e },
                    _ => continue,
                },
                (Some("EC"), Some("P-256")) => match (b("x"), b("y")) {
                    (Some(x), Some(y)) if x.len() == 32 && y.len() == 32 => {
                        let mut point = vec![4u8];
                        point.extend(x);
                        point.extend(y);
                        Key::P256 { point }
                    }
                    _ => continue,
                },
                _ => continue,
            };
            out.insert(kid, key);
        }
        Ok(out)
    }
}
