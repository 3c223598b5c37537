//! Alerts: one message per run listing every credential that needs a
//! human, through Slack, Discord and Teams webhooks (recorded by the simulator)
//! and email over a real SMTP server (aiosmtpd, plain and STARTTLS with a test CA);
//! retries, delivery failure, dedup across runs, and `auth test-alert`.

use crate::common;
use common::{NOW, now};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestEnv;
use evertoken_sim::{Fault, Route};
use serde_json::Value;

/// Five days after NOW: the LinkedIn token's expiry, the alert's deadline.
const DEADLINE: &str = "2026-11-28";
const ACCESS: &str = "li-at-test-value-not-a-real-secret";
const CLIENT_SECRET: &str = "li-client-secret-test-not-a-real-secret";
const HOOK_SECRET: &str = "T0TEST/B0TEST/test-hook-not-a-real-secret";

/// A LinkedIn token expiring `days` after NOW, and an alerts block.
fn setup(env: &TestEnv, days: i64, alerts: &str) {
    env.secret(ACCESS);
    env.secret(CLIENT_SECRET);
    env.secret(HOOK_SECRET);
    env.config(&format!(
        "platforms:\n  linkedin: {{ enabled: true, client_id: test-li-client, base_url: \"{}\" }}\nhttp: {{ retries: 2 }}\nauth:\n  alerts:\n{alerts}",
        env.base_url()
    ));
    linkedin_expiring(env, days);
}

/// The LinkedIn access token, expiring `days` after NOW, and its client secret.
fn linkedin_expiring(env: &TestEnv, days: i64) {
    let exp = common::days_from(now(), days);
    env.credentials(&format!(
        "LINKEDIN_ACCESS_TOKEN:\n  value: \"{ACCESS}\"\n  expires_at: {exp}\nLINKEDIN_CLIENT_SECRET: \"{CLIENT_SECRET}\"\n"
    ));
}

fn webhook(env: &TestEnv, service: &str, format: &str) -> String {
    format!(
        "    backend: webhook\n    webhook: {{ url: \"{}/webhook/{service}/{HOOK_SECRET}\", format: {format} }}\n",
        env.base_url()
    )
}

fn refresh(env: &TestEnv, now: &str) -> common::Output {
    refresh_with(env, now, &[])
}

/// `auth refresh --json` at `now`, these variables set.
fn refresh_with(env: &TestEnv, now: &str, vars: &[(&str, &str)]) -> common::Output {
    env.ev_env(
        &["auth", "refresh", "--json"],
        &[&[("EVERTOKEN_NOW", now)], vars].concat(),
    )
}

