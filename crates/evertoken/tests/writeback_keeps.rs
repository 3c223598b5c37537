//! Write-back keeps what the user set: every store is updated with the new token
//! and nothing else it holds changes. GitLab: masked, protected, hidden, raw,
//! environment scope, type and description. Vault: the secret's other fields and
//! its custom metadata. Env file: a key written twice is replaced where it is read
//! (the last line), the other lines stay. Credentials file: the other keys and
//! their order. (GitHub Actions organization secrets: tests/writeback_actions.rs.)

use crate::common;

use std::io::{Read as _, Write as _};

use common::bao::{Bao, ROOT_TOKEN};
use common::{OLD_RT, TestEnv, days_from};
use evertoken_sim::scenario::{GITLAB_TOKEN, Scenario, Store};
use evertoken_sim::{GitLabScope, GitLabVariable};

fn setup(env: &TestEnv, store: Store) -> Scenario {
    let s = common::tiktok_ci(store);
    env.scenario(&s);
    s
}

fn refresh(env: &TestEnv, s: &Scenario, extra_env: &[(&str, &str)]) -> common::Output {
    let out = env.refresh(s, extra_env);
    out.assert_rotated();
    out
}

fn live_token(env: &TestEnv) -> String {
    env.secret(&env.live_tiktok())
}

#[test]
fn env_file_a_key_written_twice_is_replaced_where_it_is_read() {
    let env = TestEnv::new();
    let s = setup(&env, Store::env_file("tokens.env"));
    let dead = env.secret("rft.test-stale-first-line-not-a-real-secret");
    let original = format!(
        "# publisher\nTIKTOK_REFRESH_TOKEN={dead}\nPOST_HOUR=9\n# local override wins (last assignment)\nexport TIKTOK_REFRESH_TOKEN='{OLD_RT}'\nLAST=1\n"
    );
    let path = env.work().join("tokens.env");
    std::fs::write(&path, &original).unwrap();
    common::set_mode(&path, 0o600);
    refresh(&env, &s, &[]);
    let new = live_token(&env);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# publisher");
    assert_eq!(
        lines[1],
        format!("TIKTOK_REFRESH_TOKEN={dead}"),
        "untouched"
    );
    assert_eq!(lines[2], "POST_HOUR=9");
    assert_eq!(lines[3], "# local override wins (last assignment)");
    assert_eq!(lines[4], format!("export TIKTOK_REFRESH_TOKEN={new}"));
    assert_eq!(lines[5], "LAST=1");
    // The next run reads the token just written, not the stale first line:
    // without an access token it rotates again (the stale first line would be
    // refused as invalid_grant).
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("TIKTOK_ACCESS_TOKEN"))
        .collect();
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("TIKTOK_ACCESS_TOKEN=") {
            env.secret(v);
        }
    }
    refresh(&env, &s, &[]);
    let newer = live_token(&env);
    assert_ne!(newer, new);
}

#[test]
fn credentials_file_other_keys_stay_in_order() {
    let env = TestEnv::new();
    let s = setup(&env, Store::local());
    let other = env.secret("test-other-key-value-not-a-real-secret");
    env.credentials(&format!(
        "ALPHA: \"{other}\"\nTIKTOK_REFRESH_TOKEN: {{ value: \"{OLD_RT}\", expires_at: {} }}\nZULU:\n  value: zulu-value-kept\n  expires_at: 2030-01-01T00:00:00Z\n",
        days_from(jiff::Timestamp::now(), 300)
    ));
    refresh(&env, &s, &[]);
    let new = live_token(&env);
    assert_eq!(env.stored("TIKTOK_REFRESH_TOKEN").unwrap(), new);
    assert_eq!(env.stored("ALPHA").unwrap(), other);
    let doc = env.read_credentials();
    assert_eq!(doc["ZULU"]["value"].as_str(), Some("zulu-value-kept"));
    assert_eq!(
        doc["ZULU"]["expires_at"].as_str(),
        Some("2030-01-01T00:00:00Z")
    );
    let text = std::fs::read_to_string(env.work().join("credentials.yaml")).unwrap();
    let (a, t, z) = (
        text.find("ALPHA").unwrap(),
        text.find("TIKTOK_REFRESH_TOKEN").unwrap(),
        text.find("ZULU").unwrap(),
    );
    assert!(a < t && t < z, "order kept:\n{text}");
}

