//! GitHub App authentication and installation access tokens (REST, JSON).
//!
//! Docs checked:
//! - <https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app>
//!   (`POST /app/installations/{installation_id}/access_tokens`, JWT bearer auth, optional
//!   body `repositories`, `repository_ids`, `permissions`; 201 `{token, expires_at,
//!   permissions, repository_selection, repositories?}`; 401, 403, 404, 422).
//! - <https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app>
//!   (RS256; `iat` 60 s in the past to allow for clock drift; `exp` no more than 10
//!   minutes into the future; `iss` = the app's client ID or app ID).
//! - <https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-an-installation-access-token-for-a-github-app>
//!   (tokens expire after one hour; since 2026 GitHub rolls out a stateless
//!   `ghs_APPID_JWT` format of about 520 characters instead of 40-character tokens).
//! - `GET /repos/{owner}/{repo}/installation`, `GET /orgs/{org}/installation`,
//!   `GET /users/{username}/installation`, `GET /installation/repositories`,
//!   `DELETE /installation/token` (204) from the same REST reference.
//! - The 401 messages for bad JWT claims are GitHub's as reported in client issues
//!   (octokit/auth-app.js#698, actions/create-github-app-token#178, github3.py#1050):
//!   "'Expiration time' claim ('exp') is too far in the future",
//!   "'Expiration time' claim ('exp') must be a numeric value representing the future
//!   time at which the assertion expires", "'Issued at' claim ('iat') must be an Integer
//!   representing the time that the assertion was issued", and "A JSON web token could
//!   not be decoded".
//!
//! - Narrowing: `repositories` are repository names without the owner ("List of
//!   repository names that the token should have access to"; at most 500): an
//!   `owner/name` entry is refused with 422, as is a repository outside the
//!   installation; `repository_ids` are accepted for any repository of an
//!   installation on all repositories (the simulator cannot tell an id of another
//!   account, and names such a repository `repository-<id>`).
//!   Every repository must belong to the installation and every
//!   permission level must be `read`, `write` or `admin` and no more than the
//!   installation was granted, else 422 (the docs list the levels; the exact 422
//!   message for an unknown level is not documented, so clients must not depend on
//!   it). What each token was narrowed to is kept ([`Sim::github_token_scope`]), so
//!   tests can check that a broker never hands out more than its policy.
//!
//! Every response carries a `Date` header (hyper adds it), which clients use to
//! correct clock skew. Everything is also served under `/api/v3` (GitHub Enterprise
//! Server), see the middleware.

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::state::Sim;
use crate::util::{GH_DOCS, alnum, bearer, github_error, json_response};

