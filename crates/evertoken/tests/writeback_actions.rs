//! The `github-actions` write-back, against the simulator's Actions secrets API:
//! the secret written is sealed for the scope's public key, so the simulator (which
//! holds the private key) decrypts it to exactly the rotated token. The workflow
//! passes the current token in through the environment, since secrets cannot be
//! read back.

use crate::common;

use common::{TestEnv, days_from};
use evertoken_sim::{ActionsScope, Route};

const GH_TOKEN: &str = "test-actions-secrets-token-not-a-real-secret";
const CLIENT_KEY: &str = "test-tiktok-client-key";
const CLIENT_SECRET: &str = "test-tiktok-client-secret-not-a-real-secret";
const OLD_RT: &str = "rft.test-old-refresh-token-not-a-real-secret";

fn setup(env: &TestEnv, writeback: &str) {
    env.secret(GH_TOKEN);
    env.secret(CLIENT_SECRET);
    env.secret(OLD_RT);
    let sim = env.sim.sim();
    sim.actions_add_token(GH_TOKEN);
    sim.actions_add_environment("acme", "publisher", "production");
    sim.actions_add_org("acme");
    sim.tiktok_add_client(CLIENT_KEY, CLIENT_SECRET);
    sim.tiktok_add_refresh_token(CLIENT_KEY, OLD_RT, days_from(jiff::Timestamp::now(), 300));
    env.config(&format!(
        "platforms:\n  tiktok: {{ enabled: true, client_key: {CLIENT_KEY}, base_url: \"{base}\" }}\n\
         auth:\n  writeback:\n    backend: github-actions\n    github_actions: {writeback}\n\
         http: {{ retries: 1, timeout_seconds: 10 }}\n",
        base = env.base_url(),
    ));
}

/// As a workflow runs it: the secrets arrive as environment variables.
fn refresh(env: &TestEnv, token: &str) -> common::Output {
    env.run(
        env.cmd()
            .args(["auth", "refresh", "all", "--json"])
            .env_remove("GITHUB_REPOSITORY")
            .env_remove("GITHUB_API_URL")
            .env("GITHUB_TOKEN", token)
            .env("TIKTOK_CLIENT_SECRET", CLIENT_SECRET)
            .env("TIKTOK_REFRESH_TOKEN", OLD_RT),
    )
}

fn live_token(env: &TestEnv) -> String {
    let live = env.sim.sim().tiktok_live_refresh_tokens();
    assert_eq!(live.len(), 1, "{live:?}");
    live[0].clone()
}

fn repo() -> ActionsScope {
    ActionsScope::Repo {
        owner: "acme".into(),
        repo: "publisher".into(),
    }
}

#[test]
fn the_repository_secret_decrypts_to_the_rotated_token() {
    let env = TestEnv::new();
    setup(
        &env,
        &format!(
            "{{ repository: acme/publisher, api_url: \"{}\" }}",
            env.base_url()
        ),
    );
    let out = refresh(&env, GH_TOKEN);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.json()["results"][0]["state"],
        "rotated",
        "{}",
        out.stdout
    );
    let new_rt = live_token(&env);
    assert_ne!(new_rt, OLD_RT);
    let sim = env.sim.sim();
    assert_eq!(
        sim.actions_secret_plaintext(repo(), "TIKTOK_REFRESH_TOKEN")
            .as_deref(),
        Some(new_rt.as_str())
    );
    let access = sim
        .actions_secret_plaintext(repo(), "TIKTOK_ACCESS_TOKEN")
        .expect("the access token is written too");
    assert!(access.starts_with("act.sim-"));
    for t in [&new_rt, &access] {
        for form in common::encodings(t) {
            assert!(
                !out.stdout.contains(&form) && !out.stderr.contains(&form),
                "output leaks a new token"
            );
        }
    }
    // The workflow's environment is filled from these secrets: not a stale shadow.
    assert!(!out.stdout.contains("shadows"), "{}", out.stdout);
    // Nothing secret in the request line; the body carries only ciphertext.
    for r in sim
        .stats()
        .requests_log
        .iter()
        .filter(|r| r.method == "PUT")
    {
        assert!(
            !r.body.contains(&new_rt) && !r.body.contains(&access),
            "plaintext in the request body"
        );
        assert!(r.body.contains("\"key_id\""), "{}", r.body);
    }
}

#[test]
fn environment_and_organization_secrets() {
    let env = TestEnv::new();
    setup(
        &env,
        &format!(
            "{{ repository: acme/publisher, environment: production, api_url: \"{}\" }}",
            env.base_url()
        ),
    );
    let out = refresh(&env, GH_TOKEN);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let scope = ActionsScope::Env {
        owner: "acme".into(),
        repo: "publisher".into(),
        env: "production".into(),
    };
    let sim = env.sim.sim();
    assert_eq!(
        sim.actions_secret_plaintext(scope, "TIKTOK_REFRESH_TOKEN"),
        Some(live_token(&env))
    );
    assert_eq!(
        sim.actions_secret_plaintext(repo(), "TIKTOK_REFRESH_TOKEN"),
        None,
        "only the environment's secret"
    );

    let env = TestEnv::new();
    setup(
        &env,
        &format!(
            "{{ organization: acme, visibility: all, api_url: \"{}\" }}",
            env.base_url()
        ),
    );
    let out = refresh(&env, GH_TOKEN);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let sim = env.sim.sim();
    assert_eq!(
        sim.actions_secret_plaintext(
            ActionsScope::Org { org: "acme".into() },
            "TIKTOK_REFRESH_TOKEN"
        ),
        Some(live_token(&env))
    );
    assert_eq!(
        sim.actions_secret_visibility("acme", "TIKTOK_REFRESH_TOKEN")
            .as_deref(),
        Some("all")
    );
}

