//! Control API under `/_sim/` for scripts and benchmarks driving the
//! standalone binary. No latency, faults or recording apply here.
//!
//! | method + path | body / query | effect |
//! |---|---|---|
//! | `GET /_sim/stats` | `?log=false` omits the request log | [`crate::Stats`] as JSON |
//! | `POST /_sim/latency` | `{"ms":50}` | [`Sim::set_latency`] |
//! | `POST /_sim/faults` | `{"route":"tiktok","fault":{"kind":"status","status":503},"count":1}` or `"persistent":true` (fault `null` clears) | [`Sim::push_faults`] / [`Sim::set_persistent_fault`] |
//! | `DELETE /_sim/faults` | | [`Sim::clear_faults`] |
//! | (evil faults) | `{"kind":"patch","set":{"expires_in":9223372036854775807}}`, `"echo_secrets"`, `{"kind":"huge_body","bytes":8388608}`, `"endless_body"`, `{"kind":"slow_loris","ms":100}` | see [`Fault`] |
//! | `POST /_sim/now` | `{"now":"2026-11-23T09:00:00Z"}` or `{"now":null}` | [`Sim::set_now`] |
//! | `POST /_sim/lenient` | `{"lenient":true}` | [`Sim::set_lenient`] |
//! | `POST /_sim/github/app` | `{"app_id":1,"client_id":"Iv23…","public_key_pem":"…"?}` (default: the embedded test key) | [`Sim::github_add_app`] |
//! | `POST /_sim/github/installation` | `{"app_id","installation_id","account_login","account_type"?,"repositories"?}` | [`Sim::github_add_installation`] |
//! | `POST /_sim/github/token_style` | `{"long":true}` | [`Sim::github_set_token_style`] |
//! | `POST /_sim/gitlab/token` | `{"token","kind":"maintainer"\|"developer"\|"job"}` | `gitlab_add_*token` |
//! | `POST /_sim/gitlab/project`, `/_sim/gitlab/group` | `{"id","path"}` | [`Sim::gitlab_add_project`] / group |
//! | `POST /_sim/gitlab/variable` | `{"scope":"project"\|"group","id","key","value","masked"?,"protected"?,"hidden"?,"raw"?,"environment_scope"?,"variable_type"?}` | [`Sim::gitlab_set_variable`] |
//! | `GET /_sim/gitlab/variable` | `?scope=project&id=1&key=K&environment_scope=*` | the stored variable (hidden value included) |
//! | `POST /_sim/tiktok/client` | `{"client_key","client_secret"}` | [`Sim::tiktok_add_client`] |
//! | `POST /_sim/tiktok/refresh_token` | `{"client_key","refresh_token","expires_in"?}` | [`Sim::tiktok_add_refresh_token`] |
//! | `POST /_sim/tiktok/lifetimes` | `{"access_secs","refresh_secs"}` | [`Sim::tiktok_set_lifetimes`] |
//! | `GET /_sim/tiktok/live` | | live refresh tokens |
//! | `POST /_sim/tiktok/desktop_client` | `{"client_key","client_secret"}` | [`Sim::tiktok_add_desktop_client`] |
//! | `POST /_sim/tiktok/refresh_extends`, `/_sim/linkedin/refresh_extends` | `{"extends":false}` | [`Sim::tiktok_set_refresh_extends`] / [`Sim::linkedin_set_refresh_extends`] |
//! | `POST /_sim/oauth/redirect` | `{"provider","client_id","uri"}` | [`Sim::oauth_register_redirect`] |
//! | `POST /_sim/instagram/young_message` | `{"message"}` | [`Sim::instagram_set_young_message`] |
//! | `POST /_sim/actions/org_secret` | `{"org","name","value","visibility","selected_repository_ids"?}` | [`Sim::actions_set_org_secret`] |
//! | `GET /_sim/actions/org_secret` | `?org=&name=` | `{"visibility","selected_repository_ids"}` |
//! | `POST /_sim/google/client`, `/_sim/google/refresh_token` | `{"client_id","client_secret"}`, `{"client_id","refresh_token"}` | Google seeding |
//! | `POST /_sim/linkedin/client`, `/_sim/linkedin/access_token`, `/_sim/linkedin/refresh_token` | `{"client_id","client_secret"}`, `{"token","expires_at"}`, `{"client_id","refresh_token","expires_at"}` | LinkedIn seeding |
//! | `POST /_sim/instagram/token` | `{"token","issued_at","expires_at"}` | [`Sim::instagram_add_token`] |
//! | `POST /_sim/actions/token`, `/_sim/actions/repo`, `/_sim/actions/environment`, `/_sim/actions/org` | `{"token"}`, `{"owner","repo","env"?}`, `{"org"}` | Actions seeding |
//! | `GET /_sim/actions/secret` | `?owner=&repo=&env=` or `?org=`, `&name=` | `{"plaintext": …}` |
//! | `GET /_sim/webhooks` | | received webhook bodies |
//! | `POST /_sim/x/client`, `/_sim/x/refresh_token`, `/_sim/x/revoke`, `/_sim/x/access_secs`; `GET /_sim/x/live` | see `x.rs` (served there) | X seeding and inspection |
//! | `POST /_sim/threads/app`, `/_sim/threads/token`; `GET /_sim/threads/token?token=` | see `threads.rs` (served there) | Threads seeding and inspection |
//! | `POST /_sim/pinterest/app`, `/_sim/pinterest/refresh_token`, `/_sim/pinterest/legacy`; `GET /_sim/pinterest/refresh_token?refresh_token=` | see `pinterest.rs` (served there) | Pinterest seeding, legacy knob, inspection |

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::actions::ActionsScope;
use crate::faults::{Fault, Route};
use crate::gitlab::{GitLabScope, GitLabVariable};
use crate::state::Sim;
use crate::util::{json_response, param, parse_query};

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/latency", post(latency))
        .route("/_sim/faults", post(faults).delete(clear_faults))
        .route("/_sim/now", post(now))
        .route("/_sim/lenient", post(lenient))
        .route("/_sim/github/app", post(github_app))
        .route("/_sim/github/installation", post(github_installation))
        .route("/_sim/github/token_style", post(github_token_style))
        .route("/_sim/gitlab/token", post(gitlab_token))
        .route("/_sim/gitlab/project", post(gitlab_project))
        .route("/_sim/gitlab/group", post(gitlab_group))
        .route(
            "/_sim/gitlab/variable",
            post(gitlab_variable).get(gitlab_variable_get),
        )
        .route("/_sim/tiktok/client", post(tiktok_client))
        .route("/_sim/tiktok/refresh_token", post(tiktok_rt))
        .route("/_sim/tiktok/lifetimes", post(tiktok_lifetimes))
        .route("/_sim/tiktok/live", get(tiktok_live))
        .route("/_sim/tiktok/desktop_client", post(tiktok_desktop_client))
        .route("/_sim/tiktok/refresh_extends", post(tiktok_refresh_extends))
        .route(
            "/_sim/linkedin/refresh_extends",
            post(linkedin_refresh_extends),
        )
        .route("/_sim/oauth/redirect", post(oauth_redirect))
        .route(
            "/_sim/instagram/young_message",
            post(instagram_young_message),
        )
        .route(
            "/_sim/actions/org_secret",
            post(actions_org_secret).get(actions_org_secret_get),
        )
        .route("/_sim/google/client", post(google_client))
        .route("/_sim/google/refresh_token", post(google_rt))
        .route("/_sim/linkedin/client", post(linkedin_client))
        .route("/_sim/linkedin/access_token", post(linkedin_at))
        .route("/_sim/linkedin/refresh_token", post(linkedin_rt))
        .route("/_sim/instagram/token", post(instagram_token))
        .route("/_sim/actions/token", post(actions_token))
        .route("/_sim/actions/repo", post(actions_repo))
        .route("/_sim/actions/environment", post(actions_repo))
        .route("/_sim/actions/org", post(actions_org))
        .route("/_sim/actions/secret", get(actions_secret))
        .route("/_sim/webhooks", get(webhooks))
}

