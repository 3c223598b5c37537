//! The `gitlab` store: the project's (or group's) existing CI/CD variables, updated
//! in place through the REST API v4 so that the next scheduled pipeline reads the
//! rotated token.
//!
//! It never creates a variable (except `auth login --create-variable`, in
//! `gitlab/create.rs`), never changes its masked/protected/raw attributes
//! (only `value` is sent), never puts a value in a URL, and checks a new value
//! against GitLab's masking rules before sending it. The pre-flight refuses, before
//! anything rotates, a durable variable that is missing, unmasked or unprotected.
//!
//! Calls: the project's (or group's) variables are listed once per run (paginated,
//! 100 a page) for the reads and the pre-flight; under the account's lock the engine
//! asks for a fresh read of the durable variable only ([`Store::reread`]: one GET,
//! which re-checks that it exists, is masked and protected, and sees another run's
//! rotation); then one PUT per variable written. A rotated account costs 3 calls
//! (GET + 2 PUTs) plus its share of the listing. `auth status` makes no call at all
//! ([`Store::offline`]): in a pipeline the job's environment holds the variables.
//!
//! Docs: <https://docs.gitlab.com/api/project_level_variables/>,
//! <https://docs.gitlab.com/api/group_level_variables/>,
//! <https://docs.gitlab.com/ci/variables/#mask-a-cicd-variable>,
//! <https://docs.gitlab.com/api/rest/#pagination> (`page`, `per_page` up to 100,
//! `x-next-page`, `Link: <…>; rel="next"`; no totals past 10,000 records).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;
use url::Url;

use super::{Entry, Store, StoreError, Stored};
use crate::env_vars;
use crate::error::Result;
use crate::http::{Call, Failure, Http, Outcome, Reply, safe_url};
use crate::secret::{Secret, Source};
use crate::section::{Ctx, Site};

mod create;

const DEFAULT_API_URL: &str = "https://gitlab.com/api/v4";

/// `auth.writeback.gitlab`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Project ID or `group/project` path; default `$CI_PROJECT_ID`.
    #[serde(default)]
    pub project: Option<String>,
    /// Group ID or path, for group-level variables (instead of `project`).
    #[serde(default)]
    pub group: Option<String>,
    /// Default `$CI_API_V4_URL`, else `https://gitlab.com/api/v4`.
    #[serde(default)]
    pub api_url: Option<String>,
    /// The variables' environment scope (`filter[environment_scope]`), e.g. `production`.
    #[serde(default)]
    pub environment_scope: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Scope {
    Project(String),
    Group(String),
}

impl Scope {
    fn noun(&self) -> &'static str {
        match self {
            Scope::Project(_) => "project",
            Scope::Group(_) => "group",
        }
    }
    fn id(&self) -> &str {
        match self {
            Scope::Project(p) | Scope::Group(p) => p,
        }
    }
    fn collection(&self) -> &'static str {
        match self {
            Scope::Project(_) => "projects",
            Scope::Group(_) => "groups",
        }
    }
}

pub struct GitLabStore {
    api_url: Url,
    scope: Scope,
    environment_scope: Option<String>,
    token: Secret,
    http: Http,
    /// The run's view of the variables: the listing, then each GET and PUT; or
    /// the listing's permanent error (a rejected token), so it is asked once.
    known: tokio::sync::Mutex<Option<Result<Known, StoreError>>>,
    /// Variables whose next read must be a GET (asked for under the lock).
    reread: Mutex<HashSet<String>>,
    /// `auth status`: never call GitLab.
    offline: AtomicBool,
}

/// What this run knows about the variables of the configured scope.
#[derive(Default)]
struct Known {
    vars: HashMap<String, Slot>,
}

/// One variable name, as far as this run knows.
#[derive(Clone, Debug)]
enum Slot {
    /// Not in the listing (or a GET answered 404).
    Missing,
    /// Several environment scopes and no `environment_scope` configured (GitLab's 409).
    Ambiguous,
    Var(Variable),
}

/// The largest page GitLab serves; fewer round trips than the default 20.
const PER_PAGE: usize = 100;
/// A stop for a server that keeps announcing a next page (100,000 variables).
const MAX_PAGES: usize = 1000;
/// Pages asked for at once when the total is known.
const PARALLEL_PAGES: usize = 8;

