//! Persona A end to end: a posting pipeline on GitLab CI, from an empty project to
//! a scheduled job that keeps TikTok alive, against the simulator.
//!
//! 1. On a laptop: `auth login tiktok --store gitlab --create-variable` (the laptop's
//!    config writes to its local store; `--store` sends this login's tokens to the
//!    project's CI/CD variables instead) creates masked, protected, hidden variables.
//! 2. The job `evertoken schedule gitlab --write` generates runs for real under
//!    `gitlab-ci-local --shell-executor-no-image --force-shell-executor` (the job
//!    names `image: rust:1`, so the shell executor must be forced; installed by
//!    scripts/setup-gitlab-ci-local), with the locally built binary on PATH so its
//!    install step is skipped; it rotates and writes back to the simulator's GitLab.
//! 3. A posting job does `eval "$(evertoken auth env tiktok)"` and gets a valid access
//!    token, and the provider never sees a rotated-away refresh token: evertoken is
//!    the only rotator.

use crate::common;

use std::path::{Path, PathBuf};

use common::TestEnv;
use common::child::Spawned;
use evertoken_sim::GitLabScope;

const GITLAB_TOKEN: &str = "test-gitlab-api-token-not-a-real-secret";
const CLIENT_KEY: &str = "test-tt-key";
const CLIENT_SECRET: &str = "tt-client-secret-test-not-a-real-secret";
const PROJECT: GitLabScope = GitLabScope::Project(4242);

fn gitlab_ci_local() -> Option<PathBuf> {
    common::test_tool(
        "gitlab-ci-local",
        &["target/test-tools/gitlab-ci-local/node_modules/.bin/gitlab-ci-local"],
    )
}

/// Runs `auth login …` on the "laptop" and plays the browser's part.
fn login(env: &TestEnv, args: &[&str]) -> (i32, String) {
    let mut c = env.std_cmd();
    c.args(["--config", "laptop.yaml", "auth", "login"])
        .args(args)
        .env("GITLAB_TOKEN", GITLAB_TOKEN)
        .env("TIKTOK_CLIENT_SECRET", CLIENT_SECRET);
    let mut child = Spawned::start(&mut c);
    let url = child.rest_of_line(&format!("{}/v2/auth/authorize/?", env.base_url()));
    let (status, location) = common::http_get(&url);
    assert_eq!(status, 302);
    let (status, _) = common::http_get(&location.expect("redirect to the loopback callback"));
    assert_eq!(status, 200);
    let (code, stderr, _) = child.finish();
    (code, stderr)
}

fn git(dir: &Path, args: &[&str]) {
    common::tool_ok(
        std::process::Command::new("git")
            .args(["-c", "user.email=ci@example.invalid", "-c", "user.name=ci"])
            .args(args)
            .current_dir(dir),
        &format!("git {args:?}"),
    );
}

/// The simulated project (with hidden variables or without) and TikTok's
/// desktop app; returns the simulator.
fn project_and_app(env: &TestEnv, hidden_supported: bool) -> evertoken_sim::Sim {
    let sim = env.gitlab_project(GITLAB_TOKEN);
    env.secret(CLIENT_SECRET);
    if !hidden_supported {
        sim.gitlab_set_hidden_supported(false);
    }
    sim.tiktok_add_desktop_client(CLIENT_KEY, CLIENT_SECRET);
    sim
}

/// TikTok's config section, the simulator authorising.
fn tiktok_section(env: &TestEnv) -> String {
    let base = env.base_url();
    format!(
        "platforms:\n  tiktok: {{ enabled: true, client_key: {CLIENT_KEY}, base_url: \"{base}\", auth_url: \"{base}\" }}\n"
    )
}

