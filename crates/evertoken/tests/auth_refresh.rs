//! The core contract through the binary: `auth refresh` and `auth status` against the
//! simulator, for every row of the platform table, dry-run, exit codes, retries, the
//! journal's kill -9 recovery, one-host locking and file modes. Every output is
//! scanned for the test secrets by `TestEnv::run`.

use crate::common;
use common::{NOW, now};

use common::{TestEnv, days_from, mode, result};
use evertoken_sim::scenario::{Scenario, Store, platform};
use evertoken_sim::{Fault, Route};
use jiff::Timestamp;

const LI_CLIENT: &str = "test-linkedin-client";

/// The four platforms with the builder's default tokens: Instagram inside its
/// refresh window, YouTube healthy, TikTok due (no access token), LinkedIn 5 days
/// from expiry without a refresh token; the credentials file behind
/// `keychain: auto`.
fn four_platforms() -> Scenario {
    Scenario::at(now())
        .demo_platforms()
        .store(Store::local().keychain_auto())
        .http("timeout_seconds: 5, retries: 3")
}

/// [`four_platforms`], set up in `env`.
fn set_up_four(env: &TestEnv) -> Scenario {
    let s = four_platforms();
    env.scenario(&s);
    s
}

fn refresh(env: &TestEnv, args: &[&str]) -> common::Output {
    let mut c = env.cmd();
    c.env("EVERTOKEN_NOW", NOW)
        .args(["auth", "refresh"])
        .args(args);
    env.run(&mut c)
}

#[test]
fn refresh_all_does_each_platforms_action_and_exits_1_for_linkedin() {
    let env = TestEnv::new();
    let s = set_up_four(&env);
    let sim = env.sim.sim();
    let out = refresh(&env, &["all", "--json"]);
    out.expect_code(1);
    let doc = out.json();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["attention"], 1);

    // TikTok: rotated; the new refresh token is persisted and is the live one.
    let tt = result(&doc, "tiktok");
    assert_eq!(tt["state"], "rotated", "{tt}");
    let new_tt = env.stored("TIKTOK_REFRESH_TOKEN").unwrap();
    env.secret(&new_tt);
    assert_ne!(new_tt, s.token("tiktok"));
    assert!(sim.tiktok_is_live(&new_tt));
    assert!(!sim.tiktok_is_live(&s.token("tiktok")));
    assert!(
        env.stored("TIKTOK_ACCESS_TOKEN").is_some(),
        "the access token is stored too"
    );
    let creds = env.read_credentials();
    assert!(
        creds["TIKTOK_REFRESH_TOKEN"]["expires_at"]
            .as_str()
            .is_some(),
        "refresh expiry stored"
    );
    assert!(
        creds["TIKTOK_ACCESS_TOKEN"]["expires_at"]
            .as_str()
            .is_some(),
        "access expiry stored"
    );
    assert!(tt["refresh_expires_at"].as_str().is_some());

    // Instagram: refreshed in place, new token valid at the provider, expiry ~60 days.
    let ig = result(&doc, "instagram");
    assert_eq!(ig["state"], "refreshed", "{ig}");
    let new_ig = env.stored("INSTAGRAM_ACCESS_TOKEN").unwrap();
    env.secret(&new_ig);
    assert!(sim.instagram_is_valid(&new_ig));
    let exp: Timestamp = ig["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(exp > days_from(now(), 55), "{exp}");

    // YouTube: health-checked, nothing to store.
    let yt = result(&doc, "youtube");
    assert_eq!(yt["state"], "ok", "{yt}");
    assert_eq!(yt["action"], "health-checked");
    assert_eq!(
        env.stored("YOUTUBE_REFRESH_TOKEN").unwrap(),
        s.token("youtube")
    );

    // LinkedIn: re-auth by a date, with the command.
    let li = result(&doc, "linkedin");
    assert_eq!(li["state"], "reauth_required", "{li}");
    assert_eq!(li["reauth_by"], "2026-11-28");
    common::assert_fields(li, &[("message", "evertoken auth login linkedin")]);
    assert_eq!(li["fix"], "evertoken auth login linkedin");
    for r in doc["results"].as_array().unwrap() {
        for key in common::RESULT_KEYS {
            assert!(r.get(key).is_some(), "result lacks `{key}`: {r}");
        }
    }

    // The file holding them is private.
    assert_eq!(mode(&env.work().join("credentials.yaml")), 0o600);

    // A second run with the persisted tokens: nothing rotates again.
    let rotations = sim.stats().rotations;
    let again = refresh(&env, &["--json"]);
    again.expect_code(1);
    let doc = again.json();
    assert_eq!(result(&doc, "tiktok")["state"], "ok");
    assert_eq!(result(&doc, "instagram")["state"], "ok");
    assert_eq!(sim.stats().rotations, rotations);
    assert_eq!(sim.stats().reused_rotated_tokens, 0);
}

