//! The `vault` write-back against a real OpenBao dev server (the `bao` binary,
//! installed by `scripts/setup-openbao`), started and killed by each test: the
//! rotated token lands as a new KV v2 version with its metadata; client secrets are
//! read from there too; two runners with separate state dirs ("two hosts") racing on
//! one TikTok credential produce exactly one rotation, through the KV lock; a live
//! lock held by another host is waited for, a stale one taken over; AppRole login
//! with the README's policy is enough.

use crate::common;

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::bao::{Bao, ROOT_TOKEN};
use common::{OLD_RT, TestEnv, days_from};
use evertoken_sim::Route;
use evertoken_sim::scenario::{Scenario, Store};

/// The README's policy for the runner (kept in sync by this test using it).
const POLICY: &str = r#"
path "secret/data/evertoken/*" {
  capabilities = ["create", "read", "update"]
}
"#;

/// TikTok against `bao` with `settings` in the `vault:` block: the refresh token
/// and the client secret are in the KV store (the runner's environment has none).
fn setup(env: &TestEnv, bao: &Bao, settings: &[&str]) -> Scenario {
    let store = settings
        .iter()
        .fold(Store::vault(&bao.addr, ROOT_TOKEN), |st, f| st.setting(f));
    let s = common::tiktok_against(store);
    env.scenario(&s);
    bao.seed(&s);
    s
}

#[test]
fn the_rotated_token_lands_as_a_new_kv_version() {
    let Some(bao) = Bao::start() else { return };
    let env = TestEnv::new();
    let s = setup(&env, &bao, &[]);

    let out = env.refresh(&s, &[]);
    out.assert_rotated();
    let new_rt = env.live_tiktok();
    for form in common::encodings(&new_rt) {
        assert!(
            !out.stdout.contains(&form) && !out.stderr.contains(&form),
            "output leaks the new token"
        );
    }
    let (data, version) = bao.get("TIKTOK_REFRESH_TOKEN").unwrap();
    assert_eq!(data["value"], new_rt.as_str());
    assert_eq!(version, 2, "a new version on top of the one read");
    assert!(
        data["expires_at"]
            .as_str()
            .is_some_and(|s| s.parse::<jiff::Timestamp>().is_ok()),
        "{data}"
    );
    assert!(
        data["updated_at"]
            .as_str()
            .is_some_and(|s| s.parse::<jiff::Timestamp>().is_ok()),
        "{data}"
    );
    let (access, _) = bao.get("TIKTOK_ACCESS_TOKEN").unwrap();
    assert!(access["value"].as_str().unwrap().starts_with("act.sim-"));
    // The cross-host lock was taken and released (an expired marker stays).
    let (lock, _) = bao.get(".locks/tiktok").expect("the lock entry exists");
    assert!(lock["released_at"].is_string(), "{lock}");

    // The next run (another host, empty state dir) reads Vault: nothing to rotate.
    let out = env.run(
        env.cmd_for(&s)
            .args(["auth", "refresh", "all", "--json"])
            .env("XDG_STATE_HOME", env.path("state-other")),
    );
    out.expect_code(0);
    assert_eq!(out.json()["results"][0]["state"], "ok", "{}", out.stdout);
    assert_eq!(env.sim.sim().stats().rotations, 1);
}

