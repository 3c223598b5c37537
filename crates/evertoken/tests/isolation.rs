//! Issue 13: one account's failure never costs another account its rotation.
//! Every account runs as its own task, so even a panic while handling one
//! provider's answer (here TikTok answering `expires_in: i64::MAX`, which the time
//! arithmetic of the day could not represent) is contained: that account is
//! reported `failed`, the other accounts are refreshed and written back, and the
//! JSON report and the metrics file are still produced.

use crate::common;

use common::{TestEnv, days_from};

const CLIENT_KEY: &str = "test-iso-client-key";
const CLIENT_SECRET: &str = "test-iso-tiktok-client-secret";

#[test]
fn a_failing_account_does_not_stop_the_others() {
    let env = TestEnv::new();
    let now = jiff::Timestamp::now();
    let sim = env.sim.sim();
    env.secret(CLIENT_SECRET);
    let tt = env.secret("rft.test-iso-tiktok-not-a-real-secret");
    let ig_a = env.secret("test-iso-ig-a-not-a-real-secret-0001");
    let ig_b = env.secret("test-iso-ig-b-not-a-real-secret-0002");
    sim.tiktok_add_client(CLIENT_KEY, CLIENT_SECRET);
    sim.tiktok_add_refresh_token(CLIENT_KEY, &tt, days_from(now, 120));
    // An answer no sane token has: a lifetime of 292 billion years.
    sim.tiktok_set_lifetimes(i64::MAX, 86_400 * 365);
    for ig in [&ig_a, &ig_b] {
        sim.instagram_add_token(ig, days_from(now, -50), days_from(now, 10));
    }
    let base = env.base_url();
    env.config(&format!(
        "platforms:\n  tiktok: {{ base_url: \"{base}\", client_key: {CLIENT_KEY} }}\n  instagram: {{ base_url: \"{base}\", accounts: [a, b] }}\nauth: {{ writeback: {{ local: {{ keychain: off }} }} }}\nhttp: {{ retries: 1, timeout_seconds: 10 }}\n"
    ));
    let meta = |v: &str| {
        format!(
            "  value: \"{v}\"\n  expires_at: {}\n  updated_at: {}\n",
            days_from(now, 10),
            days_from(now, -50)
        )
    };
    env.credentials(&format!(
        "TIKTOK_REFRESH_TOKEN: \"{tt}\"\nTIKTOK_CLIENT_SECRET: {CLIENT_SECRET}\nINSTAGRAM_ACCESS_TOKEN_A:\n{}INSTAGRAM_ACCESS_TOKEN_B:\n{}",
        meta(&ig_a),
        meta(&ig_b)
    ));
    let metrics = env.work().join("evertoken.prom");
    let out = env.ev(&[
        "auth",
        "refresh",
        "--json",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]);
    out.expect_code(1);
    let doc = out.json();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{doc}");
    for r in results {
        match r["platform"].as_str().unwrap() {
            "tiktok" => assert_eq!(r["state"], "failed", "{r}"),
            "instagram" => assert_eq!(r["state"], "refreshed", "{r}"),
            other => panic!("unexpected platform {other}"),
        }
    }
    // The other accounts' new tokens reached the store.
    for (var, old) in [
        ("INSTAGRAM_ACCESS_TOKEN_A", &ig_a),
        ("INSTAGRAM_ACCESS_TOKEN_B", &ig_b),
    ] {
        let new = env.stored(var).unwrap();
        env.secret(&new);
        assert_ne!(&new, old, "{var} was not written back");
    }
    let text = std::fs::read_to_string(&metrics).expect("the metrics file is written");
    common::assert_contains(&text, &["evertoken_"]);
}
