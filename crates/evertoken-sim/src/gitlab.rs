//! GitLab project- and group-level CI/CD variables (REST API v4).
//!
//! Docs checked:
//! - <https://docs.gitlab.com/api/project_level_variables/> (`GET /projects/:id/variables`,
//!   `GET|PUT /projects/:id/variables/:key`, `:id` = ID or URL-encoded path,
//!   `filter[environment_scope]`; object `{variable_type, key, value, protected, masked,
//!   hidden, raw, environment_scope, description}`).
//! - <https://docs.gitlab.com/api/group_level_variables/> (same under `/groups/:id`).
//! - <https://docs.gitlab.com/ci/variables/#mask-a-cicd-variable> (a masked value must be a
//!   single line with no spaces, at least 8 characters, and use only the Base64 alphabet
//!   (RFC 4648) plus `@`, `:`, `.`, `~`, `-`, `_`; raw masked variables may use any
//!   non-whitespace character; hidden variables are masked and their value is never
//!   shown again: the API returns `"value": null`). GitLab validates this in
//!   `Ci::Maskable` and answers `400 {"message":{"value":["is invalid"]}}`.
//! - <https://docs.gitlab.com/api/rest/troubleshooting/> (errors `{"message":"401
//!   Unauthorized"}`, `{"message":"403 Forbidden"}`, `{"message":"404 Project Not Found"}`,
//!   `{"message":"404 Variable Not Found"}`; missing params `{"error":"value is missing"}`).
//! - <https://docs.gitlab.com/api/project_level_variables/#create-a-variable> (`POST
//!   /projects/:id/variables` with `key` (required; at most 255 characters, only `A-Z`,
//!   `a-z`, `0-9` and `_`), `value` (required), `protected`, `masked`,
//!   `masked_and_hidden` (GitLab 17.4+; older servers ignore it), `raw`,
//!   `environment_scope` (default `*`), `variable_type`, `description`; `201 Created`
//!   with the variable; a key already taken in that environment scope answers `400
//!   {"message":{"key":["(KEY) has already been taken"]}}`; a masked value that breaks
//!   the masking rules answers `400 {"message":{"value":["is invalid"]}}`). "Masked
//!   and hidden" can only be chosen when a variable is created
//!   (<https://docs.gitlab.com/ci/variables/#hide-a-cicd-variable>). The docs are silent
//!   on the exact message for an invalid key; the simulator answers `400` with a
//!   `message.key` entry, and the client treats any 400 as a refusal.
//! - <https://docs.gitlab.com/api/rest/#pagination> (offset pagination: `page`, by
//!   default the first, and `per_page` (default 20, at most 100); headers `x-page`, `x-per-page`,
//!   `x-next-page` and `x-prev-page` (empty at the ends), `x-total` and
//!   `x-total-pages`, and `Link` with `rel="next"`, `"prev"`, `"first"`, `"last"`; past
//!   10,000 records GitLab omits `x-total`, `x-total-pages` and `rel="last"`). The
//!   docs are silent on `per_page=0` and `page=0`: the simulator serves the defaults;
//!   a value that is not an integer is `400 {"error":"per_page is invalid"}` (Grape's
//!   type check).
//! - <https://docs.gitlab.com/ci/jobs/ci_job_token/> (`CI_JOB_TOKEN` reaches only an
//!   allowlist of endpoints; the variables API is not among them: 401).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::state::Sim;
use crate::util::{gitlab_error, json_response, param, parse_form, parse_query};

/// Where a CI/CD variable lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GitLabScope {
    Project(u64),
    Group(u64),
}

/// A CI/CD variable as GitLab stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitLabVariable {
    pub key: String,
    pub value: String,
    pub masked: bool,
    pub protected: bool,
    pub hidden: bool,
    pub raw: bool,
    pub environment_scope: String,
    /// `env_var` or `file`.
    pub variable_type: String,
}