/// `auth login tiktok --store gitlab --create-variable` on the laptop: exits 0;
/// the new refresh and access tokens are registered as secrets and stderr is
/// scanned for them. Returns the refresh token's variable and stderr.
fn login_creating_variables(env: &TestEnv) -> (evertoken_sim::GitLabVariable, String) {
    let (code, stderr) = login(
        env,
        &[
            "tiktok",
            "--no-browser",
            "--port",
            "0",
            "--store",
            "gitlab",
            "--create-variable",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let rt = variable(env, "TIKTOK_REFRESH_TOKEN");
    env.secret(&rt.value);
    env.secret(&variable(env, "TIKTOK_ACCESS_TOKEN").value);
    env.assert_no_leak(&stderr);
    (rt, stderr)
}

/// `--config laptop.yaml auth login tiktok --no-browser <args>` exits 2 (usage).
fn login_usage_error(env: &TestEnv, args: &[&str]) -> common::Output {
    let mut c = env.cmd();
    c.args([
        "--config",
        "laptop.yaml",
        "auth",
        "login",
        "tiktok",
        "--no-browser",
    ])
    .args(args);
    let out = env.run(&mut c);
    out.expect_code_for(format_args!("{args:?}"), 2);
    out
}

/// Runs one job of the project's pipeline with gitlab-ci-local, the way a runner
/// would: the CI/CD variables in its environment, the built binary on PATH.
fn run_job(env: &TestEnv, gcl: &Path, job: &str, vars: &[(&str, String)]) -> (bool, String) {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_evertoken")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = std::process::Command::new(gcl);
    c.current_dir(env.work())
        .env("PATH", path)
        .env("HOME", env.home())
        .env_remove("CI")
        .args([
            "--shell-executor-no-image",
            "--force-shell-executor",
            "--no-color",
        ])
        .args(["--variable", "CI_PIPELINE_SOURCE=schedule"]);
    for (k, v) in vars {
        c.args(["--variable", &format!("{k}={v}")]);
    }
    c.arg(job);
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn variable(env: &TestEnv, key: &str) -> evertoken_sim::GitLabVariable {
    env.sim
        .sim()
        .gitlab_variable(PROJECT, key, "*")
        .unwrap_or_else(|| panic!("{key} does not exist in the simulated project"))
}

#[test]
fn a_gitlab_posting_pipeline_from_first_login_to_a_rotating_schedule() {
    let Some(gcl) = gitlab_ci_local() else { return };
    let env = TestEnv::new();
    let sim = project_and_app(&env, true);
    let base = env.base_url();
    let platforms = tiktok_section(&env);
    let gitlab = format!("    gitlab: {{ project: acme/publisher, api_url: \"{base}/api/v4\" }}\n");
    // The laptop's config writes to its local store; the repository's to GitLab.
    std::fs::write(
        env.work().join("laptop.yaml"),
        format!("{platforms}auth:\n  writeback:\n    backend: local\n    local: {{ keychain: off }}\n{gitlab}"),
    )
    .unwrap();
    env.config(&format!(
        "{platforms}auth:\n  writeback:\n    backend: gitlab\n{gitlab}http: {{ retries: 1, timeout_seconds: 10 }}\n"
    ));

    // 1. First tokens, straight into new masked + protected + hidden variables.
    let (rt, stderr) = login_creating_variables(&env);
    let at = variable(&env, "TIKTOK_ACCESS_TOKEN");
    for v in [&rt, &at] {
        assert!(v.masked && v.protected && v.hidden, "{} is {v:?}", v.key);
    }
    common::assert_contains(&stderr, &["Created TIKTOK_REFRESH_TOKEN"]);
    assert!(sim.tiktok_is_live(&rt.value));
    // Nothing went to the laptop's local store.
    assert!(!env.work().join("credentials.yaml").exists());

    // 2. The generated job, run for real.
    env.ev(&[
        "--config",
        "evertoken.yaml",
        "schedule",
        "gitlab",
        "--write",
    ])
    .expect_code(0);
    std::fs::write(
        env.work().join(".gitlab-ci.yml"),
        "include:\n  - local: evertoken.gitlab-ci.yml\n\n\
         post:\n  extends: .evertoken\n  resource_group: evertoken\n  rules:\n    - if: $CI_PIPELINE_SOURCE == \"schedule\"\n  script:\n\
         \x20   - eval \"$(evertoken --config evertoken.yaml auth env tiktok)\"\n\
         \x20   - test -n \"$TIKTOK_ACCESS_TOKEN\"\n\
         \x20   - printf %s \"$TIKTOK_ACCESS_TOKEN\" | sha256sum | cut -c1-64 > posted-with.sha256\n",
    )
    .unwrap();
    git(&env.work(), &["init", "-q", "-b", "main"]);
    git(
        &env.work(),
        &[
            "remote",
            "add",
            "origin",
            "https://gitlab.example.invalid/acme/publisher.git",
        ],
    );
    git(&env.work(), &["add", "-A"]);
    git(&env.work(), &["commit", "-q", "-m", "evertoken schedule"]);
    // What GitLab puts in a job's environment: the variables as they are now.
    let job_vars = |env: &TestEnv| {
        vec![
            ("GITLAB_TOKEN", GITLAB_TOKEN.to_owned()),
            ("TIKTOK_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            (
                "TIKTOK_REFRESH_TOKEN",
                variable(env, "TIKTOK_REFRESH_TOKEN").value,
            ),
            (
                "TIKTOK_ACCESS_TOKEN",
                variable(env, "TIKTOK_ACCESS_TOKEN").value,
            ),
        ]
    };
    let (ok, log) = run_job(&env, &gcl, "evertoken-refresh", &job_vars(&env));
    let new_rt = variable(&env, "TIKTOK_REFRESH_TOKEN");
    env.secret(&new_rt.value);
    env.secret(&variable(&env, "TIKTOK_ACCESS_TOKEN").value);
    env.assert_no_leak(&log);
    assert!(ok, "the scheduled job failed:\n{log}");
    // The locally built binary was on PATH: the install step fetched and built nothing.
    assert!(!log.contains("no prebuilt evertoken"), "{log}");
    common::assert_contains(&log, &["rotated"]);
    assert_ne!(new_rt.value, rt.value, "rotated and written back");
    assert!(new_rt.masked && new_rt.protected && new_rt.hidden);
    assert_eq!(sim.tiktok_live_refresh_tokens(), vec![new_rt.value.clone()]);
    assert!(
        env.work().join("evertoken.prom").is_file(),
        "metrics artifact"
    );

    // 3. A posting job gets its access token from evertoken. The token written an
    // instant ago is valid for a day (evertoken recorded its expiry beside the
    // journal, since GitLab keeps none): no new rotation is needed.
    let rotations = sim.stats().rotations;
    let (ok, log) = run_job(&env, &gcl, "post", &job_vars(&env));
    let current_at = variable(&env, "TIKTOK_ACCESS_TOKEN").value;
    env.secret(&current_at);
    env.secret(&variable(&env, "TIKTOK_REFRESH_TOKEN").value);
    env.assert_no_leak(&log);
    assert!(ok, "the posting job failed:\n{log}");
    let posted = std::fs::read_to_string(env.work().join("posted-with.sha256")).unwrap();
    let expected = common::sha256_hex(&current_at);
    assert_eq!(
        posted.trim(),
        expected,
        "the posting step used the token GitLab now holds"
    );
    // The provider's only live refresh token is the one in GitLab, and nobody ever
    // presented a rotated-away one: evertoken was the only rotator.
    assert_eq!(
        sim.tiktok_live_refresh_tokens(),
        vec![variable(&env, "TIKTOK_REFRESH_TOKEN").value]
    );
    assert_eq!(sim.stats().reused_rotated_tokens, 0);
    assert_eq!(
        sim.stats().rotations,
        rotations,
        "the posting step rotated nothing"
    );
}

#[test]
fn create_variable_on_a_gitlab_without_hidden_variables_and_usage_errors() {
    let env = TestEnv::new();
    let sim = project_and_app(&env, false);
    let base = env.base_url();
    std::fs::write(
        env.work().join("laptop.yaml"),
        format!(
            "{}auth:\n  writeback:\n    gitlab: {{ project: \"4242\", api_url: \"{base}/api/v4\" }}\n",
            tiktok_section(&env)
        ),
    )
    .unwrap();
    // --create-variable needs the gitlab store; an unknown store is a usage error.
    login_usage_error(&env, &["--create-variable"]);
    login_usage_error(&env, &["--store", "s3"]).stderr_has(&["unknown store"]);

    let (rt, stderr) = login_creating_variables(&env);
    assert!(rt.masked && rt.protected && !rt.hidden, "{rt:?}");
    common::assert_contains(&stderr, &["no hidden variables"]);

    // A second login updates the existing variables and creates nothing.
    let writes = sim.gitlab_writes();
    let (_, stderr) = login_creating_variables(&env);
    assert!(!stderr.contains("Created"), "{stderr}");
    assert_eq!(sim.gitlab_writes(), writes + 2, "two PUTs, no POST");
}
