//! `evertoken doctor` (issue 7): one row per check with a status and a fix hint,
//! `--json`, exit 1 when any check fails, and nothing changed. Each test plants
//! one misconfiguration and asserts its row and hint.

use crate::common;

use common::{TestEnv, days_from};
use jiff::Timestamp;
use serde_json::Value;

const CLIENT_KEY: &str = "test-client-key";
const TT: &str = "rft.test-tiktok-not-a-real-secret-0301";
const TT_SECRET: &str = "test-tiktok-client-secret-xyz";
/// The `auth:` block of the local store, keychain off.
const LOCAL_STORE: &str = "auth:\n  writeback: { backend: local, local: { keychain: off } }\n";

fn config(env: &TestEnv, extra: &str) {
    config_at(env, &env.base_url(), extra);
}

/// [`config`] with TikTok at `base`.
fn config_at(env: &TestEnv, base: &str, extra: &str) {
    env.config(&format!(
        "platforms:
  tiktok: {{ enabled: true, base_url: \"{base}\", client_key: {CLIENT_KEY} }}
http: {{ timeout_seconds: 2, retries: 0 }}
{extra}"
    ));
}

/// TikTok with its client secret and a refresh token good for 120 days.
fn healthy(env: &TestEnv) {
    env.secret(TT);
    env.secret(TT_SECRET);
    let now = Timestamp::now();
    env.sim.sim().tiktok_add_client(CLIENT_KEY, TT_SECRET);
    env.sim
        .sim()
        .tiktok_add_refresh_token(CLIENT_KEY, TT, days_from(now, 120));
    config(env, LOCAL_STORE);
    env.credentials(&format!(
        "TIKTOK_REFRESH_TOKEN:\n  value: \"{TT}\"\n  expires_at: {}\nTIKTOK_CLIENT_SECRET: {TT_SECRET}\n",
        days_from(now, 120)
    ));
}

/// `doctor --json`, these variables set, exits `code`; returns its report.
#[track_caller]
fn doctor_exits(env: &TestEnv, code: i32, vars: &[(&str, &str)]) -> Value {
    let out = env.ev_env(&["doctor", "--json"], vars);
    let doc = out.json();
    assert_eq!(out.code, code, "{doc:#}\nstderr: {}", out.stderr);
    doc
}

/// The row `check` has `status`, and each `(field, needle)` in it; returns the row.
#[track_caller]
fn expect_row<'a>(doc: &'a Value, check: &str, status: &str, has: &[(&str, &str)]) -> &'a Value {
    let r = row(doc, check);
    assert_eq!(r["status"], status, "{r}");
    common::assert_fields(r, has);
    r
}

/// The row named `check` (the first one).
fn row<'a>(doc: &'a Value, check: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no `{check}` row in {doc:#}"))
}

#[test]
fn a_healthy_setup_passes_shows_sources_not_values_and_changes_nothing() {
    let env = TestEnv::new();
    healthy(&env);
    let creds = env.work().join("credentials.yaml");
    let before = std::fs::read(&creds).unwrap();
    let doc = doctor_exits(&env, 0, &[]);
    assert_eq!(doc["failed"], 0, "{doc:#}");
    assert_eq!(row(&doc, "config")["status"], "ok");
    // The source is shown; of the token, the prefix only.
    expect_row(
        &doc,
        "secret TIKTOK_CLIENT_SECRET",
        "ok",
        &[("detail", "credentials.yaml")],
    );
    common::assert_fields(
        row(&doc, "token TIKTOK_REFRESH_TOKEN"),
        &[("detail", "rft.test…")],
    );
    assert_eq!(row(&doc, "write-back pre-flight")["status"], "ok");
    assert_eq!(row(&doc, "keychain")["status"], "ok");
    // The simulator's Date header matches.
    expect_row(&doc, "clock skew", "ok", &[]);
    // No alert backend: worth a warning and a hint, not a failure.
    expect_row(&doc, "alerts", "warn", &[("hint", "webhook")]);

    assert_eq!(
        std::fs::read(&creds).unwrap(),
        before,
        "doctor changes nothing"
    );
    assert!(env.sim.sim().tiktok_is_live(TT), "doctor never refreshes");

    // The table: one row per check, hints indented under their row.
    env.ev(&["doctor"]).expect_code(0).stdout_has(&[
        "CHECK",
        "clock skew",
        "hint: set `auth.alerts.backend",
        "0 failed",
    ]);
}