impl GitLabVariable {
    /// A masked + protected `env_var` for every environment (`*`).
    pub fn masked_protected(key: &str, value: &str) -> GitLabVariable {
        GitLabVariable {
            key: key.to_string(),
            value: value.to_string(),
            masked: true,
            protected: true,
            hidden: false,
            raw: false,
            environment_scope: "*".to_string(),
            variable_type: "env_var".to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Maintainer,
    Developer,
    Job,
}

#[derive(Default)]
pub(crate) struct GitLabState {
    pub tokens: HashMap<String, TokenKind>,
    pub projects: HashMap<u64, String>,
    pub groups: HashMap<u64, String>,
    pub variables: HashMap<(GitLabScope, String), Vec<GitLabVariable>>,
    pub descriptions: HashMap<(GitLabScope, String, String), String>,
    pub writes: u64,
    /// Behave like GitLab before 17.4 (no hidden variables; `masked_and_hidden` ignored).
    pub no_hidden: bool,
    /// Behave like the GitLab versions whose group-level PUT ignores
    /// `filter[environment_scope]` (gitlab-org/gitlab#351918): the update lands on the
    /// key's first variable, whatever its scope.
    pub group_put_ignores_scope: bool,
}

/// Whether GitLab would accept `value` for a masked variable.
pub fn gitlab_maskable(value: &str, raw: bool) -> bool {
    if value.chars().count() < 8 {
        return false;
    }
    if raw {
        return !value.chars().any(char::is_whitespace);
    }
    value.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, '+' | '/' | '=' | '@' | ':' | '.' | '~' | '-' | '_')
    })
}

impl Sim {
    /// A personal/project/group access token with the Maintainer role (`api` scope).
    pub fn gitlab_add_token(&self, token: &str) {
        self.lock()
            .gitlab
            .tokens
            .insert(token.to_string(), TokenKind::Maintainer);
    }

    /// A token whose role is too low for the variables API (answers 403).
    pub fn gitlab_add_developer_token(&self, token: &str) {
        self.lock()
            .gitlab
            .tokens
            .insert(token.to_string(), TokenKind::Developer);
    }

    /// A `CI_JOB_TOKEN` value (the variables API rejects it with 401).
    pub fn gitlab_add_job_token(&self, token: &str) {
        self.lock()
            .gitlab
            .tokens
            .insert(token.to_string(), TokenKind::Job);
    }

    pub fn gitlab_add_project(&self, id: u64, path_with_namespace: &str) {
        self.lock()
            .gitlab
            .projects
            .insert(id, path_with_namespace.to_string());
    }

    pub fn gitlab_add_group(&self, id: u64, full_path: &str) {
        self.lock().gitlab.groups.insert(id, full_path.to_string());
    }

    /// Group-level PUTs ignore `filter[environment_scope]`, as some GitLab versions do.
    pub fn gitlab_set_group_put_ignores_scope(&self, on: bool) {
        self.lock().gitlab.group_put_ignores_scope = on;
    }

    /// Creates or replaces the variable (`key`, `environment_scope`) in `scope`.
    pub fn gitlab_set_variable(&self, scope: GitLabScope, var: GitLabVariable) {
        let mut st = self.lock();
        let list = st
            .gitlab
            .variables
            .entry((scope, var.key.clone()))
            .or_default();
        list.retain(|v| v.environment_scope != var.environment_scope);
        list.push(var);
    }

    /// The stored variable, hidden value included.
    pub fn gitlab_variable(
        &self,
        scope: GitLabScope,
        key: &str,
        environment_scope: &str,
    ) -> Option<GitLabVariable> {
        self.lock()
            .gitlab
            .variables
            .get(&(scope, key.to_string()))
            .and_then(|l| {
                l.iter()
                    .find(|v| v.environment_scope == environment_scope)
                    .cloned()
            })
    }

    /// How many variable updates (PUT) succeeded.
    pub fn gitlab_writes(&self) -> u64 {
        self.lock().gitlab.writes
    }
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route(
            "/api/v4/projects/{id}/variables",
            get(list_project).post(create_project),
        )
        .route(
            "/api/v4/projects/{id}/variables/{key}",
            get(get_project).put(put_project),
        )
        .route(
            "/api/v4/groups/{id}/variables",
            get(list_group).post(create_group),
        )
        .route(
            "/api/v4/groups/{id}/variables/{key}",
            get(get_group).put(put_group),
        )
}

