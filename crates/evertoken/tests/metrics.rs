//! `--metrics-file` on `auth refresh` / `auth status` (issue 7): the Prometheus
//! text format, checked by the real `promtool check metrics`, carrying the expiry
//! of every configured credential, the state gauges, the refresh counter (carried
//! across runs) and the last-run gauges; written atomically, readable by a
//! collector running as another user, and free of secrets.

use crate::common;
use common::{NOW, now};

use common::{TestEnv, days_from, mode};
use evertoken_sim::scenario::{Scenario, platform};

/// Instagram healthy, TikTok due (rotates), LinkedIn 5 days from expiry without
/// a refresh token (needs a human: the run exits 1); every expiry in the store.
fn setup(env: &TestEnv) {
    env.scenario(
        &Scenario::at(now())
            .with(
                platform("instagram")
                    .issued_days_ago(10)
                    .expires_in_days(50),
            )
            .platforms(&["tiktok"])
            .with(platform("linkedin").store_records_expiry(true))
            .http("timeout_seconds: 5, retries: 1"),
    );
}

fn run(env: &TestEnv, args: &[&str]) -> common::Output {
    env.ev_at(NOW, args, &[])
}

/// [`run`] of `args` writing its metrics to `file`.
fn with_metrics(env: &TestEnv, args: &[&str], file: &std::path::Path) -> common::Output {
    run(
        env,
        &[args, &["--metrics-file", file.to_str().unwrap()]].concat(),
    )
}

/// The value of the sample whose line starts with `series ` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|r| r.strip_prefix(' '))
            .map(|v| v.trim().parse().unwrap())
    })
}

