//! GitHub Actions secrets (repository, environment, organization).
//!
//! Docs checked:
//! - <https://docs.github.com/rest/actions/secrets> (`GET …/secrets/public-key` →
//!   `{"key_id","key"}` with a base64 X25519 public key; `PUT …/secrets/{secret_name}`
//!   JSON `{"encrypted_value","key_id"}` (+ `visibility`, `selected_repository_ids` for
//!   organizations) → `201 Created` for a new secret, `204 No Content` for an update;
//!   `GET …/secrets/{secret_name}` → `{"name","created_at","updated_at"}`).
//! - <https://docs.github.com/rest/guides/encrypting-secrets-for-the-rest-api> (values are
//!   encrypted with a libsodium sealed box for the public key, then base64-encoded).
//! - <https://docs.github.com/actions/security-for-github-actions/security-guides/using-secrets-in-github-actions#naming-your-secrets>
//!   (names: alphanumerics and `_`, not starting with a digit or `GITHUB_`).
//!
//! - Organization secrets, same page: `visibility` is **required** on every PUT
//!   (`all`, `private`, `selected`), so an update that sends another visibility
//!   changes who can read the secret; "You can only provide a list of repository ids
//!   when the visibility is set to selected"; `GET /orgs/{org}/actions/secrets/{name}`
//!   answers `visibility` (and `selected_repositories_url` when `selected`);
//!   `GET …/secrets/{name}/repositories` lists `{"total_count","repositories":[{"id",…}]}`
//!   (`per_page` up to 100, `page`). The docs do not say what a PUT with `selected`
//!   and no `selected_repository_ids` does to the existing list; the simulator takes
//!   the strict reading (the list is replaced by the empty one), so a client must
//!   send the ids it wants kept.
//!
//! The simulator keeps one X25519 key pair per scope and decrypts stored values on
//! demand (`actions_secret_plaintext`), which proves the client sealed them correctly.
//! A stale or wrong `key_id` is answered 422.

use std::collections::{HashMap, HashSet};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::state::Sim;
use crate::util::{bearer, github_error, json_response};

const SECRETS_DOCS: &str = "https://docs.github.com/rest/actions/secrets";

/// Where an Actions secret lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ActionsScope {
    Repo {
        owner: String,
        repo: String,
    },
    Env {
        owner: String,
        repo: String,
        env: String,
    },
    Org {
        org: String,
    },
}

impl ActionsScope {
    fn normalized(&self) -> ActionsScope {
        match self {
            ActionsScope::Repo { owner, repo } => ActionsScope::Repo {
                owner: owner.to_ascii_lowercase(),
                repo: repo.to_ascii_lowercase(),
            },
            ActionsScope::Env { owner, repo, env } => ActionsScope::Env {
                owner: owner.to_ascii_lowercase(),
                repo: repo.to_ascii_lowercase(),
                env: env.clone(),
            },
            ActionsScope::Org { org } => ActionsScope::Org {
                org: org.to_ascii_lowercase(),
            },
        }
    }
}

pub(crate) struct ScopeKeys {
    pub key_id: String,
    pub secret: crypto_box::SecretKey,
}

#[derive(Clone, Debug)]
pub(crate) struct StoredSecret {
    pub encrypted_value: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub visibility: Option<String>,
    /// Organization secrets with `selected` visibility.
    pub selected_repository_ids: Vec<u64>,
}

#[derive(Default)]
pub(crate) struct ActionsState {
    pub tokens: HashSet<String>,
    pub keys: HashMap<ActionsScope, ScopeKeys>,
    pub secrets: HashMap<(ActionsScope, String), StoredSecret>,
}

fn new_keys() -> ScopeKeys {
    let bytes: [u8; 32] = rand::random();
    let digits: u64 = rand::random::<u64>() % 9_000_000_000_000_000_000 + 1_000_000_000_000_000_000;
    ScopeKeys {
        key_id: digits.to_string(),
        secret: crypto_box::SecretKey::from_bytes(bytes),
    }
}

impl Sim {
    pub fn actions_add_repo(&self, owner: &str, repo: &str) {
        let scope = ActionsScope::Repo {
            owner: owner.into(),
            repo: repo.into(),
        }
        .normalized();
        self.lock()
            .actions
            .keys
            .entry(scope)
            .or_insert_with(new_keys);
    }

    pub fn actions_add_environment(&self, owner: &str, repo: &str, env: &str) {
        self.actions_add_repo(owner, repo);
        let scope = ActionsScope::Env {
            owner: owner.into(),
            repo: repo.into(),
            env: env.into(),
        }
        .normalized();
        self.lock()
            .actions
            .keys
            .entry(scope)
            .or_insert_with(new_keys);
    }

