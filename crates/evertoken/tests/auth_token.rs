//! `auth token` and `auth env` through the binary, against the simulator: a job
//! gets a valid access token from evertoken, which refreshes or rotates first when
//! due (under the same journal and write-back as `auth refresh`) and otherwise
//! calls nobody; a token that cannot be had leaves stdout empty and exits 1; the
//! shell form survives `eval`; GitHub Actions gets `::add-mask::`. A store value
//! changed behind evertoken's back is reported as a likely second rotator.

use crate::common;
use common::{NOW, now};

use common::TestEnv;
use evertoken_sim::scenario::{Scenario, platform};

/// TikTok with a stored refresh token and no access token (a first run after login).
fn tiktok(env: &TestEnv) -> String {
    let s = Scenario::at(now())
        .platforms(&["tiktok"])
        .http("timeout_seconds: 5, retries: 1");
    env.scenario(&s);
    s.token("tiktok")
}

fn tiktok_calls(env: &TestEnv) -> u64 {
    env.calls("tiktok")
}

#[test]
fn auth_token_rotates_when_due_then_serves_the_stored_token_without_a_call() {
    let env = TestEnv::new();
    let old_rt = tiktok(&env);
    let out = env.ev_at(NOW, &["auth", "token", "tiktok"], &[]);
    out.expect_code(0);
    let token = out.stdout.trim_end_matches('\n');
    assert_eq!(out.stdout.lines().count(), 1, "the token alone on stdout");
    // The rotation went through the store: the printed token is the stored one,
    // the stored refresh token is the provider's only live one, the old one is dead.
    assert_eq!(env.stored("TIKTOK_ACCESS_TOKEN").as_deref(), Some(token));
    let live = env.sim.sim().tiktok_live_refresh_tokens();
    assert_eq!(live.len(), 1);
    assert_eq!(env.stored("TIKTOK_REFRESH_TOKEN"), Some(live[0].clone()));
    assert_ne!(live[0], old_rt);
    // Nothing pending in the journal.
    let pending = std::fs::read_dir(env.state_dir().join("journal"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(pending, 0);
    let calls = tiktok_calls(&env);
    assert_eq!(calls, 1);

    // Valid for 2 hours: the next job gets the same token and TikTok hears nothing.
    let again = env.ev_at(NOW, &["auth", "token", "tiktok", "--json"], &[]);
    again.expect_code(0);
    let doc = again.json();
    assert_eq!(doc["access_token"], token);
    assert_eq!(doc["variable"], "TIKTOK_ACCESS_TOKEN");
    assert_eq!(tiktok_calls(&env), calls);

    // 4 minutes before expiry (inside the 5-minute margin): rotated again first.
    let exp: jiff::Timestamp = doc["expires_at"].as_str().unwrap().parse().unwrap();
    let late = exp
        .checked_sub(jiff::SignedDuration::from_mins(4))
        .unwrap()
        .to_string();
    env.sim.sim().set_now(Some(late.parse().unwrap()));
    let mut c = env.cmd();
    c.env("EVERTOKEN_NOW", &late)
        .args(["auth", "token", "tiktok"]);
    let third = env.run(&mut c);
    third.expect_code(0);
    assert_ne!(third.stdout.trim_end(), token);
    assert_eq!(
        env.stored("TIKTOK_ACCESS_TOKEN").as_deref(),
        Some(third.stdout.trim_end())
    );
    assert_eq!(tiktok_calls(&env), calls + 1);
}

#[test]
fn auth_env_is_safe_to_eval_and_masks_under_github_actions() {
    let env = TestEnv::new();
    tiktok(&env);
    let out = env.ev_at(
        NOW,
        &["auth", "env", "tiktok"],
        &[("GITHUB_ACTIONS", "true")],
    );
    out.expect_code(0);
    let token = env.stored("TIKTOK_ACCESS_TOKEN").expect("stored");
    assert_eq!(
        out.stdout,
        format!("export TIKTOK_ACCESS_TOKEN='{token}'\n")
    );
    assert!(
        out.stderr.contains(&format!("::add-mask::{token}\n")),
        "stderr: {}",
        out.stderr
    );
    // What a posting step does.
    let sh = std::process::Command::new("sh")
        .arg("-c")
        .arg("eval \"$LINES\"; printf %s \"$TIKTOK_ACCESS_TOKEN\"")
        .env("LINES", &out.stdout)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(sh.stdout).unwrap(), token);

    let dotenv = env.ev_at(NOW, &["auth", "env", "all", "--format", "dotenv"], &[]);
    dotenv.expect_code(0);
    assert_eq!(dotenv.stdout, format!("TIKTOK_ACCESS_TOKEN={token}\n"));
    // Outside Actions: no mask line.
    assert!(!dotenv.stderr.contains("::add-mask::"));
}

#[test]
fn no_token_to_be_had_means_exit_1_the_reason_and_no_token_on_stdout() {
    let env = TestEnv::new();
    let rt = tiktok(&env);
    env.sim.sim().tiktok_revoke(&rt);
    for (args, stdout) in [
        (&["auth", "token", "tiktok"][..], ""),
        // An old copy in a job's environment must not survive the eval.
        (
            &["auth", "env", "tiktok"][..],
            "unset TIKTOK_ACCESS_TOKEN\n",
        ),
    ] {
        let out = env.ev_at(NOW, args, &[]);
        out.expect_code_for(format_args!("{args:?}"), 1);
        assert_eq!(out.stdout, stdout, "{args:?}");
        out.stderr_has(&["no valid access token for tiktok", "auth login tiktok"]);
    }
    // Usage errors: exit 2, nothing contacted.
    let all = env.ev_at(NOW, &["auth", "token", "all"], &[]);
    all.expect_code(2);
    assert_eq!(all.stdout, "");
    env.ev_at(NOW, &["auth", "token", "tiktok:nobody"], &[])
        .expect_code(2);
}

#[test]
fn a_store_value_changed_behind_evertokens_back_is_reported_as_a_second_rotator() {
    let env = TestEnv::new();
    tiktok(&env);
    env.ev_at(NOW, &["auth", "token", "tiktok"], &[])
        .expect_code(0);
    // Evertoken's own writes are not reported.
    let quiet = env.ev_at(NOW, &["auth", "status", "tiktok"], &[]);
    assert!(
        !quiet.stdout.contains("changed in the store"),
        "{}",
        quiet.stdout
    );
    // A publisher refreshes on its own and writes its new refresh token.
    let foreign = env.secret("rft.test-written-by-a-second-rotator-0009");
    let mut doc = env.read_credentials();
    doc["TIKTOK_REFRESH_TOKEN"]["value"] = serde_norway::Value::String(foreign.clone());
    let path = env.work().join("credentials.yaml");
    std::fs::write(&path, serde_norway::to_string(&doc).unwrap()).unwrap();
    env.ev_at(NOW, &["auth", "status", "tiktok"], &[])
        .stdout_has(&[
            "TIKTOK_REFRESH_TOKEN changed in the store since evertoken last wrote it",
            "second rotator",
        ]);
    // The fingerprint file holds no value.
    let dir = env.state_dir().join("fingerprints");
    for f in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        env.assert_no_leak(&text);
        assert!(!text.contains(&env.stored("TIKTOK_ACCESS_TOKEN").unwrap()));
    }
}