#[test]
fn a_credentials_file_readable_by_others_fails_with_chmod_hint() {
    let env = TestEnv::new();
    healthy(&env);
    let creds = env.work().join("credentials.yaml");
    common::set_mode(&creds, 0o644);
    let doc = doctor_exits(&env, 1, &[]);
    expect_row(
        &doc,
        "write-back (local)",
        "fail",
        &[
            ("detail", "0644"),
            ("hint", &format!("chmod 600 {}", creds.display())),
        ],
    );
    assert_eq!(
        common::mode(&creds),
        0o644,
        "doctor reports, it does not fix"
    );
}

#[test]
fn a_missing_client_secret_fails_with_where_to_put_it() {
    let env = TestEnv::new();
    healthy(&env);
    env.credentials(&format!("TIKTOK_REFRESH_TOKEN: \"{TT}\"\n"));
    let doc = doctor_exits(&env, 1, &[]);
    expect_row(
        &doc,
        "secret TIKTOK_CLIENT_SECRET",
        "fail",
        &[
            ("detail", "not set"),
            ("hint", "export TIKTOK_CLIENT_SECRET="),
        ],
    );
}

#[test]
fn a_missing_refresh_token_fails_with_the_login_command() {
    let env = TestEnv::new();
    healthy(&env);
    env.credentials(&format!("TIKTOK_CLIENT_SECRET: {TT_SECRET}\n"));
    let doc = doctor_exits(&env, 1, &[]);
    expect_row(
        &doc,
        "token TIKTOK_REFRESH_TOKEN",
        "fail",
        &[("hint", "auth login tiktok")],
    );
}

#[test]
fn an_unreachable_write_back_host_fails_the_preflight() {
    let env = TestEnv::new();
    env.secret("test-gitlab-token-not-a-real-secret");
    config(
        &env,
        "auth:\n  writeback:\n    backend: gitlab\n    gitlab: { project: \"1\", api_url: \"http://gitlab.evertoken-test.invalid/api/v4\" }\n",
    );
    let doc = doctor_exits(
        &env,
        1,
        &[
            ("GITLAB_TOKEN", "test-gitlab-token-not-a-real-secret"),
            ("TIKTOK_CLIENT_SECRET", TT_SECRET),
            ("TIKTOK_REFRESH_TOKEN", TT),
        ],
    );
    // Names the host, and hints.
    let r = expect_row(
        &doc,
        "write-back pre-flight",
        "fail",
        &[("detail", "gitlab.evertoken-test.invalid")],
    );
    assert!(r["hint"].as_str().is_some_and(|h| !h.is_empty()), "{r}");
}

#[test]
fn no_config_and_a_mistyped_key_are_failed_rows_with_hints() {
    let env = TestEnv::new();
    let doc = doctor_exits(&env, 1, &[]);
    expect_row(&doc, "config", "fail", &[("hint", "evertoken.yaml")]);

    env.config("platforms:\n  tiktok: { enabeld: true, client_key: k }\n");
    let doc = doctor_exits(&env, 1, &[]);
    let r = row(&doc, "config");
    common::assert_fields(r, &[("detail", "platforms.tiktok.enabeld")]);
    assert_eq!(r["hint"], "did you mean `enabled`?");
}

