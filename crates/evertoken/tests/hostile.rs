//! Issue 13: hostile input. The simulator's `evil` faults (out-of-range and
//! wrong-typed numbers after a real rotation, secrets echoed back with terminal
//! escapes, huge, endless and slow bodies) for every provider, store and alert
//! channel, plus hostile files (a tampered journal, an open state directory,
//! umask 000, symlinks) and hostile config. Every case drives the real binary and
//! asserts the five invariants: no panic (exit never 101), no lost rotation (the
//! provider's live token is the stored one), no secret in any output or alert, no
//! raw control character from outside text, no group/other-writable path created.
//!
//! With `EVERTOKEN_HOSTILE_TSV=FILE`, each case appends `class<TAB>target<TAB>outcome`
//! to FILE; `scripts/hostile-table` turns that into the table of docs/RELIABILITY.md.

use crate::common;
use common::{NOW, now};

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;

use common::{ALL, Output, P, TestEnv, days_from, result, set_mode};
use evertoken_sim::{Fault, GitLabScope, GitLabVariable, Route};
use proptest::prelude::*;
use serde_json::{Value, json};

const TT_KEY: &str = "test-hostile-tt-key";
const TT_SECRET: &str = "test-hostile-tiktok-client-secret";
const TT_RT: &str = "rft.test-hostile-tiktok-refresh-not-real";
const IG_TOKEN: &str = "test-hostile-ig-access-not-a-real-secret";
const YT_CLIENT: &str = "test-hostile.apps.googleusercontent.com";
const YT_SECRET: &str = "test-hostile-google-client-secret";
const YT_RT: &str = "test-hostile-yt-refresh-not-a-real-secret";
const LI_CLIENT: &str = "test-hostile-li";
const LI_SECRET: &str = "test-hostile-linkedin-client-secret";
const LI_RT: &str = "test-hostile-li-refresh-not-a-real-secret";
const HOOK_PATH_SECRET: &str = "T0HOSTILE/B0HOSTILE/hostilewebhookpathsecret01";
const HOOK_USER: &str = "hookuser";
const HOOK_PASS: &str = "hostile-webhook-basic-password";
const GITLAB_TOKEN: &str = "test-hostile-gitlab-token-not-real";
const SMTP_PASS: &str = "hostile-smtp-password-not-real";

/// Appends one line to the hostile-input table, when asked to.
fn tally(class: &str, target: &str, outcome: &str) {
    if let Some(path) = std::env::var_os("EVERTOKEN_HOSTILE_TSV")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = f.write_all(format!("{class}\t{target}\t{outcome}\n").as_bytes());
    }
}

/// Each built-in OAuth platform's token route: where an evil answer goes.
impl P {
    fn route(self) -> Route {
        match self {
            P::Instagram => Route::Instagram,
            P::Youtube => Route::Google,
            P::Tiktok => Route::TikTok,
            P::Linkedin => Route::LinkedInToken,
        }
    }
    /// The lifetime fields of this provider's token answer.
    fn lifetime_fields(self) -> &'static [&'static str] {
        match self {
            P::Instagram => &["expires_in"],
            P::Youtube => &["refresh_token_expires_in"],
            P::Tiktok => &["expires_in", "refresh_expires_in"],
            P::Linkedin => &["expires_in", "refresh_token_expires_in"],
        }
    }
    /// The variable holding the token that must never be lost.
    fn durable_var(self) -> &'static str {
        match self {
            P::Instagram => "INSTAGRAM_ACCESS_TOKEN",
            P::Youtube => "YOUTUBE_REFRESH_TOKEN",
            P::Tiktok => "TIKTOK_REFRESH_TOKEN",
            P::Linkedin => "LINKEDIN_ACCESS_TOKEN",
        }
    }
}

