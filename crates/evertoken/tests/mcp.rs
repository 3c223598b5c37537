//! `evertoken mcp`, driven over stdio by a real MCP client (the official
//! Python SDK, installed by `scripts/setup-ops-tools`): initialize, list tools
//! (exactly the read-only set, so adding a side-effecting tool fails here), call
//! each tool, and check that results carry prefixes only and nothing changed.

use crate::common;
use common::{NOW, now};

use std::path::PathBuf;

use common::TestEnv;
use evertoken_sim::scenario::{Scenario, platform};
use serde_json::{Value, json};

const GH: &str = "test-gh-installation-token-not-a-real-secret-0204";

/// The whole tool surface. A new tool must be read-only and be added here on purpose.
const READ_ONLY_TOOLS: &[&str] = &["credential_status", "github_token_status", "refresh_plan"];

/// The venv's Python with the `mcp` SDK; under CI=true its absence fails the test.
fn python() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/test-tools/ops-venv/bin/python"
    ));
    let ok = p.is_file()
        && std::process::Command::new(&p)
            .args(["-c", "import mcp"])
            .output()
            .is_ok_and(|o| o.status.success());
    if ok {
        return Some(p);
    }
    let msg =
        "the MCP Python SDK is not installed; run scripts/setup-ops-tools (scripts/test does)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

/// Instagram healthy, TikTok due, LinkedIn needing a human (every expiry in the
/// store), and a GitHub App with a stored installation token.
fn setup(env: &TestEnv) -> Scenario {
    env.secret(GH);
    let token_file = env.path("config/evertoken/github-token.env");
    std::fs::create_dir_all(token_file.parent().unwrap()).unwrap();
    std::fs::write(
        &token_file,
        format!("GH_TOKEN={GH}\nGITHUB_TOKEN={GH}\nGITHUB_TOKEN_EXPIRES_AT=2099-01-01T00:00:00Z\n"),
    )
    .unwrap();
    common::set_mode(&token_file, 0o600);
    let s = Scenario::at(now())
        .with(platform("instagram").issued_days_ago(10).expires_in_days(50))
        .platforms(&["tiktok"])
        .with(platform("linkedin").store_records_expiry(true))
        .http("timeout_seconds: 5, retries: 1")
        .extra_config(&format!(
            "github:\n  apps:\n    default:\n      app_id: 1\n      installation_id: 2\n      token_env_file: {}\n      gh_cli: false\n",
            token_file.display()
        ));
    env.scenario(&s);
    s
}

/// Runs the Python client against `evertoken mcp` with `calls`; returns its JSON.
fn client(env: &TestEnv, py: &PathBuf, calls: Value) -> Value {
    let bin = env!("CARGO_BIN_EXE_evertoken");
    let spec = json!({
        "command": bin,
        "args": ["-vvv", "mcp"],
        "cwd": env.work(),
        "env": {
            "HOME": env.home(),
            "XDG_CONFIG_HOME": env.path("config"),
            "XDG_STATE_HOME": env.path("state"),
            "PATH": std::env::var("PATH").unwrap_or_default(),
            "EVERTOKEN_NOW": NOW,
            "NO_COLOR": "1",
            "CI": "true",
        },
        "calls": calls,
    });
    let out = std::process::Command::new(py)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/mcp_client.py"
        ))
        .arg(spec.to_string())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.home())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    env.assert_no_leak(&stdout);
    env.assert_no_leak(&stderr);
    assert!(
        out.status.success(),
        "the MCP client failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("client output is not JSON ({e}): {stdout}\n{stderr}"))
}

fn call(doc: &Value, i: usize) -> &Value {
    &doc["calls"][i]
}

