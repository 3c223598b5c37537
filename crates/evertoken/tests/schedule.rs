//! Schedules: `evertoken schedule gitlab|github-actions|systemd [--write]`. Each
//! generated schedule is checked by its real validator where one exists:
//! `actionlint` for the workflow, `systemd-analyze verify` for the units, and a
//! YAML parse with the expected keys for the GitLab job.

use crate::common;

use std::path::{Path, PathBuf};

use common::TestEnv;
use serde_norway::Value;

fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// A config with TikTok and one named Instagram account.
fn config(env: &TestEnv, backend: &str) {
    env.config(&format!(
        "platforms:
  tiktok: {{ enabled: true, client_key: test-client-key }}
  instagram: {{ enabled: true, accounts: [brand-a] }}
auth:
  writeback: {{ backend: {backend} }}
"
    ));
}

/// actionlint from the ops venv (scripts/setup-ops-tools) or PATH; under CI=true
/// its absence fails the test.
fn actionlint() -> Option<PathBuf> {
    common::test_tool("actionlint", &["target/test-tools/ops-venv/bin/actionlint"])
}

/// `actionlint -no-color` accepts the workflow at `path` (its text shown when not).
fn lint(actionlint: &Path, env: &TestEnv, path: &Path, text: &str) {
    common::tool_ok(
        std::process::Command::new(actionlint)
            .arg("-no-color")
            .arg(path)
            .current_dir(env.work()),
        &format!("actionlint rejects the workflow:\n{text}"),
    );
}

#[test]
fn gitlab_job_runs_refresh_weekly_with_resource_group_cache_and_artifacts() {
    let env = TestEnv::new();
    config(&env, "local");
    let out = env.ev(&["schedule", "gitlab"]);
    out.expect_code(0);
    // The configured write-back would lose rotated tokens in CI: say so.
    out.stderr_has(&["auth.writeback.backend: gitlab"]);

    let doc = yaml(&out.stdout);
    let job = &doc["evertoken-refresh"];
    assert!(job.is_mapping(), "{}", out.stdout);
    assert_eq!(job["resource_group"].as_str(), Some("evertoken"));
    let script = strings(&job["script"]).join("\n");
    assert!(
        script.contains("evertoken --config evertoken.yaml auth refresh all"),
        "the job names its config: {script}"
    );
    common::assert_contains(&script, &["--metrics-file evertoken.prom"]);
    let rules = format!("{:?}", job["rules"]);
    common::assert_contains(&rules, &["$CI_PIPELINE_SOURCE == \\\"schedule\\\""]);
    // Install and journal cache live in a template posting jobs extend too.
    assert_eq!(job["extends"].as_str(), Some(".evertoken"));
    let job = &doc[".evertoken"];
    // The journal survives the job in the CI cache.
    assert_eq!(
        job["variables"]["XDG_STATE_HOME"].as_str(),
        Some("$CI_PROJECT_DIR/.evertoken-state")
    );
    let journal = &job["cache"][0];
    assert_eq!(strings(&journal["paths"]), [".evertoken-state/"]);
    assert_eq!(journal["when"].as_str(), Some("always"));
    // The binary is cached too, so a fallback build happens at most once.
    assert_eq!(
        strings(&job["cache"][1]["paths"]),
        [".evertoken-cargo/bin/"]
    );
    let job = &doc["evertoken-refresh"];
    assert_eq!(strings(&job["artifacts"]["paths"]), ["evertoken.prom"]);
    assert_eq!(job["artifacts"]["when"].as_str(), Some("always"));
    assert!(
        out.stdout.contains("masked and") && out.stdout.contains("protected"),
        "setup notes for the variables"
    );

    // --write puts it where the include line expects it.
    env.ev(&["schedule", "gitlab", "--write"]).expect_code(0);
    let written = std::fs::read_to_string(env.work().join("evertoken.gitlab-ci.yml")).unwrap();
    assert_eq!(yaml(&written), doc);
}

