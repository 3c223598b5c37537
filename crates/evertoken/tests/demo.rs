//! `evertoken demo`: the README's first command. With no account and no config it
//! runs the full cycle against the in-process simulator, explains it, and leaves
//! nothing behind.

use crate::common;

use common::TestEnv;

#[test]
fn demo_runs_the_four_platform_cycle_and_cleans_up() {
    let env = TestEnv::new();
    let out = env.ev(&["demo"]);
    out.expect_code(0);
    for w in [
        "rotated",
        "refreshed",
        "health-checked",
        "reauth_required",
        "re-auth by",
        "A real run would exit 1",
    ] {
        assert!(out.stdout.contains(w), "{w}: {}", out.stdout);
    }
    // It never prints its own fake secrets either (its set-up is the shared
    // scenario builder's, so the test knows every one of them).
    let secrets = evertoken::demo::scenario().secrets();
    assert_eq!(secrets.len(), 7, "four tokens and three client secrets");
    for t in &secrets {
        assert!(!out.stdout.contains(t) && !out.stderr.contains(t), "{t}");
        env.secret(t);
    }
    // Nothing left in HOME, the work dir or the state dir.
    for d in ["home", "work", "state", "config"] {
        assert!(
            std::fs::read_dir(env.path(d)).unwrap().next().is_none(),
            "demo left files in {d}"
        );
    }
    let out = env.ev(&["demo", "--json"]);
    out.expect_code(0);
    let doc = out.json();
    let states = common::states(&doc["first"]);
    assert_eq!(states, ["refreshed", "ok", "rotated", "reauth_required"]);
    assert_eq!(doc["second"]["attention"], 1);
}

#[test]
fn demo_ignores_a_users_real_environment() {
    let env = TestEnv::new();
    let mut c = env.cmd();
    c.env(
        "TIKTOK_REFRESH_TOKEN",
        env.secret("rft.users-real-looking-but-fake-token-9"),
    )
    .env(
        "TIKTOK_CLIENT_SECRET",
        env.secret("users-fake-client-secret-99"),
    )
    .arg("demo");
    env.run(&mut c).expect_code(0).stdout_has(&["rotated"]);
}

#[test]
fn demo_platform_picks_any_built_in() {
    let env = TestEnv::new();
    let out = env.ev(&[
        "demo",
        "--json",
        "--platform",
        "x",
        "--platform",
        "threads",
        "--platform",
        "pinterest",
    ]);
    out.expect_code(0);
    let doc = out.json();
    let states = common::states(&doc["first"]);
    assert_eq!(states, ["rotated", "refreshed", "rotated"]);
    assert_eq!(doc["second"]["attention"], 0);
    env.ev(&["demo", "--platform", "x"])
        .expect_code(0)
        .stdout_has(&["X rotates its refresh token"]);
    env.ev(&["demo", "--platform", "myspace"])
        .expect_code(2)
        .stderr_has(&["pinterest"]);
}