/// All four OAuth platforms against the simulator, each needing a call, with the
/// local store, and (when `alerts` is set) the given alert block.
fn setup(env: &TestEnv, alerts: &str) {
    let sim = env.sim.sim();
    sim.set_now(Some(now()));
    for s in [
        TT_SECRET,
        TT_RT,
        IG_TOKEN,
        YT_SECRET,
        YT_RT,
        LI_SECRET,
        LI_RT,
        HOOK_PATH_SECRET,
        HOOK_PASS,
        GITLAB_TOKEN,
        SMTP_PASS,
    ] {
        env.secret(s);
    }
    sim.tiktok_add_client(TT_KEY, TT_SECRET);
    sim.tiktok_add_refresh_token(TT_KEY, TT_RT, days_from(now(), 100));
    sim.instagram_add_token(IG_TOKEN, days_from(now(), -40), days_from(now(), 5));
    sim.google_add_client(YT_CLIENT, YT_SECRET);
    sim.google_add_refresh_token(YT_CLIENT, YT_RT);
    sim.linkedin_add_client(LI_CLIENT, LI_SECRET);
    sim.linkedin_set_programmatic_refresh(LI_CLIENT, true);
    sim.linkedin_add_refresh_token(LI_CLIENT, LI_RT, days_from(now(), 300));
    let base = env.base_url();
    env.config(&format!(
        "platforms:\n  \
           instagram: {{ base_url: \"{base}\" }}\n  \
           youtube: {{ base_url: \"{base}\", client_id: {YT_CLIENT} }}\n  \
           tiktok: {{ base_url: \"{base}\", client_key: {TT_KEY} }}\n  \
           linkedin: {{ base_url: \"{base}\", client_id: {LI_CLIENT} }}\n\
         auth:\n  writeback: {{ local: {{ keychain: off }} }}\n{alerts}\
         http: {{ retries: 1, timeout_seconds: 3 }}\n"
    ));
    env.credentials(&format!(
        "TIKTOK_REFRESH_TOKEN: \"{TT_RT}\"\nTIKTOK_CLIENT_SECRET: {TT_SECRET}\n\
         INSTAGRAM_ACCESS_TOKEN: \"{IG_TOKEN}\"\n\
         YOUTUBE_REFRESH_TOKEN: \"{YT_RT}\"\nYOUTUBE_CLIENT_SECRET: {YT_SECRET}\n\
         LINKEDIN_REFRESH_TOKEN: {{ value: \"{LI_RT}\", expires_at: {} }}\nLINKEDIN_CLIENT_SECRET: {LI_SECRET}\n",
        days_from(now(), 300)
    ));
}

fn webhook_alerts(env: &TestEnv, service: &str) -> String {
    let addr = env.sim.addr();
    format!(
        "  alerts:\n    backend: webhook\n    webhook: {{ url: \"http://{HOOK_USER}:{HOOK_PASS}@{addr}/webhook/{service}/{HOOK_PATH_SECRET}\", format: {service} }}\n"
    )
}

fn refresh(env: &TestEnv) -> Output {
    env.ev_at(NOW, &["auth", "refresh", "all", "--json"], &[])
}

/// `auth refresh tiktok --json` at NOW, these variables set.
fn refresh_tiktok(env: &TestEnv, vars: &[(&str, &str)]) -> Output {
    env.ev_at(NOW, &["auth", "refresh", "tiktok", "--json"], vars)
}

/// A run whose `p` cannot finish: the invariants hold, exit 1, `p` ends
/// `failed` or `unknown`, and its token is not lost. Returns that state.
fn refresh_fails_safely(env: &TestEnv, p: P, what: &str) -> String {
    let out = refresh(env);
    assert_invariants(env, &out, what);
    out.expect_code_for(format_args!("{what}"), 1);
    let state = outcome_of(&out, p.name());
    assert!(
        ["failed", "unknown"].contains(&state.as_str()),
        "{what}: {state}"
    );
    assert_not_lost(env, p, what);
    state
}

/// The invariants every hostile case keeps.
fn assert_invariants(env: &TestEnv, out: &Output, what: &str) {
    assert_ne!(
        out.code, 101,
        "{what}: panicked\n{}\n{}",
        out.stdout, out.stderr
    );
    assert!(
        out.code == 0 || out.code == 1 || out.code == 2,
        "{what}: exit {}\n{}",
        out.code,
        out.stderr
    );
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if let Some(c) = text
            .chars()
            .find(|c| c.is_control() && *c != '\n' && *c != '\t')
        {
            panic!("{what}: raw control character {c:?} in {name}:\n{text}");
        }
    }
    // The request path carries the webhook's own secret by design; the body must not.
    for (_path, body) in env.sim.sim().webhook_received() {
        let text = body.to_string();
        env.assert_no_leak(&text);
        // JSON-escaped control characters are inert, but an alert carries none.
        assert!(
            !text.contains("\\u001b") && !text.contains("\\u0007"),
            "{what}: alert carries escapes: {text}"
        );
    }
    assert_no_open_paths(env.dir.path(), what);
}

