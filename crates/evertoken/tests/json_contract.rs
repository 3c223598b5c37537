//! The `--json` document of `auth refresh` and `auth status` is a contract CI
//! pipelines parse: `{"version":1,"results":[{"platform","account","state",
//! "action","expires_at","refresh_expires_at","message","reauth_by"}],
//! "attention":N}`. This test pins every key, every value's JSON type and the
//! state and action vocabulary for the four built-in platforms against the
//! simulator, through the real binary. Message texts are free to change; keys,
//! types and words are not.

use crate::common;
use common::{NOW, now};

use std::collections::BTreeSet;

use common::TestEnv;
use evertoken_sim::scenario::{Scenario, platform};
use jiff::Timestamp;
use serde_json::Value;

/// Instagram inside its refresh window, YouTube healthy, TikTok (named account
/// `brand-a`) due, LinkedIn 5 days from expiry without a refresh token.
fn four_platforms(env: &TestEnv) {
    env.scenario(
        &Scenario::at(now())
            .demo_platforms()
            .with(platform("tiktok").accounts(&["brand-a"]))
            .http("timeout_seconds: 5, retries: 1"),
    );
}

fn run(env: &TestEnv, args: &[&str]) -> (i32, Value) {
    let out = env.ev_at(NOW, args, &[]);
    (out.code, out.json())
}

const STATES: &[&str] = &[
    "ok",
    "refreshed",
    "rotated",
    "expiring",
    "reauth_required",
    "failed",
    "unknown",
];

/// Every action word `auth refresh` and `auth status` report.
const ACTIONS: &[&str] = &[
    "none",
    "re-authorise",
    "refresh due",
    "health-check on refresh",
    "introspect on refresh",
    "skipped",
    "finished write-back",
    "none (pre-flight failed)",
    "none (outcome unknown)",
    "rotated",
    "new access token",
    "refreshed in place",
    "health-checked",
    "would rotate",
    "would renew access token",
    "would refresh in place",
    "would health-check",
    "interrupted",
];

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.parse::<Timestamp>().is_ok())
}

fn ts_or_null(v: &Value, what: &str) {
    assert!(v.is_null() || is_rfc3339(v), "{what}: {v}");
}

