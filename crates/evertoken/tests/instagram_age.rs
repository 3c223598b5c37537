//! Instagram's 24-hour rule without guessing: a token of unknown age whose
//! refresh is refused is checked with a read-only `GET /me`. Works: `ok`
//! ("refresh deferred"), whatever words the refusal used. Does not: a
//! `reauth_required`. A token whose age the store keeps is not even sent.

use crate::common;
use common::{NOW, now};

use common::{TestEnv, days_from};

fn setup(env: &TestEnv, token: &str) {
    env.config(&format!(
        "platforms:\n  instagram: {{ base_url: \"{}\" }}\nauth: {{ writeback: {{ local: {{ keychain: off }} }} }}\n",
        env.base_url()
    ));
    env.credentials(&format!("INSTAGRAM_ACCESS_TOKEN: \"{token}\"\n"));
}

fn refresh(env: &TestEnv) -> common::Output {
    env.ev_at(NOW, &["auth", "refresh", "--json"], &[])
}

#[test]
fn a_young_token_of_unknown_age_is_ok_whatever_the_refusal_says() {
    let env = TestEnv::new();
    let sim = env.sim.sim();
    sim.set_now(Some(now()));
    // Meta does not document this text: the client must not depend on it.
    sim.instagram_set_young_message("Unsupported request - method type: get");
    let token = env.secret("test-ig-fresh-token-not-a-real-secret");
    sim.instagram_add_token(&token, now(), days_from(now(), 60));
    setup(&env, &token);
    let out = refresh(&env);
    out.expect_code(0);
    let r = out.json()["results"][0].clone();
    assert_eq!(r["state"], "ok", "{r}");
    common::assert_fields(
        &r,
        &[(
            "message",
            "refresh deferred: token too young or not yet refreshable",
        )],
    );
    assert_eq!(env.stored("INSTAGRAM_ACCESS_TOKEN").unwrap(), token);
}

#[test]
fn a_refused_token_that_no_longer_works_is_a_reauth() {
    let env = TestEnv::new();
    let sim = env.sim.sim();
    sim.set_now(Some(now()));
    let token = env.secret("test-ig-revoked-token-not-a-real-secret");
    sim.instagram_add_token(&token, days_from(now(), -10), days_from(now(), 50));
    sim.instagram_revoke(&token);
    // The refresh is refused with something other than Graph's invalid-token
    // code 190 (here a generic 400, code 100): only GET /me can tell.
    sim.push_faults(
        evertoken_sim::Route::Instagram,
        evertoken_sim::Fault::Status(400),
        1,
    );
    setup(&env, &token);
    let out = refresh(&env);
    out.expect_code(1);
    let r = out.json()["results"][0].clone();
    assert_eq!(r["state"], "reauth_required", "{r}");
    common::assert_fields(
        &r,
        &[
            ("message", "GET /me"),
            ("fix", "evertoken auth login instagram"),
        ],
    );
}

#[test]
fn the_env_file_keeps_the_age_so_a_young_token_is_not_sent() {
    let env = TestEnv::new();
    let sim = env.sim.sim();
    sim.set_now(Some(now()));
    let token = env.secret("test-ig-aged-token-not-a-real-secret");
    sim.instagram_add_token(&token, days_from(now(), -30), days_from(now(), 5));
    let path = env.work().join("tokens.env");
    std::fs::write(&path, format!("INSTAGRAM_ACCESS_TOKEN={token}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    env.config(&format!(
        "platforms:\n  instagram: {{ base_url: \"{}\" }}\nauth: {{ writeback: {{ backend: env-file, env_file: {{ path: tokens.env }} }} }}\n",
        env.base_url()
    ));
    let out = refresh(&env);
    out.expect_code(0);
    assert_eq!(out.json()["results"][0]["state"], "refreshed");
    let text = std::fs::read_to_string(&path).unwrap();
    common::assert_contains(&text, &["INSTAGRAM_ACCESS_TOKEN_UPDATED_AT="]);
    // The next run, a minute later by the same clock, knows the token is young.
    let before = sim.stats().requests.get("instagram").copied().unwrap_or(0);
    let out = refresh(&env);
    out.expect_code(0);
    assert_eq!(out.json()["results"][0]["state"], "ok");
    assert_eq!(
        sim.stats().requests.get("instagram").copied().unwrap_or(0),
        before,
        "not sent"
    );
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("INSTAGRAM_ACCESS_TOKEN=") {
            env.secret(v);
        }
    }
}