fn authorize(st: &crate::state::State, headers: &HeaderMap) -> Result<(), Response> {
    let unauthorized = || gitlab_error(401, "401 Unauthorized");
    if headers.contains_key("job-token") {
        return Err(unauthorized());
    }
    let token = headers
        .get("private-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
            v.strip_prefix("Bearer ").map(|t| t.trim().to_string())
        });
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(unauthorized());
    };
    match st.gitlab.tokens.get(&token) {
        Some(TokenKind::Maintainer) => Ok(()),
        Some(TokenKind::Developer) => Err(gitlab_error(403, "403 Forbidden")),
        Some(TokenKind::Job) => Err(unauthorized()),
        None if st.lenient => Ok(()),
        None => Err(unauthorized()),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Project,
    Group,
}

fn resolve(st: &mut crate::state::State, kind: Kind, id: &str) -> Result<GitLabScope, Response> {
    let map = match kind {
        Kind::Project => &st.gitlab.projects,
        Kind::Group => &st.gitlab.groups,
    };
    let found = match id.parse::<u64>() {
        Ok(n) if map.contains_key(&n) => Some(n),
        Ok(_) => None,
        Err(_) => map
            .iter()
            .find(|(_, p)| p.eq_ignore_ascii_case(id))
            .map(|(k, _)| *k),
    };
    let found = match found {
        Some(n) => Some(n),
        None if st.lenient => {
            let n = id.parse::<u64>().unwrap_or_else(|_| {
                let mut h: u64 = 7;
                for b in id.bytes() {
                    h = h.wrapping_mul(31).wrapping_add(u64::from(b));
                }
                h % 1_000_000_000 + 1_000_000
            });
            let map = match kind {
                Kind::Project => &mut st.gitlab.projects,
                Kind::Group => &mut st.gitlab.groups,
            };
            map.entry(n).or_insert_with(|| id.to_string());
            Some(n)
        }
        None => None,
    };
    match (found, kind) {
        (Some(n), Kind::Project) => Ok(GitLabScope::Project(n)),
        (Some(n), Kind::Group) => Ok(GitLabScope::Group(n)),
        (None, Kind::Project) => Err(gitlab_error(404, "404 Project Not Found")),
        (None, Kind::Group) => Err(gitlab_error(404, "404 Group Not Found")),
    }
}

fn var_json(st: &crate::state::State, scope: GitLabScope, v: &GitLabVariable) -> Value {
    let desc = st
        .gitlab
        .descriptions
        .get(&(scope, v.key.clone(), v.environment_scope.clone()))
        .cloned();
    json!({
        "variable_type": v.variable_type,
        "key": v.key,
        "value": if v.hidden { Value::Null } else { Value::String(v.value.clone()) },
        "protected": v.protected,
        "masked": v.masked,
        "hidden": v.hidden,
        "raw": v.raw,
        "environment_scope": v.environment_scope,
        "description": desc,
    })
}

/// Past this many records GitLab stops counting them (no totals, no `rel="last"`).
const COUNT_LIMIT: usize = 10_000;