/// A CI/CD variable as the API returns it (`value` is null for hidden variables).
#[derive(Clone, Debug, Deserialize)]
struct Variable {
    #[serde(default)]
    key: String,
    #[serde(default)]
    environment_scope: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    masked: bool,
    #[serde(default)]
    protected: bool,
    #[serde(default)]
    hidden: bool,
    #[serde(default)]
    raw: bool,
}

fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// `auth.writeback.gitlab`, resolved: what the file says. What it leaves out
/// comes from the pipeline's environment when the store opens.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `api_url`; else `$CI_API_V4_URL`, else gitlab.com.
    api_url: Option<Url>,
    /// `project` or `group` (never both); else `$CI_PROJECT_ID`.
    scope: Option<Scope>,
    environment_scope: Option<String>,
}

impl Settings {
    pub fn resolve(c: Option<&Config>, site: &Site) -> Result<Settings> {
        let Some(c) = c else {
            return Ok(Settings::default());
        };
        for (key, v) in [
            ("project", &c.project),
            ("group", &c.group),
            ("environment_scope", &c.environment_scope),
        ] {
            if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(site
                    .error_at(&format!("auth.writeback.gitlab.{key}"), "is empty")
                    .with_hint("remove the key or give it a value"));
            }
        }
        let scope = match (&c.project, &c.group) {
            (Some(_), Some(_)) => {
                return Err(site
                    .error_at("auth.writeback.gitlab", "sets both `project` and `group`")
                    .with_hint(
                        "keep `project` for project variables or `group` for group variables, not both",
                    ));
            }
            (Some(p), None) => Some(Scope::Project(p.trim().to_owned())),
            (None, Some(g)) => Some(Scope::Group(g.trim().to_owned())),
            (None, None) => None,
        };
        let api_url = match &c.api_url {
            Some(u) => Some(parse_api_url(u).map_err(|e| {
                site.error_at("auth.writeback.gitlab.api_url", e)
                    .with_hint("for example `https://gitlab.example.com/api/v4`")
            })?),
            None => None,
        };
        Ok(Settings {
            api_url,
            scope,
            environment_scope: c.environment_scope.as_ref().map(|s| s.trim().to_owned()),
        })
    }
}

fn parse_api_url(u: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(u.trim()).map_err(|e| format!("`{u}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{u}` is not an http(s) URL"));
    }
    Ok(url)
}

impl GitLabStore {
    pub fn open(s: &Settings, ctx: &Ctx) -> Result<Self> {
        let api_url = match (&s.api_url, env_nonempty(env_vars::CI_API_V4_URL)) {
            (Some(u), _) => u.clone(),
            (None, from_env) => {
                let (u, from) = match from_env {
                    Some(u) => (u, format!("${}", env_vars::CI_API_V4_URL)),
                    None => (DEFAULT_API_URL.to_owned(), "the default".to_owned()),
                };
                parse_api_url(&u).map_err(|e| {
                    ctx.error_at(
                        "auth.writeback.gitlab.api_url",
                        format!("{e} (from {from})"),
                    )
                    .with_hint("for example `https://gitlab.example.com/api/v4`")
                })?
            }
        };
        let scope = match (&s.scope, env_nonempty(env_vars::CI_PROJECT_ID)) {
            (Some(scope), _) => scope.clone(),
            (None, Some(p)) => Scope::Project(p.trim().to_owned()),
            (None, None) => {
                return Err(ctx
                    .error_at("auth.writeback.gitlab.project", format!("is not set, and neither is ${}", env_vars::CI_PROJECT_ID))
                    .with_hint("set `auth.writeback.gitlab.project` to the project's ID or `group/project` path (or `group` for group variables); inside a GitLab pipeline CI_PROJECT_ID is set for you"));
            }
        };
        let token = match env_nonempty(env_vars::GITLAB_TOKEN) {
            Some(t) => Secret::new(t),
            None => {
                let mut e = ctx.error_at(
                    "auth.writeback.backend",
                    format!(
                        "the gitlab write-back needs ${}, which is not set",
                        env_vars::GITLAB_TOKEN
                    ),
                );
                e = if env_nonempty(env_vars::CI_JOB_TOKEN).is_some() {
                    e.with_hint(format!(
                        "only ${} is set, and GitLab's job token cannot read or write CI/CD variables; create a project (or group) access token with the `api` scope and the Maintainer role, and add it as a masked, protected CI/CD variable named {}",
                        env_vars::CI_JOB_TOKEN,
                        env_vars::GITLAB_TOKEN
                    ))
                } else {
                    e.with_hint(format!(
                        "export {}=… with a token that has the `api` scope and the Maintainer role (a project, group or personal access token)",
                        env_vars::GITLAB_TOKEN
                    ))
                };
                return Err(e);
            }
        };
        Ok(Self {
            api_url,
            scope,
            environment_scope: s.environment_scope.clone(),
            token,
            http: ctx.http.clone(),
            known: tokio::sync::Mutex::new(None),
            reread: Mutex::new(HashSet::new()),
            offline: AtomicBool::new(false),
        })
    }