#[test]
fn a_real_client_lists_exactly_the_read_only_tools_and_reads_prefixes_only() {
    let Some(py) = python() else { return };
    let env = TestEnv::new();
    let s = setup(&env);
    let creds_before = std::fs::read(env.work().join("credentials.yaml")).unwrap();
    let doc = client(
        &env,
        &py,
        json!([
            {"tool": "credential_status", "arguments": {}},
            {"tool": "credential_status", "arguments": {"target": "tiktok"}},
            {"tool": "refresh_plan", "arguments": {}},
            {"tool": "github_token_status", "arguments": {}},
        ]),
    );

    assert_eq!(doc["server"]["name"], "evertoken", "{doc}");
    let mut names: Vec<&str> = doc["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names, READ_ONLY_TOOLS,
        "the MCP surface must stay read-only"
    );
    for t in doc["tools"].as_array().unwrap() {
        assert_eq!(t["annotations"]["readOnlyHint"], true, "{t}");
        assert_eq!(t["annotations"]["destructiveHint"], false, "{t}");
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        let props = t["inputSchema"]["properties"].as_object().unwrap();
        if t["name"] == "github_token_status" {
            assert!(props.contains_key("app"), "{t}");
        } else {
            assert!(
                props.contains_key("target") && props.contains_key("account"),
                "{t}"
            );
        }
    }

    // credential_status: every account, stored metadata, prefixes only.
    let all = call(&doc, 0);
    assert_eq!(all["isError"], false, "{all}");
    let results = all["structured"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{all}");
    let tt = results.iter().find(|r| r["platform"] == "tiktok").unwrap();
    let cred = tt["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["var"] == "TIKTOK_REFRESH_TOKEN")
        .unwrap();
    assert_eq!(cred["prefix"], "rft.test…", "{cred}");
    assert_eq!(
        all["structured"]["exit_code"], 1,
        "LinkedIn needs a human: {all}"
    );
    let li = results
        .iter()
        .find(|r| r["platform"] == "linkedin")
        .unwrap();
    assert_eq!(li["state"], "reauth_required", "{li}");
    assert_eq!(li["reauth_by"], "2026-11-28", "{li}");

    let one = call(&doc, 1);
    assert_eq!(
        one["structured"]["results"].as_array().unwrap().len(),
        1,
        "{one}"
    );

    // refresh_plan: what a refresh would do, with nothing done.
    let plan = call(&doc, 2);
    assert_eq!(plan["isError"], false, "{plan}");
    assert_eq!(plan["structured"]["dry_run"], true, "{plan}");
    assert_eq!(plan["structured"]["exit_code"], 1, "{plan}");
    let tt = plan["structured"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["platform"] == "tiktok")
        .unwrap();
    assert!(
        tt["action"].as_str().unwrap().contains("would"),
        "a planned action: {tt}"
    );
    assert!(
        env.sim.sim().tiktok_is_live(&s.token("tiktok")),
        "the dry-run plan must not rotate"
    );
    assert_eq!(
        std::fs::read(env.work().join("credentials.yaml")).unwrap(),
        creds_before,
        "nothing is written"
    );

    // github_token_status: presence, prefix, expiry; never the token.
    let gh = call(&doc, 3);
    assert_eq!(gh["isError"], false, "{gh}");
    let app = &gh["structured"]["apps"][0];
    assert_eq!(app["app"], "default", "{gh}");
    assert_eq!(app["token_file"]["present"], true, "{gh}");
    assert_eq!(app["token_file"]["prefix"], "test-gh-…", "{gh}");
    assert_eq!(
        app["token_file"]["expires_at"], "2099-01-01T00:00:00Z",
        "{gh}"
    );
}

#[test]
fn bad_arguments_come_back_as_tool_errors_with_a_hint() {
    let Some(py) = python() else { return };
    let env = TestEnv::new();
    setup(&env);
    let doc = client(
        &env,
        &py,
        json!([
            {"tool": "credential_status", "arguments": {"target": "myspace"}},
            {"tool": "refresh_plan", "arguments": {"account": "brand-a"}},
            {"tool": "github_token_status", "arguments": {"app": "nope"}},
        ]),
    );
    for i in 0..3 {
        let c = call(&doc, i);
        assert_eq!(c["isError"], true, "{c}");
        assert!(
            c["structured"]["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{c}"
        );
        assert!(
            c["structured"]["hint"]
                .as_str()
                .is_some_and(|h| !h.is_empty()),
            "{c}"
        );
        assert_eq!(c["structured"]["exit_code"], 2, "{c}");
    }
}

#[test]
fn stdout_carries_nothing_but_json_rpc() {
    let env = TestEnv::new();
    setup(&env);
    // A client that hangs up at once: the server exits cleanly without a stray byte.
    let out = env.run(env.cmd().arg("mcp").write_stdin(""));
    out.expect_code(0);
    assert_eq!(out.stdout, "");
}