#[test]
fn graphs_invalid_token_answer_is_a_reauth_at_once() {
    let env = TestEnv::new();
    let sim = env.sim.sim();
    sim.set_now(Some(now()));
    let token = env.secret("test-ig-dead-token-not-a-real-secret");
    sim.instagram_add_token(&token, days_from(now(), -90), days_from(now(), -30));
    setup(&env, &token);
    let out = refresh(&env);
    out.expect_code(1);
    let r = out.json()["results"][0].clone();
    assert_eq!(r["state"], "reauth_required", "{r}");
    common::assert_fields(&r, &[("message", "190")]);
}

/// Meta's throttling and outage codes arrive as 400/403 too: they are never a
/// dead token. A refusal carrying one is `failed` (retried next run) without
/// asking `/me`; a `/me` answering with one is `failed` too, not a re-auth.
#[test]
fn throttling_as_400_or_403_is_a_retry_not_a_reauth() {
    use evertoken_sim::{Fault, Route};
    let throttled = |status: u16, code: u32, transient: bool| Fault::Throttled {
        status,
        code,
        transient,
    };
    // The refresh itself throttled: no /me, `failed`, token kept.
    for fault in [
        throttled(403, 4, false),
        throttled(400, 17, false),
        throttled(400, 613, false),
        throttled(403, 32, false),
        throttled(400, 341, false),
        throttled(400, 2, false),
        throttled(400, 1, false),
        throttled(400, 9007, true),
    ] {
        let env = TestEnv::new();
        let sim = env.sim.sim();
        sim.set_now(Some(now()));
        let token = env.secret("test-ig-throttled-token-not-a-real-secret");
        sim.instagram_add_token(&token, days_from(now(), -10), days_from(now(), 50));
        sim.push_fault(Route::Instagram, fault.clone());
        setup(&env, &token);
        let out = refresh(&env);
        assert_eq!(out.code, 1, "{fault:?}: {}{}", out.stdout, out.stderr);
        let r = out.json()["results"][0].clone();
        assert_eq!(r["state"], "failed", "{fault:?}: {r}");
        assert!(
            r["message"].as_str().unwrap().contains("for now"),
            "{fault:?}: {r}"
        );
        assert_eq!(
            sim.stats()
                .requests
                .get("instagram_me")
                .copied()
                .unwrap_or(0),
            0,
            "{fault:?}: no /me check while throttled"
        );
        assert_eq!(env.stored("INSTAGRAM_ACCESS_TOKEN").unwrap(), token);
        // The next run, unthrottled, refreshes.
        let again = refresh(&env);
        again.expect_code_for(format_args!("{fault:?}"), 0);
        assert_eq!(again.json()["results"][0]["state"], "refreshed");
        env.secret(&env.stored("INSTAGRAM_ACCESS_TOKEN").unwrap());
    }

    // The refresh refused (code 100) and /me throttled (403, code 4): `failed`.
    let env = TestEnv::new();
    let sim = env.sim.sim();
    sim.set_now(Some(now()));
    let token = env.secret("test-ig-me-throttled-token-not-a-real-secret");
    sim.instagram_add_token(&token, days_from(now(), -10), days_from(now(), 50));
    sim.push_fault(Route::Instagram, Fault::Status(400));
    sim.push_fault(Route::InstagramMe, throttled(403, 4, false));
    setup(&env, &token);
    let out = refresh(&env);
    out.expect_code(1);
    let r = out.json()["results"][0].clone();
    assert_eq!(r["state"], "failed", "{r}");
    common::assert_fields(&r, &[("message", "Application request limit reached")]);
    assert_eq!(sim.stats().requests.get("instagram_me").copied(), Some(1));
    assert_eq!(env.stored("INSTAGRAM_ACCESS_TOKEN").unwrap(), token);
}