/// No path evertoken created is writable by group or others.
fn assert_no_open_paths(root: &Path, what: &str) {
    for entry in walk(root) {
        let m = std::fs::symlink_metadata(&entry).unwrap();
        if m.file_type().is_symlink() {
            continue;
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = m.permissions().mode() & 0o777;
        assert!(
            mode & 0o022 == 0,
            "{what}: {} is group/other-writable ({mode:o})",
            entry.display()
        );
    }
}

use common::walk;

/// The durable token of `p` in the store still works at the provider (nothing
/// was lost: either it was never rotated, or the rotated one was kept).
fn assert_not_lost(env: &TestEnv, p: P, what: &str) {
    let sim = env.sim.sim();
    if p == P::Linkedin && env.stored("LINKEDIN_ACCESS_TOKEN").is_none() {
        // No access token issued yet: the refresh token (LinkedIn keeps it on
        // refresh) must be the one seeded.
        assert_eq!(
            env.stored("LINKEDIN_REFRESH_TOKEN").as_deref(),
            Some(LI_RT),
            "{what}: the LinkedIn refresh token changed"
        );
        return;
    }
    let stored = env
        .stored(p.durable_var())
        .unwrap_or_else(|| panic!("{what}: {} missing", p.durable_var()));
    let live = match p {
        P::Tiktok => sim.tiktok_is_live(&stored),
        P::Instagram => sim.instagram_is_valid(&stored),
        P::Youtube => sim.google_is_valid(&stored),
        P::Linkedin => sim.linkedin_is_valid_access(&stored),
    };
    assert!(
        live,
        "{what}: the stored {} is dead: lost rotation",
        p.durable_var()
    );
}

fn outcome_of(out: &Output, platform: &str) -> String {
    match serde_json::from_str::<Value>(&out.stdout) {
        Ok(doc) => result(&doc, platform)["state"]
            .as_str()
            .unwrap_or("?")
            .to_owned(),
        Err(_) => format!("exit {}", out.code),
    }
}

/// Defect 1: out-of-range and wrong-typed lifetimes, for every provider and each
/// of its lifetime fields, after a real rotation: no panic, the other platforms
/// finish, the evil one is `failed` yet its new tokens are stored.
#[test]
fn impossible_lifetimes_fail_one_credential_and_keep_its_tokens() {
    let values = [
        ("i64::MAX", json!(i64::MAX)),
        ("i64::MIN", json!(i64::MIN)),
        ("negative", json!(-3600)),
        ("beyond jiff", json!(631_107_417_601_i64)),
        ("1e20", json!(1e20)),
        ("string", json!("soon")),
    ];
    for p in ALL {
        for field in p.lifetime_fields() {
            for (label, v) in &values {
                let env = TestEnv::new();
                setup(&env, "");
                let mut set = serde_json::Map::new();
                set.insert((*field).to_owned(), v.clone());
                env.sim.sim().push_fault(p.route(), Fault::Patch(set));
                let out = refresh(&env);
                let what = format!("{} {field}={label}", p.name());
                assert_invariants(&env, &out, &what);
                let doc = out.json();
                let r = result(&doc, p.name());
                assert_eq!(r["state"], "failed", "{what}: {r:#}");
                let msg = r["message"].as_str().unwrap();
                assert!(
                    msg.contains(field),
                    "{what}: message names the field: {msg}"
                );
                assert!(msg.contains("kept"), "{what}: {msg}");
                for other in ALL.iter().filter(|o| **o != p) {
                    let s = result(&doc, other.name())["state"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    assert!(
                        ["ok", "refreshed", "rotated"].contains(&s.as_str()),
                        "{what}: {} ended {s}",
                        other.name()
                    );
                    assert_not_lost(&env, *other, &what);
                }
                assert_not_lost(&env, p, &what);
                assert_eq!(out.code, 1, "{what}");
                tally(
                    &format!("lifetime {label}"),
                    &format!("{} {field}", p.name()),
                    "failed, new tokens kept, others unaffected",
                );
            }
        }
    }
}

/// Defect 1, GitHub: an `expires_at` in 1970 or a token with a NUL byte is not
/// "Minted", and nothing is written.
#[test]
fn github_answers_with_a_past_expiry_or_a_nul_are_refused() {
    for (label, set) in [
        (
            "expires_at 1970",
            json!({"expires_at": "1970-01-01T00:00:00Z"}),
        ),
        (
            "token with NUL",
            json!({"token": "ghs_hostile\u{0}injected"}),
        ),
        (
            "token with newline",
            json!({"token": "ghs_hostile\nGH_TOKEN=evil"}),
        ),
    ] {
        let env = github_env();
        env.sim.sim().push_fault(
            Route::GitHubApp,
            Fault::Patch(set.as_object().unwrap().clone()),
        );
        let out = env.ev(&["github", "refresh"]);
        assert_invariants(&env, &out, label);
        out.expect_code_for(format_args!("{label}"), 1);
        assert!(!out.stderr.contains("Minted"), "{label}: {}", out.stderr);
        assert!(
            !env.path("config/evertoken/github-token.env").exists(),
            "{label}: a token file was written"
        );
        tally(label, "github", "failed, nothing written");
    }
}

fn github_env() -> TestEnv {
    let env = TestEnv::new();
    common::apps::installed(&env, 4242, 777, &["gh_cli: false"]);
    env
}

/// Defects 4 and 5: every provider echoes what it was sent (tokens, client
/// secrets) with terminal escapes; the webhook alert of each format must carry
/// neither, and neither may reach stdout or stderr.
#[test]
fn echoed_secrets_and_escapes_are_scrubbed_for_every_provider_and_webhook() {
    for service in ["slack", "discord", "teams"] {
        for p in ALL {
            let env = TestEnv::new();
            setup(&env, &webhook_alerts(&env, service));
            env.sim.sim().push_fault(p.route(), Fault::EchoSecrets);
            // With debug logging: every log line goes through the scrubber too.
            let out = env.ev_at(NOW, &["-vv", "auth", "refresh", "all", "--json"], &[]);
            let what = format!("{} echo, {service} alert", p.name());
            assert_invariants(&env, &out, &what);
            assert!(
                out.stdout.contains("you sent"),
                "{what}: the echo reached the output: {}",
                out.stdout
            );
            out.expect_code_for(format_args!("{what}"), 1);
            assert!(
                !env.sim.sim().webhook_received().is_empty(),
                "{what}: the alert was sent"
            );
            assert_not_lost(&env, p, &what);
            // The human table too.
            env.sim.sim().push_fault(p.route(), Fault::EchoSecrets);
            let table = env.ev_at(NOW, &["--color", "never", "auth", "refresh", "all"], &[]);
            assert_invariants(&env, &table, &what);
            assert!(
                table.stdout.contains("you sent"),
                "{what}: {}",
                table.stdout
            );
            tally(
                "echoed secrets + escapes",
                &format!("{} → {service}", p.name()),
                &format!("{}, scrubbed", outcome_of(&out, p.name())),
            );
        }
    }
}

/// Defect 4: a non-JSON 200 answer quoting what was sent, for every provider.
#[test]
fn a_non_json_200_echo_is_scrubbed() {
    for p in ALL {
        let env = TestEnv::new();
        setup(&env, &webhook_alerts(&env, "slack"));
        env.sim.sim().push_fault(p.route(), Fault::EchoSecretsOk);
        let state = refresh_fails_safely(&env, p, &format!("{} non-JSON 200 echo", p.name()));
        tally(
            "non-JSON 200 echoing secrets",
            p.name(),
            &format!("{state}, scrubbed"),
        );
    }
}

/// Defects 4 and 5 for GitHub: the token endpoint echoes the bearer JWT it was
/// sent (a credential for ten minutes) with escapes; neither is shown.
#[test]
fn github_echoing_its_jwt_is_scrubbed() {
    let env = github_env();
    env.sim
        .sim()
        .set_persistent_fault(Route::GitHubApp, Some(Fault::EchoSecrets));
    let out = env.ev(&["-vv", "github", "refresh"]);
    assert_invariants(&env, &out, "github echo");
    out.expect_code(1);
    assert!(
        out.stderr.contains("Bearer eyJ"),
        "the echo reached the message: {}",
        out.stderr
    );
    let text = format!("{}{}", out.stdout, out.stderr);
    for (i, _) in text.match_indices("eyJ") {
        let run = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .count();
        assert!(run < 16, "a JWT leaks: {}", &text[i..]);
    }
    tally("echoed JWT + escapes", "github", "failed, scrubbed");
}

/// Defect 4: a webhook service answering 500 with the URL's path secret and the
/// basic-auth password it was sent, plus escapes: `auth test-alert` says it
/// failed without either.
#[test]
fn a_webhook_echoing_its_url_secret_is_scrubbed() {
    for service in ["slack", "discord", "teams"] {
        let env = TestEnv::new();
        setup(&env, &webhook_alerts(&env, service));
        env.sim
            .sim()
            .set_persistent_fault(Route::Webhook, Some(Fault::EchoSecrets));
        let out = env.ev(&["auth", "test-alert"]);
        assert_invariants(&env, &out, service);
        out.expect_code_for(format_args!("{service}"), 1);
        out.stderr_has(&["500"]);
        assert!(
            out.stderr.contains("you sent"),
            "the echo reached the output: {}",
            out.stderr
        );
        tally(
            "echoed URL secret + escapes",
            &format!("webhook {service}"),
            "failed, scrubbed",
        );
    }
}

/// The email channel: an SMTP server whose rejection quotes the password and
/// carries escapes (a fake server: lettre passes the reply text on).
#[test]
fn an_smtp_server_echoing_the_password_is_scrubbed() {
    let env = TestEnv::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut w = stream.try_clone().unwrap();
            let mut r = BufReader::new(stream);
            let _ = w.write_all(b"220 hostile ESMTP\r\n");
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                let cmd = line.to_ascii_uppercase();
                let reply = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                    "250-hostile\r\n250 AUTH PLAIN LOGIN\r\n".to_owned()
                } else if cmd.starts_with("AUTH") {
                    use base64::Engine as _;
                    let raw = line.split_whitespace().nth(2).unwrap_or("");
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(raw)
                        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                        .unwrap_or_default();
                    format!("535 bad credentials {decoded} {SMTP_PASS} \x1b]0;owned\x07\x1b[2J\r\n")
                } else if cmd.starts_with("QUIT") {
                    "221 bye\r\n".to_owned()
                } else {
                    "250 ok\r\n".to_owned()
                };
                let _ = w.write_all(reply.as_bytes());
                line.clear();
            }
        }
    });
    setup(
        &env,
        &format!(
            "  alerts:\n    backend: email\n    email: {{ host: 127.0.0.1, port: {port}, tls: none, from: \"evertoken <ops@example.test>\", to: [\"oncall@example.test\"] }}\n"
        ),
    );
    let out = env.ev_env(
        &["auth", "test-alert"],
        &[
            ("ALERT_SMTP_USERNAME", "ops"),
            ("ALERT_SMTP_PASSWORD", SMTP_PASS),
        ],
    );
    assert_invariants(&env, &out, "smtp echo");
    out.expect_code(1)
        .stderr_has(&["could not be delivered", "535"]);
    out.stderr_has(&["bad credentials"]);
    tally(
        "echoed password + escapes",
        "email (SMTP)",
        "failed, scrubbed",
    );
}