/// A PUT to the simulator's GitLab API, as a user editing the variable in the UI.
fn gitlab_put(base: &str, path: &str, form: &str) {
    let u = url::Url::parse(base).unwrap();
    let mut s = std::net::TcpStream::connect((u.host_str().unwrap(), u.port().unwrap())).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {GITLAB_TOKEN}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

fn variable_json(base: &str, key: &str) -> serde_json::Value {
    let u = url::Url::parse(base).unwrap();
    let mut s = std::net::TcpStream::connect((u.host_str().unwrap(), u.port().unwrap())).unwrap();
    write!(
        s,
        "GET /api/v4/projects/4242/variables/{key}?filter%5Benvironment_scope%5D=production HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {GITLAB_TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let body = resp.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {resp}"))
}

#[test]
fn gitlab_variable_attributes_survive_a_rotation() {
    let env = TestEnv::new();
    let s = setup(
        &env,
        Store::gitlab_project("4242").setting("environment_scope: production"),
    );
    let sim = env.sim.sim();
    let set = GitLabVariable {
        key: "TIKTOK_REFRESH_TOKEN".into(),
        value: OLD_RT.into(),
        masked: true,
        protected: true,
        hidden: true,
        raw: true,
        environment_scope: "production".into(),
        variable_type: "file".into(),
    };
    sim.gitlab_set_variable(GitLabScope::Project(4242), set.clone());
    // Another scope's variable of the same name is not touched.
    let staging = GitLabVariable {
        environment_scope: "staging".into(),
        ..set.clone()
    };
    sim.gitlab_set_variable(GitLabScope::Project(4242), staging.clone());
    gitlab_put(
        &env.base_url(),
        "/api/v4/projects/4242/variables/TIKTOK_REFRESH_TOKEN?filter%5Benvironment_scope%5D=production",
        &format!("value={OLD_RT}&description=rotated+by+evertoken%2C+owner+team-a"),
    );
    // A hidden variable's value cannot be read back: the job gets it as an
    // environment variable, as GitLab CI provides it.
    refresh(&env, &s, &[("TIKTOK_REFRESH_TOKEN", OLD_RT)]);
    let new = live_token(&env);
    let got = sim
        .gitlab_variable(
            GitLabScope::Project(4242),
            "TIKTOK_REFRESH_TOKEN",
            "production",
        )
        .unwrap();
    assert_eq!(got, GitLabVariable { value: new, ..set });
    assert_eq!(
        sim.gitlab_variable(
            GitLabScope::Project(4242),
            "TIKTOK_REFRESH_TOKEN",
            "staging"
        )
        .unwrap(),
        staging
    );
    let v = variable_json(&env.base_url(), "TIKTOK_REFRESH_TOKEN");
    assert_eq!(
        v["description"], "rotated by evertoken, owner team-a",
        "{v}"
    );
}

#[test]
fn vault_other_fields_and_custom_metadata_survive_a_rotation() {
    let Some(bao) = Bao::start() else { return };
    let env = TestEnv::new();
    let s = setup(&env, Store::vault(&bao.addr, ROOT_TOKEN));
    bao.put(
        "TIKTOK_REFRESH_TOKEN",
        &[
            &format!("value={OLD_RT}"),
            "owner=team-a",
            "note=rotated by evertoken",
        ],
    );
    bao.ok(&[
        "kv",
        "metadata",
        "put",
        "-mount=secret",
        "-custom-metadata=ticket=OPS-42",
        "evertoken/TIKTOK_REFRESH_TOKEN",
    ]);
    refresh(&env, &s, &[]);
    let new = live_token(&env);
    let (data, _) = bao.get("TIKTOK_REFRESH_TOKEN").unwrap();
    assert_eq!(data["value"], new.as_str());
    assert_eq!(data["owner"], "team-a", "{data}");
    assert_eq!(data["note"], "rotated by evertoken", "{data}");
    assert!(data["updated_at"].is_string());
    let meta = bao.ok(&[
        "kv",
        "metadata",
        "get",
        "-format=json",
        "-mount=secret",
        "evertoken/TIKTOK_REFRESH_TOKEN",
    ]);
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(
        meta["data"]["custom_metadata"]["ticket"], "OPS-42",
        "{meta}"
    );
}