#[test]
fn human_output_is_a_table_with_a_summary() {
    let env = TestEnv::new();
    set_up_four(&env);
    let out = refresh(&env, &[]);
    out.expect_code(1);
    let first = out.stdout.lines().next().unwrap();
    for col in ["PLATFORM", "ACCOUNT", "STATE", "EXPIRES", "DAYS", "ACTION"] {
        common::assert_contains(first, &[col]);
    }
    out.stdout_has(&["rotated", "4 credentials: ", "1 needs attention"]);
    // The headless machine has no keychain: the fallback is said, once.
    assert_eq!(
        out.stderr.matches("using the credentials file").count(),
        1,
        "{}",
        out.stderr
    );
}

#[test]
fn dry_run_changes_nothing_and_predicts_the_exit_code() {
    let env = TestEnv::new();
    let s = set_up_four(&env);
    let sim = env.sim.sim();
    let before = std::fs::read(env.work().join("credentials.yaml")).unwrap();
    let out = refresh(&env, &["--dry-run", "--json"]);
    assert_eq!(
        out.code, 1,
        "LinkedIn would still need attention: {}",
        out.stderr
    );
    let doc = out.json();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(result(&doc, "tiktok")["action"], "would rotate");
    assert_eq!(
        result(&doc, "instagram")["action"],
        "would refresh in place"
    );
    assert_eq!(result(&doc, "youtube")["action"], "would health-check");
    assert_eq!(result(&doc, "linkedin")["state"], "reauth_required");
    assert_eq!(
        std::fs::read(env.work().join("credentials.yaml")).unwrap(),
        before,
        "dry-run wrote the store"
    );
    assert!(sim.tiktok_is_live(&s.token("tiktok")));
    let stats = sim.stats();
    assert_eq!(stats.rotations, 0);
    for route in ["tiktok", "instagram", "google"] {
        assert_eq!(
            stats.requests.get(route).copied().unwrap_or(0),
            0,
            "dry-run called {route}: {:?}",
            stats.requests
        );
    }
    assert!(
        !env.state_dir().join("journal").exists()
            || std::fs::read_dir(env.state_dir().join("journal"))
                .unwrap()
                .next()
                .is_none()
    );

    // Without LinkedIn, the real run would succeed: the dry-run says 0.
    refresh(&env, &["tiktok", "--dry-run"]).expect_code(0);
}

#[test]
fn young_instagram_tokens_are_left_alone() {
    let env = TestEnv::new();
    let sim = env.sim.sim();
    sim.set_now(Some(now()));
    let young = env.secret("test-ig-young-token-not-a-real-secret");
    let unknown_age = env.secret("test-ig-fresh-token-not-a-real-secret");
    sim.instagram_add_token(&young, days_from(now(), 0), days_from(now(), 60));
    sim.instagram_add_token(&unknown_age, now(), days_from(now(), 60));
    let base = env.base_url();
    env.config(&format!(
        "platforms:\n  instagram: {{ base_url: \"{base}\", accounts: [known, fresh] }}\nauth: {{ writeback: {{ local: {{ keychain: off }} }} }}\n"
    ));
    env.credentials(&format!(
        "INSTAGRAM_ACCESS_TOKEN_KNOWN: {{ value: \"{young}\", expires_at: {}, updated_at: {} }}\nINSTAGRAM_ACCESS_TOKEN_FRESH: \"{unknown_age}\"\n",
        days_from(now(), 60),
        now()
    ));
    let out = refresh(&env, &["--json"]);
    out.expect_code(0);
    let doc = out.json();
    let rs = doc["results"].as_array().unwrap();
    assert!(rs.iter().all(|r| r["state"] == "ok"), "{doc}");
    // Known-young: not even called. Unknown age: called once; Instagram refused,
    // and a read-only GET /me showed the token works.
    assert_eq!(
        sim.stats().requests.get("instagram").copied().unwrap_or(0),
        1
    );
    out.stdout_has(&["refresh deferred"]);
    assert_eq!(
        env.stored("INSTAGRAM_ACCESS_TOKEN_FRESH").unwrap(),
        unknown_age
    );
}

