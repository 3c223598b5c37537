//! The `github-actions` write-back, against the simulator's Actions secrets API:
//! the secret written is sealed for the scope's public key, so the simulator (which
//! holds the private key) decrypts it to exactly the rotated token. The workflow
//! passes the current token in through the environment, since secrets cannot be
//! read back.

use crate::common;

use common::{OLD_RT, TestEnv};
use evertoken_sim::scenario::{ACTIONS_TOKEN, Scenario, Store};
use evertoken_sim::{ActionsScope, Route};

/// TikTok against Actions secrets: the simulator knows the token, the repository,
/// its `production` environment and the organization.
fn setup(env: &TestEnv, store: Store) -> Scenario {
    let s = common::tiktok_ci(store);
    env.scenario(&s);
    s
}

/// As a workflow runs it: the secrets arrive as environment variables (the
/// scenario's), here with `token` as `GITHUB_TOKEN`.
fn refresh(env: &TestEnv, s: &Scenario, token: &str) -> common::Output {
    env.run(
        env.cmd_for(s)
            .args(["auth", "refresh", "all", "--json"])
            .env_remove("GITHUB_REPOSITORY")
            .env_remove("GITHUB_API_URL")
            .env("GITHUB_TOKEN", token),
    )
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
    let s = setup(&env, Store::github_repository("acme/publisher"));
    let out = refresh(&env, &s, ACTIONS_TOKEN);
    out.assert_rotated();
    let new_rt = env.live_tiktok();
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
    let s = setup(
        &env,
        Store::github_repository("acme/publisher").setting("environment: production"),
    );
    refresh(&env, &s, ACTIONS_TOKEN).expect_code(0);
    let scope = ActionsScope::Env {
        owner: "acme".into(),
        repo: "publisher".into(),
        env: "production".into(),
    };
    let sim = env.sim.sim();
    assert_eq!(
        sim.actions_secret_plaintext(scope, "TIKTOK_REFRESH_TOKEN"),
        Some(env.live_tiktok())
    );
    assert_eq!(
        sim.actions_secret_plaintext(repo(), "TIKTOK_REFRESH_TOKEN"),
        None,
        "only the environment's secret"
    );

    let env = TestEnv::new();
    let s = setup(
        &env,
        Store::github_organization().setting("visibility: all"),
    );
    refresh(&env, &s, ACTIONS_TOKEN).expect_code(0);
    let sim = env.sim.sim();
    assert_eq!(
        sim.actions_secret_plaintext(
            ActionsScope::Org { org: "acme".into() },
            "TIKTOK_REFRESH_TOKEN"
        ),
        Some(env.live_tiktok())
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
    let s = setup(&env, Store::github_repository("acme/publisher"));
    let bad = env.secret("test-unknown-github-token-not-a-real-secret");
    let out = refresh(&env, &s, &bad);
    out.expect_code(1);
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
    let s = setup(&env, Store::github_repository("acme/publisher"));
    env.run(
        env.cmd_for(&s)
            .args(["auth", "refresh", "all"])
            .env_remove("GITHUB_TOKEN"),
    )
    .expect_code(2)
    .stderr_has(&["GITHUB_TOKEN"]);

    let s = setup(&env, Store::github_repository("not-a-repo"));
    refresh(&env, &s, ACTIONS_TOKEN)
        .expect_code(2)
        .stderr_has(&["auth.writeback.github_actions.repository"]);
    assert_eq!(env.sim.sim().request_count(Route::TikTok), 0);
}

#[test]
fn an_organization_secret_keeps_its_visibility_and_repositories_after_a_rotation() {
    // 130 repositories: more than one page of GitHub's list (100 at most).
    let ids: Vec<u64> = (1..=130).map(|i| 1_000_000 + i * 7).collect();
    let env = TestEnv::new();
    // The config asks for `private` (for new secrets); the user shared this one.
    let s = setup(
        &env,
        Store::github_organization().setting("visibility: private"),
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
    let out = refresh(&env, &s, ACTIONS_TOKEN);
    out.assert_rotated();
    let org = ActionsScope::Org { org: "acme".into() };
    assert_eq!(
        sim.actions_secret_plaintext(org.clone(), "TIKTOK_REFRESH_TOKEN"),
        Some(env.live_tiktok())
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
    let s = setup(
        &env,
        Store::github_repository("acme/publisher").setting("environment: production"),
    );
    let bad = env.secret("test-unknown-github-token-not-a-real-secret");
    let out = refresh(&env, &s, &bad);
    out.expect_code(1);
    let fix = out.json()["results"][0]["fix"].as_str().unwrap().to_owned();
    common::assert_contains(&fix, &["\"Environments\" (write)"]);

    let env = TestEnv::new();
    let s = setup(&env, Store::github_organization());
    let out = refresh(&env, &s, &bad);
    let fix = out.json()["results"][0]["fix"].as_str().unwrap().to_owned();
    common::assert_contains(&fix, &["organization permission \"Secrets\" (write)"]);
}