// A throw-away RSA key pair generated for this simulator's tests
// (`openssl genrsa -traditional 2048`). It protects nothing; never use it
// outside tests.
const TEST_ONLY_RSA_PRIVATE_KEY_PKCS1: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEogIBAAKCAQEAqeobdJgf9vB/fvXQywLllkFrzQMW+1CO8gjA7U+ZRsLLOUXQ
gDMEr03h9E8v2yXN74To+seE8ieEYIUWDXF3u2vAQN9wYb30Pl0UBc4UsTdLL+BR
am2ucWCowJ3UkZ5pXF47CzknTmkJm9J19vfZf7NKXC+oN41mNn1rp1oNr9QYoomr
jWCn6ouLa05/5eVShpGhN/Emd3PLt87GOS2knPPb624txO2oj8G0Dmas/ry0hmVK
rUdUHEUX6/y6KXuQaBYuN3WqNRpS6qz7qDITM5Q9LtSjzbipmi28dgrCzdUWmlI8
LKFvhJy7KHr4HXbGXvWe5zGhXIjugyn2lY4FmQIDAQABAoIBAAMZDRu0x/33fwo/
kLBgoQ9W/yzLZe6sOiISRBA05rszEWATMNy4nBHW7Xo5re3vZfyKerlE4bHiNZ10
xe+Sa6tIBVU5dMWMw+hrDvZBzJUO5MVltyyCNkEuibfEo49fGt0orItopQus9Ntr
Ss7MpdqKJokPA7XudvSwid47mFXJfv2jYbWTnovdI8kmEHWO1US/p5XQvdffONnz
E8uGBubfcGkctk1B8om26cWPAzzEX0b83+D+gGOHSFi9xVBE6XZGsnoITrOHoIgY
rMiinUDqxhZMo+9e8GSccV4pCEBrp6AMUiMofEQeF+/xnekiUIIX9DRWN07OrpvB
1stY/f0CgYEA5NohcGcSEODW85OqkPRu8cYJapeSpBcHsF+bSVJ8M4PkS3uZxAf3
Zh62IAarRKDsqomLNH7w5O0Yl2wBrD+atMjp+Z80Th0axH3BixsgL2ppq/AXLP/A
affO/Y4KblMkpCxi1XrfIblzq69LqlRsev+vxWQ3KPkyr5Cky1tJF7UCgYEAvhIj
A1ooHhXDyOjRiivoetlv9hV28Qlkh8pE7sKCz4PEmt7eY2BpZc/U+hvh03rEQGzu
nKO/uNamyeAvFO19erLLzEPQuIlEQJMknF1HMM7nTbj4FTeD5sTYmXYwpokZjRDu
nhOmurfUnbK8OQnbPely7ud5HvyisqrvmtL/nNUCgYBifncR12pxFTOuFYm9ZVYy
fFclJyMXuEm44Q0GW5fU3BjvW7zsH7mcm+8qjXQ8zz3Mj/H3oAKxpFGHKhb2OVGu
KSJ6KsjqLaCNnMolwoDxp0zfkS+IUHJRqTPO8MkQfnwwpGHNG1rZOuXLqGBaaIdf
0Jenzt/mpInqAcjLNPiaWQKBgDvGsnJEcWd8ytUtu3Cr/HJeXeLTv1Nw88fs6h74
13Dx7OwT+XbhhGQ7p6x9BlmfO4dTevuSWCKGh2/n7Ia1ZggnoQZ9sW/H48o3PIVc
pJ4KBB6idIsfqYDzGXex/vzxEzMVRyY54e7JD7oE00NRAT2IZNgTvjjrlTOBpNdZ
UoB9AoGAA1XGK/6R8nP4HzJNu0+K3mBD9Sl2PdD4mQamxpUMKg28e/70ssYzhuj1
464DdvzIrCvyr2cletuh+gDtRtI7ywu5bUYA7BvE+8hz0wpNvKZZG3qFHyLseqqp
M2X7qZ1RmaMfHGkVanGwPD6xsY5c1xj2+49fa52oqGILaEGL3og=
-----END RSA PRIVATE KEY-----
";
const TEST_ONLY_RSA_PRIVATE_KEY_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCp6ht0mB/28H9+
9dDLAuWWQWvNAxb7UI7yCMDtT5lGwss5RdCAMwSvTeH0Ty/bJc3vhOj6x4TyJ4Rg
hRYNcXe7a8BA33BhvfQ+XRQFzhSxN0sv4FFqba5xYKjAndSRnmlcXjsLOSdOaQmb
0nX299l/s0pcL6g3jWY2fWunWg2v1BiiiauNYKfqi4trTn/l5VKGkaE38SZ3c8u3
zsY5LaSc89vrbi3E7aiPwbQOZqz+vLSGZUqtR1QcRRfr/Lope5BoFi43dao1GlLq
rPuoMhMzlD0u1KPNuKmaLbx2CsLN1RaaUjwsoW+EnLsoevgddsZe9Z7nMaFciO6D
KfaVjgWZAgMBAAECggEAAxkNG7TH/fd/Cj+QsGChD1b/LMtl7qw6IhJEEDTmuzMR
YBMw3LicEdbtejmt7e9l/Ip6uUThseI1nXTF75Jrq0gFVTl0xYzD6GsO9kHMlQ7k
xWW3LII2QS6Jt8Sjj18a3Sisi2ilC6z022tKzsyl2oomiQ8Dte529LCJ3juYVcl+
/aNhtZOei90jySYQdY7VRL+nldC919842fMTy4YG5t9waRy2TUHyibbpxY8DPMRf
Rvzf4P6AY4dIWL3FUETpdkayeghOs4egiBisyKKdQOrGFkyj717wZJxxXikIQGun
oAxSIyh8RB4X7/Gd6SJQghf0NFY3Ts6um8HWy1j9/QKBgQDk2iFwZxIQ4Nbzk6qQ
9G7xxglql5KkFwewX5tJUnwzg+RLe5nEB/dmHrYgBqtEoOyqiYs0fvDk7RiXbAGs
P5q0yOn5nzROHRrEfcGLGyAvammr8Bcs/8Bp9879jgpuUySkLGLVet8huXOrr0uq
VGx6/6/FZDco+TKvkKTLW0kXtQKBgQC+EiMDWigeFcPI6NGKK+h62W/2FXbxCWSH
ykTuwoLPg8Sa3t5jYGllz9T6G+HTesRAbO6co7+41qbJ4C8U7X16ssvMQ9C4iURA
kyScXUcwzudNuPgVN4PmxNiZdjCmiRmNEO6eE6a6t9Sdsrw5Cds96XLu53ke/KKy
qu+a0v+c1QKBgGJ+dxHXanEVM64Vib1lVjJ8VyUnIxe4SbjhDQZbl9TcGO9bvOwf
uZyb7yqNdDzPPcyP8fegArGkUYcqFvY5Ua4pInoqyOotoI2cyiXCgPGnTN+RL4hQ
clGpM87wyRB+fDCkYc0bWtk65cuoYFpoh1/Ql6fO3+akieoByMs0+JpZAoGAO8ay
ckRxZ3zK1S27cKv8cl5d4tO/U3Dzx+zqHvjXcPHs7BP5duGEZDunrH0GWZ87h1N6
+5JYIoaHb+fshrVmCCehBn2xb8fjyjc8hVykngoEHqJ0ix+pgPMZd7H+/PETMxVH
Jjnh7skPugTTQ1EBPYhk2BO+OOuVM4Gk11lSgH0CgYADVcYr/pHyc/gfMk27T4re
YEP1KXY90PiZBqbGlQwqDbx7/vSyxjOG6PXjrgN2/MisK/KvZyV626H6AO1G0jvL
C7ltRgDsG8T7yHPTCk28plkbeoUfIux6qqkzZfupnVGZox8caRVqcbA8PrGxjlzX
GPb7j19rnaioYgtoQYveiA==
-----END PRIVATE KEY-----
";
const TEST_ONLY_RSA_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqeobdJgf9vB/fvXQywLl
lkFrzQMW+1CO8gjA7U+ZRsLLOUXQgDMEr03h9E8v2yXN74To+seE8ieEYIUWDXF3
u2vAQN9wYb30Pl0UBc4UsTdLL+BRam2ucWCowJ3UkZ5pXF47CzknTmkJm9J19vfZ
f7NKXC+oN41mNn1rp1oNr9QYoomrjWCn6ouLa05/5eVShpGhN/Emd3PLt87GOS2k
nPPb624txO2oj8G0Dmas/ry0hmVKrUdUHEUX6/y6KXuQaBYuN3WqNRpS6qz7qDIT
M5Q9LtSjzbipmi28dgrCzdUWmlI8LKFvhJy7KHr4HXbGXvWe5zGhXIjugyn2lY4F
mQIDAQAB
-----END PUBLIC KEY-----
";