#[test]
fn youtube_invalid_grant_is_reauth_with_likely_causes() {
    let env = TestEnv::new();
    let s = set_up_four(&env);
    env.sim.sim().google_revoke(&s.token("youtube"));
    let out = refresh(&env, &["youtube", "--json"]);
    out.expect_code(1);
    let yt = result(&out.json(), "youtube").clone();
    assert_eq!(yt["state"], "reauth_required", "{yt}");
    let msg = yt["message"].as_str().unwrap();
    common::assert_contains(msg, &["invalid_grant", "Testing mode", "6 months"]);
    assert_eq!(yt["reauth_by"], "2026-11-23");
    assert_eq!(yt["fix"], "evertoken auth login youtube");
}

#[test]
fn transient_failures_are_retried_and_permanent_ones_are_not() {
    let env = TestEnv::new();
    set_up_four(&env);
    let sim = env.sim.sim();
    sim.push_faults(Route::TikTok, Fault::Status(503), 2);
    sim.push_fault(
        Route::TikTok,
        Fault::TooManyRequests {
            retry_after_secs: Some(1),
        },
    );
    let out = refresh(&env, &["tiktok", "--json"]);
    out.expect_code(0);
    assert_eq!(result(&out.json(), "tiktok")["state"], "rotated");
    assert_eq!(
        sim.stats().requests["tiktok"],
        4,
        "three failures, then success"
    );

    sim.push_fault(Route::TikTok, Fault::InvalidClient);
    let before = sim.stats().requests["tiktok"];
    // The access token is fresh now; make it due again by moving the clock.
    let mut c = env.cmd();
    c.env("EVERTOKEN_NOW", days_from(now(), 3).to_string())
        .args(["auth", "refresh", "tiktok", "--json"]);
    let out = env.run(&mut c);
    out.expect_code(1);
    let tt = result(&out.json(), "tiktok").clone();
    assert_eq!(tt["state"], "failed", "{tt}");
    common::assert_fields(&tt, &[("fix", "TIKTOK_CLIENT_SECRET")]);
    assert_eq!(
        sim.stats().requests["tiktok"],
        before + 1,
        "invalid_client is not retried"
    );
}

#[test]
fn a_lost_answer_to_a_rotation_is_unknown_not_success_and_not_retried() {
    let env = TestEnv::new();
    env.scenario(
        &Scenario::at(now())
            .platforms(&["tiktok"])
            .http("timeout_seconds: 1"),
    );
    let sim = env.sim.sim();
    sim.push_fault(
        Route::TikTok,
        Fault::HangAfterProcessing(std::time::Duration::from_secs(3)),
    );
    let stored = env.stored("TIKTOK_REFRESH_TOKEN").unwrap();
    let out = refresh(&env, &["--json"]);
    out.expect_code(1);
    let tt = result(&out.json(), "tiktok").clone();
    assert_eq!(tt["state"], "unknown", "{tt}");
    common::assert_fields(&tt, &[("message", "may have rotated")]);
    assert_eq!(
        sim.stats().requests["tiktok"],
        1,
        "a rotating call is never blindly retried"
    );
    assert_eq!(env.stored("TIKTOK_REFRESH_TOKEN").unwrap(), stored);
}

#[test]
fn a_stale_environment_token_is_recovered_by_one_store_re_read() {
    let env = TestEnv::new();
    let s = set_up_four(&env);
    let sim = env.sim.sim();
    // Rotate once, so the credentials file holds the live token ...
    assert_eq!(refresh(&env, &["tiktok"]).code, 0);
    let live = env.stored("TIKTOK_REFRESH_TOKEN").unwrap();
    env.secret(&live);
    // ... while the environment still carries the dead original.
    let mut c = env.cmd();
    c.env("EVERTOKEN_NOW", days_from(now(), 3).to_string())
        .env("TIKTOK_REFRESH_TOKEN", s.token("tiktok"))
        .args(["auth", "refresh", "tiktok", "--json"]);
    let out = env.run(&mut c);
    out.expect_code(0);
    let tt = result(&out.json(), "tiktok").clone();
    assert_eq!(tt["state"], "rotated", "{tt}");
    let warnings = tt["warnings"].to_string();
    assert!(
        warnings.contains("TIKTOK_REFRESH_TOKEN is also set in the environment"),
        "{tt}"
    );
    assert!(sim.tiktok_is_live(&env.stored("TIKTOK_REFRESH_TOKEN").unwrap()));
}

