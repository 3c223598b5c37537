//! Issue 15, through the real binary and the simulator: GitLab write-back at scale
//! costs at most 3 GitLab calls per rotated account (the variables listed once per
//! run, page by page; under the lock one GET of the refresh-token variable, then
//! the PUTs) without weakening the pre-flight; `auth status` with the gitlab backend
//! calls nothing; a GitLab that cannot be reached is not called slow; and
//! `auth refresh --shard K/N` splits the accounts into disjoint shards that together
//! rotate every account exactly once. Outcomes and call counts only, never times.

use crate::common;

use std::collections::BTreeSet;

use common::TestEnv;
use evertoken_sim::{GitLabScope, GitLabVariable, Route, SimOptions};

const GITLAB_TOKEN: &str = "test-gitlab-api-token-not-a-real-secret";
const CLIENT_KEY: &str = "test-scale-out-client";
const CLIENT_SECRET: &str = "test-scale-out-client-secret-not-a-real-secret";
const PROJECT: GitLabScope = GitLabScope::Project(4242);

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("acct-{i:03}")).collect()
}

fn var(base: &str, name: &str) -> String {
    format!("{base}_{}", name.to_uppercase().replace('-', "_"))
}

fn lenient() -> TestEnv {
    TestEnv::with(SimOptions {
        lenient: true,
        ..Default::default()
    })
}

/// `n` TikTok accounts whose tokens live in GitLab project variables (both the
/// refresh and the access token, masked and protected), plus unrelated variables
/// so the listing spans several pages.
fn gitlab_setup(env: &TestEnv, n: usize) -> Vec<String> {
    let sim = env.sim.sim();
    sim.gitlab_add_token(GITLAB_TOKEN);
    sim.gitlab_add_project(4242, "acme/publisher");
    let names = names(n);
    let mut tokens = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let rt = env.secret(&format!("rft.test-{i:03}-old-refresh-not-a-real-secret"));
        sim.gitlab_set_variable(
            PROJECT,
            GitLabVariable::masked_protected(&var("TIKTOK_REFRESH_TOKEN", name), &rt),
        );
        sim.gitlab_set_variable(
            PROJECT,
            GitLabVariable::masked_protected(
                &var("TIKTOK_ACCESS_TOKEN", name),
                "act.test-placeholder-not-a-real-secret",
            ),
        );
        tokens.push(rt);
    }
    for i in 0..40 {
        sim.gitlab_set_variable(
            PROJECT,
            GitLabVariable::masked_protected(&format!("UNRELATED_{i}"), "unrelated-value-x"),
        );
    }
    env.config(&format!(
        "platforms:\n  tiktok:\n    base_url: \"{base}\"\n    client_key: {CLIENT_KEY}\n    concurrency: 8\n    accounts: [{accts}]\n\
         auth:\n  writeback:\n    backend: gitlab\n    gitlab: {{ project: \"acme/publisher\", api_url: \"{base}/api/v4\" }}\n\
         http: {{ retries: 1, timeout_seconds: 10 }}\n",
        base = env.base_url(),
        accts = names.join(", ")
    ));
    tokens
}

fn gitlab_cmd(env: &TestEnv, args: &[&str]) -> common::Output {
    env.secret(GITLAB_TOKEN);
    env.secret(CLIENT_SECRET);
    env.run(
        env.cmd()
            .args(args)
            .env("GITLAB_TOKEN", GITLAB_TOKEN)
            .env("TIKTOK_CLIENT_SECRET", CLIENT_SECRET),
    )
}

/// A lenient simulator with `n` TikTok accounts in GitLab ([`gitlab_setup`]).
fn gitlab_accounts(n: usize) -> (TestEnv, Vec<String>) {
    let env = lenient();
    let old = gitlab_setup(&env, n);
    (env, old)
}