type Res = Result<Response, Response>;

fn bad(msg: impl Into<String>) -> Response {
    json_response(400, json!({"error": msg.into()}))
}

fn ok() -> Response {
    json_response(200, json!({"ok": true}))
}

fn body_json(b: &[u8]) -> Result<Value, Response> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(b).map_err(|e| bad(format!("invalid JSON: {e}")))
}

fn s<'a>(v: &'a Value, k: &str) -> Result<&'a str, Response> {
    v.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("missing string field `{k}`")))
}

fn u(v: &Value, k: &str) -> Result<u64, Response> {
    v.get(k)
        .and_then(|x| {
            x.as_u64()
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        })
        .ok_or_else(|| bad(format!("missing integer field `{k}`")))
}

fn ts(v: &Value, k: &str) -> Result<Timestamp, Response> {
    s(v, k)?
        .parse::<Timestamp>()
        .map_err(|e| bad(format!("`{k}` is not an RFC 3339 timestamp: {e}")))
}

fn b(v: &Value, k: &str, default: bool) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(default)
}

fn done(r: Res) -> Response {
    r.unwrap_or_else(|e| e)
}

async fn stats(State(sim): State<Sim>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(q.as_deref());
    let mut st = sim.stats();
    if param(&q, "log") == Some("false") {
        st.requests_log.clear();
    }
    json_response(200, serde_json::to_value(st).unwrap_or(Value::Null))
}