fn list(sim: &Sim, kind: Kind, id: &str, q: Option<&str>, headers: &HeaderMap) -> Response {
    let q = parse_query(q);
    let number = |name: &str, default: usize| -> Result<usize, Response> {
        match param(&q, name) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .map(|n| if n < 1 { default } else { n as usize })
                .map_err(|_| json_response(400, json!({"error": format!("{name} is invalid")}))),
        }
    };
    let (page, per_page) = match (number("page", 1), number("per_page", 20)) {
        (Ok(p), Ok(pp)) => (p, pp.min(100)),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let mut st = sim.lock();
    if let Err(r) = authorize(&st, headers) {
        return r;
    }
    let scope = match resolve(&mut st, kind, id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut vars: Vec<&GitLabVariable> = st
        .gitlab
        .variables
        .iter()
        .filter(|((s, _), _)| *s == scope)
        .flat_map(|(_, l)| l.iter())
        .collect();
    vars.sort_by(|a, b| (&a.key, &a.environment_scope).cmp(&(&b.key, &b.environment_scope)));
    let total = vars.len();
    let pages = total.div_ceil(per_page).max(1);
    let arr: Vec<Value> = vars
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|v| var_json(&st, scope, v))
        .collect();
    let mut resp = json_response(200, Value::Array(arr));
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let collection = match kind {
        Kind::Project => "projects",
        Kind::Group => "groups",
    };
    let page_url = |p: usize| {
        let mut u = url::Url::parse(&format!("http://{host}/api/v4/{collection}/"))
            .unwrap_or_else(|_| url::Url::parse("http://127.0.0.1/").expect("static URL"));
        if let Ok(mut segs) = u.path_segments_mut() {
            segs.pop_if_empty().push(id).push("variables");
        }
        u.query_pairs_mut()
            .append_pair("page", &p.to_string())
            .append_pair("per_page", &per_page.to_string());
        u.to_string()
    };
    let next = (page < pages).then_some(page + 1);
    let prev = (page > 1).then(|| (page - 1).min(pages));
    let counted = total <= COUNT_LIMIT;
    let mut links = Vec::new();
    if let Some(p) = prev {
        links.push(format!("<{}>; rel=\"prev\"", page_url(p)));
    }
    if let Some(p) = next {
        links.push(format!("<{}>; rel=\"next\"", page_url(p)));
    }
    links.push(format!("<{}>; rel=\"first\"", page_url(1)));
    if counted {
        links.push(format!("<{}>; rel=\"last\"", page_url(pages)));
    }
    let h = resp.headers_mut();
    let mut set = |name: &'static str, v: String| {
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            h.insert(name, v);
        }
    };
    set("x-page", page.to_string());
    set("x-per-page", per_page.to_string());
    set(
        "x-next-page",
        next.map(|p| p.to_string()).unwrap_or_default(),
    );
    set(
        "x-prev-page",
        prev.map(|p| p.to_string()).unwrap_or_default(),
    );
    if counted {
        set("x-total", total.to_string());
        set("x-total-pages", pages.to_string());
    }
    set("link", links.join(", "));
    resp
}

/// Picks the variable for `key`, honouring `filter[environment_scope]`.
fn pick(
    st: &crate::state::State,
    scope: GitLabScope,
    key: &str,
    env: Option<&str>,
) -> Result<usize, Response> {
    let not_found = || gitlab_error(404, "404 Variable Not Found");
    let Some(l) = st.gitlab.variables.get(&(scope, key.to_string())) else {
        return Err(not_found());
    };
    match env {
        Some(e) => l
            .iter()
            .position(|v| v.environment_scope == e)
            .ok_or_else(not_found),
        None => match l.len() {
            0 => Err(not_found()),
            1 => Ok(0),
            _ => Err(json_response(
                409,
                json!({"message": ["There are multiple variables with provided parameters. Please use 'filter[environment_scope]'"]}),
            )),
        },
    }
}

fn lenient_placeholder(
    st: &mut crate::state::State,
    scope: GitLabScope,
    key: &str,
    env: Option<&str>,
) {
    if !st.lenient || st.gitlab.variables.contains_key(&(scope, key.to_string())) {
        return;
    }
    let mut v = GitLabVariable::masked_protected(key, "sim-placeholder-value");
    v.environment_scope = env.unwrap_or("*").to_string();
    st.gitlab
        .variables
        .insert((scope, key.to_string()), vec![v]);
}

fn get_one(
    sim: &Sim,
    kind: Kind,
    id: &str,
    key: &str,
    q: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let q = parse_query(q);
    let env = param(&q, "filter[environment_scope]");
    let mut st = sim.lock();
    if let Err(r) = authorize(&st, headers) {
        return r;
    }
    let scope = match resolve(&mut st, kind, id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    lenient_placeholder(&mut st, scope, key, env);
    let idx = match pick(&st, scope, key, env) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let v = st.gitlab.variables[&(scope, key.to_string())][idx].clone();
    json_response(200, var_json(&st, scope, &v))
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    }
}