#[test]
fn github_key_too_open_and_missing_token_file_are_caught_then_pass_once_fixed() {
    let env = TestEnv::new();
    healthy(&env);
    let key = env.path("config/evertoken/github-app.pem");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    // Not a key: doctor only looks at the file's mode, never reads it.
    std::fs::write(&key, "not a key\n").unwrap();
    common::set_mode(&key, 0o644);
    let token_file = env.path("config/evertoken/github-token.env");
    config(
        &env,
        &format!(
            "auth:\n  writeback: {{ backend: local, local: {{ keychain: off }} }}\ngithub:\n  apps:\n    default:\n      app_id: 1\n      installation_id: 2\n      private_key_path: {}\n      token_env_file: {}\n",
            key.display(),
            token_file.display()
        ),
    );
    let doc = doctor_exits(&env, 1, &[]);
    expect_row(
        &doc,
        "github default: private key",
        "fail",
        &[("hint", "chmod 600")],
    );
    expect_row(
        &doc,
        "github default: token file",
        "fail",
        &[("detail", "missing"), ("hint", "evertoken github refresh")],
    );

    // Fixed: key 0600, a fresh token file. The rows pass, with the prefix only.
    common::set_mode(&key, 0o600);
    let gh = env.secret("test-gh-installation-token-not-a-real-secret-0302");
    std::fs::write(
        &token_file,
        format!("GH_TOKEN={gh}\nGITHUB_TOKEN={gh}\nGITHUB_TOKEN_EXPIRES_AT=2099-01-01T00:00:00Z\n"),
    )
    .unwrap();
    common::set_mode(&token_file, 0o600);
    let doc = doctor_exits(&env, 0, &[]);
    assert_eq!(row(&doc, "github default: private key")["status"], "ok");
    expect_row(
        &doc,
        "github default: token file",
        "ok",
        &[("detail", "test-gh-…")],
    );
    // The timer's state is reported, never judged.
    let timer = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["check"]
                .as_str()
                .unwrap()
                .starts_with("github default: timer")
        })
        .expect("a timer row");
    assert_ne!(timer["status"], "fail", "{timer}");
}

#[test]
fn an_unprotected_gitlab_variable_fails_the_preflight_and_nothing_is_written() {
    const GL_TOKEN: &str = "test-gitlab-api-token-not-a-real-secret";
    let env = TestEnv::new();
    let sim = env.gitlab_project(GL_TOKEN);
    env.secret(TT);
    env.secret(TT_SECRET);
    sim.tiktok_add_client(CLIENT_KEY, TT_SECRET);
    sim.tiktok_add_refresh_token(CLIENT_KEY, TT, days_from(Timestamp::now(), 120));
    let mut var = evertoken_sim::GitLabVariable::masked_protected("TIKTOK_REFRESH_TOKEN", TT);
    var.protected = false;
    sim.gitlab_set_variable(evertoken_sim::GitLabScope::Project(4242), var);
    config(
        &env,
        &format!(
            "auth:\n  writeback:\n    backend: gitlab\n    gitlab: {{ project: \"acme/publisher\", api_url: \"{}/api/v4\" }}\n",
            env.base_url()
        ),
    );
    let doc = doctor_exits(
        &env,
        1,
        &[
            ("GITLAB_TOKEN", GL_TOKEN),
            ("TIKTOK_CLIENT_SECRET", TT_SECRET),
        ],
    );
    expect_row(
        &doc,
        "write-back pre-flight",
        "fail",
        &[
            ("detail", "TIKTOK_REFRESH_TOKEN"),
            ("detail", "protected"),
            ("hint", "Protect variable"),
        ],
    );
    assert_eq!(sim.gitlab_writes(), 0, "doctor never writes");
    assert!(sim.tiktok_is_live(TT), "doctor never refreshes");
}

#[test]
fn a_webhook_backend_without_its_url_fails_and_with_it_passes() {
    let env = TestEnv::new();
    healthy(&env);
    config(
        &env,
        "auth:\n  writeback: { backend: local, local: { keychain: off } }\n  alerts: { backend: webhook }\n",
    );
    let doc = doctor_exits(&env, 1, &[]);
    expect_row(&doc, "alerts", "fail", &[("hint", "ALERT_WEBHOOK_URL")]);

    let url = env.secret("https://hooks.slack.com/services/TEST/NOT/a-real-webhook-secret");
    let doc = doctor_exits(&env, 0, &[("ALERT_WEBHOOK_URL", &url)]);
    expect_row(&doc, "alerts", "ok", &[("detail", "slack")]);
}

/// A loopback HTTP server whose `Date` header is a day behind; it answers up to
/// `n` requests and stops.
fn skewed_server(n: usize) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(
            &Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_hours(24))
                .unwrap(),
        )
        .unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(n) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_skewed_clock_fails_with_a_time_sync_hint() {
    let env = TestEnv::new();
    healthy(&env);
    let base = skewed_server(4);
    config_at(&env, &base, LOCAL_STORE);
    let doc = doctor_exits(&env, 1, &[]);
    // A day off.
    expect_row(
        &doc,
        "clock skew",
        "fail",
        &[("detail", "+8640"), ("hint", "time sync")],
    );
}
