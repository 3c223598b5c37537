//! Creating GitLab CI/CD variables (`POST …/variables`): the simulator refuses what
//! GitLab refuses (bad keys, taken keys, unmaskable masked values, developer and job
//! tokens) and honours `masked_and_hidden` only where the server supports it.

use evertoken_sim::{GitLabScope, SimOptions, SimServer};
use serde_json::Value;

async fn post(c: &reqwest::Client, url: &str, token: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = c
        .post(url)
        .header("PRIVATE-TOKEN", token)
        .form(form)
        .send()
        .await
        .expect("send");
    (
        r.status().as_u16(),
        r.json::<Value>().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn gitlab_variable_creation_follows_gitlabs_rules() {
    let server = SimServer::start(SimOptions::default())
        .await
        .expect("start");
    let sim = server.sim();
    sim.gitlab_add_token("test-gitlab-pat-sim-maintainer");
    sim.gitlab_add_developer_token("test-gitlab-pat-sim-dev");
    sim.gitlab_add_project(42, "group/proj");
    let c = reqwest::Client::new();
    let url = format!(
        "{}/api/v4/projects/group%2Fproj/variables",
        server.base_url()
    );
    let ok = "test-gitlab-pat-sim-maintainer";
    let good = [
        ("key", "TIKTOK_REFRESH_TOKEN"),
        ("value", "rft.sim-created-value"),
        ("masked", "true"),
        ("protected", "true"),
        ("masked_and_hidden", "true"),
    ];

    let (s, _) = post(&c, &url, "test-gitlab-pat-sim-dev", &good).await;
    assert_eq!(s, 403, "a developer cannot create variables");
    let (s, b) = post(&c, &url, ok, &good).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["hidden"], true);
    assert_eq!(b["masked"], true);
    assert_eq!(b["protected"], true);
    assert_eq!(
        b["value"],
        Value::Null,
        "a hidden value is never shown again"
    );
    let v = sim
        .gitlab_variable(GitLabScope::Project(42), "TIKTOK_REFRESH_TOKEN", "*")
        .unwrap();
    assert_eq!(v.value, "rft.sim-created-value");

    // Taken in that environment scope; another scope is fine.
    let (s, b) = post(&c, &url, ok, &good).await;
    assert_eq!(s, 400);
    assert!(b.to_string().contains("has already been taken"), "{b}");
    let mut prod = good.to_vec();
    prod.push(("environment_scope", "production"));
    assert_eq!(post(&c, &url, ok, &prod).await.0, 201);

    // Keys: only letters, digits and `_`, at most 255.
    let long = "K".repeat(256);
    for key in ["BAD-KEY", "", "A B", long.as_str()] {
        let (s, _) = post(&c, &url, ok, &[("key", key), ("value", "whatever-value")]).await;
        assert_eq!(s, 400, "{key:?}");
    }
    // A masked value must meet the masking rules; missing value is an error.
    let (s, b) = post(
        &c,
        &url,
        ok,
        &[("key", "SHORT"), ("value", "abc"), ("masked", "true")],
    )
    .await;
    assert_eq!(s, 400);
    assert!(b.to_string().contains("is invalid"), "{b}");
    let (s, _) = post(&c, &url, ok, &[("key", "NOVALUE")]).await;
    assert_eq!(s, 400);

    // Before GitLab 17.4 `masked_and_hidden` is ignored: masked, not hidden.
    sim.gitlab_set_hidden_supported(false);
    let (s, b) = post(
        &c,
        &url,
        ok,
        &[
            ("key", "OLD_SERVER"),
            ("value", "rft.sim-old-server"),
            ("masked", "true"),
            ("protected", "true"),
            ("masked_and_hidden", "true"),
        ],
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["hidden"], false);
    assert_eq!(b["value"], "rft.sim-old-server");
}