    /// The gitlab store of `wb` (`auth login --create-variable`, which requires
    /// the gitlab backend; any other backend opens one from the environment).
    pub fn open_configured(wb: &super::Writeback, ctx: &Ctx) -> Result<Self> {
        match wb {
            super::Writeback::Gitlab(s) => Self::open(s, ctx),
            _ => Self::open(&Settings::default(), ctx),
        }
    }

    /// `<api_url>/<projects|groups>/<url-encoded id>/variables?per_page=100&page=N`.
    fn list_url(&self, page: usize) -> Url {
        let mut u = self.api_url.clone();
        let base = u.path().trim_end_matches('/').to_owned();
        u.set_path(&format!(
            "{base}/{}/{}/variables",
            self.scope.collection(),
            urlencoding::encode(self.scope.id())
        ));
        u.set_query(None);
        u.set_fragment(None);
        u.query_pairs_mut()
            .append_pair("per_page", &PER_PAGE.to_string())
            .append_pair("page", &page.to_string());
        u
    }

    /// Every variable of the scope, all pages. GitLab's list endpoint has no
    /// environment filter: the scope is picked here, as the single-variable
    /// endpoints would with `filter[environment_scope]`.
    /// One page of the variables list, and the answer (for its paging headers).
    async fn page(&self, page: usize) -> Result<(Vec<Variable>, Reply), StoreError> {
        let url = self.list_url(page);
        let reply = self
            .http
            .send("GitLab variables API", Call::Safe, |c| {
                c.get(url.clone())
                    .header("PRIVATE-TOKEN", self.token.expose())
            })
            .await
            .map_err(unanswered)?;
        if !reply.status.is_success() {
            return Err(self.answer_error("the variables list", &url, &reply));
        }
        let vars: Vec<Variable> = reply.json().map_err(|e| {
            StoreError::permanent(format!(
                "GitLab ({}) answered the variables list with an unexpected body: {e}",
                safe_url(&url)
            ))
        })?;
        Ok((vars, reply))
    }

