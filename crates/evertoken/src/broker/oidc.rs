//! OIDC ID token verification for the broker: per configured issuer, discovery
//! (`<iss>/.well-known/openid-configuration` → `jwks_uri`) and a JWKS cache that
//! is refreshed when a token names an unknown `kid` (at most once per
//! [`REFRESH_EVERY`], at most [`MAX_KEYS`] keys kept) and when the cached keys
//! are older than their max age: the JWKS answer's `Cache-Control: max-age`, else
//! [`DEFAULT_MAX_AGE_SECS`], bounded to [`MIN_MAX_AGE_SECS`]..=[`MAX_MAX_AGE_SECS`].
//! So a key the issuer withdrew (compromised, rotated out) stops verifying tokens
//! within that age, even when tokens keep naming it. Ages count on the broker's
//! clock (the `now` every verification gets). RS256 and ES256 signatures
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
/// How long fetched keys are used when the JWKS answer has no `max-age`.
pub const DEFAULT_MAX_AGE_SECS: i64 = 3600;
/// A `max-age` below this (including `no-cache`) is raised to it, so a busy
/// broker does not fetch the keys for every token.
pub const MIN_MAX_AGE_SECS: i64 = 60;
/// A `max-age` above this is lowered to it.
pub const MAX_MAX_AGE_SECS: i64 = 86_400;
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
    /// When the cached keys stop being used (Unix seconds on the broker's clock).
    expires_at: Option<i64>,
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
        let key = self.key(iss, cache, &kid, now).await?;
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

    async fn key(
        &self,
        iss: &str,
        cache: &Mutex<Cache>,
        kid: &str,
        now: i64,
    ) -> Result<Key, Reject> {
        let mut c = cache.lock().await;
        if c.expires_at.is_some_and(|t| now >= t) {
            // Too old: forget the keys and fetch them as if for the first time.
            c.keys.clear();
            c.expires_at = None;
            c.fetched = false;
        }
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
                Ok((keys, max_age)) => {
                    c.keys = keys;
                    c.expires_at = Some(now.saturating_add(max_age));
                }
                Err(e) => {
                    tracing::warn!("JWKS of {iss}: {e}");
                    return Err(Reject(format!("cannot fetch the issuer's keys: {e}")));
                }
            }
        }
        pick(&c).ok_or_else(|| Reject(format!("unknown key id `{}`", escape(kid))))
    }

    async fn get_json(&self, what: &str, url: &Url) -> Result<Value, String> {
        self.get_json_with_age(what, url).await.map(|(v, _)| v)
    }

    /// The JSON at `url` and how long it may be cached (bounded, in seconds).
    async fn get_json_with_age(&self, what: &str, url: &Url) -> Result<(Value, i64), String> {
        let reply = self
            .http
            .send(what, Call::Safe, |c| c.get(url.clone()))
            .await
            .map_err(|f| f.message().to_owned())?;
        if !reply.status.is_success() {
            return Err(format!("{} from {}", reply.status.as_u16(), safe_url(url)));
        }
        let v = reply
            .json::<Value>()
            .map_err(|e| format!("{} is not JSON: {e}", safe_url(url)))?;
        let age = reply
            .headers
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .find_map(max_age)
            .unwrap_or(DEFAULT_MAX_AGE_SECS)
            .clamp(MIN_MAX_AGE_SECS, MAX_MAX_AGE_SECS);
        Ok((v, age))
    }

    async fn fetch(&self, iss: &str) -> Result<(HashMap<String, Key>, i64), String> {
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
        let (v, age) = self.get_json_with_age("OIDC JWKS", &jwks).await?;
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
        Ok((out, age))
    }
}

