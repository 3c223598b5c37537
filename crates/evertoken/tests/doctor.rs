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

fn config(env: &TestEnv, extra: &str) {
    let base = env.base_url();
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
    config(
        env,
        "auth:\n  writeback: { backend: local, local: { keychain: off } }\n",
    );
    env.credentials(&format!(
        "TIKTOK_REFRESH_TOKEN:\n  value: \"{TT}\"\n  expires_at: {}\nTIKTOK_CLIENT_SECRET: {TT_SECRET}\n",
        days_from(now, 120)
    ));
}

fn doctor(env: &TestEnv) -> (i32, Value) {
    let out = env.ev(&["doctor", "--json"]);
    let doc = out.json();
    (out.code, doc)
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
    let (code, doc) = doctor(&env);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["failed"], 0, "{doc:#}");
    assert_eq!(row(&doc, "config")["status"], "ok");
    let secret = row(&doc, "secret TIKTOK_CLIENT_SECRET");
    assert_eq!(secret["status"], "ok", "{secret}");
    assert!(
        secret["detail"]
            .as_str()
            .unwrap()
            .contains("credentials.yaml"),
        "the source is shown: {secret}"
    );
    let token = row(&doc, "token TIKTOK_REFRESH_TOKEN");
    assert!(
        token["detail"].as_str().unwrap().contains("rft.test…"),
        "prefix only: {token}"
    );
    assert_eq!(row(&doc, "write-back pre-flight")["status"], "ok");
    assert_eq!(row(&doc, "keychain")["status"], "ok");
    let clock = row(&doc, "clock skew");
    assert_eq!(
        clock["status"], "ok",
        "the simulator's Date header matches: {clock}"
    );
    // No alert backend: worth a warning and a hint, not a failure.
    let alerts = row(&doc, "alerts");
    assert_eq!(alerts["status"], "warn");
    assert!(
        alerts["hint"].as_str().unwrap().contains("webhook"),
        "{alerts}"
    );

    assert_eq!(
        std::fs::read(&creds).unwrap(),
        before,
        "doctor changes nothing"
    );
    assert!(env.sim.sim().tiktok_is_live(TT), "doctor never refreshes");

    // The table: one row per check, hints indented under their row.
    let out = env.ev(&["doctor"]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains("CHECK") && out.stdout.contains("clock skew"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("hint: set `auth.alerts.backend"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("0 failed"), "{}", out.stdout);
}

#[test]
fn a_credentials_file_readable_by_others_fails_with_chmod_hint() {
    let env = TestEnv::new();
    healthy(&env);
    let creds = env.work().join("credentials.yaml");
    common::set_mode(&creds, 0o644);
    let (code, doc) = doctor(&env);
    assert_eq!(code, 1, "{doc:#}");
    let r = row(&doc, "write-back (local)");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(r["detail"].as_str().unwrap().contains("0644"), "{r}");
    assert!(
        r["hint"]
            .as_str()
            .unwrap()
            .contains(&format!("chmod 600 {}", creds.display())),
        "{r}"
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
    let (code, doc) = doctor(&env);
    assert_eq!(code, 1, "{doc:#}");
    let r = row(&doc, "secret TIKTOK_CLIENT_SECRET");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(r["detail"].as_str().unwrap().contains("not set"), "{r}");
    assert!(
        r["hint"]
            .as_str()
            .unwrap()
            .contains("export TIKTOK_CLIENT_SECRET="),
        "{r}"
    );
}

#[test]
fn a_missing_refresh_token_fails_with_the_login_command() {
    let env = TestEnv::new();
    healthy(&env);
    env.credentials(&format!("TIKTOK_CLIENT_SECRET: {TT_SECRET}\n"));
    let (code, doc) = doctor(&env);
    assert_eq!(code, 1, "{doc:#}");
    let r = row(&doc, "token TIKTOK_REFRESH_TOKEN");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(
        r["hint"].as_str().unwrap().contains("auth login tiktok"),
        "{r}"
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
    let out = env.run(
        env.cmd()
            .args(["doctor", "--json"])
            .env("GITLAB_TOKEN", "test-gitlab-token-not-a-real-secret")
            .env("TIKTOK_CLIENT_SECRET", TT_SECRET)
            .env("TIKTOK_REFRESH_TOKEN", TT),
    );
    assert_eq!(out.code, 1, "stderr: {}", out.stderr);
    let doc = out.json();
    let r = row(&doc, "write-back pre-flight");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("gitlab.evertoken-test.invalid"),
        "names the host: {r}"
    );
    assert!(r["hint"].as_str().is_some_and(|h| !h.is_empty()), "{r}");
}

#[test]
fn no_config_and_a_mistyped_key_are_failed_rows_with_hints() {
    let env = TestEnv::new();
    let (code, doc) = doctor(&env);
    assert_eq!(code, 1);
    let r = row(&doc, "config");
    assert_eq!(r["status"], "fail");
    assert!(
        r["hint"].as_str().unwrap().contains("evertoken.yaml"),
        "{r}"
    );

    env.config("platforms:\n  tiktok: { enabeld: true, client_key: k }\n");
    let (code, doc) = doctor(&env);
    assert_eq!(code, 1);
    let r = row(&doc, "config");
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("platforms.tiktok.enabeld"),
        "{r}"
    );
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
    let (code, doc) = doctor(&env);
    assert_eq!(code, 1, "{doc:#}");
    let k = row(&doc, "github default: private key");
    assert_eq!(k["status"], "fail", "{k}");
    assert!(k["hint"].as_str().unwrap().contains("chmod 600"), "{k}");
    let t = row(&doc, "github default: token file");
    assert_eq!(t["status"], "fail", "{t}");
    assert!(t["detail"].as_str().unwrap().contains("missing"), "{t}");
    assert!(
        t["hint"]
            .as_str()
            .unwrap()
            .contains("evertoken github refresh"),
        "{t}"
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
    let (code, doc) = doctor(&env);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(row(&doc, "github default: private key")["status"], "ok");
    let t = row(&doc, "github default: token file");
    assert_eq!(t["status"], "ok", "{t}");
    assert!(t["detail"].as_str().unwrap().contains("test-gh-…"), "{t}");
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
    env.secret(GL_TOKEN);
    env.secret(TT);
    env.secret(TT_SECRET);
    let sim = env.sim.sim();
    sim.gitlab_add_token(GL_TOKEN);
    sim.gitlab_add_project(4242, "acme/publisher");
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
    let out = env.run(
        env.cmd()
            .args(["doctor", "--json"])
            .env("GITLAB_TOKEN", GL_TOKEN)
            .env("TIKTOK_CLIENT_SECRET", TT_SECRET),
    );
    assert_eq!(out.code, 1, "stderr: {}", out.stderr);
    let doc = out.json();
    let r = row(&doc, "write-back pre-flight");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("TIKTOK_REFRESH_TOKEN"),
        "{r}"
    );
    assert!(r["detail"].as_str().unwrap().contains("protected"), "{r}");
    assert!(
        r["hint"].as_str().unwrap().contains("Protect variable"),
        "{r}"
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
    let (code, doc) = doctor(&env);
    assert_eq!(code, 1, "{doc:#}");
    let r = row(&doc, "alerts");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(
        r["hint"].as_str().unwrap().contains("ALERT_WEBHOOK_URL"),
        "{r}"
    );

    let url = env.secret("https://hooks.slack.com/services/TEST/NOT/a-real-webhook-secret");
    let out = env.run(
        env.cmd()
            .args(["doctor", "--json"])
            .env("ALERT_WEBHOOK_URL", &url),
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    let doc = out.json();
    let r = row(&doc, "alerts");
    assert_eq!(r["status"], "ok", "{r}");
    assert!(r["detail"].as_str().unwrap().contains("slack"), "{r}");
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
    env.config(&format!(
        "platforms:
  tiktok: {{ enabled: true, base_url: \"{base}\", client_key: {CLIENT_KEY} }}
auth:
  writeback: {{ backend: local, local: {{ keychain: off }} }}
http: {{ timeout_seconds: 2, retries: 0 }}
"
    ));
    let (code, doc) = doctor(&env);
    assert_eq!(code, 1, "{doc:#}");
    let r = row(&doc, "clock skew");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(
        r["detail"].as_str().unwrap().contains("+8640"),
        "a day off: {r}"
    );
    assert!(r["hint"].as_str().unwrap().contains("time sync"), "{r}");
}
