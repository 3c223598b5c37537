//! Issue 9, the CI smoke version of the scale benchmark (`scripts/bench` measures
//! the real thing and writes BENCHMARKS.md): `auth refresh all` and `auth status`
//! over 200 TikTok accounts against a lenient simulator with a little latency, so
//! many rotations are in flight at once and their write-backs share the credentials
//! file. It asserts outcomes only, never times.

use crate::common;

use std::time::Duration;

use common::{TestEnv, mode};
use evertoken_sim::SimOptions;

const N: usize = 200;
const CLIENT_KEY: &str = "test-scale-client";

fn names() -> Vec<String> {
    (0..N).map(|i| format!("acct-{i:03}")).collect()
}

fn var(name: &str) -> String {
    format!(
        "TIKTOK_REFRESH_TOKEN_{}",
        name.to_uppercase().replace('-', "_")
    )
}

/// 200 accounts, each with a fake refresh token the lenient simulator adopts.
fn setup() -> (TestEnv, Vec<(String, String)>) {
    let env = TestEnv::with(SimOptions {
        latency: Duration::from_millis(5),
        lenient: true,
    });
    let names = names();
    env.config(&format!(
        "platforms:\n  tiktok:\n    base_url: \"{}\"\n    client_key: {CLIENT_KEY}\n    concurrency: 16\n    accounts: [{}]\nauth: {{ writeback: {{ local: {{ keychain: off }} }} }}\n",
        env.base_url(),
        names.join(", ")
    ));
    let mut creds =
        String::from("TIKTOK_CLIENT_SECRET: test-scale-client-secret-not-a-real-secret\n");
    let mut old = Vec::new();
    for n in &names {
        let token = env.secret(&format!("test-rt-{n}-not-a-real-secret"));
        creds.push_str(&format!("{}: \"{token}\"\n", var(n)));
        old.push((n.clone(), token));
    }
    env.credentials(&creds);
    (env, old)
}

#[test]
fn refresh_all_rotates_every_account_once_and_persists_every_new_token() {
    let (env, old) = setup();
    let out = env.ev(&["auth", "refresh", "all", "--json"]);
    out.expect_code(0);
    let doc = out.json();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), N);
    for r in results {
        assert_eq!(r["state"], "rotated", "{r}");
    }

    let sim = env.sim.sim();
    let stats = sim.stats();
    assert_eq!(stats.requests.get("tiktok").copied(), Some(N as u64));
    assert_eq!(stats.rotations, N as u64);
    assert_eq!(
        stats.reused_rotated_tokens, 0,
        "a rotated-away token was sent again"
    );

    // Every new token is in the file (one concurrent writer must not drop another's
    // entry), differs from the old one, and is the live one; the old one is dead.
    let creds_path = env.work().join("credentials.yaml");
    assert_eq!(mode(&creds_path), 0o600);
    let doc = env.read_credentials();
    let map = doc.as_mapping().unwrap();
    assert_eq!(
        map.len(),
        1 + 2 * N,
        "client secret + refresh + access per account"
    );
    let mut seen = std::collections::HashSet::new();
    for (name, old_token) in &old {
        let entry = &doc[var(name).as_str()];
        let new = entry["value"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no value"));
        env.secret(new);
        assert_ne!(new, old_token, "{name} was not rotated in the file");
        assert!(
            sim.tiktok_is_live(new),
            "{name}: the stored token is not live"
        );
        assert!(
            !sim.tiktok_is_live(old_token),
            "{name}: the old token still works"
        );
        assert!(entry["expires_at"].as_str().is_some(), "{name}: no expiry");
        assert!(
            seen.insert(new.to_owned()),
            "{name}: token shared with another account"
        );
        let access = format!(
            "TIKTOK_ACCESS_TOKEN_{}",
            name.to_uppercase().replace('-', "_")
        );
        assert!(
            doc[access.as_str()]["value"].as_str().is_some(),
            "{name}: no access token"
        );
    }
    // Nothing is left pending in the journal.
    let journal = env.state_dir().join("journal");
    let pending = std::fs::read_dir(&journal)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(pending, 0, "journal records left in {}", journal.display());

    // A second run finds every account fresh: no call, no rotation.
    let out = env.ev(&["auth", "refresh", "all", "--json"]);
    out.expect_code(0);
    let doc = out.json();
    assert!(
        doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "ok"),
        "{}",
        out.stdout
    );
    assert_eq!(sim.stats().requests.get("tiktok").copied(), Some(N as u64));
}

#[test]
fn status_reports_every_account_from_the_file_without_calling_out() {
    let (env, _) = setup();
    let out = env.ev(&["auth", "status", "--json"]);
    let doc = out.json();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), N, "{}", out.stderr);
    let names = names();
    for r in results {
        assert!(names.iter().any(|n| r["account"] == n.as_str()), "{r}");
        let creds = r["credentials"].as_array().unwrap();
        let refresh = creds
            .iter()
            .find(|c| {
                c["var"]
                    .as_str()
                    .unwrap()
                    .starts_with("TIKTOK_REFRESH_TOKEN_")
            })
            .unwrap();
        assert_eq!(refresh["present"], true, "{r}");
        assert_eq!(refresh["source"]["kind"], "file", "{r}");
        // No access token stored yet: the next refresh is due.
        assert_eq!(r["action"], "refresh due", "{r}");
    }
    assert!(env.sim.sim().stats().requests.values().all(|n| *n == 0));
}