#[test]
fn a_token_that_cannot_write_secrets_is_refused_before_rotation() {
    let env = TestEnv::new();
    setup(
        &env,
        &format!(
            "{{ repository: acme/publisher, api_url: \"{}\" }}",
            env.base_url()
        ),
    );
    let bad = env.secret("test-unknown-github-token-not-a-real-secret");
    let out = refresh(&env, &bad);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let r = &out.json()["results"][0];
    assert_eq!(r["state"], "failed");
    assert!(
        r["message"].as_str().unwrap().contains("401"),
        "{}",
        out.stdout
    );
    assert!(
        r["fix"].as_str().unwrap().contains("GITHUB_TOKEN"),
        "{}",
        out.stdout
    );
    let sim = env.sim.sim();
    assert_eq!(sim.request_count(Route::TikTok), 0, "nothing rotated");
    assert!(sim.tiktok_is_live(OLD_RT));
}

#[test]
fn missing_token_or_repository_is_a_config_error() {
    let env = TestEnv::new();
    setup(&env, "{ repository: acme/publisher }");
    let out = env.run(
        env.cmd()
            .args(["auth", "refresh", "all"])
            .env("TIKTOK_CLIENT_SECRET", CLIENT_SECRET)
            .env("TIKTOK_REFRESH_TOKEN", OLD_RT),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("GITHUB_TOKEN"), "{}", out.stderr);

    setup(&env, "{ repository: not-a-repo }");
    let out = refresh(&env, GH_TOKEN);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("auth.writeback.github_actions.repository"),
        "{}",
        out.stderr
    );
    assert_eq!(env.sim.sim().request_count(Route::TikTok), 0);
}

#[test]
fn an_organization_secret_keeps_its_visibility_and_repositories_after_a_rotation() {
    // 130 repositories: more than one page of GitHub's list (100 at most).
    let ids: Vec<u64> = (1..=130).map(|i| 1_000_000 + i * 7).collect();
    let env = TestEnv::new();
    // The config asks for `private` (for new secrets); the user shared this one.
    setup(
        &env,
        &format!(
            "{{ organization: acme, visibility: private, api_url: \"{}\" }}",
            env.base_url()
        ),
    );
    let sim = env.sim.sim();
    sim.actions_set_org_secret("acme", "TIKTOK_REFRESH_TOKEN", OLD_RT, "selected", &ids);
    sim.actions_set_org_secret(
        "acme",
        "TIKTOK_ACCESS_TOKEN",
        "act.test-old-access-not-a-real-secret",
        "all",
        &[],
    );
    let out = refresh(&env, GH_TOKEN);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.json()["results"][0]["state"],
        "rotated",
        "{}",
        out.stdout
    );
    let org = ActionsScope::Org { org: "acme".into() };
    assert_eq!(
        sim.actions_secret_plaintext(org.clone(), "TIKTOK_REFRESH_TOKEN"),
        Some(live_token(&env))
    );
    assert_eq!(
        sim.actions_secret_visibility("acme", "TIKTOK_REFRESH_TOKEN")
            .as_deref(),
        Some("selected")
    );
    assert_eq!(
        sim.actions_secret_repositories("acme", "TIKTOK_REFRESH_TOKEN"),
        ids
    );
    assert_eq!(
        sim.actions_secret_visibility("acme", "TIKTOK_ACCESS_TOKEN")
            .as_deref(),
        Some("all"),
        "an `all` secret stays `all`"
    );
    let at = sim
        .actions_secret_plaintext(org, "TIKTOK_ACCESS_TOKEN")
        .unwrap();
    env.secret(&at);
    assert!(at.starts_with("act."), "the access token was updated too");
}

#[test]
fn the_permission_hint_names_githubs_permissions() {
    let env = TestEnv::new();
    setup(
        &env,
        &format!(
            "{{ repository: acme/publisher, environment: production, api_url: \"{}\" }}",
            env.base_url()
        ),
    );
    let bad = env.secret("test-unknown-github-token-not-a-real-secret");
    let out = refresh(&env, &bad);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let fix = out.json()["results"][0]["fix"].as_str().unwrap().to_owned();
    assert!(fix.contains("\"Environments\" (write)"), "{fix}");

    let env = TestEnv::new();
    setup(
        &env,
        &format!("{{ organization: acme, api_url: \"{}\" }}", env.base_url()),
    );
    let out = refresh(&env, &bad);
    let fix = out.json()["results"][0]["fix"].as_str().unwrap().to_owned();
    assert!(
        fix.contains("organization permission \"Secrets\" (write)"),
        "{fix}"
    );
}