#[test]
fn gitlab_write_back_costs_at_most_three_calls_per_rotated_account() {
    let n = 120;
    let (env, old) = gitlab_accounts(n);
    let sim = env.sim.sim();
    let before = sim.request_count(Route::GitLab);

    let out = gitlab_cmd(&env, &["auth", "refresh", "all", "--json"]);
    out.expect_code(0);
    let doc = out.json();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), n);
    assert!(
        results.iter().all(|r| r["state"] == "rotated"),
        "{}",
        out.stdout
    );

    // Every account's variables hold the provider's live tokens.
    let live: BTreeSet<String> = sim.tiktok_live_refresh_tokens().into_iter().collect();
    for (name, old) in names(n).iter().zip(&old) {
        let v = sim
            .gitlab_variable(PROJECT, &var("TIKTOK_REFRESH_TOKEN", name), "*")
            .unwrap();
        assert_ne!(&v.value, old);
        assert!(
            live.contains(&v.value),
            "{name}: the variable holds a live token"
        );
        assert!(v.masked && v.protected, "attributes unchanged");
        let a = sim
            .gitlab_variable(PROJECT, &var("TIKTOK_ACCESS_TOKEN", name), "*")
            .unwrap();
        assert!(
            a.value.starts_with("act.sim-"),
            "{name}: access token written"
        );
    }

    // The calls: one listing of 280 variables in pages of 100, then per account
    // one GET (the refresh-token variable, under the lock) and two PUTs.
    let calls = sim.request_count(Route::GitLab) - before;
    let log = sim.stats().requests_log;
    let gitlab: Vec<_> = log
        .iter()
        .filter(|r| r.path.starts_with("/api/v4/"))
        .collect();
    let lists: Vec<_> = gitlab
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/variables"))
        .collect();
    assert_eq!(lists.len(), 3, "280 variables = 3 pages of 100");
    assert!(
        lists
            .iter()
            .all(|r| r.query.as_deref().unwrap_or("").contains("per_page=100")),
        "listed with the largest page size"
    );
    let gets = gitlab
        .iter()
        .filter(|r| r.method == "GET" && !r.path.ends_with("/variables"))
        .count();
    let puts = gitlab.iter().filter(|r| r.method == "PUT").count();
    assert_eq!(gets, n, "one re-read under the lock per account");
    assert!(
        gitlab.iter().all(|r| r.method != "GET"
            || r.path.ends_with("/variables")
            || r.path.contains("TIKTOK_REFRESH_TOKEN")),
        "only the durable (refresh-token) variable is re-read"
    );
    assert_eq!(puts, 2 * n, "two writes per account");
    assert!(
        calls <= 3 * n as u64 + 3,
        "{calls} GitLab calls for {n} rotated accounts"
    );
    assert_eq!(sim.stats().reused_rotated_tokens, 0);
}

#[test]
fn the_preflight_still_refuses_before_any_rotation_at_scale() {
    let n = 30;
    let (env, old) = gitlab_accounts(n);
    let sim = env.sim.sim();
    // One account's refresh-token variable is not protected.
    let bad = var("TIKTOK_REFRESH_TOKEN", "acct-017");
    let mut v = GitLabVariable::masked_protected(&bad, &old[17]);
    v.protected = false;
    sim.gitlab_set_variable(PROJECT, v);

    let out = gitlab_cmd(&env, &["auth", "refresh", "all", "--json"]);
    out.expect_code(1);
    let doc = out.json();
    let r = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["account"] == "acct-017")
        .unwrap()
        .clone();
    assert_eq!(r["state"], "failed", "{r}");
    common::assert_fields(&r, &[("message", "protected")]);
    assert_eq!(r["action"], "none (pre-flight failed)", "{r}");
    assert_eq!(
        sim.request_count(Route::TikTok),
        n as u64 - 1,
        "the refused account was never sent to the provider; the others rotated"
    );
    assert_eq!(
        sim.gitlab_variable(PROJECT, &bad, "*").unwrap().value,
        old[17],
        "and its variable was not written"
    );
}

#[test]
fn auth_status_with_the_gitlab_backend_calls_nothing() {
    let env = lenient();
    gitlab_setup(&env, 5);
    let sim = env.sim.sim();
    let before = sim.stats().requests.values().sum::<u64>();
    let out = env.ev_env(
        &["auth", "status", "--json"],
        &[
            ("GITLAB_TOKEN", GITLAB_TOKEN),
            ("TIKTOK_CLIENT_SECRET", CLIENT_SECRET),
            (
                "TIKTOK_REFRESH_TOKEN_ACCT_000",
                "rft.test-from-the-job-environment-not-a-real-secret",
            ),
        ],
    );
    assert!(out.code <= 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        sim.stats().requests.values().sum::<u64>(),
        before,
        "auth status is offline: no GitLab (or provider) call"
    );
    // In a pipeline the job's environment holds the variables: status reads them.
    let doc = out.json();
    let r = &doc["results"][0];
    assert_eq!(r["account"], "acct-000", "{r}");
    assert!(
        r.to_string().contains("rft.test"),
        "the environment's token is reported by prefix: {r}"
    );
}