#[test]
fn github_actions_workflow_passes_actionlint_and_maps_every_variable() {
    let env = TestEnv::new();
    env.config(
        "platforms:
  tiktok: { enabled: true, client_key: test-client-key }
  instagram: { enabled: true, accounts: [brand-a] }
auth:
  writeback:
    backend: github-actions
    github_actions: { token_env: EVERTOKEN_ADMIN_TOKEN }
",
    );
    let out = env.ev(&["schedule", "github-actions", "--write"]);
    out.expect_code(0);
    assert!(!out.stderr.contains("warning:"), "{}", out.stderr);
    let path = env.work().join(".github/workflows/evertoken.yml");
    let text = std::fs::read_to_string(&path).unwrap();

    let doc = yaml(&text);
    assert!(
        doc["on"]["schedule"][0]["cron"].as_str().is_some(),
        "{text}"
    );
    assert_eq!(
        doc["concurrency"]["group"].as_str(),
        Some("evertoken"),
        "{text}"
    );
    assert_eq!(
        doc["concurrency"]["cancel-in-progress"].as_bool(),
        Some(false),
        "{text}"
    );
    let job = &doc["jobs"]["refresh"];
    let env_map = &job["env"];
    for var in [
        "TIKTOK_REFRESH_TOKEN",
        "TIKTOK_ACCESS_TOKEN",
        "TIKTOK_CLIENT_SECRET",
        "INSTAGRAM_ACCESS_TOKEN_BRAND_A",
    ] {
        assert_eq!(
            env_map[var].as_str(),
            Some(format!("${{{{ secrets.{var} }}}}").as_str()),
            "{var}: {text}"
        );
    }
    // The write-back's token comes from a secret under the name the config reads.
    assert_eq!(
        env_map["EVERTOKEN_ADMIN_TOKEN"].as_str(),
        Some("${{ secrets.EVERTOKEN_SECRETS_TOKEN }}"),
        "{text}"
    );
    let runs: Vec<&str> = job["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect();
    assert!(
        runs.iter()
            .any(|r| r.contains("evertoken --config evertoken.yaml auth refresh all")),
        "{runs:?}"
    );
    // The journal is restored first and saved last, even when the run fails.
    let steps = job["steps"].as_sequence().unwrap();
    let uses = |s: &Value| s["uses"].as_str().unwrap_or("").to_owned();
    assert!(
        uses(&steps[1]).starts_with("actions/cache/restore@"),
        "{text}"
    );
    let save = steps
        .iter()
        .find(|s| uses(s).starts_with("actions/cache/save@"))
        .expect("a cache save step");
    assert_eq!(save["if"].as_str(), Some("always()"), "{text}");
    assert_eq!(
        save["with"]["path"].as_str(),
        Some(".evertoken-state"),
        "{text}"
    );
    assert_eq!(save["with"]["key"], steps[1]["with"]["key"], "{text}");

    let Some(actionlint) = actionlint() else {
        return;
    };
    lint(&actionlint, &env, &path, &text);
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let env = TestEnv::new();
    config(&env, "local");
    let out = env.ev(&["schedule", "systemd", "--write"]);
    out.expect_code(0);
    assert!(
        out.stderr.contains("systemctl --user daemon-reload"),
        "next steps: {}",
        out.stderr
    );
    let dir = env.path("config/systemd/user");
    let service = dir.join("evertoken-refresh.service");
    let timer = dir.join("evertoken-refresh.timer");
    let s = std::fs::read_to_string(&service).unwrap();
    let t = std::fs::read_to_string(&timer).unwrap();
    let exec = s
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let bin = std::fs::canonicalize(env!("CARGO_BIN_EXE_evertoken")).unwrap();
    assert!(
        exec.starts_with(&format!(
            "{} --config {}",
            bin.display(),
            env.work().join("evertoken.yaml").display()
        )),
        "{exec}"
    );
    common::assert_contains(exec, &["auth refresh all"]);
    common::assert_contains(&s, &["Type=oneshot"]);
    // Secrets come from an environment file, created empty and private by --write.
    let env_file = env.path("config/evertoken/evertoken.env");
    common::assert_contains(&s, &[&format!("EnvironmentFile={}", env_file.display())]);
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), "");
    assert_eq!(common::mode(&env_file), 0o600);
    // Lingering off (no /var/lib/systemd/linger/$USER here): say the command.
    let user = std::env::var("USER").unwrap_or_default();
    if !user.is_empty() && !Path::new("/var/lib/systemd/linger").join(&user).exists() {
        out.stderr_has(&["lingering is off", "loginctl enable-linger"]);
    }
    common::assert_contains(
        &t,
        &["Persistent=true", "OnCalendar=", "WantedBy=timers.target"],
    );

    let Some(stderr) = common::systemd_verify(&env, true, &[&service, &timer]) else {
        return;
    };
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify:\n{stderr}\n{s}\n{t}"
    );
}

