//! The `gitlab` write-back and its pre-flight, against the simulator's
//! GitLab variables API: a rotated TikTok refresh token updates the existing masked,
//! protected CI/CD variable in place; a variable that is missing, unmasked or
//! unprotected is refused before anything rotates; a PUT that fails after the
//! rotation loses nothing, and the next run puts the provider's current token back.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{OLD_RT, TestEnv};
use evertoken_sim::scenario::{Scenario, Store};
use evertoken_sim::{Fault, GitLabScope, GitLabVariable, Route};

const PROJECT: GitLabScope = GitLabScope::Project(4242);

/// TikTok against GitLab CI/CD variables: the simulator knows the API token, the
/// project and the group; the variables are each test's.
fn setup(env: &TestEnv, store: Store) -> Scenario {
    let s = common::tiktok_ci(store);
    env.scenario(&s);
    s
}

fn project(env: &TestEnv) -> Scenario {
    setup(env, Store::gitlab_project("acme/publisher"))
}

/// Sets each variable the scenario's store holds (the TikTok refresh token) in
/// `scope`, masked and protected, then as `edit` makes it.
fn variables(env: &TestEnv, s: &Scenario, scope: GitLabScope, edit: impl Fn(&mut GitLabVariable)) {
    for (key, value) in s.store_vars() {
        let mut var = GitLabVariable::masked_protected(&key, &value);
        edit(&mut var);
        env.sim.sim().gitlab_set_variable(scope, var);
    }
}

fn result(out: &common::Output) -> serde_json::Value {
    out.json()["results"][0].clone()
}