const CREATE_TOKEN_DOCS: &str =
    "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app";
const MAX_JWT_LIFETIME_SECS: i64 = 600;
const TOKEN_TTL: SignedDuration = SignedDuration::from_hours(1);

pub(crate) const MSG_UNDECODABLE: &str = "A JSON web token could not be decoded";
pub(crate) const MSG_EXP_TOO_FAR: &str = "'Expiration time' claim ('exp') is too far in the future";
pub(crate) const MSG_EXP_PAST: &str = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
pub(crate) const MSG_IAT: &str = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";
pub(crate) const MSG_ISS: &str = "'Issuer' claim ('iss') must be an Integer";

/// The embedded throw-away test key pair: (private PKCS#1 PEM, public PEM).
pub fn test_rsa_keypair() -> (String, String) {
    (
        TEST_ONLY_RSA_PRIVATE_KEY_PKCS1.to_string(),
        TEST_ONLY_RSA_PUBLIC_KEY.to_string(),
    )
}

/// The embedded throw-away test private key in PKCS#8 PEM form.
pub fn test_rsa_private_pkcs8() -> String {
    TEST_ONLY_RSA_PRIVATE_KEY_PKCS8.to_string()
}

#[derive(Clone)]
pub(crate) struct GhApp {
    pub client_id: String,
    pub key: Option<crate::rs256::PublicKey>,
}