    pub fn actions_add_org(&self, org: &str) {
        let scope = ActionsScope::Org { org: org.into() }.normalized();
        self.lock()
            .actions
            .keys
            .entry(scope)
            .or_insert_with(new_keys);
    }

    /// A token accepted by the secrets endpoints (GitHub App installation tokens
    /// minted by the simulator are accepted too).
    pub fn actions_add_token(&self, token: &str) {
        self.lock().actions.tokens.insert(token.to_string());
    }

    /// Rotates a scope's key pair (secrets sealed for the old key can no longer
    /// be written with the old `key_id`).
    pub fn actions_rotate_key(&self, scope: ActionsScope) {
        let scope = scope.normalized();
        self.lock().actions.keys.insert(scope, new_keys());
    }

    /// Decrypts the stored secret with the scope's private key. `None` if the
    /// secret is missing or does not open (the client sealed it wrongly).
    pub fn actions_secret_plaintext(&self, scope: ActionsScope, name: &str) -> Option<String> {
        let scope = scope.normalized();
        let st = self.lock();
        let stored = st
            .actions
            .secrets
            .get(&(scope.clone(), name.to_ascii_uppercase()))?;
        let keys = st.actions.keys.get(&scope)?;
        let ct = base64::engine::general_purpose::STANDARD
            .decode(&stored.encrypted_value)
            .ok()?;
        let pt = keys.secret.unseal(&ct).ok()?;
        String::from_utf8(pt).ok()
    }

    /// Creates or replaces an organization secret as a user would in the UI: the
    /// value sealed for the org key, the visibility and repositories they chose.
    pub fn actions_set_org_secret(
        &self,
        org: &str,
        name: &str,
        value: &str,
        visibility: &str,
        selected_repository_ids: &[u64],
    ) {
        let scope = ActionsScope::Org { org: org.into() }.normalized();
        let mut st = self.lock();
        let now = st.now();
        let keys = st
            .actions
            .keys
            .entry(scope.clone())
            .or_insert_with(new_keys);
        let sealed = keys
            .secret
            .public_key()
            .seal(&mut crypto_box::aead::OsRng, value.as_bytes())
            .expect("sealing with a valid key");
        st.actions.secrets.insert(
            (scope, name.to_ascii_uppercase()),
            StoredSecret {
                encrypted_value: base64::engine::general_purpose::STANDARD.encode(sealed),
                created_at: now,
                updated_at: now,
                visibility: Some(visibility.to_string()),
                selected_repository_ids: selected_repository_ids.to_vec(),
            },
        );
    }

    /// The repositories a `selected` organization secret is shared with.
    pub fn actions_secret_repositories(&self, org: &str, name: &str) -> Vec<u64> {
        let scope = ActionsScope::Org { org: org.into() }.normalized();
        self.lock()
            .actions
            .secrets
            .get(&(scope, name.to_ascii_uppercase()))
            .map(|s| s.selected_repository_ids.clone())
            .unwrap_or_default()
    }

    /// The `visibility` an organization secret was written with.
    pub fn actions_secret_visibility(&self, org: &str, name: &str) -> Option<String> {
        let scope = ActionsScope::Org { org: org.into() }.normalized();
        self.lock()
            .actions
            .secrets
            .get(&(scope, name.to_ascii_uppercase()))
            .and_then(|s| s.visibility.clone())
    }
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route(
            "/repos/{owner}/{repo}/actions/secrets/public-key",
            get(repo_key),
        )
        .route(
            "/repos/{owner}/{repo}/actions/secrets/{name}",
            get(repo_get).put(repo_put),
        )
        .route(
            "/repos/{owner}/{repo}/environments/{env}/secrets/public-key",
            get(env_key),
        )
        .route(
            "/repos/{owner}/{repo}/environments/{env}/secrets/{name}",
            get(env_get).put(env_put),
        )
        .route("/orgs/{org}/actions/secrets/public-key", get(org_key))
        .route(
            "/orgs/{org}/actions/secrets/{name}",
            get(org_get).put(org_put),
        )
        .route(
            "/orgs/{org}/actions/secrets/{name}/repositories",
            get(org_repositories),
        )
}

fn authorize(st: &crate::state::State, headers: &HeaderMap) -> Result<(), Response> {
    let bad = || github_error(401, "Bad credentials", SECRETS_DOCS);
    let t = bearer(headers)
        .ok_or_else(|| github_error(401, "Requires authentication", SECRETS_DOCS))?;
    if st.actions.tokens.contains(&t) || st.lenient {
        return Ok(());
    }
    let now = st.now();
    match st.github.tokens.get(&t) {
        Some(g) if !g.revoked && g.expires_at > now => Ok(()),
        _ => Err(bad()),
    }
}

fn ensure_scope(st: &mut crate::state::State, scope: &ActionsScope) -> Result<(), Response> {
    if st.actions.keys.contains_key(scope) {
        return Ok(());
    }
    if st.lenient {
        st.actions.keys.insert(scope.clone(), new_keys());
        return Ok(());
    }
    Err(github_error(404, "Not Found", SECRETS_DOCS))
}