/// The `max-age` of one `Cache-Control` header value (RFC 9111 section 5.2.2.1),
/// 0 for `no-cache` / `no-store`; `None` when it says neither. An unreadable or
/// huge number is ignored / saturated, never trusted.
fn max_age(header: &str) -> Option<i64> {
    let mut found = None;
    for d in header.split(',') {
        let d = d.trim();
        let (name, value) = d.split_once('=').unwrap_or((d, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            let digits = value.trim().trim_matches('"');
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                found = Some(digits.parse::<i64>().unwrap_or(i64::MAX));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use evertoken_sim::{OidcAlg, SimOptions, SimServer};
    use serde_json::json;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=120"), Some(120));
        assert_eq!(max_age("max-age=\"300\", must-revalidate"), Some(300));
        assert_eq!(max_age("MAX-AGE=7"), Some(7));
        assert_eq!(max_age("no-cache"), Some(0));
        assert_eq!(max_age("private, no-store, max-age=900"), Some(0));
        assert_eq!(max_age("max-age=99999999999999999999999"), Some(i64::MAX));
        assert_eq!(max_age("max-age=-5"), None);
        assert_eq!(max_age("max-age=soon"), None);
        assert_eq!(max_age("public"), None);
    }

    /// A verifier for the simulator's issuer and a token signed by its current
    /// key, valid for 10 days (so only the key cache decides).
    async fn setup(server: &SimServer) -> (Verifier, String, i64) {
        let iss = format!("{}/oidc", server.base_url());
        let http = Http::new(&crate::config::HttpConfig::default());
        let v = Verifier::new("evertoken".into(), std::slice::from_ref(&iss), http);
        let now = server.sim().now().as_second();
        let token = server.sim().oidc_token(
            OidcAlg::Es256,
            json!({"iss": iss, "aud": "evertoken", "sub": "repo:acme/site:ref:refs/heads/main", "exp": now + 10 * 86_400}),
        );
        (v, token, now)
    }

    /// The key stays cached for `cached` seconds after the first verification
    /// (no fetch, even though the issuer withdrew it), and is dropped after `gone`.
    async fn withdrawn_key_expires(max_age: Option<u64>, cached: i64, gone: i64) {
        let server = SimServer::start(SimOptions::default()).await.unwrap();
        let sim = server.sim();
        sim.oidc_set_jwks_max_age(max_age);
        let (v, token, now) = setup(&server).await;
        v.verify(&token, now).await.unwrap();
        assert_eq!(sim.oidc_jwks_fetches(), 1);
        sim.oidc_rotate(false);
        v.verify(&token, now + cached)
            .await
            .unwrap_or_else(|e| panic!("{max_age:?}: cached at +{cached}: {}", e.0));
        assert_eq!(
            sim.oidc_jwks_fetches(),
            1,
            "{max_age:?}: served from the cache"
        );
        let err = v.verify(&token, now + gone).await.unwrap_err();
        assert!(err.0.contains("unknown key id"), "{max_age:?}: {}", err.0);
        assert_eq!(sim.oidc_jwks_fetches(), 2, "{max_age:?}: refetched once");
    }

    #[tokio::test]
    async fn cached_keys_expire_after_an_hour_without_max_age() {
        withdrawn_key_expires(None, 3599, 3600).await;
    }

    #[tokio::test]
    async fn cached_keys_expire_after_the_answers_max_age() {
        withdrawn_key_expires(Some(120), 119, 120).await;
    }

    #[tokio::test]
    async fn max_age_is_bounded_to_a_minute_and_a_day() {
        withdrawn_key_expires(Some(0), 59, 60).await;
        withdrawn_key_expires(Some(30 * 86_400), 86_399, 86_400).await;
    }

    #[tokio::test]
    async fn a_still_published_key_is_refetched_and_keeps_working() {
        let server = SimServer::start(SimOptions::default()).await.unwrap();
        let sim = server.sim();
        let (v, token, now) = setup(&server).await;
        v.verify(&token, now).await.unwrap();
        sim.oidc_rotate(true);
        v.verify(&token, now + 3600).await.unwrap();
        assert_eq!(sim.oidc_jwks_fetches(), 2);
        v.verify(&token, now + 3700).await.unwrap();
        assert_eq!(sim.oidc_jwks_fetches(), 2, "the new fetch is cached again");
    }
}