#[test]
fn an_unreachable_gitlab_is_not_reported_as_slow() {
    let env = TestEnv::new();
    // A port nothing listens on: the connection is refused, as for a name that
    // does not resolve (both are connect errors, never a timeout).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    env.config(&format!(
        "platforms:\n  tiktok: {{ enabled: true, client_key: {CLIENT_KEY}, base_url: \"{}\" }}\n\
         auth:\n  writeback:\n    backend: gitlab\n    gitlab: {{ project: \"1\", api_url: \"http://127.0.0.1:{port}/api/v4\" }}\n\
         http: {{ retries: 0, timeout_seconds: 5 }}\n",
        env.base_url()
    ));
    let out = env.ev_env(
        &["auth", "refresh", "all", "--json"],
        &[
            ("GITLAB_TOKEN", GITLAB_TOKEN),
            ("TIKTOK_CLIENT_SECRET", CLIENT_SECRET),
            (
                "TIKTOK_REFRESH_TOKEN",
                "rft.test-old-refresh-not-a-real-secret",
            ),
        ],
    );
    out.expect_code(1);
    let r = &out.json()["results"][0];
    let hint = r["fix"].as_str().unwrap_or_default();
    assert!(hint.contains("could not be reached"), "{r}");
    assert!(!hint.contains("in time"), "{r}");
    assert_eq!(env.sim.sim().request_count(Route::TikTok), 0);
}

/// Local-file accounts for the sharding tests.
fn local_setup(env: &TestEnv, n: usize) -> Vec<String> {
    let names = names(n);
    env.config(&format!(
        "platforms:\n  tiktok:\n    base_url: \"{}\"\n    client_key: {CLIENT_KEY}\n    concurrency: 8\n    accounts: [{}]\nauth: {{ writeback: {{ local: {{ keychain: off }} }} }}\n",
        env.base_url(),
        names.join(", ")
    ));
    let mut creds = format!("TIKTOK_CLIENT_SECRET: \"{}\"\n", env.secret(CLIENT_SECRET));
    for n in &names {
        let t = env.secret(&format!("rft.test-{n}-old-not-a-real-secret"));
        creds.push_str(&format!("{}: \"{t}\"\n", var("TIKTOK_REFRESH_TOKEN", n)));
    }
    env.credentials(&creds);
    names
}

