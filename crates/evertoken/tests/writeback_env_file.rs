//! The `env-file` write-back: `KEY=value` lines for systemd `EnvironmentFile=`
//! and `source`; the rotated token replaces its line, every other line stays, the
//! file stays 0600, and the next run reads the new token from it.

use crate::common;

use common::{OLD_RT, TestEnv};
use evertoken_sim::Route;
use evertoken_sim::scenario::{Scenario, Store};

/// TikTok against `tokens.env`, holding `file_text` with `mode`; the client secret
/// comes from the environment.
fn setup(env: &TestEnv, file_text: &str, mode: u32) -> (Scenario, std::path::PathBuf) {
    let s = Scenario::wall_clock()
        .with(common::tiktok().client_secret_not_stored())
        .store(Store::env_file("tokens.env"));
    env.scenario(&s);
    let path = env.work().join("tokens.env");
    std::fs::write(&path, file_text).unwrap();
    common::set_mode(&path, mode);
    (s, path)
}

#[test]
fn rotation_round_trips_through_the_file_and_keeps_other_lines() {
    let env = TestEnv::new();
    let original = format!(
        "# publisher settings\nPOST_HOUR=9\nexport TIKTOK_REFRESH_TOKEN='{OLD_RT}'\n\nOTHER_URL=https://example.invalid/x\n"
    );
    let (s, path) = setup(&env, &original, 0o600);

    let out = env.refresh(&s, &[]);
    out.assert_rotated();
    let live = env.sim.sim().tiktok_live_refresh_tokens();
    assert_eq!(live.len(), 1);
    let new_rt = &live[0];

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        &lines[..2],
        ["# publisher settings", "POST_HOUR=9"],
        "lines before are kept in place:\n{text}"
    );
    assert_eq!(
        lines[2],
        format!("export TIKTOK_REFRESH_TOKEN={new_rt}"),
        "the token's line is replaced in place, keeping its `export`:\n{text}"
    );
    assert_eq!(
        &lines[3..5],
        ["", "OTHER_URL=https://example.invalid/x"],
        "lines after are kept:\n{text}"
    );
    assert!(
        !text.contains(OLD_RT),
        "the rotated-away token is gone:\n{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("TIKTOK_ACCESS_TOKEN=act.sim-")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("TIKTOK_REFRESH_TOKEN_EXPIRES_AT=")),
        "{text}"
    );
    assert_eq!(common::mode(&path), 0o600);
    for form in common::encodings(new_rt) {
        assert!(
            !out.stdout.contains(&form) && !out.stderr.contains(&form),
            "output leaks the new token"
        );
    }

    // What `source tokens.env` gives a shell is what evertoken wrote.
    let sourced = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            ". '{}' && printf %s \"$TIKTOK_REFRESH_TOKEN\"",
            path.display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&sourced.stdout), new_rt.as_str());

    // The next run reads the file: the access token is fresh, nothing to rotate.
    let out = env.refresh(&s, &[]);
    out.expect_code(0);
    assert_eq!(out.json()["results"][0]["state"], "ok", "{}", out.stdout);
    assert_eq!(env.sim.sim().stats().rotations, 1);
    assert_eq!(env.sim.sim().stats().reused_rotated_tokens, 0);
}

#[test]
fn a_file_readable_by_others_is_refused() {
    let env = TestEnv::new();
    let (s, path) = setup(&env, &format!("TIKTOK_REFRESH_TOKEN={OLD_RT}\n"), 0o644);
    env.refresh(&s, &[])
        .expect_code(2)
        .stderr_has(&["chmod 600"]);
    assert_eq!(env.sim.sim().request_count(Route::TikTok), 0);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("TIKTOK_REFRESH_TOKEN={OLD_RT}\n")
    );
}

#[test]
fn a_shadowing_environment_variable_is_pointed_out() {
    let env = TestEnv::new();
    let (s, path) = setup(&env, "", 0o600);
    std::fs::remove_file(&path).unwrap();
    let out = env.refresh(&s, &[("TIKTOK_REFRESH_TOKEN", OLD_RT)]);
    out.expect_code(0);
    let warnings = out.json()["results"][0]["warnings"].to_string();
    assert!(
        warnings.contains("TIKTOK_REFRESH_TOKEN") && warnings.contains("stale"),
        "{}",
        out.stdout
    );
    // The file did not exist: it is created, private.
    assert_eq!(common::mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!(
        "TIKTOK_REFRESH_TOKEN={}",
        env.sim.sim().tiktok_live_refresh_tokens()[0]
    )));
}