#[derive(Clone, Debug)]
pub(crate) struct GhInstallation {
    pub app_id: u64,
    pub login: String,
    pub account_type: String,
    pub account_id: u64,
    /// Empty = all repositories of the account.
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub(crate) struct GhToken {
    pub installation_id: u64,
    pub expires_at: Timestamp,
    pub revoked: bool,
    pub repositories: Option<Vec<String>>,
    /// What the token may do: the installation's permissions, or the narrowed ones.
    pub permissions: BTreeMap<String, String>,
}

#[derive(Default)]
pub(crate) struct GitHubState {
    pub apps: HashMap<u64, GhApp>,
    pub installations: HashMap<u64, GhInstallation>,
    pub tokens: HashMap<String, GhToken>,
    pub long_tokens: bool,
    pub issued: u64,
    pub revoked: u64,
}

fn default_permissions() -> BTreeMap<String, String> {
    [
        ("contents", "write"),
        ("issues", "write"),
        ("metadata", "read"),
        ("pull_requests", "write"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn repo_id(name: &str) -> u64 {
    // Stable, positive ids derived from the name.
    let mut h: u64 = 1469598103934665603;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(1099511628211);
    }
    (h % 900_000_000) + 100_000_000
}

impl Sim {
    /// Registers a GitHub App. `public_key_pem` is the app's public key (SPKI
    /// `BEGIN PUBLIC KEY` or PKCS#1 `BEGIN RSA PUBLIC KEY`). An unparsable key is
    /// logged and the app is registered with none (every JWT then fails).
    pub fn github_add_app(&self, app_id: u64, client_id: &str, public_key_pem: &str) {
        let key = match crate::rs256::parse_public_pem(public_key_pem) {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!("evertoken-sim: app {app_id}: unusable public key: {e}");
                None
            }
        };
        self.lock().github.apps.insert(
            app_id,
            GhApp {
                client_id: client_id.to_string(),
                key,
            },
        );
    }

    /// Installs app `app_id` on an account. `account_type` is `"Organization"`
    /// or `"User"`; an empty `repositories` list means "all repositories".
    pub fn github_add_installation(
        &self,
        app_id: u64,
        installation_id: u64,
        account_login: &str,
        account_type: &str,
        repositories: Vec<String>,
    ) {
        let mut st = self.lock();
        let created_at = st.now();
        st.github.installations.insert(
            installation_id,
            GhInstallation {
                app_id,
                login: account_login.to_string(),
                account_type: account_type.to_string(),
                account_id: repo_id(account_login),
                repositories,
                permissions: default_permissions(),
                created_at,
            },
        );
    }

    /// Sets the permissions an installation was granted.
    pub fn github_set_installation_permissions(
        &self,
        installation_id: u64,
        permissions: BTreeMap<String, String>,
    ) {
        if let Some(i) = self.lock().github.installations.get_mut(&installation_id) {
            i.permissions = permissions;
        }
    }

    /// `false`: `ghs_` + 36 alphanumerics; `true`: ~520-character stateless tokens.
    pub fn github_set_token_style(&self, long: bool) {
        self.lock().github.long_tokens = long;
    }

    /// Whether an installation token is known, unrevoked and unexpired.
    pub fn github_is_valid_token(&self, token: &str) -> bool {
        let st = self.lock();
        let now = st.now();
        st.github
            .tokens
            .get(token)
            .is_some_and(|t| !t.revoked && t.expires_at > now)
    }

    /// What a minted token was narrowed to: its repositories (`None` = every
    /// repository of the installation) and its permissions. `None` for an unknown token.
    #[allow(clippy::type_complexity)]
    pub fn github_token_scope(
        &self,
        token: &str,
    ) -> Option<(Option<Vec<String>>, BTreeMap<String, String>)> {
        let st = self.lock();
        st.github
            .tokens
            .get(token)
            .map(|t| (t.repositories.clone(), t.permissions.clone()))
    }

    pub fn github_tokens_issued(&self) -> u64 {
        self.lock().github.issued
    }

    pub fn github_revoked_count(&self) -> u64 {
        self.lock().github.revoked
    }
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/", get(root))
        .route("/rate_limit", get(rate_limit))
        .route("/app", get(get_app))
        .route("/app/installations", get(list_installations))
        .route("/app/installations/{id}", get(get_installation))
        .route("/app/installations/{id}/access_tokens", post(create_token))
        .route("/repos/{owner}/{repo}/installation", get(repo_installation))
        .route("/orgs/{org}/installation", get(org_installation))
        .route("/users/{user}/installation", get(user_installation))
        .route("/installation/repositories", get(installation_repositories))
        .route("/installation/token", delete(revoke_token))
}

#[derive(Debug)]
pub(crate) enum JwtError {
    Missing,
    Undecodable,
    Iss,
    UnknownApp,
    Iat,
    ExpPast,
    ExpTooFar,
}

impl JwtError {
    fn response(&self) -> Response {
        let msg = match self {
            JwtError::Missing => "Requires authentication",
            JwtError::Undecodable => MSG_UNDECODABLE,
            JwtError::Iss => MSG_ISS,
            JwtError::UnknownApp => "Integration not found",
            JwtError::Iat => MSG_IAT,
            JwtError::ExpPast => MSG_EXP_PAST,
            JwtError::ExpTooFar => MSG_EXP_TOO_FAR,
        };
        github_error(401, msg, GH_DOCS)
    }
}

fn claims_of(jwt: &str) -> Option<serde_json::Map<String, Value>> {
    let mut parts = jwt.split('.');
    let (_h, p, _s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(p.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&raw).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Verifies an app JWT the way GitHub does. Returns the app id.
pub(crate) fn verify_jwt(
    st: &mut crate::state::State,
    headers: &HeaderMap,
) -> Result<u64, JwtError> {
    let jwt = bearer(headers).ok_or(JwtError::Missing)?;
    let claims = claims_of(&jwt).ok_or(JwtError::Undecodable)?;
    let iss = claims.get("iss").ok_or(JwtError::Iss)?;
    let app_id = match iss {
        Value::Number(n) => n.as_u64().ok_or(JwtError::Iss)?,
        Value::String(s) => match s.parse::<u64>() {
            Ok(n) => n,
            Err(_) => st
                .github
                .apps
                .iter()
                .find(|(_, a)| &a.client_id == s)
                .map(|(id, _)| *id)
                .ok_or(JwtError::UnknownApp)?,
        },
        _ => return Err(JwtError::Iss),
    };
    if !st.github.apps.contains_key(&app_id) {
        if !st.lenient {
            return Err(JwtError::UnknownApp);
        }
        let key = crate::rs256::parse_public_pem(TEST_ONLY_RSA_PUBLIC_KEY)
            .map_err(|_| JwtError::Undecodable)?;
        st.github.apps.insert(
            app_id,
            GhApp {
                client_id: format!("Iv23sim{app_id}"),
                key: Some(key),
            },
        );
    }
    let key = st
        .github
        .apps
        .get(&app_id)
        .map(|a| a.key.clone())
        .ok_or(JwtError::UnknownApp)?;
    if !key.is_some_and(|k| crate::rs256::verify(&jwt, &k)) {
        return Err(JwtError::Undecodable);
    }

    let now = st.now().as_second();
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(JwtError::Iat)?;
    if iat > now {
        return Err(JwtError::Iat);
    }
    let exp = claims
        .get("exp")
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        .ok_or(JwtError::ExpPast)?;
    if exp <= now {
        return Err(JwtError::ExpPast);
    }
    if exp > now + MAX_JWT_LIFETIME_SECS {
        return Err(JwtError::ExpTooFar);
    }
    Ok(app_id)
}

fn not_found(doc: &str) -> Response {
    github_error(404, "Not Found", doc)
}

fn account_json(i: &GhInstallation) -> Value {
    json!({
        "login": i.login,
        "id": i.account_id,
        "node_id": format!("MDQ6VXNlcj{}", i.account_id),
        "type": i.account_type,
        "site_admin": false,
        "url": format!("https://api.github.com/users/{}", i.login),
        "html_url": format!("https://github.com/{}", i.login),
    })
}

fn installation_json(id: u64, i: &GhInstallation) -> Value {
    json!({
        "id": id,
        "account": account_json(i),
        "repository_selection": if i.repositories.is_empty() { "all" } else { "selected" },
        "access_tokens_url": format!("https://api.github.com/app/installations/{id}/access_tokens"),
        "repositories_url": "https://api.github.com/installation/repositories",
        "html_url": format!("https://github.com/settings/installations/{id}"),
        "app_id": i.app_id,
        "app_slug": format!("sim-app-{}", i.app_id),
        "target_id": i.account_id,
        "target_type": i.account_type,
        "permissions": i.permissions,
        "events": [],
        "created_at": i.created_at.to_string(),
        "updated_at": i.created_at.to_string(),
        "single_file_name": null,
        "suspended_at": null,
        "suspended_by": null,
    })
}

/// "You can specify up to 500 repositories" (the create-token reference).
const MAX_NARROWED: usize = 500;

fn repo_json(owner: &str, name: &str) -> Value {
    json!({
        "id": repo_id(&format!("{owner}/{name}")),
        "name": name,
        "full_name": format!("{owner}/{name}"),
        "private": true,
        "owner": {"login": owner},
        "html_url": format!("https://github.com/{owner}/{name}"),
    })
}

fn mint(st: &mut crate::state::State, app_id: u64, installation_id: u64) -> String {
    if st.github.long_tokens {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"ES256","typ":"JWT","kid":"sim"}"#);
        let payload = b64.encode(
            json!({
                "sim": true,
                "app": app_id,
                "inst": installation_id,
                "jti": alnum(32),
                "exp": (st.now() + TOKEN_TTL).as_second(),
                "pad": alnum(190),
            })
            .to_string(),
        );
        format!("ghs_{app_id}_{header}.{payload}.{}", alnum(86))
    } else {
        format!("ghs_sim{}", alnum(33))
    }
}

async fn create_token(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = sim.lock();
    let app_id = match verify_jwt(&mut st, &headers) {
        Ok(a) => a,
        Err(e) => return e.response(),
    };
    let Ok(id) = id.parse::<u64>() else {
        return not_found(CREATE_TOKEN_DOCS);
    };
    if !st.github.installations.contains_key(&id) && st.lenient {
        let now = st.now();
        st.github.installations.insert(
            id,
            GhInstallation {
                app_id,
                login: format!("sim-owner-{id}"),
                account_type: "Organization".into(),
                account_id: id,
                repositories: Vec::new(),
                permissions: default_permissions(),
                created_at: now,
            },
        );
    }
    let Some(inst) = st.github.installations.get(&id).cloned() else {
        return not_found(CREATE_TOKEN_DOCS);
    };
    if inst.app_id != app_id {
        return not_found(CREATE_TOKEN_DOCS);
    }
    let req: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return github_error(400, "Problems parsing JSON", CREATE_TOKEN_DOCS);
            }
        }
    };
    // Narrowing to repositories: names without the owner. An `owner/name` entry
    // names no repository of the installation, so GitHub refuses it.
    let mut narrowed: Option<Vec<String>> = None;
    // Repositories known only by id (an all-repositories installation).
    let mut by_id: Vec<(String, u64)> = Vec::new();
    let installation_has = |name: &str| {
        !name.contains('/')
            && (inst.repositories.is_empty()
                || inst
                    .repositories
                    .iter()
                    .any(|r| r.rsplit('/').next().unwrap_or(r).eq_ignore_ascii_case(name)))
    };
    let not_accessible = || {
        github_error(
            422,
            "There is at least one repository that does not exist or is not accessible to the parent installation.",
            CREATE_TOKEN_DOCS,
        )
    };
    if let Some(v) = req.get("repositories") {
        let Some(arr) = v.as_array() else {
            return github_error(
                422,
                "Invalid request.\n\nFor 'properties/repositories', is not an array.",
                CREATE_TOKEN_DOCS,
            );
        };
        if arr.len() > MAX_NARROWED {
            return github_error(
                422,
                "Invalid request.\n\nFor 'properties/repositories', the array has more than 500 items.",
                CREATE_TOKEN_DOCS,
            );
        }
        let mut names = Vec::new();
        for r in arr {
            let Some(name) = r.as_str() else {
                return not_accessible();
            };
            if !installation_has(name) {
                return not_accessible();
            }
            names.push(name.to_string());
        }
        narrowed = Some(names);
    }
    if let Some(v) = req.get("repository_ids") {
        let Some(arr) = v.as_array() else {
            return github_error(
                422,
                "Invalid request.\n\nFor 'properties/repository_ids', is not an array.",
                CREATE_TOKEN_DOCS,
            );
        };
        let mut names = narrowed.take().unwrap_or_default();
        for r in arr {
            let Some(rid) = r.as_u64() else {
                return not_accessible();
            };
            let found = inst.repositories.iter().find(|n| {
                repo_id(&format!(
                    "{}/{}",
                    inst.login,
                    n.rsplit('/').next().unwrap_or(n)
                )) == rid
            });
            match found {
                Some(n) => names.push(n.rsplit('/').next().unwrap_or(n).to_string()),
                // An installation on all repositories covers any id of its account.
                None if inst.repositories.is_empty() => {
                    let name = format!("repository-{rid}");
                    by_id.push((name.clone(), rid));
                    names.push(name);
                }
                None => return not_accessible(),
            }
        }
        narrowed = Some(names);
    }
    // Narrowing permissions.
    let mut permissions = inst.permissions.clone();
    if let Some(p) = req.get("permissions") {
        let Some(obj) = p.as_object() else {
            return github_error(
                422,
                "Invalid request.\n\nFor 'properties/permissions', is not an object.",
                CREATE_TOKEN_DOCS,
            );
        };
        let mut out = BTreeMap::new();
        for (k, v) in obj {
            let want = v.as_str().unwrap_or("");
            if !matches!(want, "read" | "write" | "admin") {
                return github_error(
                    422,
                    &format!(
                        "Invalid request.\n\nFor 'properties/{k}', \"{want}\" is not a valid permission level."
                    ),
                    CREATE_TOKEN_DOCS,
                );
            }
            let granted = inst.permissions.get(k).map(String::as_str);
            let ok = matches!(
                (granted, want),
                (Some("write"), "read" | "write") | (Some("read"), "read") | (Some("admin"), _)
            );
            if !ok {
                return github_error(
                    422,
                    "The permissions requested are not granted to this installation.",
                    CREATE_TOKEN_DOCS,
                );
            }
            out.insert(k.clone(), want.to_string());
        }
        permissions = out;
    }
    let token = mint(&mut st, app_id, id);
    let expires_at = st.now() + TOKEN_TTL;
    st.github.tokens.insert(
        token.clone(),
        GhToken {
            installation_id: id,
            expires_at,
            revoked: false,
            repositories: narrowed.clone(),
            permissions: permissions.clone(),
        },
    );
    st.github.issued += 1;
    let mut out = json!({
        "token": token,
        "expires_at": expires_at.round(jiff::Unit::Second).unwrap_or(expires_at).to_string(),
        "permissions": permissions,
        "repository_selection": if narrowed.is_some() || !inst.repositories.is_empty() { "selected" } else { "all" },
    });
    if let Some(names) = &narrowed {
        out["repositories"] = names
            .iter()
            .map(|n| {
                let mut r = repo_json(&inst.login, n);
                if let Some((_, rid)) = by_id.iter().find(|(b, _)| b == n) {
                    r["id"] = json!(rid);
                }
                r
            })
            .collect();
    }
    (StatusCode::CREATED, axum::Json(out)).into_response()
}

