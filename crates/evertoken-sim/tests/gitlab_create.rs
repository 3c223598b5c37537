//! Creating GitLab CI/CD variables (`POST …/variables`): the simulator refuses what
//! GitLab refuses (bad keys, taken keys, unmaskable masked values, developer and job
//! tokens) and honours `masked_and_hidden` only where the server supports it.

use evertoken_sim::GitLabScope;
use evertoken_sim::scenario::{GITLAB_PROJECT, GITLAB_TOKEN, Scenario, Store};

use crate::common::*;

#[tokio::test]
async fn gitlab_variable_creation_follows_gitlabs_rules() {
    let (id, path) = GITLAB_PROJECT;
    let e = Env::seeded(&Scenario::wall_clock().store(Store::gitlab_project(path))).await;
    e.sim.gitlab_add_developer_token("test-gitlab-pat-sim-dev");
    let url = format!("projects/{}/variables", path.replace('/', "%2F"));
    let post = |token: &str, form: &[(&str, &str)]| {
        e.gitlab(Method::POST, &url, token).form(form).answer()
    };
    let ok = GITLAB_TOKEN;
    let good = [
        ("key", "TIKTOK_REFRESH_TOKEN"),
        ("value", "rft.sim-created-value"),
        ("masked", "true"),
        ("protected", "true"),
        ("masked_and_hidden", "true"),
    ];

    let b = post("test-gitlab-pat-sim-dev", &good).await;
    assert_eq!(b.status, 403, "a developer cannot create variables");
    let b = post(ok, &good).await;
    let created = json!({"hidden": true, "masked": true, "protected": true});
    b.check(201, created);
    assert_eq!(
        b.body["value"],
        Value::Null,
        "a hidden value is never shown again"
    );
    let v = e
        .sim
        .gitlab_variable(GitLabScope::Project(id), "TIKTOK_REFRESH_TOKEN", "*");
    assert_eq!(v.unwrap().value, "rft.sim-created-value");

    // Taken in that environment scope; another scope is fine.
    let b = post(ok, &good).await;
    assert_eq!(b.status, 400);
    assert!(
        b.body.to_string().contains("has already been taken"),
        "{}",
        b.body
    );
    let mut prod = good.to_vec();
    prod.push(("environment_scope", "production"));
    assert_eq!(post(ok, &prod).await.status, 201);

    // Keys: only letters, digits and `_`, at most 255.
    let long = "K".repeat(256);
    for key in ["BAD-KEY", "", "A B", long.as_str()] {
        let b = post(ok, &[("key", key), ("value", "whatever-value")]).await;
        assert_eq!(b.status, 400, "{key:?}");
    }
    // A masked value must meet the masking rules; missing value is an error.
    let b = post(
        ok,
        &[("key", "SHORT"), ("value", "abc"), ("masked", "true")],
    )
    .await;
    assert_eq!(b.status, 400);
    assert!(b.body.to_string().contains("is invalid"), "{}", b.body);
    assert_eq!(post(ok, &[("key", "NOVALUE")]).await.status, 400);

    // Before GitLab 17.4 `masked_and_hidden` is ignored: masked, not hidden.
    e.sim.gitlab_set_hidden_supported(false);
    let mut old_server = good;
    old_server[0] = ("key", "OLD_SERVER");
    old_server[1] = ("value", "rft.sim-old-server");
    let b = post(ok, &old_server).await;
    b.check(201, json!({"hidden": false, "value": "rft.sim-old-server"}));
}
