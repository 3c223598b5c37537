//! The `github-actions` store: a repository, environment or organization Actions
//! secret, for pipelines that run on GitHub.
//!
//! Each value is sealed (libsodium sealed box, X25519) for the scope's public key and
//! sent as `{encrypted_value, key_id}`; plaintext never leaves this module. Actions
//! secrets cannot be read back through the API, so `read` finds nothing: a workflow
//! passes its secrets in as environment variables, which is where the engine reads
//! them from.
//!
//! An organization secret keeps what its owner chose: GitHub requires `visibility`
//! on every PUT (and replaces the selected repositories with what the PUT carries),
//! so before updating one this store reads its visibility (`GET …/secrets/{name}`)
//! and, for `selected`, its repositories (`GET …/secrets/{name}/repositories`), and
//! sends them back unchanged. The configured `visibility` applies only when the
//! secret is created. It must never widen or narrow who can read a secret it updates.
//!
//! Docs: <https://docs.github.com/rest/actions/secrets>,
//! <https://docs.github.com/rest/guides/encrypting-secrets-for-the-rest-api>.

use base64::Engine as _;
use serde::Deserialize;
use url::Url;

use super::{Entry, Store, StoreError, Stored};
use crate::env_vars;
use crate::error::Result;
use crate::http::{Call, Http, Reply, safe_url};
use crate::secret::{Secret, Source};
use crate::section::{Ctx, Site};

const DEFAULT_API_URL: &str = "https://api.github.com";

/// `auth.writeback.github_actions`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `owner/repo`; default `$GITHUB_REPOSITORY` (set on Actions runners).
    #[serde(default)]
    pub repository: Option<String>,
    /// A deployment environment of the repository, for environment secrets.
    #[serde(default)]
    pub environment: Option<String>,
    /// An organization, for organization secrets (instead of `repository`).
    #[serde(default)]
    pub organization: Option<String>,
    /// Organization secrets evertoken creates: `all`, `private` (default) or
    /// `selected` (with no repositories yet). An existing secret keeps its own.
    #[serde(default)]
    pub visibility: Option<String>,
    /// Default `$GITHUB_API_URL`, else `https://api.github.com`.
    #[serde(default)]
    pub api_url: Option<String>,
    /// The environment variable holding the API token; default `GITHUB_TOKEN`.
    #[serde(default)]
    pub token_env: Option<String>,
}

#[derive(Clone, Debug)]
enum Scope {
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
        /// For a secret this store creates; an existing one keeps its own.
        visibility: String,
    },
}

/// `GET /orgs/{org}/actions/secrets/{name}`: what the owner chose.
#[derive(Deserialize)]
struct OrgSecret {
    #[serde(default)]
    visibility: Option<String>,
}

#[derive(Deserialize)]
struct RepoId {
    id: u64,
}

#[derive(Deserialize)]
struct SelectedRepos {
    #[serde(default)]
    total_count: Option<u64>,
    #[serde(default)]
    repositories: Vec<RepoId>,
}

impl Scope {
    /// The path under `api_url` that holds the secrets (no trailing slash).
    fn path(&self) -> String {
        let e = |s: &str| urlencoding::encode(s).into_owned();
        match self {
            Scope::Repo { owner, repo } => {
                format!("/repos/{}/{}/actions/secrets", e(owner), e(repo))
            }
            Scope::Env { owner, repo, env } => format!(
                "/repos/{}/{}/environments/{}/secrets",
                e(owner),
                e(repo),
                e(env)
            ),
            Scope::Org { org, .. } => format!("/orgs/{}/actions/secrets", e(org)),
        }
    }

    /// The permission a fine-grained token or GitHub App needs to write here, in
    /// GitHub's words (docs.github.com/rest/actions/secrets, "Fine-grained access
    /// tokens"), and the classic scope.
    fn permission(&self) -> &'static str {
        match self {
            Scope::Repo { .. } => {
                "the repository permission \"Secrets\" (write) (classic token: repo)"
            }
            Scope::Env { .. } => {
                "the repository permission \"Environments\" (write) (classic token: repo)"
            }
            Scope::Org { .. } => {
                "the organization permission \"Secrets\" (write) (classic token: admin:org)"
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Scope::Repo { owner, repo } => format!("repository {owner}/{repo}"),
            Scope::Env { owner, repo, env } => format!("environment `{env}` of {owner}/{repo}"),
            Scope::Org { org, .. } => format!("organization {org}"),
        }
    }
}

