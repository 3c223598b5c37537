//! An OIDC ID token issuer, shaped like GitHub Actions' and GitLab CI's: discovery
//! at `/oidc/.well-known/openid-configuration`, keys at `/oidc/jwks`, RS256 and
//! ES256 ID tokens minted by the tests ([`Sim::oidc_token`], or the dev-only
//! `POST /_sim/oidc/token`), and key rotation ([`Sim::oidc_rotate`]). The issuer
//! is `http://HOST:PORT/oidc` (from the request's `Host`).
//!
//! Docs checked:
//! - <https://openid.net/specs/openid-connect-discovery-1_0.html> (`issuer` must
//!   equal the `iss` of the tokens; `jwks_uri`; `id_token_signing_alg_values_supported`).
//! - <https://www.rfc-editor.org/rfc/rfc7517> (JWK: `kty`, `kid`, `use`, `alg`,
//!   RSA `n`/`e`, EC `crv`/`x`/`y`, base64url without padding).
//! - <https://www.rfc-editor.org/rfc/rfc7518#section-3.4> (ES256 signatures are
//!   the 64-byte `R || S`).
//! - <https://docs.github.com/en/actions/reference/security/oidc> (GitHub's
//!   issuer `https://token.actions.githubusercontent.com`, claims `sub`
//!   `repo:OWNER/REPO:ref:refs/heads/BRANCH`, `repository_owner_id`, `aud`; GitHub
//!   publishes several keys and rotates them, so verifiers refetch on an unknown `kid`).
//! - <https://www.rfc-editor.org/rfc/rfc9111#section-5.2.2.1> (`Cache-Control:
//!   max-age`): an issuer may send one with its JWKS; the simulator sends none
//!   unless [`Sim::oidc_set_jwks_max_age`] sets one, so verifiers are tested both ways.
//! - <https://docs.gitlab.com/ci/secrets/id_token_authentication/> (`id_tokens:`
//!   with `aud`, RS256, `sub` `project_path:GROUP/PROJECT:ref_type:branch:ref:main`).
//!
//! The keys are generated per simulator with `ring` (EC) or are the simulator's
//! throw-away test RSA key; they protect nothing.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Map, Value, json};

use crate::state::Sim;

/// The signing algorithms the issuer offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OidcAlg {
    Rs256,
    Es256,
}

struct EcKey {
    kid: String,
    pair: Arc<EcdsaKeyPair>,
}

#[derive(Default)]
pub(crate) struct OidcState {
    ec: Vec<EcKey>,
    rsa: Option<(String, Arc<RsaKeyPair>)>,
    generation: u32,
    pub jwks_fetches: u64,
    /// `Cache-Control: max-age` of the JWKS answer (none by default).
    jwks_max_age: Option<u64>,
}

fn new_ec(generation: u32) -> EcKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("ring generates P-256 keys");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("a key ring generated parses");
    EcKey {
        kid: format!("sim-ec-{generation}"),
        pair: Arc::new(pair),
    }
}

fn rsa_pair() -> RsaKeyPair {
    let (pem, _) = crate::github::test_rsa_keypair();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD
        .decode(b64)
        .expect("the embedded test key is base64");
    RsaKeyPair::from_der(&der).expect("the embedded test key is PKCS#1 RSA")
}

impl OidcState {
    fn ensure(&mut self) {
        if self.ec.is_empty() {
            self.generation += 1;
            self.ec.push(new_ec(self.generation));
        }
        if self.rsa.is_none() {
            self.rsa = Some(("sim-rsa-1".into(), Arc::new(rsa_pair())));
        }
    }

    fn jwks(&mut self) -> Value {
        self.ensure();
        let mut keys = Vec::new();
        for k in &self.ec {
            let p = k.pair.public_key().as_ref();
            keys.push(json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": k.kid,
                "x": URL_SAFE_NO_PAD.encode(&p[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&p[33..65]),
            }));
        }
        if let Some((kid, r)) = &self.rsa {
            let pk = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(r.public());
            keys.push(json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(&pk.n),
                "e": URL_SAFE_NO_PAD.encode(&pk.e),
            }));
        }
        json!({ "keys": keys })
    }
}