#[test]
fn doctor_warns_about_a_second_rotator() {
    let env = TestEnv::new();
    tiktok(&env);
    assert_eq!(env.ev_at(NOW, &["auth", "token", "tiktok"], &[]).code, 0);
    let row = |out: &common::Output| -> serde_json::Value {
        out.json()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "one rotator")
            .cloned()
            .unwrap_or_else(|| panic!("no `one rotator` row: {}", out.stdout))
    };
    let ok = env.ev_at(NOW, &["doctor", "--json"], &[]);
    assert_eq!(row(&ok)["status"], "ok", "{}", ok.stdout);
    let foreign = env.secret("rft.test-written-by-a-second-rotator-0010");
    let mut doc = env.read_credentials();
    doc["TIKTOK_REFRESH_TOKEN"]["value"] = serde_norway::Value::String(foreign);
    std::fs::write(
        env.work().join("credentials.yaml"),
        serde_norway::to_string(&doc).unwrap(),
    )
    .unwrap();
    let warn = env.ev_at(NOW, &["doctor", "--json"], &[]);
    let r = row(&warn);
    assert_eq!(r["status"], "warn", "{}", warn.stdout);
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("TIKTOK_REFRESH_TOKEN")
            && r["detail"].as_str().unwrap().contains("second rotator"),
        "{r}"
    );
}