pub struct ActionsStore {
    api_url: Url,
    scope: Scope,
    token_env: String,
    token: Secret,
    http: Http,
    /// The scope's public key, read once per run (a 422 about `key_id` drops it).
    key: tokio::sync::Mutex<Option<(String, crypto_box::PublicKey)>>,
}

#[derive(Deserialize)]
struct PublicKey {
    key_id: String,
    key: String,
}

fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn split_repo(s: &str) -> Option<(String, String)> {
    let (o, r) = s.trim().split_once('/')?;
    let ok = |x: &str| {
        !x.is_empty()
            && x.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    (ok(o) && ok(r)).then(|| (o.to_owned(), r.to_owned()))
}

/// Where the secrets go, as the file says: an organization, or a repository
/// (from the file or `$GITHUB_REPOSITORY`) with an optional environment.
#[derive(Debug, Clone)]
enum Target {
    Org {
        org: String,
        visibility: String,
    },
    Repo {
        /// `None`: `$GITHUB_REPOSITORY`, read when the store opens.
        repo: Option<(String, String)>,
        environment: Option<String>,
    },
}

/// `auth.writeback.github_actions`, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `api_url`; else `$GITHUB_API_URL`, else api.github.com.
    api_url: Option<Url>,
    target: Target,
    /// The variable holding the API token (default `GITHUB_TOKEN`).
    token_env: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            api_url: None,
            target: Target::Repo {
                repo: None,
                environment: None,
            },
            token_env: env_vars::GITHUB_TOKEN.to_owned(),
        }
    }
}

impl Settings {
    pub fn resolve(c: Option<&Config>, site: &Site) -> Result<Settings> {
        let Some(c) = c else {
            return Ok(Settings::default());
        };
        let key = |k: &str| format!("auth.writeback.github_actions.{k}");
        if c.repository.is_some() && c.organization.is_some() {
            return Err(site
                .error_at("auth.writeback.github_actions", "sets both `repository` and `organization`")
                .with_hint("keep `repository` (optionally with `environment`) for repository secrets, or `organization` for organization secrets"));
        }
        if c.organization.is_some() && c.environment.is_some() {
            return Err(site
                .error_at(&key("environment"), "cannot be combined with `organization`")
                .with_hint("environment secrets belong to a repository: set `repository` instead of `organization`"));
        }
        let repo = match &c.repository {
            Some(r) => Some(split_repo(r).ok_or_else(|| {
                site.error_at(&key("repository"), format!("`{r}` is not `owner/repo`"))
                    .with_hint("for example `repository: my-org/publisher`")
            })?),
            None => None,
        };
        if let Some(v) = &c.visibility {
            if c.organization.is_none() {
                return Err(site
                    .error_at(&key("visibility"), "applies only to organization secrets")
                    .with_hint("remove it, or set `organization`"));
            }
            if !matches!(v.as_str(), "all" | "private" | "selected") {
                return Err(site
                    .error_at(
                        &key("visibility"),
                        format!("`{v}` is not one of all, private, selected"),
                    )
                    .with_hint("the default is `private`"));
            }
        }
        for (k, v) in [
            ("environment", &c.environment),
            ("organization", &c.organization),
            ("token_env", &c.token_env),
        ] {
            if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(site
                    .error_at(&key(k), "is empty")
                    .with_hint("remove the key or give it a value"));
            }
        }
        if let Some(v) = &c.token_env
            && !is_var_name(v)
        {
            return Err(site
                .error_at(
                    &key("token_env"),
                    format!(
                        "`{}` is not an environment variable name (A-Z, 0-9 and `_`, not starting with a digit)",
                        crate::scrub::escape_controls(v)
                    ),
                )
                .with_hint("for example `token_env: EVERTOKEN_SECRETS_TOKEN`"));
        }
        let api_url = match &c.api_url {
            Some(u) => Some(parse_api_url(u).map_err(|e| {
                site.error_at(&key("api_url"), e)
                    .with_hint("for example `https://github.example.com/api/v3`")
            })?),
            None => None,
        };
        let target = match &c.organization {
            Some(org) => Target::Org {
                org: org.trim().to_owned(),
                visibility: c.visibility.clone().unwrap_or_else(|| "private".to_owned()),
            },
            None => Target::Repo {
                repo,
                environment: c.environment.as_ref().map(|e| e.trim().to_owned()),
            },
        };
        Ok(Settings {
            api_url,
            target,
            token_env: c
                .token_env
                .clone()
                .unwrap_or_else(|| env_vars::GITHUB_TOKEN.to_owned()),
        })
    }
}