impl Sim {
    /// Signs an ID token. `claims` are used as given, with `iat`, `nbf` (now) and
    /// `exp` (now + 5 minutes) added when absent; the caller sets `iss`
    /// (`{base_url}/oidc`), `aud` and `sub`.
    pub fn oidc_token(&self, alg: OidcAlg, claims: Value) -> String {
        let (kid, key) = {
            let mut st = self.lock();
            let now = st.now().as_second();
            st.oidc.ensure();
            match alg {
                OidcAlg::Es256 => {
                    let k = &st.oidc.ec[0];
                    (k.kid.clone(), Signing::Ec(k.pair.clone(), now))
                }
                OidcAlg::Rs256 => {
                    let (kid, r) = st.oidc.rsa.clone().expect("ensured");
                    (kid, Signing::Rsa(r, now))
                }
            }
        };
        let now = key.now();
        let mut c: Map<String, Value> = claims.as_object().cloned().unwrap_or_default();
        c.entry("iat").or_insert(json!(now));
        c.entry("nbf").or_insert(json!(now));
        c.entry("exp").or_insert(json!(now + 300));
        let header = json!({
            "typ": "JWT",
            "alg": if alg == OidcAlg::Rs256 { "RS256" } else { "ES256" },
            "kid": kid,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(c).to_string())
        );
        let sig = key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// Rotates the EC signing key: a new key signs from now on. With `keep_old`
    /// the JWKS still lists the previous key (as real issuers do for a while).
    pub fn oidc_rotate(&self, keep_old: bool) {
        let mut st = self.lock();
        st.oidc.ensure();
        st.oidc.generation += 1;
        let k = new_ec(st.oidc.generation);
        if !keep_old {
            st.oidc.ec.clear();
        }
        st.oidc.ec.insert(0, k);
    }

    /// Makes the JWKS answer carry `Cache-Control: public, max-age=SECS`
    /// (`None`: no `Cache-Control`, the default).
    pub fn oidc_set_jwks_max_age(&self, secs: Option<u64>) {
        self.lock().oidc.jwks_max_age = secs;
    }

    /// How many times `/oidc/jwks` was fetched.
    pub fn oidc_jwks_fetches(&self) -> u64 {
        self.lock().oidc.jwks_fetches
    }
}

enum Signing {
    Ec(Arc<EcdsaKeyPair>, i64),
    Rsa(Arc<RsaKeyPair>, i64),
}

impl Signing {
    fn now(&self) -> i64 {
        match self {
            Signing::Ec(_, n) | Signing::Rsa(_, n) => *n,
        }
    }
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Signing::Ec(k, _) => k.sign(&rng, msg).expect("P-256 signing").as_ref().to_vec(),
            Signing::Rsa(k, _) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .expect("RSA signing");
                sig
            }
        }
    }
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/oidc/.well-known/openid-configuration", get(discovery))
        .route("/oidc/jwks", get(jwks))
        .route("/_sim/oidc/token", post(dev_token))
        .route("/_sim/oidc/actions-token", get(actions_token))
}

/// Dev-only stand-in for the GitHub Actions runner's ID token service
/// (`ACTIONS_ID_TOKEN_REQUEST_URL`): `GET ?audience=A&sub=S[&CLAIM=V…]` with
/// `Authorization: bearer <request token>` answers `{"value": <RS256 ID token>}`.
/// Docs: <https://docs.github.com/en/actions/reference/security/oidc#methods-for-requesting-the-oidc-token>.
async fn actions_token(
    State(sim): State<Sim>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::BTreeMap<String, String>>,
) -> Response {
    let authed = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(s, t)| s.eq_ignore_ascii_case("bearer") && !t.trim().is_empty());
    if !authed {
        return (StatusCode::UNAUTHORIZED, "missing bearer").into_response();
    }
    let mut claims = Map::new();
    for (k, v) in &q {
        let key = if k == "audience" { "aud" } else { k.as_str() };
        claims.insert(key.to_owned(), json!(v));
    }
    claims.insert("iss".into(), json!(issuer(&headers)));
    let token = sim.oidc_token(OidcAlg::Rs256, Value::Object(claims));
    axum::Json(json!({ "count": 1, "value": token })).into_response()
}

fn issuer(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/oidc")
}

async fn discovery(headers: HeaderMap) -> Response {
    let iss = issuer(&headers);
    axum::Json(json!({
        "issuer": iss,
        "jwks_uri": format!("{iss}/jwks"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "claims_supported": ["sub", "aud", "exp", "iat", "iss", "nbf", "repository", "repository_owner_id"],
    }))
    .into_response()
}

async fn jwks(State(sim): State<Sim>) -> Response {
    let mut st = sim.lock();
    st.oidc.jwks_fetches += 1;
    let mut r = axum::Json(st.oidc.jwks()).into_response();
    if let Some(v) = st
        .oidc
        .jwks_max_age
        .and_then(|s| axum::http::HeaderValue::from_str(&format!("public, max-age={s}")).ok())
    {
        r.headers_mut().insert(axum::http::header::CACHE_CONTROL, v);
    }
    r
}

/// Dev-only: `{"alg": "RS256"|"ES256", "claims": {…}}` → `{"token": …}`, with
/// `iss` defaulting to this issuer.
async fn dev_token(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "body must be a JSON object").into_response();
    };
    let alg = match req.get("alg").and_then(Value::as_str) {
        Some("ES256") => OidcAlg::Es256,
        _ => OidcAlg::Rs256,
    };
    let mut claims = req
        .get("claims")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    claims
        .entry("iss")
        .or_insert_with(|| json!(issuer(&headers)));
    let token = sim.oidc_token(alg, Value::Object(claims));
    axum::Json(json!({ "token": token })).into_response()
}

// ------------------------------------------------------------ registry

pub(crate) type ProviderState = OidcState;

/// OIDC discovery and keys: routes and state, no fault route.
pub(crate) const PROVIDER: crate::registry::Provider = crate::registry::Provider {
    router: routes,
    ..crate::registry::Provider::ROUTES_ONLY
};