    /// Every variable of the scope, all pages. When the first page says how many
    /// pages there are (`x-total-pages`, sent up to 10,000 records), the others are
    /// fetched a few at a time; otherwise each page's `x-next-page` leads on. GitLab's
    /// list endpoint has no environment filter: the scope is picked here, as the
    /// single-variable endpoints would with `filter[environment_scope]`.
    async fn list(&self) -> Result<Known, StoreError> {
        use futures::{StreamExt, TryStreamExt};
        let mut all: HashMap<String, Vec<Variable>> = HashMap::new();
        let mut add = |vars: Vec<Variable>| {
            for v in vars {
                all.entry(v.key.clone()).or_default().push(v);
            }
        };
        let (first, reply) = self.page(1).await?;
        let n = first.len();
        add(first);
        let total = reply
            .headers
            .get("x-total-pages")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&t| t <= MAX_PAGES);
        let mut next = next_page(&reply, 1, n);
        if let (Some(total), Some(2)) = (total, next) {
            let pages: Vec<Vec<Variable>> = futures::stream::iter(2..=total)
                .map(|p| async move { self.page(p).await.map(|(vars, _)| vars) })
                .buffered(PARALLEL_PAGES)
                .try_collect()
                .await?;
            for vars in pages {
                add(vars);
            }
            next = None;
        }
        let mut fetched = 1;
        while let Some(p) = next {
            if fetched >= MAX_PAGES {
                return Err(StoreError::permanent(format!(
                    "GitLab ({}) kept announcing another page of variables after {MAX_PAGES} pages",
                    safe_url(&self.list_url(1))
                )));
            }
            let (vars, reply) = self.page(p).await?;
            fetched += 1;
            let n = vars.len();
            add(vars);
            next = next_page(&reply, p, n);
        }
        Ok(Known {
            vars: all.into_iter().map(|(k, l)| (k, self.pick(l))).collect(),
        })
    }

    /// The variable this store works with, among a name's environment scopes.
    fn pick(&self, mut list: Vec<Variable>) -> Slot {
        match &self.environment_scope {
            Some(env) => list
                .into_iter()
                .find(|v| v.environment_scope.as_deref().unwrap_or("*") == env)
                .map_or(Slot::Missing, Slot::Var),
            None if list.len() > 1 => Slot::Ambiguous,
            None => list.pop().map_or(Slot::Missing, Slot::Var),
        }
    }

    /// What the run knows about `var`: from the listing (made on first use), or
    /// from a GET when a fresh read was asked for (or `fresh`).
    async fn slot(&self, var: &str, fresh: bool) -> Result<Slot, StoreError> {
        let fresh = fresh
            || self
                .reread
                .lock()
                .map(|mut r| r.remove(var))
                .unwrap_or(true);
        let mut known = self.known.lock().await;
        if fresh {
            drop(known);
            let slot = match self.get(var).await? {
                Some(v) => Slot::Var(v),
                None => Slot::Missing,
            };
            let mut known = self.known.lock().await;
            if let Some(Ok(k)) = known.as_mut() {
                k.vars.insert(var.to_owned(), slot.clone());
            }
            return Ok(slot);
        }
        if known.is_none() {
            match self.list().await {
                Ok(k) => *known = Some(Ok(k)),
                // Transient: the next account tries again.
                Err(e) if e.transient => return Err(e),
                Err(e) => *known = Some(Err(e)),
            }
        }
        match known.as_ref() {
            Some(Ok(k)) => Ok(k.vars.get(var).cloned().unwrap_or(Slot::Missing)),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(Slot::Missing),
        }
    }

    /// Records a successful PUT, so later reads in this run see the new value.
    async fn wrote(&self, var: &str, value: &Secret) {
        if let Some(Ok(k)) = self.known.lock().await.as_mut()
            && let Some(Slot::Var(v)) = k.vars.get_mut(var)
            && !v.hidden
        {
            v.value = Some(value.expose().to_owned());
        }
    }

    fn ambiguous(&self, var: &str) -> StoreError {
        StoreError::permanent(format!(
            "{var} exists in several environment scopes of {}",
            self.where_()
        ))
        .with_hint(
            "set `auth.writeback.gitlab.environment_scope` to the scope evertoken should update",
        )
    }

    fn missing_durable(&self, var: &str) -> StoreError {
        StoreError::permanent(format!("CI/CD variable {var} does not exist in {}", self.where_())).with_hint(format!(
            "create {var} {} as masked and protected, with the current token as its value; evertoken never creates variables",
            self.settings_hint()
        ))
    }

    /// `<api_url>/<projects|groups>/<url-encoded id>/variables/<key>[?filter[environment_scope]=…]`.
    fn variable_url(&self, var: &str) -> Url {
        let mut u = self.api_url.clone();
        let base = u.path().trim_end_matches('/').to_owned();
        u.set_path(&format!(
            "{base}/{}/{}/variables/{}",
            self.scope.collection(),
            urlencoding::encode(self.scope.id()),
            urlencoding::encode(var)
        ));
        u.set_query(None);
        u.set_fragment(None);
        if let Some(env) = &self.environment_scope {
            u.query_pairs_mut()
                .append_pair("filter[environment_scope]", env);
        }
        u
    }

    fn where_(&self) -> String {
        let env = match &self.environment_scope {
            Some(e) => format!(", environment scope `{e}`"),
            None => String::new(),
        };
        format!("{} {}{env}", self.scope.noun(), self.scope.id())
    }

    fn settings_hint(&self) -> String {
        match self.scope {
            Scope::Project(_) => "in the project's Settings > CI/CD > Variables".to_owned(),
            Scope::Group(_) => "in the group's Settings > CI/CD > Variables".to_owned(),
        }
    }

    /// Maps a non-success answer to an error that says what to do.
    fn answer_error(&self, var: &str, url: &Url, reply: &Reply) -> StoreError {
        let at = format!("GitLab ({})", safe_url(url));
        match reply.status.as_u16() {
            401 => StoreError::permanent(format!("{at} answered 401 Unauthorized for {var}: ${} was rejected", env_vars::GITLAB_TOKEN))
                .with_hint(format!(
                    "the token is expired, revoked or lacks the `api` scope; a CI_JOB_TOKEN cannot be used for CI/CD variables. Put a project access token with the `api` scope and the Maintainer role in {}",
                    env_vars::GITLAB_TOKEN
                )),
            403 => StoreError::permanent(format!("{at} answered 403 Forbidden for {var}"))
                .with_hint(format!("the token in ${} needs the Maintainer role (or Owner, for group variables) on the {}", env_vars::GITLAB_TOKEN, self.scope.noun())),
            404 if reply.body.contains("Variable") => StoreError::permanent(format!("CI/CD variable {var} does not exist in {} ({at})", self.where_()))
                .with_hint(format!("create {var} {} (masked and protected, with the current token as its value); evertoken never creates variables", self.settings_hint())),
            404 => StoreError::permanent(format!("{at} answered 404: {} {} not found", self.scope.noun(), self.scope.id()))
                .with_hint(format!("check `auth.writeback.gitlab.{}` (an ID or the full `group/project` path) and that the token can see it", self.scope.noun())),
            409 => StoreError::permanent(format!("{var} exists in several environment scopes of {} ({at})", self.where_()))
                .with_hint("set `auth.writeback.gitlab.environment_scope` to the scope evertoken should update"),
            s => StoreError::permanent(format!("{at} answered {s} for {var}: {}", reply.snippet())),
        }
    }

    /// The variable's metadata and value; `Ok(None)` when it does not exist.
    async fn get(&self, var: &str) -> Result<Option<Variable>, StoreError> {
        let url = self.variable_url(var);
        let reply = self
            .http
            .send("GitLab variables API", Call::Safe, |c| {
                c.get(url.clone())
                    .header("PRIVATE-TOKEN", self.token.expose())
            })
            .await
            .map_err(unanswered)?;
        if reply.status.is_success() {
            let v: Variable = reply.json().map_err(|e| {
                StoreError::permanent(format!(
                    "GitLab ({}) answered with an unexpected body for {var}: {e}",
                    safe_url(&url)
                ))
            })?;
            return Ok(Some(v));
        }
        if reply.status.as_u16() == 404 && reply.body.contains("Variable Not Found") {
            return Ok(None);
        }
        Err(self.answer_error(var, &url, &reply))
    }

    /// Whether an existing variable can take a token: masked (or hidden) and protected.
    fn check_attributes(&self, var: &str, v: &Variable) -> Result<(), StoreError> {
        let mut missing = Vec::new();
        if !(v.masked || v.hidden) {
            missing.push("masked");
        }
        if !v.protected {
            missing.push("protected");
        }
        if missing.is_empty() {
            return Ok(());
        }
        let what = missing.join(" and ");
        Err(StoreError::permanent(format!("CI/CD variable {var} in {} is not {what}, so evertoken will not write a token into it", self.where_())).with_hint(
            format!(
                "edit {var} {} and tick \"Mask variable\" (or \"Masked and hidden\") and \"Protect variable\"; evertoken never changes these itself",
                self.settings_hint()
            ),
        ))
    }

    async fn put(&self, var: &str, value: &Secret) -> Result<(), StoreError> {
        let url = self.variable_url(var);
        let reply = self
            .http
            .send("GitLab variables API", Call::Safe, |c| {
                c.put(url.clone())
                    .header("PRIVATE-TOKEN", self.token.expose())
                    .form(&[("value", value.expose())])
            })
            .await
            .map_err(unanswered)?;
        if reply.status.is_success() {
            // Group-level PUTs may ignore `filter[environment_scope]` on some GitLab
            // versions (gitlab-org/gitlab#351918) and update another scope's
            // variable of the same key: say so loudly instead of reporting success.
            if let (Some(want), Ok(v)) = (&self.environment_scope, reply.json::<Variable>())
                && let Some(got) = v.environment_scope.as_deref()
                && got != want
            {
                return Err(StoreError::permanent(format!(
                    "GitLab ({}) updated {var} of environment scope `{}`, not `{}`: this GitLab ignored the scope filter on the update",
                    safe_url(&url),
                    got.escape_debug(),
                    want.escape_debug()
                ))
                .with_hint(format!(
                    "the new token is kept in the journal; give {var} a unique key per environment (or use project-level variables), restore the `{}` variable's value, then re-run",
                    got.escape_debug()
                )));
            }
            return Ok(());
        }
        if reply.status.as_u16() == 400 && reply.body.contains("value") {
            return Err(StoreError::permanent(format!(
                "GitLab ({}) refused the new value of {var}: {}",
                safe_url(&url),
                reply.snippet()
            ))
            .with_hint("GitLab's masking rules rejected it; the token is kept in the journal: see the README on GitLab masking"));
        }
        Err(self.answer_error(var, &url, &reply))
    }
}