/// `[A-Z_][A-Z0-9_]*`: a name a workflow's `env:` and every shell accept.
pub(crate) fn is_var_name(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
        && v.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn parse_api_url(u: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(u.trim()).map_err(|e| format!("`{u}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{u}` is not an http(s) URL"));
    }
    Ok(url)
}

impl ActionsStore {
    pub fn open(s: &Settings, ctx: &Ctx) -> Result<Self> {
        let key = |k: &str| format!("auth.writeback.github_actions.{k}");
        let api_url = match (&s.api_url, env_nonempty(env_vars::GITHUB_API_URL)) {
            (Some(u), _) => u.clone(),
            (None, from_env) => {
                let u = from_env.unwrap_or_else(|| DEFAULT_API_URL.to_owned());
                parse_api_url(&u).map_err(|e| {
                    ctx.error_at(&key("api_url"), e)
                        .with_hint("for example `https://github.example.com/api/v3`")
                })?
            }
        };
        let scope = match &s.target {
            Target::Org { org, visibility } => Scope::Org {
                org: org.clone(),
                visibility: visibility.clone(),
            },
            Target::Repo { repo, environment } => {
                let (owner, repo) = match (repo, env_nonempty(env_vars::GITHUB_REPOSITORY)) {
                    (Some(r), _) => r.clone(),
                    (None, Some(r)) => split_repo(&r).ok_or_else(|| {
                        ctx.error_at(
                            &key("repository"),
                            format!(
                                "`{r}` (from ${}) is not `owner/repo`",
                                env_vars::GITHUB_REPOSITORY
                            ),
                        )
                    })?,
                    (None, None) => {
                        return Err(ctx
                            .error_at(&key("repository"), format!("is not set, and neither is ${}", env_vars::GITHUB_REPOSITORY))
                            .with_hint("set `repository: owner/repo` (or `organization`); on GitHub Actions GITHUB_REPOSITORY is set for you"));
                    }
                };
                match environment {
                    Some(env) => Scope::Env {
                        owner,
                        repo,
                        env: env.clone(),
                    },
                    None => Scope::Repo { owner, repo },
                }
            }
        };
        let token_env = s.token_env.clone();
        let Some(token) = env_nonempty(&token_env) else {
            return Err(ctx
                .error_at(&key("token_env"), format!("the github-actions write-back needs a token in ${token_env}, which is not set"))
                .with_hint(format!(
                    "export {token_env}=… with a token allowed to write Actions secrets (fine-grained token or GitHub App: repository permission \"Secrets\" (write); for environment secrets, repository permission \"Environments\" (write); for organization secrets, organization permission \"Secrets\" (write)); a workflow's own GITHUB_TOKEN cannot write secrets, so pass such a token from a secret and name its variable in `token_env`"
                )));
        };
        Ok(Self {
            api_url,
            scope,
            token_env,
            token: Secret::new(token),
            http: ctx.http.clone(),
            key: tokio::sync::Mutex::new(None),
        })
    }

    fn url(&self, tail: &str) -> Url {
        let mut u = self.api_url.clone();
        let base = u.path().trim_end_matches('/').to_owned();
        u.set_path(&format!("{base}{}/{tail}", self.scope.path()));
        u.set_query(None);
        u.set_fragment(None);
        u
    }

    fn request(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        rb.bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
    }

