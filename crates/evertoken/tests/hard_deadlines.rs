//! Hard deadlines: a refresh token whose own expiry does not move when it is
//! refreshed (TikTok may keep it; LinkedIn partner refresh tokens never extend)
//! becomes `reauth_required` with `reauth_by` = that expiry from `warn_before_days`
//! before it, while the refresh itself still happens and its tokens are stored.

use crate::common;
use common::{NOW, now};

use common::{TestEnv, days_from};

const CLIENT_KEY: &str = "test-client-key";
const TT_SECRET: &str = "test-tiktok-client-secret-xyz";
const LI_CLIENT: &str = "test-linkedin-client";
const LI_SECRET: &str = "test-linkedin-client-secret-xyz";

fn refresh(env: &TestEnv) -> common::Output {
    env.ev_at(NOW, &["auth", "refresh", "--json"], &[])
}

/// TikTok with a refresh token 10 days from expiry (stored with its expiry, or
/// without when `known` is false).
fn tiktok(extends: bool, known: bool) -> (TestEnv, String) {
    let env = TestEnv::new();
    env.secret(TT_SECRET);
    let rt = env.secret("rft.test-tiktok-not-a-real-secret-0101");
    let sim = env.sim.sim();
    sim.set_now(Some(now()));
    sim.tiktok_add_client(CLIENT_KEY, TT_SECRET);
    let exp = days_from(now(), 10);
    sim.tiktok_add_refresh_token(CLIENT_KEY, &rt, exp);
    sim.tiktok_set_refresh_extends(extends);
    env.config(&format!(
        "platforms:\n  tiktok: {{ base_url: \"{}\", client_key: {CLIENT_KEY}, warn_before_days: 14 }}\nauth: {{ writeback: {{ local: {{ keychain: off }} }} }}\n",
        env.base_url()
    ));
    let stored = if known {
        format!("{{ value: \"{rt}\", expires_at: {exp} }}")
    } else {
        format!("\"{rt}\"")
    };
    env.credentials(&format!(
        "TIKTOK_REFRESH_TOKEN: {stored}\nTIKTOK_CLIENT_SECRET: {TT_SECRET}\n"
    ));
    (env, rt)
}

#[test]
fn a_tiktok_refresh_token_that_does_not_extend_is_a_dated_reauth() {
    for known in [true, false] {
        let (env, old) = tiktok(false, known);
        let out = refresh(&env);
        out.expect_code(1);
        let r = out.json()["results"][0].clone();
        assert_eq!(r["state"], "reauth_required", "known={known}: {r}");
        assert_eq!(r["reauth_by"], "2026-12-03", "{r}");
        common::assert_fields(&r, &[("fix", "evertoken auth login tiktok")]);
        // The rotation itself was kept: the new refresh token is stored and live.
        let new = env.stored("TIKTOK_REFRESH_TOKEN").unwrap();
        env.secret(&new);
        assert_ne!(new, old);
        assert!(env.sim.sim().tiktok_is_live(&new));
        assert!(!env.sim.sim().tiktok_is_live(&old));
    }
}

#[test]
fn a_tiktok_refresh_token_that_extends_is_just_rotated() {
    let (env, _) = tiktok(true, true);
    let out = refresh(&env);
    out.expect_code(0);
    let r = out.json()["results"][0].clone();
    assert_eq!(r["state"], "rotated", "{r}");
    assert!(r["reauth_by"].is_null(), "{r}");
    env.secret(&env.stored("TIKTOK_REFRESH_TOKEN").unwrap());
}