/// Stores: a GitLab API that answers 500 quoting the PRIVATE-TOKEN it was sent.
#[test]
fn a_gitlab_store_echoing_its_token_is_scrubbed() {
    let env = TestEnv::new();
    setup(&env, "");
    let sim = env.sim.sim();
    sim.gitlab_add_token(GITLAB_TOKEN);
    sim.gitlab_add_project(4242, "acme/publisher");
    sim.gitlab_set_variable(
        GitLabScope::Project(4242),
        GitLabVariable::masked_protected("TIKTOK_REFRESH_TOKEN", TT_RT),
    );
    env.config(&format!(
        "platforms:\n  tiktok: {{ base_url: \"{base}\", client_key: {TT_KEY} }}\n\
         auth:\n  writeback:\n    backend: gitlab\n    gitlab: {{ project: \"acme/publisher\", api_url: \"{base}/api/v4\" }}\n\
         http: {{ retries: 1, timeout_seconds: 3 }}\n",
        base = env.base_url()
    ));
    sim.set_persistent_fault(Route::GitLab, Some(Fault::EchoSecrets));
    let out = env.ev_at(
        NOW,
        &["auth", "refresh", "all", "--json"],
        &[
            ("GITLAB_TOKEN", GITLAB_TOKEN),
            ("TIKTOK_CLIENT_SECRET", TT_SECRET),
        ],
    );
    assert_invariants(&env, &out, "gitlab echo");
    out.expect_code(1).stdout_has(&["400"]);
    assert!(
        out.stdout.contains("you sent"),
        "the echo reached the output: {}",
        out.stdout
    );
    tally(
        "echoed token + escapes",
        "store gitlab",
        &format!("{}, scrubbed", outcome_of(&out, "tiktok")),
    );
}