#[test]
fn write_refuses_to_replace_a_different_file_unless_forced() {
    let env = TestEnv::new();
    let path = env.work().join("evertoken.gitlab-ci.yml");
    std::fs::write(&path, "# my own job\n").unwrap();
    env.ev(&["schedule", "gitlab", "--write"])
        .expect_code(2)
        .stderr_has(&["exists with other contents", "--force"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# my own job\n");

    env.ev(&["schedule", "gitlab", "--write", "--force"])
        .expect_code(0);
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("evertoken-refresh:")
    );
    // Writing the same contents again is fine.
    assert_eq!(env.ev(&["schedule", "gitlab", "--write"]).code, 0);
}

#[test]
fn unknown_scheduler_is_a_usage_error() {
    let env = TestEnv::new();
    env.ev(&["schedule", "cron"])
        .expect_code(2)
        .stderr_has(&["gitlab", "systemd"]);
    assert!(!Path::new(&env.work().join("evertoken.gitlab-ci.yml")).exists());
}

/// `evertoken <args>` (exit 0) for [`pipeline_config`] with `writeback`; returns
/// the env and the run.
fn pipeline(writeback: &str, args: &[&str]) -> (TestEnv, common::Output) {
    let env = TestEnv::new();
    pipeline_config(&env, writeback);
    let out = env.ev(args);
    out.expect_code(0);
    (env, out)
}

/// GitHub Actions secrets, written with the token in `EVERTOKEN_ADMIN_TOKEN`.
const ACTIONS_STORE: &str =
    "    backend: github-actions\n    github_actions: { token_env: EVERTOKEN_ADMIN_TOKEN }";
/// A Vault server's KV store.
const VAULT_STORE: &str =
    "    backend: vault\n    vault: { address: \"https://vault.example:8200\" }";

/// [`pipeline`] writing back to GitLab.
fn gitlab_pipeline(args: &[&str]) -> (TestEnv, common::Output) {
    pipeline("    backend: gitlab", args)
}

/// A posting pipeline's config: four platforms (two TikTok accounts), the given
/// write-back and Slack alerts whose URL comes from the environment.
fn pipeline_config(env: &TestEnv, writeback: &str) {
    env.config(&format!(
        "platforms:
  instagram: {{ enabled: true, app_id: '1234567890' }}
  youtube: {{ enabled: true, client_id: test.apps.googleusercontent.com }}
  tiktok: {{ enabled: true, client_key: test-client-key, accounts: [brand-a, brand-b] }}
  linkedin: {{ enabled: true, client_id: test-li-client }}
auth:
  writeback:
{writeback}
  alerts:
    backend: webhook
    webhook: {{ format: slack }}
"
    ));
}

/// What that config makes evertoken read, written out by hand from the rules (one
/// variable per token slot and account, each platform's client secret, the store's
/// credential, the alert URL): if generation forgets one, these tests fail.
const PIPELINE_VARS: &[&str] = &[
    "INSTAGRAM_ACCESS_TOKEN",
    "YOUTUBE_REFRESH_TOKEN",
    "YOUTUBE_CLIENT_SECRET",
    "TIKTOK_REFRESH_TOKEN_BRAND_A",
    "TIKTOK_ACCESS_TOKEN_BRAND_A",
    "TIKTOK_REFRESH_TOKEN_BRAND_B",
    "TIKTOK_ACCESS_TOKEN_BRAND_B",
    "TIKTOK_CLIENT_SECRET",
    "LINKEDIN_ACCESS_TOKEN",
    "LINKEDIN_REFRESH_TOKEN",
    "LINKEDIN_CLIENT_SECRET",
    "ALERT_WEBHOOK_URL",
];

/// The `#   NAME  what` lines of a generated file's variable listing.
fn listed(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("#   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| {
            w.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_gitlab_job_names_its_config_and_lists_every_variable_it_reads() {
    let (env, out) = gitlab_pipeline(&["--config", "evertoken.yaml", "schedule", "gitlab"]);
    let vars = listed(&out.stdout);
    for v in PIPELINE_VARS.iter().chain(&["GITLAB_TOKEN"]) {
        assert!(
            vars.contains(&v.to_string()),
            "{v} missing from:\n{}",
            out.stdout
        );
    }
    let doc = yaml(&out.stdout);
    let script = strings(&doc["evertoken-refresh"]["script"]).join("\n");
    common::assert_contains(&script, &["--config evertoken.yaml"]);
    // Installs a prebuilt binary, falls back to one cached build; skipped when on PATH.
    let before = strings(&doc[".evertoken"]["before_script"]).join("\n");
    common::assert_contains(
        &before,
        &[
            "command -v evertoken",
            "sha256sum -c",
            "url=\"https://",
            "/releases/download/v",
        ],
    );
    let download = before.find("curl").unwrap();
    let build = before.find("cargo install").unwrap();
    assert!(
        download < build,
        "download first, build only as the fallback"
    );

    // A config elsewhere is named as the job will see it (the repository root).
    let other = env.work().join("ci");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(env.work().join("evertoken.yaml"), other.join("tokens.yaml")).unwrap();
    let out = env.ev(&["--config", "ci/tokens.yaml", "schedule", "gitlab"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("evertoken --config ci/tokens.yaml auth refresh all")
    );
}

#[test]
fn the_actions_workflow_maps_every_variable_the_config_reads() {
    let (_env, out) = pipeline(ACTIONS_STORE, &["schedule", "github-actions"]);
    let doc = yaml(&out.stdout);
    let env_map = &doc["jobs"]["refresh"]["env"];
    for v in PIPELINE_VARS {
        assert_eq!(
            env_map[*v].as_str(),
            Some(format!("${{{{ secrets.{v} }}}}").as_str()),
            "{v} missing:\n{}",
            out.stdout
        );
    }
    assert!(env_map["EVERTOKEN_ADMIN_TOKEN"].as_str().is_some());
}

#[test]
fn the_systemd_service_lists_every_variable_and_reads_the_environment_file() {
    let (_env, out) = pipeline(VAULT_STORE, &["schedule", "systemd"]);
    let vars = listed(&out.stdout);
    for v in PIPELINE_VARS
        .iter()
        .chain(&["VAULT_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID"])
    {
        assert!(
            vars.contains(&v.to_string()),
            "{v} missing from:\n{}",
            out.stdout
        );
    }
    // The address is in the config, so VAULT_ADDR is not needed.
    assert!(!vars.contains(&"VAULT_ADDR".to_string()), "{}", out.stdout);
    out.stdout_has(&["EnvironmentFile="]);
}

#[test]
fn shards_become_a_gitlab_parallel_job_and_an_actions_matrix() {
    let (env, out) = gitlab_pipeline(&["schedule", "gitlab", "--shards", "4"]);
    let doc = yaml(&out.stdout);
    let job = &doc["evertoken-refresh"];
    assert_eq!(job["parallel"].as_u64(), Some(4), "{}", out.stdout);
    let script = strings(&job["script"]).join("\n");
    common::assert_contains(&script, &["auth refresh all --shard ci"]);
    // Each shard keeps its own journal.
    assert_eq!(
        job["cache"][0]["key"].as_str(),
        Some("evertoken-journal-$CI_NODE_INDEX")
    );

    pipeline_config(&env, "    backend: github-actions");
    env.ev(&["schedule", "github-actions", "--shards", "3", "--write"])
        .expect_code(0);
    let path = env.work().join(".github/workflows/evertoken.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc = yaml(&text);
    let job = &doc["jobs"]["refresh"];
    let shards: Vec<u64> = job["strategy"]["matrix"]["shard"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(shards, [1, 2, 3]);
    assert_eq!(job["strategy"]["fail-fast"].as_bool(), Some(false));
    common::assert_contains(&text, &["auth refresh all --shard ${{ matrix.shard }}/3"]);
    if let Some(actionlint) = actionlint() {
        lint(&actionlint, &env, &path, &text);
    }
    // Usage errors: shards for systemd, a bad count, a bad install source.
    assert_eq!(env.ev(&["schedule", "systemd", "--shards", "2"]).code, 2);
    assert_eq!(env.ev(&["schedule", "gitlab", "--shards", "0"]).code, 2);
    assert_eq!(
        env.ev(&[
            "schedule",
            "gitlab",
            "--install-from",
            "https://u:p@x.example/e.tar.gz"
        ])
        .code,
        2
    );
}

#[test]
fn install_from_a_mirror_or_cargo() {
    let env = TestEnv::new();
    pipeline_config(&env, "    backend: gitlab");
    let url = "https://mirror.example/evertoken/evertoken-x86_64-unknown-linux-gnu.tar.gz";
    env.ev(&["schedule", "gitlab", "--install-from", url])
        .expect_code(0)
        .stdout_has(&[&format!("url=\"{url}\"")]);
    let out = env.ev(&["schedule", "gitlab", "--install-from", "cargo"]);
    out.expect_code(0);
    assert!(!out.stdout.contains("curl"), "{}", out.stdout);
    out.stdout_has(&["cargo install --locked"]);
}

#[test]
fn an_existing_environment_file_is_kept_and_a_readable_one_is_flagged() {
    let env = TestEnv::new();
    config(&env, "local");
    let env_file = env.work().join("secrets.env");
    std::fs::write(&env_file, "TIKTOK_CLIENT_SECRET=kept\n").unwrap();
    common::set_mode(&env_file, 0o644);
    let out = env.ev(&[
        "schedule",
        "systemd",
        "--write",
        "--env-file",
        env_file.to_str().unwrap(),
    ]);
    out.expect_code(0);
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        "TIKTOK_CLIENT_SECRET=kept\n",
        "never emptied"
    );
    out.stderr_has(&["chmod 600"]);
    let unit =
        std::fs::read_to_string(env.path("config/systemd/user/evertoken-refresh.service")).unwrap();
    common::assert_contains(&unit, &[&format!("EnvironmentFile={}", env_file.display())]);
}

/// Keys off the host: the broker snippets give a CI job a GitHub App token from
/// `evertoken broker serve` with the job's own OIDC ID token, ready to copy.
#[test]
fn broker_snippets_for_actions_and_gitlab_request_an_id_token_and_pass_actionlint() {
    let env = TestEnv::new();
    let url = "https://broker.example.com:8717";
    let out = env.ev(&[
        "schedule",
        "broker-github-actions",
        "--broker",
        url,
        "--policy",
        "site-ci",
        "--write",
    ]);
    out.expect_code(0);
    assert!(!out.stderr.contains("warning:"), "{}", out.stderr);
    let path = env
        .work()
        .join(".github/workflows/evertoken-github-token.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc = yaml(&text);
    // The job may ask the runner for its OIDC ID token, and nothing more.
    assert_eq!(
        doc["permissions"]["id-token"].as_str(),
        Some("write"),
        "{text}"
    );
    assert_eq!(doc["permissions"]["contents"].as_str(), Some("read"));
    let steps = format!("{:?}", doc["jobs"]["with-github-token"]["steps"]);
    common::assert_contains(
        &steps,
        &[&format!(
            "evertoken github token --broker {url} --policy site-ci --audience evertoken"
        )],
    );
    if let Some(lint) = actionlint() {
        common::tool_ok(std::process::Command::new(lint).arg(&path), "actionlint");
    }

    let out = env.ev(&[
        "schedule",
        "broker-gitlab",
        "--broker",
        url,
        "--policy",
        "site-ci",
        "--audience",
        "broker.example.com",
    ]);
    out.expect_code(0);
    let doc = yaml(&out.stdout);
    let job = &doc[".evertoken-github-token"];
    assert_eq!(
        job["id_tokens"]["EVERTOKEN_ID_TOKEN"]["aud"].as_str(),
        Some("broker.example.com"),
        "{}",
        out.stdout
    );
    let before = strings(&job["before_script"]).join("\n");
    common::assert_contains(
        &before,
        &[&format!(
            "evertoken github token --broker {url} --policy site-ci --id-token-env EVERTOKEN_ID_TOKEN"
        )],
    );
}

#[test]
fn broker_snippets_refuse_what_would_break_the_file() {
    let env = TestEnv::new();
    // `schedule <kind> --broker <url>`, then the rest.
    let snippet = |kind: &'static str, url: &'static str, rest: &[&'static str]| {
        [&["schedule", kind, "--broker", url][..], rest].concat()
    };
    for args in [
        // no policy
        snippet("broker-gitlab", "https://b.example", &[]),
        // plain http to another host
        snippet("broker-gitlab", "http://b.example", &["--policy", "p"]),
        // YAML / expression injection through the names
        snippet(
            "broker-github-actions",
            "https://b.example",
            &["--policy", "p\nevil: job"],
        ),
        snippet(
            "broker-github-actions",
            "https://b.example",
            &["--policy", "p", "--audience", "${{ secrets.X }}"],
        ),
        // --broker on a refresh schedule
        snippet("gitlab", "https://b.example", &["--policy", "p"]),
    ] {
        let out = env.ev(&args);
        assert_eq!(out.code, 2, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
}