#[test]
fn several_accounts_need_a_name_for_auth_token_and_all_come_out_of_auth_env() {
    let env = TestEnv::new();
    env.scenario(
        &Scenario::at(now()).with(
            platform("tiktok")
                .accounts(&["brand-a", "brand-b"])
                .store_records_expiry(false),
        ),
    );
    let out = env.ev_at(NOW, &["auth", "token", "tiktok"], &[]);
    out.expect_code(2).stderr_has(&["tiktok:brand-a"]);
    assert_eq!(out.stdout, "");

    let out = env.ev_at(NOW, &["auth", "env", "tiktok"], &[]);
    out.expect_code(0);
    let ta = env.stored("TIKTOK_ACCESS_TOKEN_BRAND_A").unwrap();
    let tb = env.stored("TIKTOK_ACCESS_TOKEN_BRAND_B").unwrap();
    assert_eq!(
        out.stdout,
        format!(
            "export TIKTOK_ACCESS_TOKEN_BRAND_A='{ta}'\nexport TIKTOK_ACCESS_TOKEN_BRAND_B='{tb}'\n"
        )
    );
    let one = env.ev_at(NOW, &["auth", "token", "tiktok:brand-b"], &[]);
    one.expect_code(0);
    assert_eq!(one.stdout, format!("{tb}\n"));
}

#[test]
fn auth_token_mints_a_youtube_access_token_without_storing_it() {
    // YouTube keeps only its refresh token (Google does not rotate it): a job
    // that asks for an access token gets one minted by the refresh grant, and
    // nothing is written.
    let env = TestEnv::new();
    let s = Scenario::at(now()).platforms(&["youtube"]);
    env.scenario(&s);
    let rt = s.token("youtube");
    let before = std::fs::read_to_string(env.work().join("credentials.yaml")).unwrap();
    let out = env.ev_at(NOW, &["auth", "token", "youtube"], &[]);
    out.expect_code(0);
    let token = out.stdout.trim_end_matches('\n');
    assert_eq!(out.stdout.lines().count(), 1, "the token alone on stdout");
    assert!(
        env.sim.sim().google_access_token_valid(token),
        "a live Google access token"
    );
    assert!(
        env.sim.sim().google_is_valid(&rt),
        "the refresh token still works"
    );
    let after = std::fs::read_to_string(env.work().join("credentials.yaml")).unwrap();
    assert_eq!(before, after, "nothing stored");
    // `auth env` hands it over the same way, under the variable a job expects.
    let out = env.ev_at(NOW, &["auth", "env", "youtube"], &[]);
    out.expect_code(0);
    let line = out.stdout;
    let value = line
        .trim()
        .strip_prefix("export YOUTUBE_ACCESS_TOKEN=")
        .unwrap_or_else(|| panic!("an export line: {}", line.len()))
        .trim_matches('\'');
    assert!(env.sim.sim().google_access_token_valid(value));
    // A dead refresh token: nothing on stdout, exit 1, the fix named.
    env.sim.sim().google_revoke(&rt);
    let out = env.ev_at(NOW, &["auth", "token", "youtube"], &[]);
    out.expect_code(1);
    assert!(out.stdout.is_empty());
    out.stderr_has(&["evertoken auth login youtube"]);
}