/// A LinkedIn partner app: refresh token 10 days from expiry, access token 3.
fn linkedin(extends: bool, known: bool) -> TestEnv {
    let env = TestEnv::new();
    env.secret(LI_SECRET);
    let rt = env.secret("test-li-refresh-not-a-real-secret-0105");
    let at = env.secret("test-li-access-not-a-real-secret-0106");
    let sim = env.sim.sim();
    sim.set_now(Some(now()));
    sim.linkedin_add_client(LI_CLIENT, LI_SECRET);
    sim.linkedin_set_programmatic_refresh(LI_CLIENT, true);
    sim.linkedin_set_refresh_extends(extends);
    let rt_exp = days_from(now(), 10);
    sim.linkedin_add_refresh_token(LI_CLIENT, &rt, rt_exp);
    sim.linkedin_add_access_token(&at, days_from(now(), 3));
    env.config(&format!(
        "platforms:\n  linkedin: {{ base_url: \"{}\", client_id: {LI_CLIENT}, warn_before_days: 14 }}\nauth: {{ writeback: {{ local: {{ keychain: off }} }} }}\n",
        env.base_url()
    ));
    let stored = if known {
        format!("{{ value: \"{rt}\", expires_at: {rt_exp} }}")
    } else {
        format!("\"{rt}\"")
    };
    env.credentials(&format!(
        "LINKEDIN_REFRESH_TOKEN: {stored}\nLINKEDIN_ACCESS_TOKEN: {{ value: \"{at}\", expires_at: {} }}\nLINKEDIN_CLIENT_SECRET: {LI_SECRET}\n",
        days_from(now(), 3)
    ));
    env
}

#[test]
fn a_linkedin_partner_refresh_token_is_a_dated_reauth_and_the_access_token_stays_alive() {
    for known in [true, false] {
        let env = linkedin(false, known);
        let out = refresh(&env);
        out.expect_code(1);
        let r = out.json()["results"][0].clone();
        assert_eq!(r["state"], "reauth_required", "known={known}: {r}");
        assert_eq!(r["reauth_by"], "2026-12-03", "{r}");
        // The access token was still renewed, so publishing works up to the date.
        let at = env.stored("LINKEDIN_ACCESS_TOKEN").unwrap();
        env.secret(&at);
        assert!(env.sim.sim().linkedin_is_valid_access(&at));
        assert_ne!(at, "test-li-access-not-a-real-secret-0106");
    }
}

#[test]
fn a_linkedin_refresh_token_that_extends_is_not_a_deadline() {
    let env = linkedin(true, false);
    let out = refresh(&env);
    out.expect_code(0);
    let r = out.json()["results"][0].clone();
    assert!(r["state"] == "refreshed" || r["state"] == "rotated", "{r}");
    env.secret(&env.stored("LINKEDIN_ACCESS_TOKEN").unwrap());
}

#[test]
fn a_time_limited_google_grant_is_a_dated_reauth() {
    // The login stored the refresh token's expiry (`refresh_token_expires_in`,
    // as Google gives for time-limited grants); a health check does not move it.
    let env = TestEnv::new();
    let secret = env.secret("test-google-client-secret-xyz");
    let rt = env.secret("test-yt-refresh-not-a-real-secret-0107");
    let sim = env.sim.sim();
    sim.set_now(Some(now()));
    sim.google_add_client("test-client.apps.googleusercontent.com", &secret);
    sim.google_add_refresh_token("test-client.apps.googleusercontent.com", &rt);
    env.config(&format!(
        "platforms:\n  youtube: {{ base_url: \"{}\", client_id: test-client.apps.googleusercontent.com }}\nauth: {{ writeback: {{ local: {{ keychain: off }} }} }}\n",
        env.base_url()
    ));
    env.credentials(&format!(
        "YOUTUBE_REFRESH_TOKEN: {{ value: \"{rt}\", expires_at: {} }}\nYOUTUBE_CLIENT_SECRET: {secret}\n",
        days_from(now(), 5)
    ));
    let out = refresh(&env);
    out.expect_code(1);
    let r = out.json()["results"][0].clone();
    assert_eq!(r["state"], "reauth_required", "{r}");
    assert_eq!(r["reauth_by"], "2026-11-28", "{r}");
}
