//! Retries and the provider × fault matrix: every provider × every fault the
//! simulator can inject, each classified as the spec says (retried or not;
//! `failed`, `reauth_required` or `unknown`), within a bounded time, with a
//! clear message and no panic.

use crate::common;
use common::NOW;

use std::time::{Duration, Instant};

use common::{ALL, P, TestEnv, days_from};
use evertoken_sim::{Fault, Route};
use jiff::Timestamp;

/// http.retries in the matrix config: a failing transient call makes 1 + 2 attempts.
const ATTEMPTS: u64 = 3;

/// The call each platform makes on a healthy refresh.
impl P {
    fn probe_route(self) -> Route {
        match self {
            P::Instagram => Route::Instagram,
            P::Youtube => Route::Google,
            P::Tiktok => Route::TikTok,
            P::Linkedin => Route::LinkedInIntrospect,
        }
    }
    fn stat(self) -> &'static str {
        match self {
            P::Instagram => "instagram",
            P::Youtube => "google",
            P::Tiktok => "tiktok",
            P::Linkedin => "linkedin_introspect",
        }
    }
    /// The state a healthy call ends in.
    fn healthy(self) -> &'static str {
        match self {
            P::Instagram => "refreshed",
            P::Youtube | P::Linkedin => "ok",
            P::Tiktok => "rotated",
        }
    }
    fn rotating(self) -> bool {
        self == P::Tiktok
    }
}

#[derive(Clone, Debug)]
enum Inject {
    /// Point the provider at a closed port.
    Refused,
    Once(Fault),
    Always(Fault),
}

/// One provider configured alone, seeded healthy, needing a call.
fn setup(env: &TestEnv, p: P, base: &str) {
    let sim = env.sim.sim();
    let now: Timestamp = NOW.parse().unwrap();
    sim.set_now(Some(now));
    let (block, creds) = match p {
        P::Instagram => {
            let t = env.secret("test-ig-fault-token-not-a-real-secret");
            sim.instagram_add_token(&t, days_from(now, -40), days_from(now, 5));
            (
                format!("instagram: {{ base_url: \"{base}\" }}"),
                format!("INSTAGRAM_ACCESS_TOKEN: \"{t}\"\n"),
            )
        }
        P::Youtube => {
            let t = env.secret("test-yt-fault-refresh-not-a-real-secret");
            sim.google_add_client(
                "test-fault.apps.googleusercontent.com",
                "test-fault-google-secret",
            );
            sim.google_add_refresh_token("test-fault.apps.googleusercontent.com", &t);
            (
                format!(
                    "youtube: {{ base_url: \"{base}\", client_id: test-fault.apps.googleusercontent.com }}"
                ),
                format!(
                    "YOUTUBE_REFRESH_TOKEN: \"{t}\"\nYOUTUBE_CLIENT_SECRET: test-fault-google-secret\n"
                ),
            )
        }
        P::Tiktok => {
            let t = env.secret("rft.test-fault-tiktok-not-a-real-secret");
            sim.tiktok_add_client("test-fault-key", "test-fault-tiktok-secret");
            sim.tiktok_add_refresh_token("test-fault-key", &t, days_from(now, 100));
            (
                format!("tiktok: {{ base_url: \"{base}\", client_key: test-fault-key }}"),
                format!(
                    "TIKTOK_REFRESH_TOKEN: \"{t}\"\nTIKTOK_CLIENT_SECRET: test-fault-tiktok-secret\n"
                ),
            )
        }
        P::Linkedin => {
            let t = env.secret("test-li-fault-access-not-a-real-secret");
            sim.linkedin_add_client("test-fault-li", "test-fault-li-secret");
            sim.linkedin_add_access_token(&t, days_from(now, 40));
            (
                format!("linkedin: {{ base_url: \"{base}\", client_id: test-fault-li }}"),
                format!(
                    "LINKEDIN_ACCESS_TOKEN: \"{t}\"\nLINKEDIN_CLIENT_SECRET: test-fault-li-secret\n"
                ),
            )
        }
    };
    for s in [
        "test-fault-google-secret",
        "test-fault-tiktok-secret",
        "test-fault-li-secret",
    ] {
        env.secret(s);
    }
    env.config(&format!(
        "platforms:\n  {block}\nauth: {{ writeback: {{ local: {{ keychain: off }} }} }}\nhttp: {{ timeout_seconds: 1, retries: 2, max_retry_after_seconds: 5 }}\n"
    ));
    env.credentials(&creds);
}