async fn latency(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.set_latency(Duration::from_millis(u(&v, "ms")?));
        Ok(ok())
    })())
}

async fn faults(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        let route_name = s(&v, "route")?;
        let route =
            Route::parse(route_name).ok_or_else(|| bad(format!("unknown route `{route_name}`")))?;
        let fault_v = v.get("fault").cloned().unwrap_or(Value::Null);
        if b(&v, "persistent", false) {
            let fault = if fault_v.is_null() {
                None
            } else {
                Some(Fault::from_json(&fault_v).ok_or_else(|| bad("unknown fault"))?)
            };
            sim.set_persistent_fault(route, fault);
        } else {
            let fault = Fault::from_json(&fault_v).ok_or_else(|| bad("unknown fault"))?;
            let n = v.get("count").and_then(Value::as_u64).unwrap_or(1);
            sim.push_faults(route, fault, usize::try_from(n).unwrap_or(1));
        }
        Ok(ok())
    })())
}

async fn clear_faults(State(sim): State<Sim>) -> Response {
    sim.clear_faults();
    ok()
}

async fn now(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        match v.get("now") {
            None | Some(Value::Null) => sim.set_now(None),
            Some(_) => sim.set_now(Some(ts(&v, "now")?)),
        }
        Ok(json_response(200, json!({"now": sim.now().to_string()})))
    })())
}

async fn lenient(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.set_lenient(b(&v, "lenient", true));
        Ok(ok())
    })())
}

async fn github_app(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        let app_id = u(&v, "app_id")?;
        let default_client = format!("Iv23sim{app_id}");
        let client_id = v
            .get("client_id")
            .and_then(Value::as_str)
            .unwrap_or(&default_client);
        let pem = match v.get("public_key_pem").and_then(Value::as_str) {
            Some(p) => p.to_string(),
            None => crate::github::test_rsa_keypair().1,
        };
        sim.github_add_app(app_id, client_id, &pem);
        Ok(ok())
    })())
}

async fn github_installation(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        let repos = v
            .get("repositories")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        sim.github_add_installation(
            u(&v, "app_id")?,
            u(&v, "installation_id")?,
            s(&v, "account_login")?,
            v.get("account_type")
                .and_then(Value::as_str)
                .unwrap_or("Organization"),
            repos,
        );
        Ok(ok())
    })())
}

async fn github_token_style(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.github_set_token_style(b(&v, "long", false));
        Ok(ok())
    })())
}

async fn gitlab_token(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        let t = s(&v, "token")?;
        match v
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("maintainer")
        {
            "maintainer" => sim.gitlab_add_token(t),
            "developer" => sim.gitlab_add_developer_token(t),
            "job" => sim.gitlab_add_job_token(t),
            k => return Err(bad(format!("unknown token kind `{k}`"))),
        }
        Ok(ok())
    })())
}

async fn gitlab_project(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.gitlab_add_project(u(&v, "id")?, s(&v, "path")?);
        Ok(ok())
    })())
}

async fn gitlab_group(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.gitlab_add_group(u(&v, "id")?, s(&v, "path")?);
        Ok(ok())
    })())
}