/// Fails unless the run's alert was delivered.
#[track_caller]
fn assert_delivered(out: &common::Output) {
    assert_eq!(
        out.json()["alert"]["delivered"],
        true,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
}

/// A webhook alert to `service` in `format` about a LinkedIn token five days
/// from expiry: the refresh exits 1 (LinkedIn needs a human) and delivers one
/// call. Returns the env, the run, and that call's path and body.
fn one_webhook_alert(service: &str, format: &str) -> (TestEnv, common::Output, String, Value) {
    let env = TestEnv::new();
    setup(&env, 5, &webhook(&env, service, format));
    let out = refresh(&env, NOW);
    out.expect_code(1);
    assert_delivered(&out);
    let mut got = hooks(&env);
    assert_eq!(got.len(), 1, "{got:?}");
    let (path, body) = got.remove(0);
    (env, out, path, body)
}

/// The alert must not carry the token, nor the prefix a terminal may show of it.
fn assert_no_token(body: &str) {
    assert!(!body.contains(ACCESS), "{body}");
    assert!(
        !body.contains(&ACCESS[..8]),
        "alert carries a token prefix: {body}"
    );
    assert!(!body.contains(CLIENT_SECRET), "{body}");
}

fn hooks(env: &TestEnv) -> Vec<(String, Value)> {
    env.sim.sim().webhook_received()
}

#[test]
fn slack_gets_text_and_blocks_naming_linkedin_and_the_date() {
    let (_env, out, path, body) = one_webhook_alert("slack", "slack");
    let doc = out.json();
    assert_eq!(doc["alert"]["backend"], "webhook");
    assert_eq!(doc["results"][0]["state"], "reauth_required");

    assert!(path.starts_with("/webhook/slack/"));
    let text = body["text"].as_str().unwrap();
    common::assert_contains(text, &["LinkedIn", DEADLINE]);
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    let section = blocks.iter().find(|b| b["type"] == "section").unwrap();
    let s = section["text"]["text"].as_str().unwrap();
    assert_eq!(section["text"]["type"], "mrkdwn");
    common::assert_contains(
        s,
        &[
            "LinkedIn",
            DEADLINE,
            "evertoken auth login linkedin",
            "reauth_required",
        ],
    );
    assert_no_token(&body.to_string());
    // The webhook URL is a secret: not even in the human output.
    assert!(!out.stderr.contains("test-hook"), "{}", out.stderr);
}

#[test]
fn discord_gets_content_and_an_embed_within_limits() {
    let (_env, _, _, body) = one_webhook_alert("discord", "discord");
    let content = body["content"].as_str().unwrap();
    common::assert_contains(content, &["LinkedIn", DEADLINE]);
    assert!(content.chars().count() <= 2000);
    let embed = &body["embeds"][0];
    let field = &embed["fields"][0];
    assert!(field["name"].as_str().unwrap().contains("LinkedIn"));
    let value = field["value"].as_str().unwrap();
    common::assert_contains(value, &[DEADLINE, "evertoken auth login linkedin"]);
    assert!(value.chars().count() <= 1024);
    // No @everyone pings from text that came from a provider.
    assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
    assert_no_token(&body.to_string());
}

#[test]
fn teams_gets_a_workflows_envelope_with_an_adaptive_card() {
    let (_env, _, _, body) = one_webhook_alert("teams", "teams");
    assert_eq!(body["type"], "message");
    let att = &body["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &att["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert!(card["version"].as_str().is_some());
    let text = card["body"].to_string();
    common::assert_contains(
        &text,
        &["LinkedIn", DEADLINE, "evertoken auth login linkedin"],
    );
    assert_eq!(card["body"][0]["type"], "TextBlock");
    assert_no_token(&body.to_string());
}

#[test]
fn a_webhook_answering_500_then_200_is_retried_and_delivered() {
    let env = TestEnv::new();
    setup(&env, 5, &webhook(&env, "slack", "slack"));
    env.sim.sim().push_fault(Route::Webhook, Fault::Status(500));
    let out = refresh(&env, NOW);
    out.expect_code(1);
    assert_delivered(&out);
    assert_eq!(env.sim.sim().request_count(Route::Webhook), 2);
    assert_eq!(hooks(&env).len(), 1);
}

#[test]
fn discord_429_retry_after_is_honoured() {
    let env = TestEnv::new();
    setup(&env, 5, &webhook(&env, "discord", "discord"));
    env.sim.sim().push_fault(
        Route::Webhook,
        Fault::TooManyRequests {
            retry_after_secs: Some(1),
        },
    );
    let start = Instant::now();
    assert_delivered(&refresh(&env, NOW));
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "did not wait for retry_after"
    );
    assert_eq!(hooks(&env).len(), 1);
}

#[test]
fn an_always_failing_webhook_is_reported_and_exits_1_without_hiding_the_problem() {
    let env = TestEnv::new();
    setup(&env, 5, &webhook(&env, "slack", "slack"));
    env.sim
        .sim()
        .set_persistent_fault(Route::Webhook, Some(Fault::Status(500)));
    let out = refresh(&env, NOW);
    out.expect_code(1);
    let doc = out.json();
    assert_eq!(doc["alert"]["backend"], "webhook");
    assert_eq!(doc["alert"]["delivered"], false);
    let err = doc["alert"]["error"].as_str().unwrap();
    common::assert_contains(err, &["500"]);
    assert!(err.contains("http://127.0.0.1"), "names the host: {err}");
    assert!(
        !err.contains("test-hook") && !err.contains("/webhook/"),
        "leaks the webhook path: {err}"
    );
    out.stderr_has(&["could not be delivered"]);
    // The original problem is still there.
    assert_eq!(doc["results"][0]["state"], "reauth_required");
    assert_eq!(doc["results"][0]["reauth_by"], DEADLINE);
    assert_eq!(
        env.sim.sim().request_count(Route::Webhook),
        3,
        "1 try + http.retries (2)"
    );

    // Undelivered: the next run tries again instead of thinking it was sent.
    env.sim.sim().set_persistent_fault(Route::Webhook, None);
    assert_delivered(&refresh(&env, "2026-11-23T10:00:00Z"));
    assert_eq!(hooks(&env).len(), 1);
}

#[test]
fn alerts_are_deduplicated_escalate_and_announce_recovery() {
    let env = TestEnv::new();
    setup(&env, 5, &webhook(&env, "slack", "slack"));
    assert_delivered(&refresh(&env, NOW));
    let state = env.state_dir().join("alerts.json");
    assert_eq!(common::mode(&state), 0o600);
    let st = std::fs::read_to_string(&state).unwrap();
    assert!(!st.contains(ACCESS) && !st.contains(&ACCESS[..8]), "{st}");

    // Same problem, two hours later: nothing sent, still exit 1.
    let second = refresh(&env, "2026-11-23T11:00:00Z");
    second.expect_code(1);
    assert!(
        second.json().get("alert").is_none_or(Value::is_null),
        "{}",
        second.stdout
    );
    assert_eq!(hooks(&env).len(), 1);

    // A day later: re-sent once.
    assert_delivered(&refresh(&env, "2026-11-24T09:30:00Z"));
    assert_eq!(hooks(&env).len(), 2);

    // The deadline is tomorrow: escalated at once, in stronger words.
    assert_delivered(&refresh(&env, "2026-11-27T08:00:00Z"));
    let got = hooks(&env);
    assert_eq!(got.len(), 3);
    let text = got[2].1["text"].as_str().unwrap();
    common::assert_contains(text, &["URGENT"]);
    assert!(!got[0].1["text"].as_str().unwrap().contains("URGENT"));

    // Re-authorised (a token good for 60 days): one short "recovered" message.
    linkedin_expiring(&env, 64);
    refresh(&env, "2026-11-27T09:00:00Z").expect_code(0);
    let got = hooks(&env);
    assert_eq!(got.len(), 4);
    let text = got[3].1.to_string();
    assert!(
        text.contains("recovered") || text.contains("Recovered"),
        "{text}"
    );
    refresh(&env, "2026-11-28T09:00:00Z").expect_code(0);
    assert_eq!(hooks(&env).len(), 4, "recovery is announced once");
}

#[test]
fn nothing_is_sent_when_nothing_needs_attention_or_on_dry_run() {
    let env = TestEnv::new();
    setup(&env, 40, &webhook(&env, "slack", "slack"));
    let out = refresh(&env, NOW);
    out.expect_code(0);
    assert!(out.json().get("alert").is_none_or(Value::is_null));

    let env = TestEnv::new();
    setup(&env, 5, &webhook(&env, "slack", "slack"));
    env.ev_env(
        &["auth", "refresh", "--dry-run", "--json"],
        &[("EVERTOKEN_NOW", NOW)],
    )
    .expect_code(1);
    assert!(hooks(&env).is_empty());
}

#[test]
fn the_webhook_url_can_come_from_the_environment_and_auto_needs_a_known_host() {
    let env = TestEnv::new();
    setup(
        &env,
        5,
        "    backend: webhook\n    webhook: { format: auto }\n",
    );
    let url = format!("{}/webhook/slack/{HOOK_SECRET}", env.base_url());
    let out = refresh_with(&env, NOW, &[("ALERT_WEBHOOK_URL", &url)]);
    out.expect_code(1);
    let doc = out.json();
    assert_eq!(doc["alert"]["delivered"], false);
    let err = doc["alert"]["error"].as_str().unwrap();
    common::assert_contains(err, &["format"]);
    assert!(!err.contains("test-hook"), "{err}");

    setup(
        &env,
        5,
        "    backend: webhook\n    webhook: { format: slack }\n",
    );
    assert_delivered(&refresh_with(&env, NOW, &[("ALERT_WEBHOOK_URL", &url)]));
    assert_eq!(hooks(&env).len(), 1);
}

/// `auth status` with the alerts block `alerts` makes exits 2 naming `needles`.
fn config_error(alerts: impl FnOnce(&TestEnv) -> String, needles: &[&str]) -> common::Output {
    let env = TestEnv::new();
    setup(&env, 5, &alerts(&env));
    let out = env.ev(&["auth", "status"]);
    out.expect_code(2).stderr_has(needles);
    out
}

#[test]
fn a_config_url_on_an_unknown_host_with_format_auto_is_a_config_error() {
    let out = config_error(
        |env| webhook(env, "slack", "auto"),
        &["auth.alerts.webhook.format", "hint:"],
    );
    assert!(!out.stderr.contains("test-hook"), "{}", out.stderr);
}

#[test]
fn test_alert_sends_a_sample_and_refuses_backend_none() {
    let env = TestEnv::new();
    setup(&env, 40, "    backend: none\n");
    env.ev(&["auth", "test-alert"])
        .expect_code(2)
        .stderr_has(&["auth.alerts.backend", "hint:"]);

    setup(&env, 40, &webhook(&env, "teams", "teams"));
    let out = env.ev(&["auth", "test-alert"]);
    out.expect_code(0);
    // Teams Workflows answers 202: accepted, not (yet) delivered.
    assert!(
        out.stderr.contains("Accepted") && !out.stderr.contains("Delivered"),
        "{}",
        out.stderr
    );
    out.stderr_has(&["http://127.0.0.1"]);
    assert!(!out.stderr.contains("test-hook"), "{}", out.stderr);
    let got = hooks(&env);
    assert_eq!(got.len(), 1);
    assert!(got[0].1.to_string().contains("[TEST]"));

    env.sim
        .sim()
        .set_persistent_fault(Route::Webhook, Some(Fault::Status(404)));
    env.ev(&["auth", "test-alert"])
        .expect_code(1)
        .stderr_has(&["404"]);
}

// ---- email over a real SMTP server ------------------------------------------

/// The aiosmtpd venv made by scripts/setup-smtp; `None` (outside CI) to skip.
fn smtp_python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let py = root.join("target/test-tools/smtp-venv/bin/python");
    let ok = py.is_file()
        && Command::new(&py)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    let msg = "aiosmtpd is not installed: run ./scripts/setup-smtp (./scripts/test does)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

struct Smtp {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    fn start(py: &Path, dir: &Path, tls: Option<(&Path, &Path)>, auth: Option<&str>) -> Smtp {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = dir.join("maildir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut c = Command::new(py);
        c.arg(&script)
            .arg("--port")
            .arg(port.to_string())
            .arg("--maildir")
            .arg(&maildir);
        if let Some((cert, key)) = tls {
            c.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        if let Some(a) = auth {
            c.arg("--auth").arg(a);
        }
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        use std::io::BufRead as _;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY", "the SMTP server did not start");
        Smtp {
            child,
            port,
            maildir,
        }
    }

    fn messages(&self) -> Vec<Value> {
        let mut v: Vec<(u32, Value)> = std::fs::read_dir(&self.maildir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let n: u32 = name.strip_suffix(".json")?.parse().ok()?;
                        Some((
                            n,
                            serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by_key(|(n, _)| *n);
        v.into_iter().map(|(_, m)| m).collect()
    }
}

/// A test CA and a server certificate for 127.0.0.1 signed by it (openssl).
fn test_ca(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    common::require_tool("openssl")?;
    let run = |args: &[&str]| {
        common::tool_ok(
            Command::new("openssl").args(args).current_dir(dir),
            &format!("openssl {args:?}"),
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=evertoken test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    Some((
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    ))
}

fn email_alerts(port: u16, tls: &str, ca: Option<&Path>) -> String {
    let ca = ca
        .map(|p| format!(", ca_file: \"{}\"", p.display()))
        .unwrap_or_default();
    format!(
        "    backend: email\n    email: {{ host: 127.0.0.1, port: {port}, from: \"evertoken <evertoken@example.test>\", to: [ops@example.test], tls: {tls}{ca} }}\n"
    )
}

fn assert_alert_mail(m: &Value) {
    assert_eq!(m["mail_from"], "evertoken@example.test");
    assert_eq!(m["rcpt_tos"], serde_json::json!(["ops@example.test"]));
    let content = m["content"].as_str().unwrap();
    // Unfold the header (RFC 5322 §2.2.3): a long subject continues on indented lines.
    let head = content
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ");
    let subject = head.lines().find(|l| l.starts_with("Subject:")).unwrap();
    common::assert_contains(subject, &["LinkedIn", DEADLINE]);
    common::assert_contains(content, &["text/plain", "evertoken auth login linkedin"]);
    assert_no_token(content);
}

#[test]
fn email_goes_through_a_real_smtp_server_with_starttls_and_a_private_ca() {
    let Some(py) = smtp_python() else { return };
    let env = TestEnv::new();
    let Some((ca, cert, key)) = test_ca(env.dir.path()) else {
        return;
    };
    let password = env.secret("smtp-password-test-not-a-real-secret");
    let smtp = Smtp::start(
        &py,
        env.dir.path(),
        Some((&cert, &key)),
        Some(&format!("alerts:{password}")),
    );
    setup(&env, 5, &email_alerts(smtp.port, "starttls", Some(&ca)));
    let login = [
        ("ALERT_SMTP_USERNAME", "alerts"),
        ("ALERT_SMTP_PASSWORD", password.as_str()),
    ];
    let out = refresh_with(&env, NOW, &login);
    out.expect_code(1);
    assert_eq!(
        out.json()["alert"],
        serde_json::json!({"backend": "email", "delivered": true, "error": null}),
        "{}",
        out.stderr
    );
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0]["tls"], true, "delivered over STARTTLS");
    assert_eq!(mail[0]["login"], "alerts");
    assert_alert_mail(&mail[0]);

    // Without the private CA the server's certificate is not trusted: reported, exit 1.
    setup(&env, 5, &email_alerts(smtp.port, "starttls", None));
    let out = refresh_with(&env, "2026-11-25T09:00:00Z", &login);
    out.expect_code(1);
    let doc = out.json();
    assert_eq!(doc["alert"]["delivered"], false, "{}", out.stdout);
    // Says where and what to do.
    common::assert_fields(
        &doc["alert"],
        &[("error", "127.0.0.1"), ("error", "ca_file")],
    );
    out.stderr_has(&["could not be delivered"]);
    assert_eq!(smtp.messages().len(), 1);
}

#[test]
fn email_goes_through_a_plain_local_relay() {
    let Some(py) = smtp_python() else { return };
    let env = TestEnv::new();
    let smtp = Smtp::start(&py, env.dir.path(), None, None);
    setup(&env, 5, &email_alerts(smtp.port, "none", None));
    let out = refresh(&env, NOW);
    out.expect_code(1);
    assert_delivered(&out);
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0]["tls"], false);
    assert_alert_mail(&mail[0]);

    // test-alert through the same relay.
    env.ev(&["auth", "test-alert"]).expect_code(0);
    let mail = smtp.messages();
    assert_eq!(mail.len(), 2);
    assert!(mail[1]["content"].as_str().unwrap().contains("[TEST]"));
}

#[test]
fn tls_none_is_refused_for_a_remote_host() {
    config_error(
        |_| {
            "    backend: email\n    email: { host: smtp.example.com, from: a@example.test, to: [b@example.test], tls: none }\n".into()
        },
        &["auth.alerts.email.tls", "hint:"],
    );
}

#[test]
fn a_misspelt_alert_key_is_a_config_error_with_a_suggestion() {
    config_error(
        |_| "    backend: webhook\n    webhook: { urll: \"https://hooks.slack.com/x\" }\n".into(),
        &["auth.alerts.webhook.urll", "did you mean `url`?"],
    );
}