#[test]
fn linkedin_with_a_partner_refresh_token_is_refreshed() {
    let env = TestEnv::new();
    let sim = env.sim.sim();
    sim.set_now(Some(now()));
    sim.linkedin_add_client(LI_CLIENT, "test-linkedin-client-secret-xyz");
    sim.linkedin_set_programmatic_refresh(LI_CLIENT, true);
    let rt = env.secret("test-li-refresh-not-a-real-secret-0005");
    sim.linkedin_add_refresh_token(LI_CLIENT, &rt, days_from(now(), 300));
    let base = env.base_url();
    env.config(&format!(
        "platforms:\n  linkedin: {{ base_url: \"{base}\", client_id: {LI_CLIENT} }}\nauth: {{ writeback: {{ local: {{ keychain: off }} }} }}\n"
    ));
    env.credentials(&format!(
        "LINKEDIN_REFRESH_TOKEN: {{ value: \"{rt}\", expires_at: {} }}\nLINKEDIN_CLIENT_SECRET: test-linkedin-client-secret-xyz\n",
        days_from(now(), 300)
    ));
    let out = refresh(&env, &["--json"]);
    out.expect_code(0);
    let li = result(&out.json(), "linkedin").clone();
    assert!(
        li["state"] == "refreshed" || li["state"] == "rotated",
        "{li}"
    );
    let at = env.stored("LINKEDIN_ACCESS_TOKEN").unwrap();
    env.secret(&at);
    assert!(sim.linkedin_is_valid_access(&at));
}

#[test]
fn accounts_get_suffixed_variables_and_run_side_by_side() {
    let env = TestEnv::new();
    env.scenario(
        &Scenario::wall_clock().with(
            platform("tiktok")
                .accounts(&["brand-a", "brand-b"])
                .expires_in_days(200)
                .store_records_expiry(false)
                .setting("concurrency: 2"),
        ),
    );
    let out = env.ev(&["auth", "refresh", "--json"]);
    out.expect_code(0);
    let doc = out.json();
    let accounts: Vec<_> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["account"].as_str().unwrap().to_owned(),
                r["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        accounts,
        vec![
            ("brand-a".into(), "rotated".into()),
            ("brand-b".into(), "rotated".into())
        ]
    );
    for var in [
        "TIKTOK_REFRESH_TOKEN_BRAND_A",
        "TIKTOK_REFRESH_TOKEN_BRAND_B",
        "TIKTOK_ACCESS_TOKEN_BRAND_A",
    ] {
        let v = env
            .stored(var)
            .unwrap_or_else(|| panic!("{var} not stored"));
        env.secret(&v);
    }
    // One account by name.
    let out = env.ev(&["auth", "status", "tiktok:brand-b", "--json"]);
    assert_eq!(out.json()["results"].as_array().unwrap().len(), 1);
    env.ev(&["auth", "status", "tiktok:brand-c"])
        .expect_code(2)
        .stderr_has(&["brand-a, brand-b"]);
}

