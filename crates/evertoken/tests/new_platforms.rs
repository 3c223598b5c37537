//! X, Threads and Pinterest through the real binary against the simulator:
//! refresh (rotation persisted first, dead and legacy refresh tokens, the
//! 24-hour rule), a login for each, and `auth refresh all` with every built-in
//! platform in one run.

use crate::common;
use common::NOW;

use common::TestEnv;
use evertoken_sim::scenario::{PLATFORMS, Scenario, platform};
use serde_json::Value;

fn at() -> Scenario {
    Scenario::at(NOW.parse().unwrap())
}

fn ev(env: &TestEnv, args: &[&str]) -> common::Output {
    env.ev_env(args, &[("EVERTOKEN_NOW", NOW)])
}

/// `auth refresh <target> --json`: the exit code and the result of `key`.
fn refresh(env: &TestEnv, target: &str) -> (i32, Vec<Value>) {
    let out = ev(env, &["auth", "refresh", target, "--json"]);
    let doc = out.json();
    (out.code, doc["results"].as_array().unwrap().clone())
}

fn result<'a>(results: &'a [Value], key: &str) -> &'a Value {
    results
        .iter()
        .find(|r| r["platform"] == key)
        .unwrap_or_else(|| panic!("no result for {key}: {results:?}"))
}

/// A rotation: the stored refresh token is new, live in the simulator, and the
/// one it replaced is dead.
fn assert_rotated(env: &TestEnv, s: &Scenario, key: &str, var: &str) {
    let old = s.token(key);
    let new = env.stored(var).expect("a refresh token is stored");
    env.secret(&new);
    assert_ne!(new, old, "{key}: the refresh token was not replaced");
    let sim = env.sim.sim();
    assert!(
        s.is_live(&sim, key, &new),
        "{key}: the new token is not live"
    );
    assert!(
        !s.is_live(&sim, key, &old),
        "{key}: the old token still works"
    );
}

#[test]
fn x_rotates_and_persists_the_new_refresh_token() {
    let env = TestEnv::new();
    let s = at().with(platform("x"));
    env.scenario(&s);
    let (code, r) = refresh(&env, "x");
    assert_eq!(code, 0, "{r:?}");
    assert_eq!(result(&r, "x")["state"], "rotated", "{r:?}");
    assert_rotated(&env, &s, "x", "X_REFRESH_TOKEN");
    let at = env.stored("X_ACCESS_TOKEN").unwrap();
    env.secret(&at);
    assert!(env.sim.sim().x_access_token_valid(&at));
    // The next run has a two-hour access token: nothing to do.
    let (code, r) = refresh(&env, "x");
    assert_eq!((code, &result(&r, "x")["state"]), (0, &Value::from("ok")));
}

#[test]
fn a_public_x_client_sends_its_id_in_the_body() {
    let env = TestEnv::new();
    let s = at().with(platform("x").setting("client_type: public"));
    env.scenario(&s);
    env.sim.sim().x_add_client(&s.client_id("x"), None, &[]);
    let (code, r) = refresh(&env, "x");
    assert_eq!(code, 0, "{r:?}");
    assert_eq!(result(&r, "x")["state"], "rotated", "{r:?}");
}

#[test]
fn an_x_client_without_a_type_or_a_secret_is_public() {
    // The contract: X_CLIENT_SECRET absent means a public client, unless
    // `client_type: confidential` says otherwise.
    let env = TestEnv::new();
    let s = at().with(platform("x").client_secret_not_stored());
    env.scenario(&s);
    env.sim.sim().x_add_client(&s.client_id("x"), None, &[]);
    let (code, r) = refresh(&env, "x");
    assert_eq!(code, 0, "{r:?}");
    assert_eq!(result(&r, "x")["state"], "rotated", "{r:?}");
    let confidential = at().with(
        platform("x")
            .client_secret_not_stored()
            .setting("client_type: confidential"),
    );
    let env = TestEnv::new();
    env.scenario(&confidential);
    ev(&env, &["auth", "refresh", "x"])
        .expect_code(2)
        .stderr_has(&["X_CLIENT_SECRET is not set"]);
}

#[test]
fn a_dead_x_refresh_token_is_reauth_required() {
    let env = TestEnv::new();
    let s = at().with(platform("x"));
    env.scenario(&s);
    env.sim.sim().x_revoke(&s.token("x"));
    let (code, r) = refresh(&env, "x");
    assert_eq!(code, 1);
    let x = result(&r, "x");
    assert_eq!(x["state"], "reauth_required", "{x}");
    common::assert_fields(
        x,
        &[("message", "invalid_request"), ("fix", "auth login x")],
    );
}