fn gl_scope(kind: &str, id: u64) -> Result<GitLabScope, Response> {
    match kind {
        "project" => Ok(GitLabScope::Project(id)),
        "group" => Ok(GitLabScope::Group(id)),
        k => Err(bad(format!("unknown scope `{k}` (project|group)"))),
    }
}

async fn gitlab_variable(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        let scope = gl_scope(
            v.get("scope").and_then(Value::as_str).unwrap_or("project"),
            u(&v, "id")?,
        )?;
        let var = GitLabVariable {
            key: s(&v, "key")?.to_string(),
            value: s(&v, "value")?.to_string(),
            masked: b(&v, "masked", true),
            protected: b(&v, "protected", true),
            hidden: b(&v, "hidden", false),
            raw: b(&v, "raw", false),
            environment_scope: v
                .get("environment_scope")
                .and_then(Value::as_str)
                .unwrap_or("*")
                .to_string(),
            variable_type: v
                .get("variable_type")
                .and_then(Value::as_str)
                .unwrap_or("env_var")
                .to_string(),
        };
        sim.gitlab_set_variable(scope, var);
        Ok(ok())
    })())
}

async fn gitlab_variable_get(State(sim): State<Sim>, RawQuery(q): RawQuery) -> Response {
    done((|| -> Res {
        let q = parse_query(q.as_deref());
        let id = param(&q, "id")
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| bad("missing `id`"))?;
        let scope = gl_scope(param(&q, "scope").unwrap_or("project"), id)?;
        let key = param(&q, "key").ok_or_else(|| bad("missing `key`"))?;
        let env = param(&q, "environment_scope").unwrap_or("*");
        Ok(match sim.gitlab_variable(scope, key, env) {
            Some(v) => json_response(
                200,
                json!({"key": v.key, "value": v.value, "masked": v.masked, "protected": v.protected,
                       "hidden": v.hidden, "raw": v.raw, "environment_scope": v.environment_scope,
                       "variable_type": v.variable_type}),
            ),
            None => json_response(404, json!({"error": "no such variable"})),
        })
    })())
}

async fn tiktok_client(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.tiktok_add_client(s(&v, "client_key")?, s(&v, "client_secret")?);
        Ok(ok())
    })())
}

async fn tiktok_rt(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        let secs = v
            .get("expires_in")
            .and_then(Value::as_i64)
            .unwrap_or(crate::tiktok::REFRESH_SECS);
        let exp = sim.now() + SignedDuration::from_secs(secs);
        sim.tiktok_add_refresh_token(s(&v, "client_key")?, s(&v, "refresh_token")?, exp);
        Ok(ok())
    })())
}

async fn tiktok_lifetimes(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        let a = v
            .get("access_secs")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("missing `access_secs`"))?;
        let r = v
            .get("refresh_secs")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("missing `refresh_secs`"))?;
        sim.tiktok_set_lifetimes(a, r);
        Ok(ok())
    })())
}

async fn tiktok_desktop_client(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.tiktok_add_desktop_client(s(&v, "client_key")?, s(&v, "client_secret")?);
        Ok(ok())
    })())
}

fn extends(body: &[u8]) -> Result<bool, Response> {
    let v = body_json(body)?;
    v.get("extends")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad("missing boolean `extends`"))
}

async fn tiktok_refresh_extends(State(sim): State<Sim>, body: Bytes) -> Response {
    done(extends(&body).map(|e| {
        sim.tiktok_set_refresh_extends(e);
        ok()
    }))
}

async fn linkedin_refresh_extends(State(sim): State<Sim>, body: Bytes) -> Response {
    done(extends(&body).map(|e| {
        sim.linkedin_set_refresh_extends(e);
        ok()
    }))
}

async fn oauth_redirect(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.oauth_register_redirect(s(&v, "provider")?, s(&v, "client_id")?, s(&v, "uri")?);
        Ok(ok())
    })())
}

async fn instagram_young_message(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.instagram_set_young_message(s(&v, "message")?);
        Ok(ok())
    })())
}

async fn tiktok_live(State(sim): State<Sim>) -> Response {
    json_response(200, json!(sim.tiktok_live_refresh_tokens()))
}

async fn google_client(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        let id = s(&v, "client_id")?;
        sim.google_add_client(id, s(&v, "client_secret")?);
        if let Some(t) = v.get("testing").and_then(Value::as_bool) {
            sim.google_set_testing_mode(id, t);
        }
        Ok(ok())
    })())
}