async fn get_app(State(sim): State<Sim>, headers: HeaderMap) -> Response {
    let mut st = sim.lock();
    let app_id = match verify_jwt(&mut st, &headers) {
        Ok(a) => a,
        Err(e) => return e.response(),
    };
    let client_id = st
        .github
        .apps
        .get(&app_id)
        .map(|a| a.client_id.clone())
        .unwrap_or_default();
    json_response(
        200,
        json!({
            "id": app_id,
            "slug": format!("sim-app-{app_id}"),
            "client_id": client_id,
            "name": format!("evertoken-sim app {app_id}"),
            "owner": {"login": "sim-owner", "type": "Organization"},
            "permissions": default_permissions(),
            "events": [],
            "installations_count": st.github.installations.values().filter(|i| i.app_id == app_id).count(),
        }),
    )
}

async fn list_installations(State(sim): State<Sim>, headers: HeaderMap) -> Response {
    let mut st = sim.lock();
    let app_id = match verify_jwt(&mut st, &headers) {
        Ok(a) => a,
        Err(e) => return e.response(),
    };
    let mut v: Vec<(u64, &GhInstallation)> = st
        .github
        .installations
        .iter()
        .filter(|(_, i)| i.app_id == app_id)
        .map(|(k, v)| (*k, v))
        .collect();
    v.sort_by_key(|(k, _)| *k);
    let arr: Vec<Value> = v.iter().map(|(k, i)| installation_json(*k, i)).collect();
    json_response(200, Value::Array(arr))
}