/// Stores: the GitHub Actions secrets API answering 422 quoting the bearer token
/// it was sent, after TikTok rotated: the new token stays in the journal, the
/// store's token is not shown.
#[test]
fn an_actions_store_echoing_its_token_is_scrubbed() {
    const GH: &str = "test-hostile-actions-token-not-real";
    let env = TestEnv::new();
    setup(&env, "");
    env.secret(GH);
    let sim = env.sim.sim();
    sim.actions_add_token(GH);
    sim.actions_add_repo("acme", "publisher");
    env.config(&format!(
        "platforms:\n  tiktok: {{ base_url: \"{base}\", client_key: {TT_KEY} }}\n\
         auth:\n  writeback:\n    backend: github-actions\n    github_actions: {{ repository: acme/publisher, api_url: \"{base}\" }}\n\
         http: {{ retries: 1, timeout_seconds: 3 }}\n",
        base = env.base_url()
    ));
    sim.set_persistent_fault(Route::GitHubActions, Some(Fault::EchoSecrets));
    let out = env.run(
        env.cmd()
            .args(["auth", "refresh", "all", "--json"])
            .env_remove("GITHUB_REPOSITORY")
            .env_remove("GITHUB_API_URL")
            .env("GITHUB_TOKEN", GH)
            .env("TIKTOK_CLIENT_SECRET", TT_SECRET)
            .env("TIKTOK_REFRESH_TOKEN", TT_RT)
            .env("EVERTOKEN_NOW", NOW),
    );
    assert_invariants(&env, &out, "actions echo");
    out.expect_code(1);
    assert!(
        out.stdout.contains("you sent"),
        "the echo reached the output: {}",
        out.stdout
    );
    // Whether it failed before or after the rotation, no live token is lost:
    // either nothing rotated, or the journal holds the rotated one.
    let live = &env.sim.sim().tiktok_live_refresh_tokens()[0];
    let journaled = walk(&env.state_dir().join("journal"))
        .iter()
        .any(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(live.as_str())));
    assert!(live == TT_RT || journaled, "lost rotation");
    tally(
        "echoed token + escapes",
        "store github-actions",
        &format!("{}, scrubbed", outcome_of(&out, "tiktok")),
    );
}