/// 5xx, 429, connect errors and timeouts, after the HTTP layer's own retries. The
/// hint follows what happened: a name that does not resolve or a refused
/// connection is not a slow server.
fn unanswered(f: Failure) -> StoreError {
    let hint = match &f {
        Failure::GaveUp {
            last: Outcome::NotConnected,
            ..
        } => {
            "GitLab could not be reached (name resolution or connection failed): check `auth.writeback.gitlab.api_url` (or $CI_API_V4_URL) and the network; the next run retries"
        }
        Failure::GaveUp {
            last: Outcome::NoAnswer,
            ..
        } => "GitLab did not answer in time; the next run retries",
        Failure::GaveUp {
            last: Outcome::Http { .. },
            ..
        } => "GitLab answered with a server error or asked to slow down; the next run retries",
        Failure::Untrusted { .. } => {
            return StoreError::permanent(f.message().to_owned()).with_hint(
                "GitLab's TLS certificate is not trusted: check `auth.writeback.gitlab.api_url` and this machine's CA certificates",
            );
        }
        _ => "the call to GitLab failed; the next run retries",
    };
    StoreError::transient(f.message().to_owned()).with_hint(hint)
}

/// GitLab's masking rules: a single line of at least 8 characters from the Base64
/// alphabet plus `@ : . ~ - _`; a raw variable may hold any non-whitespace characters.
pub fn maskable(value: &str, raw: bool) -> bool {
    if value.chars().count() < 8 {
        return false;
    }
    if raw {
        return !value.chars().any(char::is_whitespace);
    }
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=@:.~-_".contains(c))
}