fn public_key(sim: &Sim, scope: ActionsScope, headers: &HeaderMap) -> Response {
    let scope = scope.normalized();
    let mut st = sim.lock();
    if let Err(r) = authorize(&st, headers) {
        return r;
    }
    if let Err(r) = ensure_scope(&mut st, &scope) {
        return r;
    }
    let Some(k) = st.actions.keys.get(&scope) else {
        return github_error(404, "Not Found", SECRETS_DOCS);
    };
    let key = base64::engine::general_purpose::STANDARD.encode(k.secret.public_key().as_bytes());
    json_response(200, json!({"key_id": k.key_id, "key": key}))
}

fn get_secret(sim: &Sim, scope: ActionsScope, name: &str, headers: &HeaderMap) -> Response {
    let scope = scope.normalized();
    let mut st = sim.lock();
    if let Err(r) = authorize(&st, headers) {
        return r;
    }
    if let Err(r) = ensure_scope(&mut st, &scope) {
        return r;
    }
    let name = name.to_ascii_uppercase();
    match st.actions.secrets.get(&(scope.clone(), name.clone())) {
        Some(s) => {
            let mut v = json!({
                "name": name,
                "created_at": s.created_at.to_string(),
                "updated_at": s.updated_at.to_string(),
            });
            if let Some(vis) = &s.visibility {
                v["visibility"] = json!(vis);
                if vis == "selected"
                    && let ActionsScope::Org { org } = &scope
                {
                    v["selected_repositories_url"] = json!(format!(
                        "https://api.github.com/orgs/{org}/actions/secrets/{name}/repositories"
                    ));
                }
            }
            json_response(200, v)
        }
        None => github_error(404, "Not Found", SECRETS_DOCS),
    }
}

fn valid_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    !name.is_empty()
        && !upper.starts_with("GITHUB_")
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn put_secret(
    sim: &Sim,
    scope: ActionsScope,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let scope = scope.normalized();
    let is_org = matches!(scope, ActionsScope::Org { .. });
    let mut st = sim.lock();
    if let Err(r) = authorize(&st, headers) {
        return r;
    }
    if let Err(r) = ensure_scope(&mut st, &scope) {
        return r;
    }
    if !valid_name(name) {
        return github_error(
            422,
            "Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_). Spaces are not allowed. Must start with a letter ([a-z], [A-Z]) or underscores (_).",
            SECRETS_DOCS,
        );
    }
    let req: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return github_error(400, "Problems parsing JSON", SECRETS_DOCS),
    };
    let Some(enc) = req.get("encrypted_value").and_then(Value::as_str) else {
        return github_error(
            422,
            "Invalid request.\n\n\"encrypted_value\" wasn't supplied.",
            SECRETS_DOCS,
        );
    };
    let Some(key_id) = req.get("key_id").and_then(Value::as_str) else {
        return github_error(
            422,
            "Invalid request.\n\n\"key_id\" wasn't supplied.",
            SECRETS_DOCS,
        );
    };
    if base64::engine::general_purpose::STANDARD
        .decode(enc)
        .is_err()
    {
        return github_error(
            422,
            "Invalid request.\n\nFor 'properties/encrypted_value', the value is not valid base64.",
            SECRETS_DOCS,
        );
    }
    let visibility = if is_org {
        match req.get("visibility").and_then(Value::as_str) {
            Some(v @ ("all" | "private" | "selected")) => Some(v.to_string()),
            Some(_) => {
                return github_error(
                    422,
                    "Invalid request.\n\nFor 'properties/visibility', the value must be one of: all, private, selected.",
                    SECRETS_DOCS,
                );
            }
            None => {
                return github_error(
                    422,
                    "Invalid request.\n\n\"visibility\" wasn't supplied.",
                    SECRETS_DOCS,
                );
            }
        }
    } else {
        None
    };
    let ids = match req.get("selected_repository_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(_) if visibility.as_deref() != Some("selected") => {
            return github_error(
                422,
                "Invalid request.\n\nYou can only provide a list of repository ids when the visibility is set to selected.",
                SECRETS_DOCS,
            );
        }
        Some(Value::Array(a)) => {
            let mut ids = Vec::new();
            for v in a {
                match v.as_u64() {
                    Some(id) => ids.push(id),
                    None => {
                        return github_error(
                            422,
                            "Invalid request.\n\nFor 'items', the value is not an integer.",
                            SECRETS_DOCS,
                        );
                    }
                }
            }
            ids
        }
        Some(_) => {
            return github_error(
                422,
                "Invalid request.\n\nFor 'properties/selected_repository_ids', the value is not an array.",
                SECRETS_DOCS,
            );
        }
    };
    let current = st.actions.keys.get(&scope).map(|k| k.key_id.clone());
    if current.as_deref() != Some(key_id) {
        return github_error(
            422,
            "Bad request: key_id is invalid or expired.",
            SECRETS_DOCS,
        );
    }
    let now = st.now();
    let k = (scope, name.to_ascii_uppercase());
    let existed = st.actions.secrets.contains_key(&k);
    let created_at = st
        .actions
        .secrets
        .get(&k)
        .map(|s| s.created_at)
        .unwrap_or(now);
    st.actions.secrets.insert(
        k,
        StoredSecret {
            encrypted_value: enc.to_string(),
            created_at,
            updated_at: now,
            visibility,
            selected_repository_ids: ids,
        },
    );
    if existed {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::CREATED, axum::Json(json!({}))).into_response()
    }
}