/// Runs one cell; returns (state, requests seen by the simulator, message).
fn cell(p: P, inject: &Inject) -> (String, u64, String) {
    let env = TestEnv::new();
    let base = match inject {
        Inject::Refused => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            drop(l);
            format!("http://127.0.0.1:{port}")
        }
        _ => env.base_url(),
    };
    setup(&env, p, &base);
    let sim = env.sim.sim();
    match inject {
        Inject::Refused => {}
        Inject::Once(f) => sim.push_fault(p.probe_route(), f.clone()),
        Inject::Always(f) => sim.set_persistent_fault(p.probe_route(), Some(f.clone())),
    }
    let started = Instant::now();
    let mut c = env.cmd();
    c.env("EVERTOKEN_NOW", NOW)
        .args(["auth", "refresh", "--json"]);
    let out = env.run(&mut c);
    let took = started.elapsed();
    let what = format!("{p:?} × {inject:?}");
    assert!(
        took < Duration::from_secs(30),
        "{what}: unbounded ({took:?})"
    );
    assert!(!out.stderr.contains("panicked"), "{what}: {}", out.stderr);
    let doc = out.json();
    let r = &doc["results"][0];
    let state = r["state"].as_str().unwrap().to_owned();
    let message = r["message"].as_str().unwrap().to_owned();
    assert!(!message.is_empty(), "{what}: empty message");
    let expected_code = if state == "ok" || state == "refreshed" || state == "rotated" {
        0
    } else {
        1
    };
    assert_eq!(out.code, expected_code, "{what}: exit code for {state}");
    let requests = sim.stats().requests.get(p.stat()).copied().unwrap_or(0);
    if let Some(dir) = std::env::var_os("EVERTOKEN_RELIABILITY_OUT") {
        use std::io::Write;
        let _ = std::fs::create_dir_all(&dir);
        let path = std::path::Path::new(&dir).join("fault_matrix.tsv");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        let short: String = message
            .chars()
            .take(90)
            .collect::<String>()
            .replace(['|', '\t', '\n'], " ");
        writeln!(
            f,
            "{p:?}\t{inject:?}\t{state}\t{requests}\t{}\t{short}",
            took.as_millis()
        )
        .unwrap();
    }
    (state, requests, message)
}

fn check(p: P, inject: Inject, state: &str, requests: u64) {
    let (got, n, msg) = cell(p, &inject);
    assert_eq!(
        (got.as_str(), n),
        (state, requests),
        "{p:?} × {inject:?}: {msg}"
    );
}

#[test]
fn fault_matrix() {
    let providers = ALL;
    let handles: Vec<_> = providers
        .into_iter()
        .map(|p| {
            std::thread::spawn(move || {
                let healthy = p.healthy();
                let rot = p.rotating();
                // Transport faults.
                let (state, n, msg) = cell(p, &Inject::Refused);
                assert_eq!((state.as_str(), n), ("failed", 0), "{p:?} refused: {msg}");
                common::assert_contains(&msg, &["cannot connect"]);
                // A timeout: safe calls are retried; a rotating call's outcome is unknown.
                let t = Fault::Hang(Duration::from_secs(3));
                if rot {
                    check(p, Inject::Once(t), "unknown", 1)
                } else {
                    check(p, Inject::Once(t), healthy, 2)
                }
                let t = Fault::HangAfterProcessing(Duration::from_secs(3));
                if rot {
                    check(p, Inject::Once(t), "unknown", 1)
                } else {
                    check(p, Inject::Once(t), healthy, 2)
                }
                // Server errors and rate limits: retried, then failed.
                for s in [500, 502, 503] {
                    check(p, Inject::Once(Fault::Status(s)), healthy, 2);
                    let (state, n, msg) = cell(p, &Inject::Always(Fault::Status(s)));
                    assert_eq!(
                        (state.as_str(), n),
                        ("failed", ATTEMPTS),
                        "{p:?} {s}: {msg}"
                    );
                    common::assert_contains(&msg, &[&s.to_string(), "gave up after 3 attempts"]);
                }
                check(
                    p,
                    Inject::Once(Fault::TooManyRequests {
                        retry_after_secs: Some(1),
                    }),
                    healthy,
                    2,
                );
                check(
                    p,
                    Inject::Always(Fault::TooManyRequests {
                        retry_after_secs: Some(1),
                    }),
                    "failed",
                    ATTEMPTS,
                );
                check(
                    p,
                    Inject::Always(Fault::TooManyRequests {
                        retry_after_secs: None,
                    }),
                    "failed",
                    ATTEMPTS,
                );
                let (state, n, msg) = cell(
                    p,
                    &Inject::Once(Fault::TooManyRequests {
                        retry_after_secs: Some(3600),
                    }),
                );
                assert_eq!((state.as_str(), n), ("failed", 1), "{p:?}: {msg}");
                common::assert_contains(&msg, &["Retry-After 3600s"]);
                // Broken bodies: a safe call is repeated, a rotation is unknown.
                if rot {
                    check(p, Inject::Once(Fault::TruncatedBody), "unknown", 1);
                    check(p, Inject::Once(Fault::MalformedJson), "unknown", 1);
                    check(p, Inject::Once(Fault::DropRotatedToken), "unknown", 1);
                } else {
                    check(p, Inject::Once(Fault::TruncatedBody), healthy, 2);
                    let (state, n, msg) = cell(p, &Inject::Once(Fault::MalformedJson));
                    assert_eq!((state.as_str(), n), ("failed", 1), "{p:?} malformed: {msg}");
                    common::assert_contains(&msg, &["cannot read"]);
                }
                check(p, Inject::Once(Fault::HtmlErrorPage), healthy, 2);
                // Permanent answers: never retried.
                check(p, Inject::Once(Fault::InvalidGrant), "reauth_required", 1);
                let (state, n, msg) = cell(p, &Inject::Once(Fault::InvalidClient));
                assert_eq!(n, 1, "{p:?} invalid_client retried: {msg}");
                assert!(
                    state == "failed" || p == P::Instagram,
                    "{p:?} invalid_client → {state}: {msg}"
                );
                let (state, n, msg) = cell(p, &Inject::Once(Fault::Unauthorized));
                assert_eq!(n, 1, "{p:?} 401 retried: {msg}");
                let want = if p == P::Instagram {
                    "reauth_required"
                } else {
                    "failed"
                };
                assert_eq!(state, want, "{p:?} 401: {msg}");
            })
        })
        .collect();
    let mut failures = Vec::new();
    for (p, h) in providers.iter().zip(handles) {
        if let Err(e) = h.join() {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{p:?}: {msg}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