#[test]
fn refresh_writes_a_promtool_clean_file_with_every_expiry_and_state() {
    let env = TestEnv::new();
    setup(&env);
    // The collector directory does not exist yet: the first write creates it.
    let dir = env.path("textfile");
    let file = dir.join("evertoken.prom");
    let out = with_metrics(&env, &["auth", "refresh", "all"], &file);
    assert_eq!(
        out.code, 1,
        "LinkedIn needs a human; stderr: {}",
        out.stderr
    );
    let text = std::fs::read_to_string(&file).unwrap();
    env.assert_no_leak(&text);
    common::promtool_check(&file);

    // Readable by node_exporter running as another user; no temp file left behind.
    assert_eq!(mode(&file), 0o644);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    // Every credential with a known expiry.
    let exp = |p: &str, c: &str| {
        value(
            &text,
            &format!(
                "evertoken_credential_expiry_timestamp_seconds{{platform=\"{p}\",account=\"default\",credential=\"{c}\"}}"
            ),
        )
    };
    assert_eq!(
        exp("instagram", "INSTAGRAM_ACCESS_TOKEN"),
        Some(days_from(now(), 50).as_second() as f64),
        "{text}"
    );
    assert_eq!(
        exp("linkedin", "LINKEDIN_ACCESS_TOKEN"),
        Some(days_from(now(), 5).as_second() as f64),
        "{text}"
    );
    assert!(exp("tiktok", "TIKTOK_REFRESH_TOKEN").is_some(), "{text}");
    assert!(
        exp("tiktok", "TIKTOK_ACCESS_TOKEN").is_some(),
        "the new access token's expiry: {text}"
    );

    // State gauges: 1 for the current state, 0 for the others.
    let state = |p: &str, s: &str| {
        value(
            &text,
            &format!(
                "evertoken_credential_state{{platform=\"{p}\",account=\"default\",state=\"{s}\"}}"
            ),
        )
    };
    assert_eq!(state("tiktok", "rotated"), Some(1.0), "{text}");
    assert_eq!(state("tiktok", "ok"), Some(0.0), "{text}");
    assert_eq!(state("linkedin", "reauth_required"), Some(1.0), "{text}");
    assert_eq!(state("instagram", "ok"), Some(1.0), "{text}");
    for p in ["instagram", "tiktok", "linkedin"] {
        let ones: usize = text
            .lines()
            .filter(|l| {
                l.starts_with(&format!("evertoken_credential_state{{platform=\"{p}\""))
                    && l.ends_with(" 1")
            })
            .count();
        assert_eq!(ones, 1, "exactly one current state for {p}: {text}");
    }

    assert_eq!(
        value(
            &text,
            "evertoken_refresh_total{platform=\"tiktok\",result=\"rotated\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "evertoken_refresh_total{platform=\"tiktok\",result=\"failed\"}"
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "evertoken_last_run_timestamp_seconds{command=\"auth\"}"
        ),
        Some(now().as_second() as f64)
    );
    assert_eq!(
        value(&text, "evertoken_last_run_success{command=\"auth\"}"),
        Some(0.0)
    );
    common::assert_contains(
        &text,
        &[
            "# TYPE evertoken_refresh_total counter\n",
            "# TYPE evertoken_credential_expiry_timestamp_seconds gauge\n",
        ],
    );
}

#[test]
fn counters_carry_across_runs_and_status_and_dry_run_do_not_count() {
    let env = TestEnv::new();
    setup(&env);
    let file = env.path("evertoken.prom");
    let f = file.to_str().unwrap();
    let rotated = "evertoken_refresh_total{platform=\"tiktok\",result=\"rotated\"}";
    let ig_ok = "evertoken_refresh_total{platform=\"instagram\",result=\"ok\"}";

    run(&env, &["auth", "refresh", "all", "--metrics-file", f]);
    let first = std::fs::read_to_string(&file).unwrap();
    assert_eq!(value(&first, rotated), Some(1.0), "{first}");
    assert_eq!(value(&first, ig_ok), Some(1.0), "{first}");

    // status and dry-run keep the counters and update the gauges.
    run(&env, &["auth", "status", "--metrics-file", f]).expect_code(1);
    let text = std::fs::read_to_string(&file).unwrap();
    env.assert_no_leak(&text);
    common::promtool_check(&file);
    assert_eq!(value(&text, rotated), Some(1.0), "{text}");
    assert_eq!(value(&text, ig_ok), Some(1.0), "{text}");
    run(&env, &["auth", "refresh", "--dry-run", "--metrics-file", f]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(value(&text, ig_ok), Some(1.0), "{text}");

    // A second real run adds to them.
    run(&env, &["auth", "refresh", "all", "--metrics-file", f]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(value(&text, ig_ok), Some(2.0), "{text}");
    common::promtool_check(&file);
}

#[test]
fn an_unwritable_metrics_path_fails_with_the_path_and_a_hint() {
    let env = TestEnv::new();
    setup(&env);
    // A missing directory is created; one that cannot be (a file is in the way) fails.
    let blocker = env.path("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let missing = env.path("not-a-dir/evertoken.prom");
    let out = with_metrics(&env, &["auth", "status"], &missing);
    out.expect_code(1)
        .stderr_has(&["cannot write the metrics file", "not-a-dir/evertoken.prom"]);
    out.stderr_has(&["hint:"]);
}

/// The README's alert rules load in Prometheus and fire when they should:
/// "expires in < 7 days", a credential needing a human, and a schedule that stopped.
#[test]
fn the_example_alert_rules_fire_as_documented() {
    let Some(promtool) = common::require_tool("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        evertoken::metrics::EXAMPLE_ALERT_RULES,
    )
    .unwrap();
    // Time starts at 0: the token expires at 10 days, so the alert fires from day 3.
    let test = r#"rule_files: [rules.yml]
evaluation_interval: 1h
tests:
  - interval: 1h
    input_series:
      - series: 'evertoken_credential_expiry_timestamp_seconds{platform="tiktok",account="default",credential="TIKTOK_REFRESH_TOKEN"}'
        values: '864000x300'
      - series: 'evertoken_credential_state{platform="linkedin",account="default",state="reauth_required"}'
        values: '0x10 1x10'
      - series: 'evertoken_last_run_timestamp_seconds{command="auth"}'
        values: '0x300'
    alert_rule_test:
      - eval_time: 2d
        alertname: EvertokenCredentialExpiresSoon
        exp_alerts: []
      - eval_time: 4d
        alertname: EvertokenCredentialExpiresSoon
        exp_alerts:
          - exp_labels: {severity: warning, platform: tiktok, account: default, credential: TIKTOK_REFRESH_TOKEN}
            exp_annotations:
              summary: "tiktok/default: TIKTOK_REFRESH_TOKEN expires in less than 7 days"
      - eval_time: 5h
        alertname: EvertokenNeedsAttention
        exp_alerts: []
      - eval_time: 15h
        alertname: EvertokenNeedsAttention
        exp_alerts:
          - exp_labels: {severity: critical, platform: linkedin, account: default, state: reauth_required}
            exp_annotations:
              summary: "linkedin/default is reauth_required: run `evertoken auth refresh` and read its message"
      - eval_time: 7d
        alertname: EvertokenNotRunning
        exp_alerts: []
      - eval_time: 9d
        alertname: EvertokenNotRunning
        exp_alerts:
          - exp_labels: {severity: warning, command: auth}
            exp_annotations:
              summary: "evertoken has not written its metrics for more than 8 days: is the schedule running?"
"#;
    std::fs::write(dir.path().join("test.yml"), test).unwrap();
    common::tool_ok(
        std::process::Command::new(promtool)
            .args(["test", "rules", "test.yml"])
            .current_dir(dir.path()),
        "promtool test rules",
    );
}