fn repo_scope(owner: String, repo: String) -> ActionsScope {
    ActionsScope::Repo { owner, repo }
}

async fn repo_key(
    State(sim): State<Sim>,
    Path((o, r)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    public_key(&sim, repo_scope(o, r), &h)
}

async fn repo_get(
    State(sim): State<Sim>,
    Path((o, r, n)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Response {
    get_secret(&sim, repo_scope(o, r), &n, &h)
}

async fn repo_put(
    State(sim): State<Sim>,
    Path((o, r, n)): Path<(String, String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    put_secret(&sim, repo_scope(o, r), &n, &h, &body)
}

async fn env_key(
    State(sim): State<Sim>,
    Path((owner, repo, env)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Response {
    public_key(&sim, ActionsScope::Env { owner, repo, env }, &h)
}

async fn env_get(
    State(sim): State<Sim>,
    Path((owner, repo, env, n)): Path<(String, String, String, String)>,
    h: HeaderMap,
) -> Response {
    get_secret(&sim, ActionsScope::Env { owner, repo, env }, &n, &h)
}

async fn env_put(
    State(sim): State<Sim>,
    Path((owner, repo, env, n)): Path<(String, String, String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    put_secret(&sim, ActionsScope::Env { owner, repo, env }, &n, &h, &body)
}

async fn org_key(State(sim): State<Sim>, Path(org): Path<String>, h: HeaderMap) -> Response {
    public_key(&sim, ActionsScope::Org { org }, &h)
}

async fn org_get(
    State(sim): State<Sim>,
    Path((org, n)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    get_secret(&sim, ActionsScope::Org { org }, &n, &h)
}

async fn org_put(
    State(sim): State<Sim>,
    Path((org, n)): Path<(String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    put_secret(&sim, ActionsScope::Org { org }, &n, &h, &body)
}

async fn org_repositories(
    State(sim): State<Sim>,
    Path((org, n)): Path<(String, String)>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    h: HeaderMap,
) -> Response {
    let scope = ActionsScope::Org { org }.normalized();
    let st = sim.lock();
    if let Err(r) = authorize(&st, &h) {
        return r;
    }
    let Some(s) = st.actions.secrets.get(&(scope, n.to_ascii_uppercase())) else {
        return github_error(404, "Not Found", SECRETS_DOCS);
    };
    if s.visibility.as_deref() != Some("selected") {
        return github_error(
            409,
            "The secret's visibility is not set to selected.",
            SECRETS_DOCS,
        );
    }
    let q = crate::util::parse_query(q.as_deref());
    let num = |k: &str, d: usize| {
        crate::util::param(&q, k)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(d)
    };
    let per_page = num("per_page", 30).clamp(1, 100);
    let page = num("page", 1).max(1);
    let repos: Vec<Value> = s
        .selected_repository_ids
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|id| json!({"id": id, "name": format!("repo-{id}"), "full_name": format!("org/repo-{id}")}))
        .collect();
    json_response(
        200,
        json!({"total_count": s.selected_repository_ids.len(), "repositories": repos}),
    )
}

// ------------------------------------------------------------ registry

#[allow(non_upper_case_globals)]
impl crate::Route {
    /// The Actions secrets paths (repository, environment, organization).
    pub const GitHubActions: crate::Route = crate::Route("github_actions");
}

pub(crate) type ProviderState = ActionsState;

/// Asked before GitHub's catch-all, which would claim `/repos/…` and `/orgs/…`.
pub(crate) const PROVIDER: crate::registry::Provider = crate::registry::Provider {
    routes: &[(crate::Route::GitHubActions, &["actions"])],
    owns: |path| {
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        matches!(
            segs.as_slice(),
            ["repos", _, _, "actions", "secrets", ..]
                | ["repos", _, _, "environments", _, "secrets", ..]
                | ["orgs", _, "actions", "secrets", ..]
        )
        .then_some(crate::Route::GitHubActions)
    },
    router: routes,
    wrap: None,
    errors: crate::github::ERRORS,
};