    fn answer_error(&self, what: &str, url: &Url, reply: &Reply) -> StoreError {
        let at = format!("GitHub ({})", safe_url(url));
        let message = serde_json::from_str::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| reply.snippet());
        let needs = self.scope.permission();
        match reply.status.as_u16() {
            401 => StoreError::permanent(format!("{at} answered 401 ({message}) {what}: the token in ${} was rejected", self.token_env))
                .with_hint(format!("the token is expired or revoked; put a valid one with {needs} in ${}", self.token_env)),
            403 | 404 => StoreError::permanent(format!("{at} answered {} ({message}) {what} in {}", reply.status.as_u16(), self.scope.describe()))
                .with_hint(format!("check the {} name and that the token in ${} has {needs}; a workflow's own GITHUB_TOKEN cannot write secrets", self.scope.describe(), self.token_env)),
            s => StoreError::permanent(format!("{at} answered {s} {what}: {message}")),
        }
    }

    /// The public key, fetched on first use and then reused for the run.
    async fn public_key(&self) -> Result<(String, crypto_box::PublicKey), StoreError> {
        let mut cached = self.key.lock().await;
        if let Some(k) = cached.as_ref() {
            return Ok(k.clone());
        }
        let k = self.fetch_public_key().await?;
        *cached = Some(k.clone());
        Ok(k)
    }

    async fn fetch_public_key(&self) -> Result<(String, crypto_box::PublicKey), StoreError> {
        let url = self.url("public-key");
        let reply = self
            .http
            .send("GitHub Actions secrets API", Call::Safe, |c| {
                self.request(c.get(url.clone()))
            })
            .await
            .map_err(|f| StoreError::transient(f.message().to_owned()))?;
        if !reply.status.is_success() {
            return Err(self.answer_error("for the public key", &url, &reply));
        }
        let k: PublicKey = reply.json().map_err(|e| {
            StoreError::permanent(format!(
                "GitHub ({}) answered with an unexpected body: {e}",
                safe_url(&url)
            ))
        })?;
        let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(k.key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                StoreError::permanent(format!(
                    "GitHub ({}) sent a public key that is not 32 base64-encoded bytes",
                    safe_url(&url)
                ))
            })?;
        Ok((k.key_id, crypto_box::PublicKey::from(bytes)))
    }

    async fn put(
        &self,
        var: &str,
        value: &Secret,
        key_id: &str,
        key: &crypto_box::PublicKey,
    ) -> Result<(), StoreError> {
        let sealed = seal(key, value.expose().as_bytes())?;
        let mut body = serde_json::json!({ "encrypted_value": sealed, "key_id": key_id });
        if let Scope::Org { visibility, .. } = &self.scope {
            let (visibility, ids) = match self.org_access(var).await? {
                Some(kept) => kept,
                None => (visibility.clone(), None),
            };
            body["visibility"] = serde_json::Value::String(visibility);
            if let Some(ids) = ids {
                body["selected_repository_ids"] = serde_json::json!(ids);
            }
        }
        let url = self.url(&urlencoding::encode(var));
        let reply = self
            .http
            .send("GitHub Actions secrets API", Call::Safe, |c| {
                self.request(c.put(url.clone())).json(&body)
            })
            .await
            .map_err(|f| StoreError::transient(f.message().to_owned()))?;
        if reply.status.is_success() {
            return Ok(());
        }
        if reply.status.as_u16() == 422 && reply.body.contains("key_id") {
            // The key rotated between GET and PUT: a retry fetches the new one.
            *self.key.lock().await = None;
            return Err(StoreError::transient(format!(
                "GitHub ({}) refused the key_id for {var}: the public key changed",
                safe_url(&url)
            )));
        }
        Err(self.answer_error(&format!("writing {var}"), &url, &reply))
    }
}