#[async_trait::async_trait]
impl Store for GitLabStore {
    fn name(&self) -> &'static str {
        "gitlab"
    }
    fn id(&self) -> String {
        format!(
            "gitlab:{}:{}:{}:{}",
            safe_url(&self.api_url),
            self.scope.noun(),
            self.scope.id(),
            self.environment_scope.as_deref().unwrap_or("")
        )
    }
    fn describe(&self) -> String {
        format!(
            "GitLab CI/CD variables of {} ({})",
            self.where_(),
            safe_url(&self.api_url)
        )
    }
    fn source(&self) -> Source {
        Source::Store(self.describe())
    }
    /// The pipeline's environment is filled from these very variables.
    fn env_shadows(&self) -> bool {
        false
    }

    async fn read(&self, var: &str) -> Result<Option<Stored>, StoreError> {
        if self.offline.load(Ordering::Relaxed) {
            return Ok(None);
        }
        Ok(match self.slot(var, false).await? {
            Slot::Missing => None,
            Slot::Ambiguous => return Err(self.ambiguous(var)),
            Slot::Var(v) => v.value.map(|value| Stored {
                value: Secret::new(value),
                expires_at: None,
                updated_at: None,
                source: self.source(),
            }),
        })
    }

    fn reread(&self, vars: &[String]) {
        if let Ok(mut r) = self.reread.lock() {
            r.extend(vars.iter().cloned());
        }
    }

    fn offline(&self) {
        self.offline.store(true, Ordering::Relaxed);
    }

    async fn preflight(&self, vars: &[(String, bool)]) -> Result<(), StoreError> {
        for (var, durable) in vars {
            match self.slot(var, false).await? {
                Slot::Var(v) => self.check_attributes(var, &v)?,
                Slot::Ambiguous => return Err(self.ambiguous(var)),
                // Not in this run's listing: ask GitLab itself before refusing.
                Slot::Missing if *durable => match self.slot(var, true).await? {
                    Slot::Var(v) => self.check_attributes(var, &v)?,
                    Slot::Ambiguous => return Err(self.ambiguous(var)),
                    Slot::Missing => return Err(self.missing_durable(var)),
                },
                // A short-lived token is written only where its variable exists.
                Slot::Missing => {}
            }
        }
        Ok(())
    }

    async fn write(&self, entries: &[Entry]) -> Result<(), StoreError> {
        // Check everything before the first PUT, so a refusal writes nothing. The
        // attributes come from this run's view: the durable variable was read
        // afresh under the lock, the others come from the listing; GitLab itself
        // refuses a PUT to a variable deleted since (404, kept in the journal).
        let mut todo = Vec::new();
        for e in entries {
            let v = match self.slot(&e.var, false).await? {
                Slot::Var(v) => v,
                Slot::Ambiguous => return Err(self.ambiguous(&e.var)),
                Slot::Missing if e.durable => {
                    return Err(StoreError::permanent(format!("CI/CD variable {} no longer exists in {}", e.var, self.where_())).with_hint(format!(
                        "re-create {} {} (masked and protected); the new token is kept in the journal and the next run writes it",
                        e.var,
                        self.settings_hint()
                    )));
                }
                Slot::Missing => {
                    tracing::info!(
                        "{} does not exist in {}; not writing it",
                        e.var,
                        self.where_()
                    );
                    continue;
                }
            };
            self.check_attributes(&e.var, &v)?;
            if !maskable(e.value.expose(), v.raw) {
                return Err(StoreError::permanent(format!(
                    "the new value of {} does not meet GitLab's masking rules (at least 8 characters; {}), so it was not sent",
                    e.var,
                    if v.raw { "no whitespace" } else { "only letters, digits and + / = @ : . ~ - _" }
                ))
                .with_hint(format!(
                    "the token is kept in the journal and the next run writes it; if the provider's tokens use other characters, make {} a raw variable (untick \"Expand variable reference\") {}, then re-run `evertoken auth refresh`",
                    e.var,
                    self.settings_hint()
                )));
            }
            todo.push(e);
        }
        for e in todo {
            self.put(&e.var, &e.value).await?;
            self.wrote(&e.var, &e.value).await;
        }
        Ok(())
    }
}