/// The new tokens are only known at run time: they must not appear in the output.
fn assert_not_in_output(out: &common::Output, token: &str) {
    for form in common::encodings(token) {
        assert!(
            !out.stdout.contains(&form) && !out.stderr.contains(&form),
            "output leaks the new token:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn rotation_updates_the_masked_protected_variable_in_place() {
    let env = TestEnv::new();
    let s = project(&env);
    let sim = env.sim.sim();
    variables(&env, &s, PROJECT, |_| {});
    sim.gitlab_set_variable(
        PROJECT,
        GitLabVariable::masked_protected(
            "TIKTOK_ACCESS_TOKEN",
            "act.test-placeholder-not-a-real-secret",
        ),
    );

    let out = env.refresh(&s, &[]);
    out.assert_rotated();
    let new_rt = env.live_tiktok();
    assert_ne!(new_rt, OLD_RT);
    assert_not_in_output(&out, &new_rt);

    let var = sim
        .gitlab_variable(PROJECT, "TIKTOK_REFRESH_TOKEN", "*")
        .unwrap();
    assert_eq!(var.value, new_rt, "the variable holds the rotated token");
    assert!(
        var.masked && var.protected && !var.raw && !var.hidden,
        "attributes unchanged: {var:?}"
    );
    let access = sim
        .gitlab_variable(PROJECT, "TIKTOK_ACCESS_TOKEN", "*")
        .unwrap();
    assert!(
        access.value.starts_with("act.sim-"),
        "the existing access-token variable is updated too"
    );
    assert_not_in_output(&out, &access.value);
    assert_eq!(sim.gitlab_writes(), 2);

    // Only the value goes out, in the body (never in the URL), to the URL-encoded path.
    let puts: Vec<_> = sim
        .stats()
        .requests_log
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 2);
    for p in &puts {
        assert!(
            p.path
                .starts_with("/api/v4/projects/acme%2Fpublisher/variables/"),
            "{}",
            p.path
        );
        assert!(
            !p.query.as_deref().unwrap_or("").contains("value"),
            "value in the URL: {:?}",
            p.query
        );
        let keys: Vec<String> = url::form_urlencoded::parse(p.body.as_bytes())
            .map(|(k, _)| k.into_owned())
            .collect();
        assert_eq!(
            keys,
            ["value"],
            "the PUT sends the value only, never masked/protected/raw"
        );
        let token = p.headers.iter().find(|(k, _)| k == "private-token");
        assert!(token.is_some(), "GITLAB_TOKEN is sent as PRIVATE-TOKEN");
    }

    // The next scheduled pipeline reads the variable and has nothing to rotate twice.
    assert_eq!(sim.stats().reused_rotated_tokens, 0);
}

#[test]
fn a_missing_short_lived_variable_is_skipped_not_created() {
    let env = TestEnv::new();
    let s = project(&env);
    let sim = env.sim.sim();
    variables(&env, &s, PROJECT, |_| {});

    env.refresh(&s, &[]).expect_code(0);
    assert_eq!(stored_token(&env, PROJECT, "*"), env.live_tiktok());
    assert!(
        sim.gitlab_variable(PROJECT, "TIKTOK_ACCESS_TOKEN", "*")
            .is_none(),
        "no variable is ever created"
    );
    assert_eq!(sim.gitlab_writes(), 1);
}

/// The value of the `TIKTOK_REFRESH_TOKEN` variable of `environment` in `scope`.
fn stored_token(env: &TestEnv, scope: GitLabScope, environment: &str) -> String {
    env.sim
        .sim()
        .gitlab_variable(scope, "TIKTOK_REFRESH_TOKEN", environment)
        .unwrap()
        .value
}

/// A project whose variable is as `edit` makes it (`None`: there is none, and the
/// pipeline has the token in its environment) is refused before the token
/// rotates, with `words` in the message and fix: the stored TikTok token still
/// works afterwards.
fn assert_refused_before_rotation(edit: Option<fn(&mut GitLabVariable)>, words: &[&str]) {
    let env = TestEnv::new();
    let s = project(&env);
    let out = match edit {
        Some(edit) => {
            variables(&env, &s, PROJECT, edit);
            env.refresh(&s, &[])
        }
        // The pipeline has the token in its environment, but no variable to write back to.
        None => env.refresh(&s, &[("TIKTOK_REFRESH_TOKEN", OLD_RT)]),
    };
    out.expect_code(1);
    let r = result(&out);
    assert_eq!(r["state"], "failed", "{}", out.stdout);
    let text = format!("{} {}", r["message"], r["fix"]);
    for w in words {
        assert!(text.contains(w), "`{w}` missing from: {text}");
    }
    let sim = env.sim.sim();
    assert_eq!(sim.request_count(Route::TikTok), 0, "nothing was rotated");
    assert!(
        sim.tiktok_is_live(OLD_RT),
        "the stored token is still the live one"
    );
    assert_eq!(sim.gitlab_writes(), 0, "nothing was written");
}

#[test]
fn an_unmasked_variable_is_refused_before_rotation() {
    assert_refused_before_rotation(
        Some(|v| v.masked = false),
        &["TIKTOK_REFRESH_TOKEN", "not masked", "Mask variable"],
    );
}

#[test]
fn an_unprotected_variable_is_refused_before_rotation() {
    assert_refused_before_rotation(
        Some(|v| v.protected = false),
        &["TIKTOK_REFRESH_TOKEN", "not protected", "Protect variable"],
    );
}

#[test]
fn a_missing_variable_is_refused_before_rotation() {
    assert_refused_before_rotation(
        None,
        &["TIKTOK_REFRESH_TOKEN", "does not exist", "never creates"],
    );
}

#[test]
fn a_failed_put_after_rotation_loses_nothing() {
    let env = TestEnv::new();
    let s = project(&env);
    let sim = env.sim.sim();
    variables(&env, &s, PROJECT, |_| {});

    // GitLab starts failing the moment TikTok receives the rotating request: the
    // latency keeps TikTok's answer (and so the PUT) well behind the switch.
    sim.set_latency(Duration::from_millis(300));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (sim, done) = (sim.clone(), done.clone());
        std::thread::spawn(move || {
            while sim.request_count(Route::TikTok) == 0 && !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(2));
            }
            sim.set_persistent_fault(Route::GitLab, Some(Fault::Status(500)));
        })
    };
    let out = env.refresh(&s, &[]);
    done.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    sim.set_latency(Duration::ZERO);
    out.expect_code(1);
    let r = result(&out);
    assert_eq!(r["state"], "failed", "{}", out.stdout);
    assert!(
        r["action"].as_str().unwrap().contains("write-back pending"),
        "{}",
        out.stdout
    );
    assert!(
        r["message"].as_str().unwrap().contains("journal"),
        "{}",
        out.stdout
    );
    let rotated = env.live_tiktok();
    assert_ne!(rotated, OLD_RT, "the provider rotated");
    assert_not_in_output(&out, &rotated);
    assert_eq!(
        stored_token(&env, PROJECT, "*"),
        OLD_RT,
        "GitLab still has the old value"
    );
    let journal: Vec<_> = std::fs::read_dir(env.state_dir().join("journal"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(journal.len(), 1, "the rotated token waits in the journal");
    let text = std::fs::read_to_string(journal[0].path()).unwrap();
    assert!(
        text.contains(&rotated),
        "the journal holds the only copy of the rotated token"
    );
    assert_eq!(common::mode(&journal[0].path()), 0o600);

    // GitLab is back: the next run first finishes the write-back from the journal.
    sim.clear_faults();
    env.refresh(&s, &[]).expect_code(0);
    let current = env.live_tiktok();
    assert_eq!(
        stored_token(&env, PROJECT, "*"),
        current,
        "the variable holds the provider's current token"
    );
    assert_eq!(
        sim.stats().reused_rotated_tokens,
        0,
        "no run ever presented a rotated-away token"
    );
    assert!(
        std::fs::read_dir(env.state_dir().join("journal"))
            .unwrap()
            .next()
            .is_none(),
        "the journal is cleared"
    );
}

#[test]
fn environment_scope_selects_the_variable() {
    let env = TestEnv::new();
    let s = setup(
        &env,
        Store::gitlab_project("4242").setting("environment_scope: production"),
    );
    let sim = env.sim.sim();
    variables(&env, &s, PROJECT, |v| {
        v.environment_scope = "production".into()
    });
    sim.gitlab_set_variable(
        PROJECT,
        GitLabVariable::masked_protected(
            "TIKTOK_REFRESH_TOKEN",
            "rft.test-other-scope-not-a-real-secret",
        ),
    );

    env.refresh(&s, &[]).expect_code(0);
    assert_eq!(stored_token(&env, PROJECT, "production"), env.live_tiktok());
    assert_eq!(
        stored_token(&env, PROJECT, "*"),
        "rft.test-other-scope-not-a-real-secret"
    );
}

#[test]
fn group_variables_and_hidden_values() {
    let env = TestEnv::new();
    let s = setup(&env, Store::gitlab_group());
    let sim = env.sim.sim();
    variables(&env, &s, GitLabScope::Group(77), |v| v.hidden = true);

    // A hidden variable's value cannot be read back: the pipeline passes it in.
    let out = env.refresh(&s, &[("TIKTOK_REFRESH_TOKEN", OLD_RT)]);
    out.expect_code(0);
    let stored = sim
        .gitlab_variable(GitLabScope::Group(77), "TIKTOK_REFRESH_TOKEN", "*")
        .unwrap();
    assert_eq!(stored.value, env.live_tiktok());
    assert!(stored.hidden && stored.masked && stored.protected);
    assert!(
        !out.stdout.contains("shadows"),
        "GitLab fills the environment from the variable: no shadow warning\n{}",
        out.stdout
    );
}

#[test]
fn a_job_token_alone_is_explained() {
    let env = TestEnv::new();
    let s = project(&env);
    env.run(
        env.cmd_for(&s)
            .args(["auth", "refresh", "all"])
            .env_remove("GITLAB_TOKEN")
            .env("CI_JOB_TOKEN", "test-job-token-not-a-real-secret")
            .env("TIKTOK_REFRESH_TOKEN", OLD_RT),
    )
    .expect_code(2)
    .stderr_has(&["GITLAB_TOKEN", "job token cannot"]);
    assert!(env.sim.sim().tiktok_is_live(OLD_RT));
}

#[test]
fn a_rejected_gitlab_token_is_refused_before_rotation() {
    let env = TestEnv::new();
    let s = project(&env);
    variables(&env, &s, PROJECT, |_| {});
    env.refresh(
        &s,
        &[
            (
                "GITLAB_TOKEN",
                "test-unknown-gitlab-token-not-a-real-secret",
            ),
            ("TIKTOK_REFRESH_TOKEN", OLD_RT),
        ],
    )
    .expect_code(1)
    .stdout_has(&["401"]);
    assert!(env.sim.sim().tiktok_is_live(OLD_RT));
    assert_eq!(env.sim.sim().request_count(Route::TikTok), 0);
}

#[test]
fn inside_a_pipeline_the_project_and_api_url_come_from_gitlab() {
    let env = TestEnv::new();
    let s = Scenario::wall_clock()
        .with(common::tiktok().client_secret_not_stored())
        .store(Store::gitlab_from_pipeline());
    env.scenario(&s);
    variables(&env, &s, PROJECT, |_| {});
    let api = format!("{}/api/v4", env.base_url());
    env.refresh(
        &s,
        &[
            ("CI_PROJECT_ID", "4242"),
            ("CI_API_V4_URL", &api),
            ("TIKTOK_REFRESH_TOKEN", OLD_RT),
        ],
    )
    .expect_code(0);
    assert_eq!(stored_token(&env, PROJECT, "*"), env.live_tiktok());

    // Outside a pipeline, with no project configured: a config error naming the key.
    env.run(env.cmd_for(&s).args(["auth", "refresh", "all"]))
        .expect_code(2)
        .stderr_has(&["auth.writeback.gitlab.project"]);
}

/// Some GitLab versions ignore `filter[environment_scope]` on a group-level PUT
/// (gitlab-org/gitlab#351918) and update another scope's variable of the same key:
/// the reply names the scope it updated, and a mismatch is a loud failure with the
/// new token kept in the journal, never a silent success.
#[test]
fn a_group_put_that_lands_in_another_scope_is_reported_and_the_token_kept() {
    let env = TestEnv::new();
    let s = setup(
        &env,
        Store::gitlab_group().setting("environment_scope: production"),
    );
    let sim = env.sim.sim();
    let other = "rft.test-staging-scope-not-a-real-secret";
    env.secret(other);
    let mut staging = GitLabVariable::masked_protected("TIKTOK_REFRESH_TOKEN", other);
    staging.environment_scope = "*".into();
    sim.gitlab_set_variable(GitLabScope::Group(77), staging);
    variables(&env, &s, GitLabScope::Group(77), |v| {
        v.environment_scope = "production".into()
    });
    sim.gitlab_set_group_put_ignores_scope(true);

    let out = env.refresh(&s, &[]);
    out.expect_code(1);
    let r = result(&out);
    assert_eq!(r["state"], "failed", "{r}");
    common::assert_fields(&r, &[("message", "ignored the scope filter")]);
    let new_rt = env.live_tiktok();
    assert_not_in_output(&out, &new_rt);

    // A GitLab that honours the filter: the next run finishes the write-back from
    // the journal into the production variable, without rotating again.
    sim.gitlab_set_group_put_ignores_scope(false);
    env.refresh(&s, &[]).expect_code(0);
    assert_eq!(env.live_tiktok(), new_rt, "no second rotation");
    assert_eq!(
        stored_token(&env, GitLabScope::Group(77), "production"),
        new_rt
    );
}