#[test]
fn status_is_offline_and_says_where_each_secret_came_from() {
    let env = TestEnv::new();
    let s = set_up_four(&env);
    let mut c = env.cmd();
    c.env("EVERTOKEN_NOW", NOW)
        .env("TIKTOK_CLIENT_SECRET", s.client_secret("tiktok"))
        .args(["auth", "status", "--json"]);
    let out = env.run(&mut c);
    assert_eq!(
        env.sim.sim().stats().requests.values().sum::<u64>(),
        0,
        "status made a network call"
    );
    // Offline, LinkedIn's expiry is unknown and Instagram's refresh is merely due:
    // nothing needs a human yet.
    out.expect_code(0);
    let doc = out.json();
    assert_eq!(result(&doc, "linkedin")["state"], "unknown");
    let source = |var: &str| {
        let s = doc["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["var"] == var)
            .unwrap_or_else(|| panic!("{var}"));
        assert_eq!(s["present"], true);
        s["source"]["kind"].as_str().unwrap().to_owned()
    };
    assert_eq!(source("TIKTOK_CLIENT_SECRET"), "env");
    assert_eq!(source("YOUTUBE_CLIENT_SECRET"), "file");
    let ig = result(&doc, "instagram");
    assert_eq!(ig["state"], "expiring");
    assert_eq!(ig["credentials"][0]["prefix"], "test-ig-…");
    env.ev_at(NOW, &["auth", "status"], &[]).stdout_has(&[
        "YOUTUBE_CLIENT_SECRET: file ",
        "INSTAGRAM_ACCESS_TOKEN: test-ig-… from file",
    ]);
}

#[test]
fn a_missing_client_secret_is_a_config_error_before_any_call() {
    let env = TestEnv::new();
    env.scenario(&four_platforms().with(platform("tiktok").client_secret_not_stored()));
    refresh(&env, &["all"])
        .expect_code(2)
        .stderr_has(&["TIKTOK_CLIENT_SECRET is not set", "hint:"]);
    assert_eq!(env.sim.sim().stats().requests.values().sum::<u64>(), 0);
}

/// SIGKILL at every step of a rotation; the next run always ends with the
/// provider's current token in the store.
#[test]
fn kill_9_at_every_rotation_step_loses_nothing() {
    for fp in [
        "after_provider",
        "after_journal",
        "mid_writeback",
        "after_writeback",
        "before_journal_cleanup",
    ] {
        let env = TestEnv::new();
        set_up_four(&env);
        let sim = env.sim.sim();
        let mut c = env.cmd();
        c.env("EVERTOKEN_NOW", NOW)
            .env("EVERTOKEN_FAILPOINT", fp)
            .args(["auth", "refresh", "tiktok"]);
        let out = c.output().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{fp}: the process was not killed"
        );
        let live = sim.tiktok_live_refresh_tokens();
        assert_eq!(live.len(), 1, "{fp}");
        env.secret(&live[0]);
        // The store is intact (parseable, private) whatever instant the kill hit.
        env.read_credentials();
        assert_eq!(mode(&env.work().join("credentials.yaml")), 0o600, "{fp}");
        let out = refresh(&env, &["tiktok", "--json"]);
        if fp == "after_provider" {
            // Killed between the provider's answer and the journal write: the new
            // token existed only in the dead process. It is not silently lost: the
            // next run says a human must re-authorise, with the likely cause.
            assert_eq!(out.code, 1, "{fp}: {}{}", out.stdout, out.stderr);
            let tt = result(&out.json(), "tiktok").clone();
            assert_eq!(tt["state"], "reauth_required", "{fp}: {tt}");
            common::assert_fields(&tt, &[("message", "rotated it and the new one was lost")]);
            continue;
        }
        assert_eq!(out.code, 0, "{fp}: {}{}", out.stdout, out.stderr);
        assert_eq!(
            env.stored("TIKTOK_REFRESH_TOKEN").unwrap(),
            live[0],
            "{fp}: the store lost the rotated token"
        );
        assert_eq!(sim.stats().reused_rotated_tokens, 0, "{fp}");
        let journal = env.state_dir().join("journal");
        assert!(
            std::fs::read_dir(&journal)
                .map(|mut d| d.next().is_none())
                .unwrap_or(true),
            "{fp}: journal not cleared"
        );
    }
}

/// Eight runners on one host, one credential: exactly one rotation.
#[test]
fn concurrent_runners_on_one_host_rotate_once() {
    let env = TestEnv::new();
    set_up_four(&env);
    let sim = env.sim.sim();
    let outs = env.run_concurrently(
        (0..8)
            .map(|_| {
                let mut c = env.std_cmd();
                c.env("EVERTOKEN_NOW", NOW)
                    .args(["auth", "refresh", "tiktok", "--json"]);
                c
            })
            .collect(),
    );
    let live = sim.tiktok_live_refresh_tokens();
    env.secret(&live[0]);
    for o in &outs {
        // Scanned again: the new token is a secret now.
        env.assert_no_leak(&format!("{}{}", o.stdout, o.stderr));
        o.expect_code(0);
    }
    assert_eq!(sim.stats().rotations, 1);
    assert_eq!(sim.stats().reused_rotated_tokens, 0);
    // Exactly one runner rotated; every other one reports `ok`, either skipped
    // ("another evertoken run refreshed it just now", when it waited on the lock)
    // or because the token it read was already fresh.
    let states: Vec<String> = outs
        .iter()
        .map(|o| o.json()["results"][0]["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        states.iter().filter(|s| *s == "rotated").count(),
        1,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| *s == "ok").count(),
        7,
        "{states:?}"
    );
    assert_eq!(env.stored("TIKTOK_REFRESH_TOKEN").unwrap(), live[0]);
}

#[test]
fn write_back_creates_a_private_store_in_a_private_directory() {
    let env = TestEnv::new();
    let s = four_platforms().store(Store::local().file("secrets/new/credentials.yaml"));
    env.scenario(&s);
    let dir = env.work().join("secrets/new");
    common::set_mode(&dir, 0o700);
    env.ev_at(
        NOW,
        &["auth", "refresh", "tiktok"],
        &[("TIKTOK_CLIENT_SECRET", &s.client_secret("tiktok"))],
    )
    .expect_code(0);
    assert_eq!(mode(&dir.join("credentials.yaml")), 0o600);
    let journal = env.state_dir().join("journal");
    assert_eq!(mode(&journal), 0o700);
    // The host locks live beside the store they protect (issue 13).
    assert_eq!(mode(&dir.join(".credentials.yaml.locks")), 0o700);
}