#[test]
fn a_wrong_x_client_secret_is_a_configuration_failure() {
    let env = TestEnv::new();
    let s = at().with(platform("x").client_secret_not_stored());
    env.scenario(&s);
    let out = env.ev_env(
        &["auth", "refresh", "x", "--json"],
        &[("EVERTOKEN_NOW", NOW), ("X_CLIENT_SECRET", "wrong-secret")],
    );
    let x = result(out.json()["results"].as_array().unwrap(), "x").clone();
    assert_eq!(x["state"], "failed", "{x}");
    common::assert_fields(&x, &[("message", "unauthorized_client")]);
    // Nothing was spent: the refresh token still works.
    assert!(env.sim.sim().x_is_live(&s.token("x")));
}

#[test]
fn pinterest_continuous_refresh_rotates_and_persists_first() {
    let env = TestEnv::new();
    let s = at().with(platform("pinterest"));
    env.scenario(&s);
    let (code, r) = refresh(&env, "pinterest");
    assert_eq!(code, 0, "{r:?}");
    let p = result(&r, "pinterest");
    assert_eq!(p["state"], "rotated", "{p}");
    assert_rotated(&env, &s, "pinterest", "PINTEREST_REFRESH_TOKEN");
    // The new refresh token's 60-day expiry is recorded.
    let exp = env.read_credentials()["PINTEREST_REFRESH_TOKEN"]["expires_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(exp.starts_with("2027-01-22"), "{exp}");
}

#[test]
fn a_pinterest_legacy_refresh_token_is_a_dated_reauth() {
    let env = TestEnv::new();
    let s = at().with(platform("pinterest").expires_in_days(10));
    env.scenario(&s);
    let sim = env.sim.sim();
    sim.pinterest_set_legacy(true);
    sim.pinterest_add_refresh_token(
        &s.client_id("pinterest"),
        &s.token("pinterest"),
        s.days(10),
        false,
    );
    let (code, r) = refresh(&env, "pinterest");
    assert_eq!(code, 1);
    let p = result(&r, "pinterest");
    assert_eq!(p["state"], "reauth_required", "{p}");
    assert_eq!(p["reauth_by"], "2026-12-03", "{p}");
    // The new access token was kept, the legacy refresh token too.
    assert_eq!(
        env.stored("PINTEREST_REFRESH_TOKEN").unwrap(),
        s.token("pinterest")
    );
    let at = env.stored("PINTEREST_ACCESS_TOKEN").unwrap();
    env.secret(&at);
    assert!(sim.pinterest_access_token_valid(&at));
}

#[test]
fn a_dead_pinterest_grant_is_reauth_required() {
    let env = TestEnv::new();
    let s = at().with(platform("pinterest"));
    env.scenario(&s);
    env.sim.sim().pinterest_revoke(&s.token("pinterest"));
    let (code, r) = refresh(&env, "pinterest");
    assert_eq!(code, 1);
    let p = result(&r, "pinterest");
    assert_eq!(p["state"], "reauth_required", "{p}");
    common::assert_fields(p, &[("message", "283")]);
}

#[test]
fn threads_refreshes_in_place_and_a_too_young_token_is_ok() {
    let env = TestEnv::new();
    let s = at().with(platform("threads"));
    env.scenario(&s);
    let (code, r) = refresh(&env, "threads");
    assert_eq!(code, 0, "{r:?}");
    assert_eq!(result(&r, "threads")["state"], "refreshed", "{r:?}");
    let new = env.stored("THREADS_ACCESS_TOKEN").unwrap();
    env.secret(&new);
    assert_ne!(new, s.token("threads"));
    assert!(env.sim.sim().threads_is_valid(&new));

    // Age unknown, issued just now: Threads refuses (code 10), GET /me works.
    let env = TestEnv::new();
    let s = at().with(platform("threads").issued_unknown().expires_in_days(5));
    env.scenario(&s);
    let (code, r) = refresh(&env, "threads");
    assert_eq!(code, 0, "{r:?}");
    let t = result(&r, "threads");
    assert_eq!(t["state"], "ok", "{t}");
    assert_eq!(
        env.stored("THREADS_ACCESS_TOKEN").unwrap(),
        s.token("threads")
    );
}

/// A pasted-callback login: the first run prints the authorize URL and stops
/// (nothing pasted), the simulator "browser" follows it, the second run
/// finishes it with `--callback-url`.
fn pasted_login(env: &TestEnv, key: &str, redirect: &str, authorize_path: &str) -> String {
    let out = ev(
        env,
        &[
            "auth",
            "login",
            key,
            "--no-browser",
            "--redirect-uri",
            redirect,
        ],
    );
    out.expect_code(1);
    let prefix = format!("{}{authorize_path}?", env.base_url());
    let url = out
        .stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no authorize URL in:\n{}", out.stderr))
        .to_owned();
    let (status, landed) = common::http_get(&url);
    let landed = landed.unwrap_or_else(|| panic!("{status}: no redirect from {url}"));
    assert!(landed.starts_with(redirect), "{landed}");
    ev(
        env,
        &[
            "auth",
            "login",
            key,
            "--redirect-uri",
            redirect,
            "--callback-url",
            &landed,
        ],
    )
    .expect_code(0);
    url
}

fn login_env(key: &str) -> (TestEnv, Scenario) {
    let env = TestEnv::new();
    let s = at().with(platform(key).setting(&format!("auth_url: \"{}\"", env.base_url())));
    env.scenario(&s);
    (env, s)
}

#[test]
fn x_login_uses_pkce_and_offline_access() {
    let (env, s) = login_env("x");
    let url = pasted_login(
        &env,
        "x",
        "https://app.example/x/callback",
        "/i/oauth2/authorize",
    );
    common::assert_contains(&url, &["code_challenge_method=S256", "offline.access"]);
    let rt = env.stored("X_REFRESH_TOKEN").unwrap();
    env.secret(&rt);
    assert_ne!(rt, s.token("x"));
    assert!(env.sim.sim().x_is_live(&rt));
    let at = env.stored("X_ACCESS_TOKEN").unwrap();
    env.secret(&at);
    let (code, r) = refresh(&env, "x");
    assert_eq!(
        (code, &result(&r, "x")["state"]),
        (0, &Value::from("ok")),
        "{r:?}"
    );
}

#[test]
fn x_login_through_a_loopback_listener() {
    let (env, _) = login_env("x");
    let mut c = env.std_cmd();
    c.env("EVERTOKEN_NOW", NOW)
        .args(["auth", "login", "x", "--no-browser", "--port", "0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let prefix = format!("{}/i/oauth2/authorize?", env.base_url());
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .map(|l| l.trim().to_owned())
        .find(|l| l.starts_with(&prefix))
        .expect("the authorize URL");
    let (_, landed) = common::http_get(&url);
    let landed = landed.expect("a redirect to the loopback listener");
    assert!(landed.starts_with("http://127.0.0.1:"), "{landed}");
    let (status, _) = common::http_get(&landed);
    assert_eq!(status, 200);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest:?}");
    let rt = env.stored("X_REFRESH_TOKEN").unwrap();
    env.secret(&rt);
    assert!(env.sim.sim().x_is_live(&rt));
}

#[test]
fn threads_login_exchanges_for_a_long_lived_token() {
    let (env, s) = login_env("threads");
    let redirect = "https://app.example/threads/";
    env.sim.sim().threads_add_app(
        &s.client_id("threads"),
        &s.client_secret("threads"),
        &[redirect],
    );
    // Meta takes no loopback redirect.
    ev(&env, &["auth", "login", "threads", "--no-browser"])
        .expect_code(2)
        .stderr_has(&["https"]);
    pasted_login(&env, "threads", redirect, "/oauth/authorize");
    let token = env.stored("THREADS_ACCESS_TOKEN").unwrap();
    env.secret(&token);
    let sim = env.sim.sim();
    assert!(sim.threads_is_valid(&token));
    let exp = sim.threads_expires_at(&token).unwrap();
    assert!(exp > s.days(59), "the long-lived token: {exp}");
}

#[test]
fn pinterest_login_stores_a_continuous_refresh_token() {
    let (env, s) = login_env("pinterest");
    let redirect = "https://app.example/pinterest/";
    env.sim.sim().pinterest_add_app(
        &s.client_id("pinterest"),
        &s.client_secret("pinterest"),
        &[redirect],
    );
    pasted_login(&env, "pinterest", redirect, "/oauth/");
    let rt = env.stored("PINTEREST_REFRESH_TOKEN").unwrap();
    env.secret(&rt);
    let at = env.stored("PINTEREST_ACCESS_TOKEN").unwrap();
    env.secret(&at);
    assert_ne!(rt, s.token("pinterest"));
    assert!(env.sim.sim().pinterest_is_live(&rt));
    let exp = env.read_credentials()["PINTEREST_REFRESH_TOKEN"]["expires_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(exp.starts_with("2027-01-22"), "{exp}");
}

/// What `auth refresh all` does with each built-in platform's default token,
/// and the refresh token variable whose rotation is persisted (if it rotates).
/// Extend with a configured (`kind: oauth2`) service by adding its row.
const ALL: &[(&str, &str, Option<&str>)] = &[
    ("instagram", "refreshed", None),
    ("youtube", "ok", None),
    ("tiktok", "rotated", Some("TIKTOK_REFRESH_TOKEN")),
    ("linkedin", "reauth_required", None),
    ("x", "rotated", Some("X_REFRESH_TOKEN")),
    ("threads", "refreshed", None),
    ("pinterest", "rotated", Some("PINTEREST_REFRESH_TOKEN")),
];

/// Every built-in against the simulator plus a `kind: oauth2` service (`acme`)
/// against a real OAuth 2.0 server (oidc-provider, which revokes the grant if a
/// used refresh token comes back), in one `auth refresh all`.
#[test]
fn auth_refresh_all_handles_every_built_in_and_a_configured_service_in_one_run() {
    let redirect = format!("http://127.0.0.1:{}/callback", common::oidc::free_port());
    let Some(server) = common::oidc::oidc(&redirect, 120) else {
        return;
    };
    let env = TestEnv::new();
    let keys: Vec<&str> = ALL.iter().map(|(k, _, _)| *k).collect();
    // Every built-in the simulator serves is in the table.
    for d in PLATFORMS {
        assert!(keys.contains(&d.key), "{} is missing from ALL", d.key);
    }
    let s = at().platforms(&keys);
    env.scenario(&s);
    // The configured service: its block under `platforms:`, its first tokens in the store.
    let (service, client, id, auth, secret) = common::oidc::CLIENTS[0];
    let first = common::oidc::first_token(&env, &server.issuer, client, &redirect);
    let first_rt = first["refresh_token"].as_str().unwrap().to_owned();
    let cfg = std::fs::read_to_string(env.work().join("evertoken.yaml")).unwrap();
    env.config(&cfg.replacen(
        "platforms:\n",
        &format!(
            "platforms:\n{}",
            common::oidc::block(service, &server.issuer, id, auth)
        ),
        1,
    ));
    let creds = env.work().join("credentials.yaml");
    let mut text = std::fs::read_to_string(&creds).unwrap();
    text.push_str(&format!(
        "ACME_REFRESH_TOKEN: {first_rt}\nACME_CLIENT_SECRET: {}\n",
        secret.unwrap()
    ));
    std::fs::write(&creds, text).unwrap();

    for run in 1..=2 {
        let (code, r) = refresh(&env, "all");
        assert_eq!(code, 1, "LinkedIn needs a human: {r:?}");
        assert_eq!(r.len(), ALL.len() + 1, "{r:?}");
        if run == 1 {
            for (key, state, rotated) in ALL {
                assert_eq!(result(&r, key)["state"], *state, "{key}: {r:?}");
                if let Some(var) = rotated {
                    assert_rotated(&env, &s, key, var);
                }
            }
        }
        // The service rotates on every run; the second run works only because
        // the first persisted the new refresh token before anything else.
        assert_eq!(result(&r, service)["state"], "rotated", "run {run}: {r:?}");
        let new = env.stored("ACME_REFRESH_TOKEN").unwrap();
        env.secret(&new);
        env.secret(&env.stored("ACME_ACCESS_TOKEN").unwrap());
        assert_ne!(new, first_rt);
    }
    assert_eq!(env.sim.sim().stats().reused_rotated_tokens, 0);
    drop(server);

    // The other commands take every platform too.
    let status = ev(&env, &["auth", "status", "--json"]);
    assert_eq!(
        status.json()["results"].as_array().unwrap().len(),
        ALL.len() + 1
    );
    for key in ["x", "pinterest"] {
        let out = ev(&env, &["auth", "token", key]);
        out.expect_code_for(format_args!("{key}"), 0);
        let var = format!("{}_ACCESS_TOKEN", key.to_uppercase());
        assert_eq!(out.stdout.trim(), env.stored(&var).unwrap(), "{key}");
    }
    let metrics = env.path("work/metrics.prom");
    ev(
        &env,
        &[
            "auth",
            "refresh",
            "all",
            "--dry-run",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
    )
    .expect_code(1);
    let prom = std::fs::read_to_string(&metrics).unwrap();
    for key in ["x", "threads", "pinterest"] {
        assert!(
            prom.contains(&format!("platform=\"{key}\"")),
            "{key}: {prom}"
        );
    }
    let out = ev(&env, &["doctor"]);
    assert!(
        out.stdout.contains(" 0 failed"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    for key in ["x", "threads", "pinterest"] {
        let row = format!("account {key} ");
        assert!(out.stdout.contains(&row), "{key}: {}", out.stdout);
    }
    let out = ev(&env, &["schedule", "gitlab"]);
    out.expect_code(0);
    for var in [
        "X_CLIENT_SECRET",
        "PINTEREST_CLIENT_SECRET",
        "X_REFRESH_TOKEN",
    ] {
        assert!(out.stdout.contains(var), "{var}: {}", out.stdout);
    }
}