/// Huge, endless and slow bodies on every provider: bounded, classified, no panic,
/// and the stored token still works.
#[test]
fn huge_endless_and_slow_bodies_are_cut_off() {
    for (label, fault) in [
        ("huge body (8 MiB)", Fault::HugeBody(8 << 20)),
        ("endless body", Fault::EndlessBody),
        (
            "slow-loris",
            Fault::SlowLoris(std::time::Duration::from_millis(100)),
        ),
    ] {
        for p in ALL {
            let env = TestEnv::new();
            setup(&env, "");
            env.sim
                .sim()
                .set_persistent_fault(p.route(), Some(fault.clone()));
            let state = refresh_fails_safely(&env, p, &format!("{} {label}", p.name()));
            tally(label, p.name(), &state);
        }
    }
}

/// A `Retry-After` (header, or Discord's `retry_after`) too large for any clock,
/// on every provider and the webhook: given up on with a message, never a panic.
#[test]
fn an_endless_retry_after_is_refused_not_a_panic() {
    for p in ALL {
        let env = TestEnv::new();
        setup(&env, "");
        env.sim.sim().set_persistent_fault(
            p.route(),
            Some(Fault::TooManyRequests {
                retry_after_secs: Some(u64::MAX),
            }),
        );
        let out = refresh(&env);
        let what = format!("{} Retry-After u64::MAX", p.name());
        assert_invariants(&env, &out, &what);
        out.expect_code_for(format_args!("{what}"), 1);
        assert!(out.stdout.contains("Retry-After"), "{what}: {}", out.stdout);
        assert_not_lost(&env, p, &what);
        tally(
            "Retry-After 2^64-1 s",
            p.name(),
            &outcome_of(&out, p.name()),
        );
    }
    for service in ["slack", "discord"] {
        let env = TestEnv::new();
        setup(&env, &webhook_alerts(&env, service));
        env.sim.sim().set_persistent_fault(
            Route::Webhook,
            Some(Fault::TooManyRequests {
                retry_after_secs: Some(u64::MAX),
            }),
        );
        let out = env.ev(&["auth", "test-alert"]);
        assert_invariants(&env, &out, service);
        out.expect_code_for(format_args!("{service}"), 1);
        tally(
            "Retry-After 2^64-1 s",
            &format!("webhook {service}"),
            "failed, not retried",
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    /// Any shape of a TikTok lifetime (integers of every size, floats, strings,
    /// nulls, nested values) after a real rotation: never a panic, never a lost
    /// rotation.
    #[test]
    fn any_lifetime_shape_keeps_the_rotated_token(v in prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("JSON has no NaN", |f| f.is_finite()).prop_map(|f| json!(f)),
        "[0-9a-z .-]{0,12}".prop_map(|s| json!(s)),
        Just(json!(null)),
        Just(json!([1, 2])),
        Just(json!({"seconds": 1})),
    ], field in prop_oneof![Just("expires_in"), Just("refresh_expires_in")]) {
        let env = TestEnv::new();
        setup(&env, "");
        let mut set = serde_json::Map::new();
        set.insert(field.to_owned(), v.clone());
        env.sim.sim().push_fault(Route::TikTok, Fault::Patch(set));
        let out = refresh(&env);
        assert_invariants(&env, &out, &format!("tiktok {field}={v}"));
        assert_not_lost(&env, P::Tiktok, &format!("tiktok {field}={v}"));
        tally("any lifetime shape (proptest: i64/u64 extremes, floats, strings, null, arrays, objects)", "tiktok", "no panic, rotated token kept");
    }
}

/// Defect 3: two runs with different state directories against one credentials
/// file serialise on the store's lock: TikTok rotates once, nobody reports
/// `reauth_required`.
#[test]
fn runs_with_different_state_dirs_rotate_once() {
    two_state_dirs(false);
}

/// The same for the env-file store.
#[test]
fn runs_with_different_state_dirs_rotate_once_on_an_env_file() {
    two_state_dirs(true);
}

fn two_state_dirs(env_file: bool) {
    let env = TestEnv::new();
    setup(&env, "");
    if env_file {
        let text = std::fs::read_to_string(env.work().join("evertoken.yaml")).unwrap();
        env.config(&text.replace(
            "writeback: { local: { keychain: off } }",
            "writeback: { backend: env-file, env_file: { path: tokens.env } }",
        ));
        let p = env.work().join("tokens.env");
        std::fs::write(
            &p,
            format!("TIKTOK_REFRESH_TOKEN={TT_RT}\nTIKTOK_CLIENT_SECRET={TT_SECRET}\n"),
        )
        .unwrap();
        set_mode(&p, 0o600);
    }
    env.sim
        .sim()
        .set_latency(std::time::Duration::from_millis(300));
    let outs = env.run_concurrently(
        ["state-a", "state-b"]
            .into_iter()
            .map(|state| {
                let mut c = env.std_cmd();
                c.args(["auth", "refresh", "tiktok", "--json"])
                    .env("EVERTOKEN_NOW", NOW)
                    .env("XDG_STATE_HOME", env.path(state));
                c
            })
            .collect(),
    );
    for o in &outs {
        o.expect_code(0);
        assert!(!o.stdout.contains("reauth_required"), "{}", o.stdout);
    }
    assert_eq!(env.sim.sim().tiktok_live_refresh_tokens().len(), 1);
    if env_file {
        let text = std::fs::read_to_string(env.work().join("tokens.env")).unwrap();
        let live = &env.sim.sim().tiktok_live_refresh_tokens()[0];
        assert!(
            text.contains(&format!("TIKTOK_REFRESH_TOKEN={live}")),
            "lost rotation"
        );
    } else {
        assert_not_lost(&env, P::Tiktok, "two state dirs");
    }
    let rotations = env.calls("tiktok");
    assert_eq!(rotations, 1, "the token was rotated {rotations} times");
    tally(
        "two state dirs, one store",
        if env_file { "env file" } else { "local file" },
        "serialised: one rotation",
    );
}

/// Defect 6: a planted journal record naming a variable outside the account (a
/// client secret) is refused and never reaches the store; an open or symlinked
/// state directory, or a group-writable record, is refused with exit 2.
#[test]
fn a_tampered_journal_is_refused() {
    let env = TestEnv::new();
    setup(&env, "");
    // First, learn where TikTok's record lives: an interrupted run leaves one.
    let out = refresh_tiktok(&env, &[("EVERTOKEN_FAILPOINT", "after_journal")]);
    let journal = env.state_dir().join("journal");
    let record = walk(&journal).into_iter().find(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("tiktok"))
    });
    let record = match record {
        Some(r) => r,
        None => {
            // Without the failpoint, write the record the way the engine names it.
            assert!(out.code != 101, "{}", out.stderr);
            let rec = std::fs::read_dir(&journal)
                .ok()
                .and_then(|mut d| d.next())
                .map(|e| e.unwrap().path());
            rec.unwrap_or_else(|| panic!("no journal record: {}", out.stderr))
        }
    };
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    doc["entries"] = json!([{
        "var": "TIKTOK_CLIENT_SECRET",
        "value": "planted-by-another-user-not-real",
        "expires_at": null,
        "updated_at": NOW,
        "durable": true
    }]);
    std::fs::write(&record, serde_json::to_vec(&doc).unwrap()).unwrap();
    set_mode(&record, 0o600);
    let out = refresh(&env);
    assert_invariants(&env, &out, "planted variable");
    assert_eq!(
        env.stored("TIKTOK_CLIENT_SECRET").as_deref(),
        Some(TT_SECRET)
    );
    out.stdout_has(&["not a variable of this account"]);
    tally(
        "journal record for another variable",
        "journal",
        "refused, store untouched",
    );

    // A group-writable record: exit 2 with the chmod hint.
    set_mode(&record, 0o666);
    refresh(&env).expect_code(2).stderr_has(&["chmod 600"]);
    std::fs::remove_file(&record).unwrap();
    tally(
        "group-writable journal record",
        "journal",
        "exit 2, chmod hint",
    );

    // An open journal directory.
    set_mode(&journal, 0o777);
    refresh(&env).expect_code(2).stderr_has(&["chmod 700"]);
    set_mode(&journal, 0o700);
    tally(
        "world-writable journal directory",
        "state dir",
        "exit 2, chmod hint",
    );

    // A journal directory that is a symlink to somewhere else.
    std::fs::remove_dir_all(&journal).unwrap();
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    set_mode(&elsewhere, 0o700);
    std::os::unix::fs::symlink(&elsewhere, &journal).unwrap();
    refresh(&env).expect_code(2).stderr_has(&["symbolic link"]);
    tally("symlinked journal directory", "state dir", "exit 2");
}