fn rotated(out: &common::Output) -> BTreeSet<String> {
    out.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "rotated")
        .map(|r| r["account"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn shards_are_disjoint_and_together_rotate_every_account_once() {
    let env = lenient();
    let names = local_setup(&env, 40);
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for k in 1..=4 {
        let out = env.ev(&[
            "auth",
            "refresh",
            "all",
            "--json",
            "--shard",
            &format!("{k}/4"),
        ]);
        out.expect_code(0);
        let mine = rotated(&out);
        assert_eq!(
            out.json()["results"].as_array().unwrap().len(),
            mine.len(),
            "a shard reports only its own accounts"
        );
        assert!(
            mine.is_disjoint(&seen),
            "shard {k}/4 overlaps an earlier one"
        );
        total += mine.len();
        seen.extend(mine);
    }
    assert_eq!(total, names.len());
    assert_eq!(seen, names.iter().cloned().collect::<BTreeSet<_>>());
    assert_eq!(env.sim.sim().stats().reused_rotated_tokens, 0);

    // The same shard again: everything is fresh now, nothing rotates twice.
    let again = env.ev(&["auth", "refresh", "all", "--json", "--shard", "2/4"]);
    again.expect_code(0);
    assert!(rotated(&again).is_empty());
}

#[test]
fn shard_ci_reads_gitlab_parallel_variables_and_only_when_asked() {
    let env = lenient();
    let names = local_setup(&env, 12);
    // GitLab `parallel: matrix:` sets these too: without --shard they change nothing.
    let all = env.ev_env(
        &["auth", "refresh", "all", "--json", "--dry-run"],
        &[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "3")],
    );
    assert_eq!(
        all.json()["results"].as_array().unwrap().len(),
        names.len(),
        "{}",
        all.stderr
    );
    let mut seen = BTreeSet::new();
    for k in 1..=3 {
        let plan = |shard: &str, vars: &[(&str, &str)]| {
            env.ev_env(
                &[
                    "auth",
                    "refresh",
                    "all",
                    "--json",
                    "--dry-run",
                    "--shard",
                    shard,
                ],
                vars,
            )
        };
        let by_env = plan(
            "ci",
            &[("CI_NODE_INDEX", &k.to_string()), ("CI_NODE_TOTAL", "3")],
        );
        let by_flag = plan(&format!("{k}/3"), &[]);
        let accounts = |o: &common::Output| -> BTreeSet<String> {
            o.json()["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["account"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(accounts(&by_env), accounts(&by_flag));
        seen.extend(accounts(&by_env));
    }
    assert_eq!(seen.len(), names.len());

    // Usage errors: exit 2, nothing contacted.
    for (arg, envs) in [
        ("ci", vec![]),
        ("ci", vec![("CI_NODE_INDEX", "4"), ("CI_NODE_TOTAL", "3")]),
        ("0/3", vec![]),
        ("3", vec![]),
    ] {
        let mut cmd = env.cmd();
        cmd.args(["auth", "refresh", "all", "--shard", arg])
            .env_remove("CI_NODE_INDEX")
            .env_remove("CI_NODE_TOTAL");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = env.run(&mut cmd);
        assert_eq!(out.code, 2, "--shard {arg}: {}", out.stderr);
        out.stderr_has(&["hint:"]);
    }
    assert_eq!(env.sim.sim().request_count(Route::TikTok), 0);
}

/// Two runners that disagree about sharding (`--shard 1/2` on one host, `--shard
/// 1/3` on another, so many accounts are in both) against one real OpenBao: the
/// store's check-and-set lock lets each overlapping account rotate once, never
/// twice, and no rotated-away token is ever presented.
#[test]
fn mis_sharded_runners_through_openbao_rotate_each_account_once() {
    use common::bao::{Bao, ROOT_TOKEN};
    let Some(bao) = Bao::start() else { return };
    let env = TestEnv::with(SimOptions {
        latency: std::time::Duration::from_millis(20),
        lenient: false,
    });
    env.secret(ROOT_TOKEN);
    env.secret(CLIENT_SECRET);
    let sim = env.sim.sim();
    sim.tiktok_add_client(CLIENT_KEY, CLIENT_SECRET);
    let names = names(24);
    for n in &names {
        let t = env.secret(&format!("rft.test-{n}-vault-old-not-a-real-secret"));
        sim.tiktok_add_refresh_token(
            CLIENT_KEY,
            &t,
            common::days_from(jiff::Timestamp::now(), 300),
        );
        bao.put(&var("TIKTOK_REFRESH_TOKEN", n), &[&format!("value={t}")]);
    }
    bao.put("TIKTOK_CLIENT_SECRET", &[&format!("value={CLIENT_SECRET}")]);
    env.config(&format!(
        "platforms:\n  tiktok:\n    base_url: \"{}\"\n    client_key: {CLIENT_KEY}\n    concurrency: 4\n    accounts: [{}]\n\
         auth:\n  writeback: {}\n\
         http: {{ retries: 1, timeout_seconds: 10 }}\n",
        env.base_url(),
        names.join(", "),
        bao.writeback()
    ));
    let spawn = |shard: &str, host: &str| {
        let state = env.path(&format!("{host}/state"));
        std::fs::create_dir_all(&state).unwrap();
        let mut c = env.std_cmd();
        c.args(["auth", "refresh", "all", "--json", "--shard", shard])
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .env("XDG_STATE_HOME", state)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let a = spawn("1/2", "host-a");
    let b = spawn("1/3", "host-b");
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let shard = |k, n| -> BTreeSet<String> {
        names
            .iter()
            .filter(|a| {
                evertoken::shard::Shard::new(k, n)
                    .unwrap()
                    .contains("tiktok", a)
            })
            .cloned()
            .collect()
    };
    let (in_a, in_b) = (shard(1, 2), shard(1, 3));
    assert!(
        !in_a.is_disjoint(&in_b),
        "the two shardings overlap (the point of the test)"
    );
    let mut rotated_by = BTreeSet::new();
    for o in [&a, &b] {
        let (stdout, stderr) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        env.assert_no_leak(&stdout);
        env.assert_no_leak(&stderr);
        assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
        let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        for r in doc["results"].as_array().unwrap() {
            if r["state"] == "rotated" {
                let acct = r["account"].as_str().unwrap().to_owned();
                assert!(
                    rotated_by.insert(acct.clone()),
                    "{acct} rotated by both runners"
                );
            }
        }
    }
    let union: BTreeSet<String> = in_a.union(&in_b).cloned().collect();
    assert_eq!(rotated_by, union, "every targeted account rotated once");
    let stats = sim.stats();
    assert_eq!(stats.rotations as usize, union.len());
    assert_eq!(stats.reused_rotated_tokens, 0);
    // OpenBao holds each rotated account's live token.
    let live: BTreeSet<String> = sim.tiktok_live_refresh_tokens().into_iter().collect();
    for n in &union {
        let (v, _) = bao.get(&var("TIKTOK_REFRESH_TOKEN", n)).unwrap();
        assert!(live.contains(v["value"].as_str().unwrap()), "{n}");
    }
}