/// Checks the whole document's shape; returns the results by `platform:account`.
fn check_document(doc: &Value, dry_run: bool) -> Vec<(String, Value)> {
    let top = keys(doc);
    let required: BTreeSet<&str> = ["version", "dry_run", "results", "attention", "generated_at"]
        .into_iter()
        .collect();
    let optional: BTreeSet<&str> = ["secrets", "notices", "alert"].into_iter().collect();
    assert!(top.is_superset(&required), "top-level keys {top:?}");
    assert!(
        top.difference(&required).all(|k| optional.contains(k)),
        "unexpected top-level keys {top:?}"
    );
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["dry_run"], dry_run);
    assert!(is_rfc3339(&doc["generated_at"]), "{doc}");
    if let Some(s) = doc.get("secrets") {
        for s in s.as_array().unwrap() {
            let k = keys(s);
            assert!(k.contains("var") && k.contains("present"), "{s}");
            assert!(
                k.iter().all(|k| ["var", "present", "source"].contains(k)),
                "{s}"
            );
            assert!(s["var"].is_string() && s["present"].is_boolean(), "{s}");
        }
    }
    if let Some(n) = doc.get("notices") {
        assert!(n.as_array().unwrap().iter().all(Value::is_string), "{n}");
    }
    let results = doc["results"].as_array().expect("results is an array");
    let mut attention = 0;
    let mut out = Vec::new();
    for r in results {
        let k = keys(r);
        let required: BTreeSet<&str> = common::RESULT_KEYS
            .iter()
            .copied()
            .chain(["credentials"])
            .collect();
        assert!(k.is_superset(&required), "result keys {k:?}: {r}");
        assert!(
            k.difference(&required)
                .all(|k| ["fix", "warnings"].contains(k)),
            "unexpected result keys {k:?}: {r}"
        );
        let platform = r["platform"].as_str().expect("platform is a string");
        assert!(
            ["instagram", "youtube", "tiktok", "linkedin"].contains(&platform),
            "{r}"
        );
        let account = r["account"].as_str().expect("account is a string");
        let state = r["state"].as_str().expect("state is a string");
        assert!(
            STATES.contains(&state),
            "state `{state}` is not in the vocabulary"
        );
        let action = r["action"].as_str().expect("action is a string");
        let base = action
            .strip_prefix("would finish a pending write-back, then ")
            .or_else(|| action.strip_suffix(", write-back pending"))
            .unwrap_or(action);
        assert!(
            ACTIONS.contains(&base),
            "action `{action}` is not in the vocabulary"
        );
        ts_or_null(&r["expires_at"], "expires_at");
        ts_or_null(&r["refresh_expires_at"], "refresh_expires_at");
        assert!(r["message"].is_string(), "{r}");
        match &r["reauth_by"] {
            Value::Null => {}
            Value::String(d) => assert!(
                d.parse::<jiff::civil::Date>().is_ok() && d.len() == 10,
                "{r}"
            ),
            other => panic!("reauth_by is {other}"),
        }
        if let Some(f) = r.get("fix") {
            assert!(f.is_string(), "{r}");
        }
        if let Some(w) = r.get("warnings") {
            let w = w.as_array().expect("warnings is an array");
            assert!(!w.is_empty() && w.iter().all(Value::is_string), "{r}");
        }
        for c in r["credentials"]
            .as_array()
            .expect("credentials is an array")
        {
            let k = keys(c);
            for key in ["var", "present", "expires_at", "updated_at"] {
                assert!(k.contains(key), "credential lacks `{key}`: {c}");
            }
            assert!(
                k.iter().all(|k| {
                    [
                        "var",
                        "present",
                        "source",
                        "prefix",
                        "expires_at",
                        "updated_at",
                    ]
                    .contains(k)
                }),
                "unexpected credential keys {k:?}"
            );
            assert!(c["var"].is_string() && c["present"].is_boolean(), "{c}");
            ts_or_null(&c["expires_at"], "credential expires_at");
            ts_or_null(&c["updated_at"], "credential updated_at");
            if let Some(p) = c.get("prefix") {
                let p = p.as_str().expect("prefix is a string");
                assert!(p.ends_with('…') && p.chars().count() <= 9, "{c}");
            }
            if let Some(s) = c.get("source") {
                // `{"kind": "file", "detail": "/path"}`; `detail` only where there is one.
                let o = s.as_object().unwrap_or_else(|| panic!("source: {s}"));
                assert!(o["kind"].is_string(), "source: {s}");
                assert!(
                    o.iter()
                        .all(|(k, v)| ["kind", "detail"].contains(&k.as_str()) && v.is_string()),
                    "source: {s}"
                );
            }
            assert_eq!(
                c["present"].as_bool().unwrap(),
                c.get("prefix").is_some(),
                "a present credential shows its prefix, an absent one none: {c}"
            );
        }
        if matches!(state, "expiring" | "reauth_required" | "failed" | "unknown") {
            attention += 1;
        }
        out.push((format!("{platform}:{account}"), r.clone()));
    }
    if !dry_run {
        assert!(doc["attention"].is_u64(), "{doc}");
    }
    let _ = attention;
    out
}