impl ActionsStore {
    /// An existing organization secret's visibility and, for `selected`, its
    /// repository ids; `None` when the secret does not exist yet.
    async fn org_access(
        &self,
        var: &str,
    ) -> Result<Option<(String, Option<Vec<u64>>)>, StoreError> {
        let url = self.url(&urlencoding::encode(var));
        let reply = self
            .http
            .send("GitHub Actions secrets API", Call::Safe, |c| {
                self.request(c.get(url.clone()))
            })
            .await
            .map_err(|f| StoreError::transient(f.message().to_owned()))?;
        if reply.status.as_u16() == 404 {
            return Ok(None);
        }
        if !reply.status.is_success() {
            return Err(self.answer_error(&format!("reading {var}'s visibility"), &url, &reply));
        }
        let unexpected = |e: String| {
            StoreError::permanent(format!(
                "GitHub ({}) answered with an unexpected body for {var}: {e}",
                safe_url(&url)
            ))
            .with_hint("nothing was written; the organization secret keeps its value and access")
        };
        let secret: OrgSecret = reply.json().map_err(|e| unexpected(e.to_string()))?;
        let visibility = match secret.visibility.as_deref() {
            Some(v @ ("all" | "private" | "selected")) => v.to_owned(),
            other => {
                return Err(unexpected(format!(
                    "visibility {:?} is not all, private or selected",
                    other.map(|v| v.chars().take(40).collect::<String>())
                )));
            }
        };
        if visibility != "selected" {
            return Ok(Some((visibility, None)));
        }
        // Every page: a PUT replaces the list with what it carries.
        let mut ids = Vec::new();
        for page in 1..=1000u32 {
            let mut list = self.url(&format!("{}/repositories", urlencoding::encode(var)));
            list.query_pairs_mut()
                .append_pair("per_page", "100")
                .append_pair("page", &page.to_string());
            let reply = self
                .http
                .send("GitHub Actions secrets API", Call::Safe, |c| {
                    self.request(c.get(list.clone()))
                })
                .await
                .map_err(|f| StoreError::transient(f.message().to_owned()))?;
            if !reply.status.is_success() {
                return Err(self.answer_error(
                    &format!("listing the repositories {var} is shared with"),
                    &list,
                    &reply,
                ));
            }
            let body: SelectedRepos = reply.json().map_err(|e| unexpected(e.to_string()))?;
            let n = body.repositories.len();
            ids.extend(body.repositories.into_iter().map(|r| r.id));
            if n < 100 || body.total_count.is_some_and(|t| ids.len() as u64 >= t) {
                break;
            }
        }
        Ok(Some((visibility, Some(ids))))
    }
}

/// A libsodium sealed box for `key`, base64-encoded as the API expects.
fn seal(key: &crypto_box::PublicKey, plaintext: &[u8]) -> Result<String, StoreError> {
    let ct = key
        .seal(&mut crypto_box::aead::OsRng, plaintext)
        .map_err(|_| StoreError::permanent("cannot encrypt the secret (sealed box failed)"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(ct))
}

#[async_trait::async_trait]
impl Store for ActionsStore {
    fn name(&self) -> &'static str {
        "github-actions"
    }
    fn id(&self) -> String {
        format!(
            "github-actions:{}:{}",
            safe_url(&self.api_url),
            self.scope.path()
        )
    }
    fn describe(&self) -> String {
        format!("GitHub Actions secrets of {}", self.scope.describe())
    }
    fn source(&self) -> Source {
        Source::Store(self.describe())
    }
    /// A workflow fills its environment from these very secrets.
    fn env_shadows(&self) -> bool {
        false
    }

    /// Actions secrets are write-only: the value comes from the environment.
    async fn read(&self, _var: &str) -> Result<Option<Stored>, StoreError> {
        Ok(None)
    }

    /// The token must be able to fetch the public key before anything rotates.
    async fn preflight(&self, _vars: &[(String, bool)]) -> Result<(), StoreError> {
        self.public_key().await.map(|_| ())
    }

    async fn write(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let (key_id, key) = self.public_key().await?;
        for e in entries {
            self.put(&e.var, &e.value, &key_id, &key).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_box_opens_with_the_secret_key() {
        let sk = crypto_box::SecretKey::from_bytes([7u8; 32]);
        let sealed = seal(&sk.public_key(), b"test-value-not-a-real-secret").unwrap();
        let ct = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .unwrap();
        assert_eq!(sk.unseal(&ct).unwrap(), b"test-value-not-a-real-secret");
    }

    #[test]
    fn scope_paths() {
        let env = Scope::Env {
            owner: "o".into(),
            repo: "r".into(),
            env: "prod env".into(),
        };
        assert_eq!(env.path(), "/repos/o/r/environments/prod%20env/secrets");
        assert_eq!(
            Scope::Org {
                org: "acme".into(),
                visibility: "all".into()
            }
            .path(),
            "/orgs/acme/actions/secrets"
        );
        assert_eq!(split_repo("o/r"), Some(("o".into(), "r".into())));
        assert_eq!(split_repo("o/r/x"), None);
    }
}