async fn google_rt(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.google_add_refresh_token(s(&v, "client_id")?, s(&v, "refresh_token")?);
        Ok(ok())
    })())
}

async fn linkedin_client(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        let id = s(&v, "client_id")?;
        sim.linkedin_add_client(id, s(&v, "client_secret")?);
        if let Some(r) = v.get("programmatic_refresh").and_then(Value::as_bool) {
            sim.linkedin_set_programmatic_refresh(id, r);
        }
        Ok(ok())
    })())
}

async fn linkedin_at(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.linkedin_add_access_token(s(&v, "token")?, ts(&v, "expires_at")?);
        Ok(ok())
    })())
}

async fn linkedin_rt(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.linkedin_add_refresh_token(
            s(&v, "client_id")?,
            s(&v, "refresh_token")?,
            ts(&v, "expires_at")?,
        );
        Ok(ok())
    })())
}

async fn instagram_token(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.instagram_add_token(s(&v, "token")?, ts(&v, "issued_at")?, ts(&v, "expires_at")?);
        Ok(ok())
    })())
}

async fn actions_token(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.actions_add_token(s(&v, "token")?);
        Ok(ok())
    })())
}

async fn actions_repo(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        let (o, r) = (s(&v, "owner")?, s(&v, "repo")?);
        match v.get("env").and_then(Value::as_str) {
            Some(e) => sim.actions_add_environment(o, r, e),
            None => sim.actions_add_repo(o, r),
        }
        Ok(ok())
    })())
}

async fn actions_org(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        sim.actions_add_org(s(&v, "org")?);
        Ok(ok())
    })())
}

async fn actions_org_secret(State(sim): State<Sim>, body: Bytes) -> Response {
    done((|| -> Res {
        let v = body_json(&body)?;
        let ids: Vec<u64> = match v.get("selected_repository_ids") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_u64().ok_or_else(|| bad("repository ids are integers")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("`selected_repository_ids` is an array")),
        };
        let vis = s(&v, "visibility")?;
        if !matches!(vis, "all" | "private" | "selected") {
            return Err(bad("`visibility` is all, private or selected"));
        }
        sim.actions_set_org_secret(s(&v, "org")?, s(&v, "name")?, s(&v, "value")?, vis, &ids);
        Ok(ok())
    })())
}

async fn actions_org_secret_get(State(sim): State<Sim>, RawQuery(q): RawQuery) -> Response {
    let q = parse_query(q.as_deref());
    let (Some(org), Some(name)) = (param(&q, "org"), param(&q, "name")) else {
        return bad("`org` and `name` are required");
    };
    match sim.actions_secret_visibility(org, name) {
        Some(vis) => json_response(
            200,
            json!({"visibility": vis, "selected_repository_ids": sim.actions_secret_repositories(org, name)}),
        ),
        None => json_response(404, json!({"error": "no such organization secret"})),
    }
}

async fn actions_secret(State(sim): State<Sim>, RawQuery(q): RawQuery) -> Response {
    done((|| -> Res {
        let q = parse_query(q.as_deref());
        let name = param(&q, "name").ok_or_else(|| bad("missing `name`"))?;
        let scope = match (
            param(&q, "org"),
            param(&q, "owner"),
            param(&q, "repo"),
            param(&q, "env"),
        ) {
            (Some(org), _, _, _) => ActionsScope::Org { org: org.into() },
            (None, Some(o), Some(r), Some(e)) => ActionsScope::Env {
                owner: o.into(),
                repo: r.into(),
                env: e.into(),
            },
            (None, Some(o), Some(r), None) => ActionsScope::Repo {
                owner: o.into(),
                repo: r.into(),
            },
            _ => return Err(bad("need `org`, or `owner` + `repo` (+ `env`)")),
        };
        Ok(json_response(
            200,
            json!({"plaintext": sim.actions_secret_plaintext(scope, name)}),
        ))
    })())
}

async fn webhooks(State(sim): State<Sim>) -> Response {
    let v: Vec<Value> = sim
        .webhook_received()
        .into_iter()
        .map(|(p, b)| json!({"path": p, "body": b}))
        .collect();
    json_response(200, Value::Array(v))
}