/// The binary as a child process, with its own state dir ("host").
fn spawn_host(env: &TestEnv, s: &Scenario, host: &str) -> Child {
    env.std_cmd()
        .envs(s.env_vars())
        .env("XDG_STATE_HOME", env.path(host))
        .args(["auth", "refresh", "all", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_hosts_racing_rotate_once() {
    let Some(bao) = Bao::start() else { return };
    let env = TestEnv::new();
    let s = setup(&env, &bao, &[]);
    // Slow provider answers widen the window in which both runners want the lock.
    env.sim.sim().set_latency(Duration::from_millis(400));

    let a = spawn_host(&env, &s, "state-host-a");
    let b = spawn_host(&env, &s, "state-host-b");
    let mut states = Vec::new();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        env.assert_no_leak(&format!("{stdout}\n{stderr}"));
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        states.push(v["results"][0]["state"].as_str().unwrap().to_owned());
    }
    let stats = env.sim.sim().stats();
    assert_eq!(
        stats.rotations, 1,
        "exactly one rotation; results {states:?}"
    );
    assert_eq!(
        stats.reused_rotated_tokens, 0,
        "no runner presented a rotated-away token"
    );
    assert_eq!(
        states.iter().filter(|s| *s == "rotated").count(),
        1,
        "{states:?}"
    );
    assert_eq!(
        bao.get("TIKTOK_REFRESH_TOKEN").unwrap().0["value"],
        env.live_tiktok().as_str()
    );
}

#[test]
fn a_live_lock_of_another_host_is_waited_for_and_a_stale_one_taken_over() {
    let Some(bao) = Bao::start() else { return };
    let env = TestEnv::new();
    let s = setup(&env, &bao, &["lock_timeout_seconds: 2"]);
    let later = days_from(jiff::Timestamp::now(), 1).to_string();
    bao.put(
        ".locks/tiktok",
        &["owner=other-host:4242:test", &format!("expires_at={later}")],
    );

    let out = env.refresh(&s, &[]);
    out.expect_code(1);
    let r = &out.json()["results"][0];
    assert_eq!(r["state"], "failed");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("other-host:4242:test"),
        "names the holder: {}",
        out.stdout
    );
    assert_eq!(
        env.sim.sim().request_count(Route::TikTok),
        0,
        "nothing rotated while another host holds the lock"
    );
    assert!(env.sim.sim().tiktok_is_live(OLD_RT));

    // The other host died a day ago: its lock has expired and is taken over.
    let earlier = days_from(jiff::Timestamp::now(), -1).to_string();
    bao.put(
        ".locks/tiktok",
        &[
            "owner=other-host:4242:test",
            &format!("expires_at={earlier}"),
        ],
    );
    env.refresh(&s, &[]).expect_code(0);
    assert_eq!(
        bao.get("TIKTOK_REFRESH_TOKEN").unwrap().0["value"],
        env.live_tiktok().as_str()
    );
}

#[test]
fn approle_login_with_the_readme_policy_is_enough() {
    let Some(bao) = Bao::start() else { return };
    let env = TestEnv::new();
    setup(&env, &bao, &[]);
    let policy = env.path("evertoken.hcl");
    std::fs::write(&policy, POLICY).unwrap();
    bao.ok(&["policy", "write", "evertoken", policy.to_str().unwrap()]);
    bao.ok(&["auth", "enable", "approle"]);
    bao.ok(&[
        "write",
        "auth/approle/role/evertoken",
        "token_policies=evertoken",
        "token_ttl=10m",
    ]);
    let role_id = bao.ok(&[
        "read",
        "-field=role_id",
        "auth/approle/role/evertoken/role-id",
    ]);
    let secret_id = env.secret(&bao.ok(&[
        "write",
        "-f",
        "-field=secret_id",
        "auth/approle/role/evertoken/secret-id",
    ]));

    let out = env.ev_env(
        &["auth", "refresh", "all", "--json"],
        &[("VAULT_ROLE_ID", &role_id), ("VAULT_SECRET_ID", &secret_id)],
    );
    out.assert_rotated();
    assert_eq!(
        bao.get("TIKTOK_REFRESH_TOKEN").unwrap().0["value"],
        env.live_tiktok().as_str()
    );

    // A wrong secret id: a clear error before anything rotates.
    let out = env.ev_env(
        &["auth", "refresh", "all", "--json"],
        &[
            ("VAULT_ROLE_ID", &role_id),
            ("VAULT_SECRET_ID", "test-wrong-secret-id-not-a-real-secret"),
        ],
    );
    assert_ne!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("AppRole"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(env.sim.sim().stats().rotations, 1);
}

#[test]
fn tls_with_a_custom_ca_file() {
    let Some(bao) = Bao::start_with(true) else {
        return;
    };
    let env = TestEnv::new();
    let ca = bao.ca.clone().unwrap();
    // Without the CA, the server's certificate is not trusted: nothing rotates.
    let s = setup(&env, &bao, &[]);
    let out = env.refresh(&s, &[]);
    out.expect_code(1);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains(&bao.addr) && text.contains("certificate"),
        "says which server and why: {text}"
    );
    assert_eq!(env.sim.sim().request_count(Route::TikTok), 0);

    // `ca_file` in the config …
    let ca_file = format!("ca_file: \"{}\"", ca.display());
    let s = setup(&env, &bao, &[&ca_file]);
    env.refresh(&s, &[]).expect_code(0);
    assert_eq!(
        bao.get("TIKTOK_REFRESH_TOKEN").unwrap().0["value"],
        env.live_tiktok().as_str()
    );

    // … or $VAULT_CACERT, as the vault and bao CLIs read it.
    let other = TestEnv::new();
    let s_other = setup(&other, &bao, &[]);
    other
        .run(
            other
                .cmd_for(&s_other)
                .args(["auth", "refresh", "all", "--json"])
                .env("VAULT_CACERT", &ca),
        )
        .expect_code(0);
    assert_eq!(
        bao.get("TIKTOK_REFRESH_TOKEN").unwrap().0["value"],
        other.live_tiktok().as_str()
    );

    // A CA file that is not a certificate is a configuration error.
    std::fs::write(env.path("not-a-cert.pem"), "not a certificate").unwrap();
    let ca_file = format!("ca_file: \"{}\"", env.path("not-a-cert.pem").display());
    let s = setup(&env, &bao, &[&ca_file]);
    env.refresh(&s, &[])
        .expect_code(2)
        .stderr_has(&["auth.writeback.vault.ca_file"]);
}

#[test]
fn a_namespace_is_sent_as_x_vault_namespace() {
    let Some(mut bao) = Bao::start() else {
        return;
    };
    bao.ok(&["namespace", "create", "team-a"]);
    bao.ok(&[
        "secrets",
        "enable",
        "-namespace=team-a",
        "-path=secret",
        "kv-v2",
    ]);
    bao.namespace = Some("team-a".into());
    let env = TestEnv::new();
    let s = setup(&env, &bao, &["namespace: team-a"]);
    env.refresh(&s, &[]).expect_code(0);
    assert_eq!(
        bao.get("TIKTOK_REFRESH_TOKEN").unwrap().0["value"],
        env.live_tiktok().as_str()
    );
    bao.namespace = None;
    assert!(
        bao.get("TIKTOK_REFRESH_TOKEN").is_none(),
        "nothing written outside the namespace"
    );
}

#[test]
fn a_value_changed_behind_the_lock_is_not_overwritten() {
    let Some(bao) = Bao::start() else {
        return;
    };
    let env = TestEnv::new();
    let s = setup(&env, &bao, &[]);
    let sim = env.sim.sim();
    // Someone writes the secret by hand while TikTok is answering (outside the lock).
    sim.set_latency(Duration::from_millis(3000));
    let done = Arc::new(AtomicBool::new(false));
    let tamper = {
        let (sim, done) = (sim.clone(), done.clone());
        let bao = bao.client();
        std::thread::spawn(move || {
            while sim.request_count(Route::TikTok) == 0 && !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(2));
            }
            bao.put(
                "TIKTOK_REFRESH_TOKEN",
                &["value=rft.test-written-by-hand-not-a-real-secret"],
            );
        })
    };
    let out = env.refresh(&s, &[]);
    done.store(true, Ordering::SeqCst);
    tamper.join().unwrap();
    sim.set_latency(Duration::ZERO);
    out.expect_code(1);
    let r = &out.json()["results"][0];
    assert!(
        r["message"].as_str().unwrap().contains("check-and-set"),
        "{}",
        out.stdout
    );
    let (data, version) = bao.get("TIKTOK_REFRESH_TOKEN").unwrap();
    assert_eq!(
        data["value"], "rft.test-written-by-hand-not-a-real-secret",
        "not overwritten"
    );
    assert_eq!(version, 2);
    let rotated = env.live_tiktok();
    let journal: Vec<_> = std::fs::read_dir(env.state_dir().join("journal"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(journal.len(), 1);
    assert!(
        std::fs::read_to_string(journal[0].path())
            .unwrap()
            .contains(&rotated),
        "the rotated token is kept in the journal"
    );

    // The next run reads the current version and finishes the write-back.
    env.refresh(&s, &[]).expect_code(0);
    let (data, version) = bao.get("TIKTOK_REFRESH_TOKEN").unwrap();
    assert_eq!(data["value"], rotated.as_str());
    assert_eq!(version, 3);
}

#[test]
fn missing_credentials_are_a_config_error() {
    let env = TestEnv::new();
    env.scenario(&common::tiktok_against(Store::vault(
        "http://127.0.0.1:1",
        ROOT_TOKEN,
    )));
    env.ev(&["auth", "refresh", "all"])
        .expect_code(2)
        .stderr_has(&["VAULT_TOKEN"]);
    env.ev_env(
        &["auth", "refresh", "all"],
        &[("VAULT_ROLE_ID", "test-role-id")],
    )
    .expect_code(2)
    .stderr_has(&["VAULT_SECRET_ID"]);
}