/// Defect 6 and 7 under `umask 000`: the state directory, its parents, a new
/// credentials file's new parents, and the files `schedule --write` writes are
/// never group/other-writable; a symlinked unit is replaced, its target untouched.
#[test]
fn umask_000_creates_nothing_writable_by_others() {
    let env = TestEnv::new();
    setup(&env, "");
    // A fresh HOME-relative state dir and a credentials file in new directories.
    let text = std::fs::read_to_string(env.work().join("evertoken.yaml")).unwrap();
    env.config(&text.replace(
        "writeback: { local: { keychain: off } }",
        "writeback: { local: { keychain: off, file: new/sub/credentials.yaml } }",
    ));
    let creds = std::fs::read(env.work().join("credentials.yaml")).unwrap();
    std::fs::remove_file(env.work().join("credentials.yaml")).unwrap();
    let mut cmd = env.std_cmd();
    cmd.args(["auth", "refresh", "all", "--json", "--metrics-file"])
        .arg(env.path("metrics/new/evertoken.prom"))
        .env("EVERTOKEN_NOW", NOW)
        .env_remove("XDG_STATE_HOME");
    for (var, value) in serde_norway::from_slice::<serde_norway::Mapping>(&creds).unwrap() {
        let var = var.as_str().unwrap().to_owned();
        let value = match value {
            serde_norway::Value::String(s) => s,
            m => m.get("value").and_then(|v| v.as_str()).unwrap().to_owned(),
        };
        cmd.env(var, value);
    }
    // SAFETY: umask is async-signal-safe; it runs in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o000);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    env.assert_no_leak(&format!("{stdout}\n{stderr}"));
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // The default state directory and its new parents, and the credentials
    // file's new parents, were all created by this run.
    for d in [".local", ".local/state", ".local/state/evertoken"] {
        assert_eq!(common::mode(&env.home().join(d)), 0o700, "{d}");
    }
    for d in ["new", "new/sub"] {
        assert_eq!(common::mode(&env.work().join(d)), 0o700, "{d}");
    }
    assert_eq!(
        common::mode(&env.work().join("new/sub/credentials.yaml")),
        0o600
    );
    assert_eq!(common::mode(&env.path("metrics/new/evertoken.prom")), 0o644);

    // schedule --write --force over a symlink to a 0777 file, still umask 000.
    let target = env.path("dotfiles-unit");
    std::fs::write(&target, "theirs").unwrap();
    set_mode(&target, 0o777);
    let units = env.path("config/systemd/user");
    std::fs::create_dir_all(&units).unwrap();
    set_mode(&units, 0o755);
    let link = units.join("evertoken-refresh.service");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let mut cmd = env.std_cmd();
    cmd.args(["schedule", "systemd", "--write", "--force"]);
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o000);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "theirs");
    assert!(
        !std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(common::mode(&link), 0o644);
    set_mode(&target, 0o600);
    assert_no_open_paths(env.dir.path(), "umask 000");
    tally(
        "umask 000",
        "state dir, credentials dirs, schedule files",
        "0700 dirs, 0600/0644 files",
    );
}