fn put_one(
    sim: &Sim,
    kind: Kind,
    id: &str,
    key: &str,
    q: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    // Parameters may come as JSON, a form body, or the query string.
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    let mut params: serde_json::Map<String, Value> = serde_json::Map::new();
    for (k, v) in parse_query(q) {
        params.insert(k, Value::String(v));
    }
    if is_json {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => {
                for (k, v) in m {
                    if k == "filter" {
                        if let Some(e) = v.get("environment_scope") {
                            params.insert("filter[environment_scope]".into(), e.clone());
                        }
                    } else {
                        params.insert(k, v);
                    }
                }
            }
            _ if body.is_empty() => {}
            _ => return json_response(400, json!({"error": "400 Bad request - Invalid JSON"})),
        }
    } else {
        for (k, v) in parse_form(body) {
            params.insert(k, Value::String(v));
        }
    }
    let mut st = sim.lock();
    if let Err(r) = authorize(&st, headers) {
        return r;
    }
    let scope = match resolve(&mut st, kind, id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(value) = params.get("value").and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }) else {
        return json_response(400, json!({"error": "value is missing"}));
    };
    let env = params
        .get("filter[environment_scope]")
        .and_then(Value::as_str)
        .map(str::to_string);
    lenient_placeholder(&mut st, scope, key, env.as_deref());
    let ignore_scope = st.gitlab.group_put_ignores_scope && matches!(scope, GitLabScope::Group(_));
    let idx = match pick(&st, scope, key, env.as_deref()) {
        Ok(_) if ignore_scope => 0,
        Ok(i) => i,
        Err(r) => return r,
    };
    let mut v = st.gitlab.variables[&(scope, key.to_string())][idx].clone();
    v.value = value;
    if let Some(b) = params.get("protected").and_then(as_bool) {
        v.protected = b;
    }
    if let Some(b) = params.get("masked").and_then(as_bool) {
        // A hidden variable stays masked.
        v.masked = b || v.hidden;
    }
    if let Some(b) = params.get("raw").and_then(as_bool) {
        v.raw = b;
    }
    if let Some(t) = params.get("variable_type").and_then(Value::as_str) {
        if t != "env_var" && t != "file" {
            return json_response(
                400,
                json!({"error": "variable_type does not have a valid value"}),
            );
        }
        v.variable_type = t.to_string();
    }
    if let Some(e) = params.get("environment_scope").and_then(Value::as_str) {
        v.environment_scope = e.to_string();
    }
    if v.masked && !gitlab_maskable(&v.value, v.raw) {
        return json_response(400, json!({"message": {"value": ["is invalid"]}}));
    }
    if let Some(d) = params.get("description").and_then(Value::as_str) {
        st.gitlab.descriptions.insert(
            (scope, key.to_string(), v.environment_scope.clone()),
            d.to_string(),
        );
    }
    if let Some(list) = st.gitlab.variables.get_mut(&(scope, key.to_string())) {
        list[idx] = v.clone();
    }
    st.gitlab.writes += 1;
    json_response(200, var_json(&st, scope, &v))
}

async fn list_project(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    list(&sim, Kind::Project, &id, q.as_deref(), &headers)
}

async fn list_group(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    list(&sim, Kind::Group, &id, q.as_deref(), &headers)
}