/// The next page to ask for: GitLab's `x-next-page` (empty on the last page),
/// else a `Link: <…>; rel="next"`, else (a proxy that strips headers) a full
/// page means there may be another.
fn next_page(reply: &Reply, page: usize, n: usize) -> Option<usize> {
    let header = |name: &str| {
        reply
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(next) = header("x-next-page") {
        return next.parse::<usize>().ok().filter(|&p| p > page);
    }
    if let Some(link) = header("link") {
        return link
            .split(',')
            .find(|l| l.contains("rel=\"next\""))
            .and_then(|l| {
                let url = l.split(['<', '>']).nth(1)?;
                Url::parse(url)
                    .ok()?
                    .query_pairs()
                    .find(|(k, _)| k == "page")?
                    .1
                    .parse::<usize>()
                    .ok()
            })
            .filter(|&p| p > page);
    }
    (n >= PER_PAGE).then_some(page + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_rules() {
        assert!(maskable("rft.sim-abcDEF123_~:@-", false));
        assert!(!maskable("short", false));
        assert!(!maskable("has space in it", false));
        assert!(!maskable("has space in it", true));
        assert!(!maskable("comma,in,value", false));
        assert!(maskable("comma,in,value", true));
        assert!(!maskable("line\nbreak-value", true));
    }

    #[test]
    fn project_path_is_url_encoded_and_scope_is_a_filter() {
        let s = GitLabStore {
            api_url: Url::parse("https://gitlab.example.com/gitlab/api/v4/").unwrap(),
            scope: Scope::Project("team/sub group/app".into()),
            environment_scope: Some("production".into()),
            token: Secret::new("test-gitlab-token-not-a-real-secret"),
            http: Http::new(&crate::config::HttpConfig::default()),
            known: tokio::sync::Mutex::new(None),
            reread: Mutex::new(HashSet::new()),
            offline: AtomicBool::new(false),
        };
        assert_eq!(
            s.variable_url("TIKTOK_REFRESH_TOKEN").as_str(),
            "https://gitlab.example.com/gitlab/api/v4/projects/team%2Fsub%20group%2Fapp/variables/TIKTOK_REFRESH_TOKEN?filter%5Benvironment_scope%5D=production"
        );
    }
}