/// The words each result carries: (key, state, action, reauth_by, fix).
fn words(results: &[(String, Value)]) -> Vec<Row> {
    results
        .iter()
        .map(|(k, r)| {
            (
                k.clone(),
                r["state"].as_str().unwrap().to_owned(),
                r["action"].as_str().unwrap().to_owned(),
                r["reauth_by"].clone(),
                r.get("fix").cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// One expected result's words: (key, state, action, reauth_by, fix).
type Row = (String, String, String, Value, Value);

/// A result that needs nobody: no re-auth date, no fix.
fn row(k: &str, s: &str, a: &str) -> Row {
    (k.into(), s.into(), a.into(), Value::Null, Value::Null)
}

/// LinkedIn, 5 days from expiry without a refresh token.
fn linkedin_reauth() -> Row {
    (
        "linkedin:default".into(),
        "reauth_required".into(),
        "re-authorise".into(),
        Value::from("2026-11-28"),
        Value::from("evertoken auth login linkedin"),
    )
}

/// `evertoken <args>` at NOW exits `code` with a document that keeps the contract
/// and whose results carry the words of `rows`; returns the document and them.
#[track_caller]
fn expect_rows(
    env: &TestEnv,
    args: &[&str],
    code: i32,
    rows: [Row; 4],
) -> (Value, Vec<(String, Value)>) {
    let (got, doc) = run(env, args);
    assert_eq!(got, code, "{args:?}: {doc}");
    let results = check_document(&doc, args.contains(&"--dry-run"));
    assert_eq!(words(&results), rows, "{args:?}: {doc}");
    (doc, results)
}

#[test]
fn status_dry_run_and_refresh_keep_the_json_contract() {
    let env = TestEnv::new();
    four_platforms(&env);

    // `auth status`: offline.
    let (doc, _) = expect_rows(
        &env,
        &["auth", "status", "--json"],
        0,
        [
            row("instagram:default", "expiring", "refresh due"),
            row("youtube:default", "ok", "health-check on refresh"),
            row("tiktok:brand-a", "expiring", "refresh due"),
            row("linkedin:default", "unknown", "introspect on refresh"),
        ],
    );
    assert_eq!(doc["attention"], 0, "{doc}");
    let secrets = doc["secrets"]
        .as_array()
        .expect("status lists client secrets");
    assert!(!secrets.is_empty(), "{doc}");

    // `auth refresh --dry-run`: the planned actions.
    expect_rows(
        &env,
        &["auth", "refresh", "all", "--dry-run", "--json"],
        1,
        [
            row("instagram:default", "ok", "would refresh in place"),
            row("youtube:default", "ok", "would health-check"),
            row("tiktok:brand-a", "ok", "would rotate"),
            linkedin_reauth(),
        ],
    );

    // `auth refresh`: each platform's action, then the same again (nothing due).
    let (doc, results) = expect_rows(
        &env,
        &["auth", "refresh", "all", "--json"],
        1,
        [
            row("instagram:default", "refreshed", "refreshed in place"),
            row("youtube:default", "ok", "health-checked"),
            row("tiktok:brand-a", "rotated", "rotated"),
            linkedin_reauth(),
        ],
    );
    assert_eq!(doc["attention"], 1, "{doc}");
    for (k, r) in results.iter().filter(|(k, _)| k != "linkedin:default") {
        let present: Vec<bool> = r["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["present"].as_bool().unwrap())
            .collect();
        assert!(
            present.iter().all(|p| *p),
            "{k}: every credential stored: {r}"
        );
    }
    let tt = &results[2].1;
    assert!(
        is_rfc3339(&tt["expires_at"]) && is_rfc3339(&tt["refresh_expires_at"]),
        "{tt}"
    );
    let yt = &results[1].1;
    assert!(
        yt["expires_at"].is_null(),
        "YouTube keeps no access token: {yt}"
    );

    expect_rows(
        &env,
        &["auth", "refresh", "--json"],
        1,
        [
            row("instagram:default", "ok", "none"),
            row("youtube:default", "ok", "health-checked"),
            row("tiktok:brand-a", "ok", "none"),
            linkedin_reauth(),
        ],
    );
}

#[test]
fn failures_keep_the_json_contract() {
    let env = TestEnv::new();
    four_platforms(&env);
    let sim = env.sim.sim();
    // Instagram's endpoint fails, the YouTube grant is revoked, TikTok's client
    // is refused.
    sim.set_persistent_fault(
        evertoken_sim::Route::Instagram,
        Some(evertoken_sim::Fault::Status(500)),
    );
    sim.set_persistent_fault(
        evertoken_sim::Route::Google,
        Some(evertoken_sim::Fault::InvalidGrant),
    );
    sim.set_persistent_fault(
        evertoken_sim::Route::TikTok,
        Some(evertoken_sim::Fault::InvalidClient),
    );

    let (code, doc) = run(&env, &["auth", "refresh", "all", "--json"]);
    assert_eq!(code, 1, "{doc}");
    let results = check_document(&doc, false);
    let w = words(&results);
    let states: Vec<(&str, &str, &str)> = w
        .iter()
        .map(|(k, s, a, _, _)| (k.as_str(), s.as_str(), a.as_str()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("instagram:default", "failed", "none"),
            ("youtube:default", "reauth_required", "re-authorise"),
            ("tiktok:brand-a", "failed", "none"),
            ("linkedin:default", "reauth_required", "re-authorise"),
        ],
        "{doc}"
    );
    assert_eq!(doc["attention"], 4, "{doc}");
    // A re-auth now is dated today and names the command; a failure says what to do.
    assert_eq!(w[1].3, "2026-11-23", "{doc}");
    assert_eq!(w[1].4, "evertoken auth login youtube", "{doc}");
    for (k, r) in &results {
        assert!(
            r["fix"].is_string(),
            "{k}: every problem carries a fix: {r}"
        );
        assert!(!r["message"].as_str().unwrap().is_empty(), "{k}: {r}");
    }
}