async fn get_installation(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut st = sim.lock();
    let app_id = match verify_jwt(&mut st, &headers) {
        Ok(a) => a,
        Err(e) => return e.response(),
    };
    let doc =
        "https://docs.github.com/rest/apps/apps#get-an-installation-for-the-authenticated-app";
    let Ok(id) = id.parse::<u64>() else {
        return not_found(doc);
    };
    match st.github.installations.get(&id) {
        Some(i) if i.app_id == app_id => json_response(200, installation_json(id, i)),
        _ => not_found(doc),
    }
}

fn find_installation(
    st: &mut crate::state::State,
    headers: &HeaderMap,
    doc: &str,
    pred: impl Fn(&GhInstallation) -> bool,
) -> Response {
    let app_id = match verify_jwt(st, headers) {
        Ok(a) => a,
        Err(e) => return e.response(),
    };
    let mut found: Vec<(u64, &GhInstallation)> = st
        .github
        .installations
        .iter()
        .filter(|(_, i)| i.app_id == app_id && pred(i))
        .map(|(k, v)| (*k, v))
        .collect();
    found.sort_by_key(|(k, _)| *k);
    match found.first() {
        Some((id, i)) => json_response(200, installation_json(*id, i)),
        None => not_found(doc),
    }
}

async fn repo_installation(
    State(sim): State<Sim>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut st = sim.lock();
    find_installation(
        &mut st,
        &headers,
        "https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app",
        |i| {
            i.login.eq_ignore_ascii_case(&owner)
                && (i.repositories.is_empty()
                    || i.repositories.iter().any(|r| {
                        r.rsplit('/')
                            .next()
                            .unwrap_or(r)
                            .eq_ignore_ascii_case(&repo)
                    }))
        },
    )
}