/// Defect 8: `--remove-source` with a symlinked key refuses before doing anything.
#[test]
fn bootstrap_remove_source_refuses_a_symlinked_key() {
    let env = github_env();
    let real = env.path("real-key.pem");
    common::apps::write_key_to(&real, 0o644);
    let link = env.path("staged.pem");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    env.ev(&[
        &common::apps::bootstrap_args(&link)[..],
        &["--remove-source"],
    ]
    .concat())
        .expect_code(2)
        .stderr_has(&["symbolic link"]);
    assert!(real.exists() && link.exists());
    tally(
        "symlinked staged key + --remove-source",
        "github bootstrap",
        "refused, nothing deleted",
    );
}

/// Point 9: a token with a trailing newline (as `echo "$T" > file` leaves it) is
/// trimmed, works, and evertoken says so once.
#[test]
fn tokens_with_surrounding_whitespace_are_trimmed() {
    let env = TestEnv::new();
    setup(&env, "");
    let out = refresh_tiktok(
        &env,
        &[
            ("TIKTOK_REFRESH_TOKEN", &format!("{TT_RT}\n")),
            ("TIKTOK_CLIENT_SECRET", &format!("  {TT_SECRET}\r\n")),
        ],
    );
    out.expect_code(0);
    assert_eq!(result(&out.json(), "tiktok")["state"], "rotated");
    assert_eq!(
        out.stderr
            .matches("$TIKTOK_REFRESH_TOKEN has whitespace")
            .count(),
        1,
        "{}",
        out.stderr
    );
    tally("token with trailing newline", "env", "trimmed, said once");

    // The same from the credentials file (a value pasted with its newline).
    let env = TestEnv::new();
    setup(&env, "");
    let creds = std::fs::read_to_string(env.work().join("credentials.yaml")).unwrap();
    let live = &env.sim.sim().tiktok_live_refresh_tokens()[0];
    env.credentials(&creds.replace(
        &format!("TIKTOK_REFRESH_TOKEN: \"{TT_RT}\""),
        &format!("TIKTOK_REFRESH_TOKEN: \"{live}\\n\""),
    ));
    let out = refresh_tiktok(&env, &[]);
    out.expect_code(0);
    assert_eq!(result(&out.json(), "tiktok")["state"], "rotated");
    out.stderr_has(&["whitespace"]);
    assert_not_lost(&env, P::Tiktok, "credentials file newline");
    tally(
        "token with trailing newline",
        "credentials file",
        "trimmed, said once",
    );
}

/// Point 9: MCP answers a line that is not JSON with a JSON-RPC parse error.
#[test]
fn mcp_answers_garbage_with_a_parse_error() {
    let env = TestEnv::new();
    env.config("platforms: {}\n");
    let mut child = env
        .std_cmd()
        .arg("mcp")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"this is {not json\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first: Value = serde_json::from_str(stdout.lines().next().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(first["error"]["code"], -32700, "{stdout}");
    assert_eq!(first["id"], Value::Null);
    tally("non-JSON line", "mcp", "-32700 parse error");
}