async fn get_project(
    State(sim): State<Sim>,
    Path((id, key)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    get_one(&sim, Kind::Project, &id, &key, q.as_deref(), &headers)
}

async fn get_group(
    State(sim): State<Sim>,
    Path((id, key)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    get_one(&sim, Kind::Group, &id, &key, q.as_deref(), &headers)
}

async fn put_project(
    State(sim): State<Sim>,
    Path((id, key)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    put_one(
        &sim,
        Kind::Project,
        &id,
        &key,
        q.as_deref(),
        &headers,
        &body,
    )
}

async fn put_group(
    State(sim): State<Sim>,
    Path((id, key)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    put_one(&sim, Kind::Group, &id, &key, q.as_deref(), &headers, &body)
}

// ---- Creating variables (`POST .../variables`), used by `auth login --create-variable`.

impl Sim {
    /// Makes the simulated GitLab behave like a server before 17.4: no hidden
    /// variables, `masked_and_hidden` ignored.
    pub fn gitlab_set_hidden_supported(&self, supported: bool) {
        self.lock().gitlab.no_hidden = !supported;
    }
}

fn create_one(sim: &Sim, kind: Kind, id: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    let mut params: serde_json::Map<String, Value> = serde_json::Map::new();
    if is_json {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => params = m,
            _ => return json_response(400, json!({"error": "400 Bad request - Invalid JSON"})),
        }
    } else {
        for (k, v) in parse_form(body) {
            params.insert(k, Value::String(v));
        }
    }
    let mut st = sim.lock();
    if let Err(r) = authorize(&st, headers) {
        return r;
    }
    let scope = match resolve(&mut st, kind, id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(key) = params
        .get("key")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return json_response(400, json!({"error": "key is missing"}));
    };
    if key.is_empty()
        || key.len() > 255
        || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return json_response(
            400,
            json!({"message": {"key": ["can contain only letters, digits and '_'."]}}),
        );
    }
    let Some(value) = params.get("value").and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }) else {
        return json_response(400, json!({"error": "value is missing"}));
    };
    let flag = |k: &str| params.get(k).and_then(as_bool).unwrap_or(false);
    let hidden = flag("masked_and_hidden") && !st.gitlab.no_hidden;
    let variable_type = params
        .get("variable_type")
        .and_then(Value::as_str)
        .unwrap_or("env_var")
        .to_string();
    if variable_type != "env_var" && variable_type != "file" {
        return json_response(
            400,
            json!({"error": "variable_type does not have a valid value"}),
        );
    }
    let v = GitLabVariable {
        key: key.clone(),
        value,
        masked: flag("masked") || hidden,
        protected: flag("protected"),
        hidden,
        raw: flag("raw"),
        environment_scope: params
            .get("environment_scope")
            .and_then(Value::as_str)
            .unwrap_or("*")
            .to_string(),
        variable_type,
    };
    let taken = st
        .gitlab
        .variables
        .get(&(scope, key.clone()))
        .is_some_and(|l| l.iter().any(|x| x.environment_scope == v.environment_scope));
    if taken {
        return json_response(
            400,
            json!({"message": {"key": [format!("({key}) has already been taken")]}}),
        );
    }
    if v.masked && !gitlab_maskable(&v.value, v.raw) {
        return json_response(400, json!({"message": {"value": ["is invalid"]}}));
    }
    st.gitlab
        .variables
        .entry((scope, key))
        .or_default()
        .push(v.clone());
    st.gitlab.writes += 1;
    json_response(201, var_json(&st, scope, &v))
}

async fn create_project(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create_one(&sim, Kind::Project, &id, &headers, &body)
}

async fn create_group(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create_one(&sim, Kind::Group, &id, &headers, &body)
}

// ------------------------------------------------------------ registry

#[allow(non_upper_case_globals)]
impl crate::Route {
    /// Every GitLab REST API v4 path.
    pub const GitLab: crate::Route = crate::Route("gitlab");
}

pub(crate) type ProviderState = GitLabState;

pub(crate) const PROVIDER: crate::registry::Provider = crate::registry::Provider {
    routes: &[(crate::Route::GitLab, &[])],
    owns: |path| path.starts_with("/api/v4/").then_some(crate::Route::GitLab),
    router: routes,
    wrap: None,
    errors: crate::registry::Errors {
        status: |_, code| match code {
            // rack-attack throttling
            429 => crate::util::text(429, "Retry later\n"),
            c => gitlab_error(c, &format!("{} {}", c, crate::util::reason(c))),
        },
        unauthorized: |_| gitlab_error(401, "401 Unauthorized"),
        echo: |_, message| gitlab_error(400, message),
        not_found: Some(|_| gitlab_error(404, "404 Not Found")),
        ..crate::registry::Errors::DEFAULT
    },
};