async fn org_installation(
    State(sim): State<Sim>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut st = sim.lock();
    find_installation(
        &mut st,
        &headers,
        "https://docs.github.com/rest/apps/apps#get-an-organization-installation-for-the-authenticated-app",
        |i| i.login.eq_ignore_ascii_case(&org) && i.account_type == "Organization",
    )
}

async fn user_installation(
    State(sim): State<Sim>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut st = sim.lock();
    find_installation(
        &mut st,
        &headers,
        "https://docs.github.com/rest/apps/apps#get-a-user-installation-for-the-authenticated-app",
        |i| i.login.eq_ignore_ascii_case(&user),
    )
}

/// Checks an installation token (`Authorization: token|Bearer …`).
pub(crate) fn verify_installation_token(
    st: &crate::state::State,
    headers: &HeaderMap,
) -> Result<(String, GhToken), Response> {
    let bad = || github_error(401, "Bad credentials", GH_DOCS);
    let t = bearer(headers).ok_or_else(bad)?;
    let now = st.now();
    match st.github.tokens.get(&t) {
        Some(tok) if !tok.revoked && tok.expires_at > now => Ok((t, tok.clone())),
        _ => Err(bad()),
    }
}

async fn installation_repositories(State(sim): State<Sim>, headers: HeaderMap) -> Response {
    let st = sim.lock();
    let (_, tok) = match verify_installation_token(&st, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(inst) = st.github.installations.get(&tok.installation_id) else {
        return github_error(401, "Bad credentials", GH_DOCS);
    };
    let names: Vec<String> = match &tok.repositories {
        Some(n) => n.clone(),
        None if inst.repositories.is_empty() => vec!["sim-repo".to_string()],
        None => inst
            .repositories
            .iter()
            .map(|r| r.rsplit('/').next().unwrap_or(r).to_string())
            .collect(),
    };
    let repos: Vec<Value> = names.iter().map(|n| repo_json(&inst.login, n)).collect();
    json_response(
        200,
        json!({
            "total_count": repos.len(),
            "repository_selection": if inst.repositories.is_empty() && tok.repositories.is_none() { "all" } else { "selected" },
            "repositories": repos,
        }),
    )
}

async fn revoke_token(State(sim): State<Sim>, headers: HeaderMap) -> Response {
    let mut st = sim.lock();
    let (t, _) = match verify_installation_token(&st, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(tok) = st.github.tokens.get_mut(&t) {
        tok.revoked = true;
    }
    st.github.revoked += 1;
    StatusCode::NO_CONTENT.into_response()
}

async fn root() -> Response {
    json_response(
        200,
        json!({
            "current_user_url": "https://api.github.com/user",
            "installation_repositories_url": "https://api.github.com/installation/repositories",
            "rate_limit_url": "https://api.github.com/rate_limit",
            "repository_url": "https://api.github.com/repos/{owner}/{repo}",
        }),
    )
}

async fn rate_limit(State(sim): State<Sim>) -> Response {
    let reset = (sim.now() + SignedDuration::from_hours(1)).as_second();
    let core =
        json!({"limit": 5000, "used": 0, "remaining": 5000, "reset": reset, "resource": "core"});
    json_response(
        200,
        json!({"resources": {"core": core.clone()}, "rate": core}),
    )
}

// ------------------------------------------------------------ registry

#[allow(non_upper_case_globals)]
impl crate::Route {
    /// The GitHub App REST paths (app, installations, tokens, meta).
    pub const GitHubApp: crate::Route = crate::Route("github_app");
}

pub(crate) type ProviderState = GitHubState;

/// Asked last: it claims every path whose first segment is GitHub's.
pub(crate) const PROVIDER: crate::registry::Provider = crate::registry::Provider {
    routes: &[(crate::Route::GitHubApp, &["github"])],
    owns: |path| match path.trim_start_matches('/').split('/').next() {
        Some("" | "app" | "installation" | "repos" | "orgs" | "users" | "rate_limit" | "meta") => {
            Some(crate::Route::GitHubApp)
        }
        _ => None,
    },
    router: routes,
    wrap: None,
    errors: ERRORS,
};

/// GitHub's REST error bodies (also the Actions secrets API's). Rate limits:
/// <https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api>.
pub(crate) const ERRORS: crate::registry::Errors = crate::registry::Errors {
    status: |_, code| match code {
        401 => github_error(401, "Bad credentials", GH_DOCS),
        403 => github_error(403, "Resource not accessible by integration", GH_DOCS),
        404 => github_error(404, "Not Found", GH_DOCS),
        429 => github_error(
            429,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        ),
        500 => github_error(500, "Server Error", GH_DOCS),
        c => github_error(c, crate::util::reason(c), GH_DOCS),
    },
    too_many_requests: Some(|ctx, _| {
        let mut r = (ERRORS.status)(ctx, 429);
        r.headers_mut().insert(
            "x-ratelimit-remaining",
            axum::http::HeaderValue::from_static("0"),
        );
        r
    }),
    not_found: Some(|_| github_error(404, "Not Found", GH_DOCS)),
    ..crate::registry::Errors::DEFAULT
};

/// GitHub's 401 (also the `any` route's).
pub(crate) fn unauthorized_fault(_: &crate::registry::FaultCtx) -> Response {
    github_error(401, "Bad credentials", GH_DOCS)
}

/// GitHub's 422 carrying `message` (also the `any` route's): 4xx, so a client
/// shows the body instead of retrying.
pub(crate) fn echo_fault(_: &crate::registry::FaultCtx, message: &str) -> Response {
    github_error(422, message, GH_DOCS)
}
