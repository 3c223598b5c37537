//! GitLab CI/CD variables and GitHub Actions secrets.

use base64::Engine as _;
use crypto_box::PublicKey;
use evertoken_sim::{
    ActionsScope, GitLabScope, GitLabVariable, SimOptions, SimServer, gitlab_maskable,
};
use serde_json::{Value, json};

async fn start() -> (SimServer, reqwest::Client) {
    (
        SimServer::start(SimOptions::default())
            .await
            .expect("start"),
        reqwest::Client::new(),
    )
}

#[tokio::test]
async fn gitlab_variables_get_put_masking_and_errors() {
    let (server, c) = start().await;
    let sim = server.sim();
    let base = server.base_url();
    sim.gitlab_add_token("test-gitlab-pat-sim-maintainer");
    sim.gitlab_add_job_token("glcbt-sim-job");
    sim.gitlab_add_developer_token("test-gitlab-pat-sim-dev");
    sim.gitlab_add_project(42, "group/proj");
    let p = GitLabScope::Project(42);
    sim.gitlab_set_variable(
        p,
        GitLabVariable::masked_protected("TIKTOK_REFRESH_TOKEN", "rft.sim-initial"),
    );
    let mut prod = GitLabVariable::masked_protected("TIKTOK_REFRESH_TOKEN", "rft.sim-prod-initial");
    prod.environment_scope = "production".into();
    sim.gitlab_set_variable(p, prod);
    let mut hidden = GitLabVariable::masked_protected("HIDDEN_ONE", "sim-hidden-value");
    hidden.hidden = true;
    sim.gitlab_set_variable(p, hidden);

    let get = |path: String, token: &'static str| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let r = c
                .get(format!("{base}/api/v4/{path}"))
                .header("PRIVATE-TOKEN", token)
                .send()
                .await
                .expect("send");
            (r.status().as_u16(), r.json::<Value>().await.expect("json"))
        }
    };
    // Ambiguous without a filter.
    let (s, _) = get(
        "projects/42/variables/TIKTOK_REFRESH_TOKEN".into(),
        "test-gitlab-pat-sim-maintainer",
    )
    .await;
    assert_eq!(s, 409);
    let (s, b) = get(
        "projects/group%2Fproj/variables/TIKTOK_REFRESH_TOKEN?filter[environment_scope]=*".into(),
        "test-gitlab-pat-sim-maintainer",
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b,
        json!({"variable_type": "env_var", "key": "TIKTOK_REFRESH_TOKEN", "value": "rft.sim-initial",
               "protected": true, "masked": true, "hidden": false, "raw": false,
               "environment_scope": "*", "description": null})
    );
    let (s, b) = get(
        "projects/42/variables/HIDDEN_ONE".into(),
        "test-gitlab-pat-sim-maintainer",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["value"], Value::Null);
    assert_eq!(b["hidden"], true);
    let (s, b) = get(
        "projects/42/variables/NOPE".into(),
        "test-gitlab-pat-sim-maintainer",
    )
    .await;
    assert_eq!((s, b), (404, json!({"message": "404 Variable Not Found"})));
    let (s, b) = get(
        "projects/7/variables/NOPE".into(),
        "test-gitlab-pat-sim-maintainer",
    )
    .await;
    assert_eq!((s, b), (404, json!({"message": "404 Project Not Found"})));
    let (s, b) = get(
        "projects/42/variables/HIDDEN_ONE".into(),
        "test-gitlab-pat-wrong",
    )
    .await;
    assert_eq!((s, b), (401, json!({"message": "401 Unauthorized"})));
    let (s, b) = get(
        "projects/42/variables/HIDDEN_ONE".into(),
        "test-gitlab-pat-sim-dev",
    )
    .await;
    assert_eq!((s, b), (403, json!({"message": "403 Forbidden"})));
    let (s, b) = get(
        "projects/42/variables".into(),
        "test-gitlab-pat-sim-maintainer",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b.as_array().expect("list").len(), 3);

    // PUT as a form, with the environment filter.
    let r = c
        .put(format!(
            "{base}/api/v4/projects/42/variables/TIKTOK_REFRESH_TOKEN"
        ))
        .header("PRIVATE-TOKEN", "test-gitlab-pat-sim-maintainer")
        .form(&[
            ("value", "rft.sim-rotated-1"),
            ("filter[environment_scope]", "production"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        sim.gitlab_variable(p, "TIKTOK_REFRESH_TOKEN", "production")
            .expect("var")
            .value,
        "rft.sim-rotated-1"
    );
    assert_eq!(
        sim.gitlab_variable(p, "TIKTOK_REFRESH_TOKEN", "*")
            .expect("var")
            .value,
        "rft.sim-initial"
    );
    // PUT as JSON on the hidden variable.
    let r = c
        .put(format!("{base}/api/v4/projects/42/variables/HIDDEN_ONE"))
        .header("PRIVATE-TOKEN", "test-gitlab-pat-sim-maintainer")
        .json(&json!({"value": "sim-hidden-rotated"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.expect("json")["value"], Value::Null);
    let v = sim.gitlab_variable(p, "HIDDEN_ONE", "*").expect("var");
    assert_eq!(v.value, "sim-hidden-rotated");
    assert!(v.masked && v.hidden);

    // Masking rules: too short, spaces, newline, bad characters.
    for bad in [
        "short",
        "has space here",
        "two\nlines-here",
        "bad|chars|here",
    ] {
        let r = c
            .put(format!("{base}/api/v4/projects/42/variables/HIDDEN_ONE"))
            .header("PRIVATE-TOKEN", "test-gitlab-pat-sim-maintainer")
            .form(&[("value", bad)])
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 400, "{bad:?}");
        assert_eq!(
            r.json::<Value>().await.expect("json"),
            json!({"message": {"value": ["is invalid"]}})
        );
    }
    assert!(gitlab_maskable("rft.sim-abc_DEF~x:y@z/+=", false));
    assert!(!gitlab_maskable("abc$defgh", false));
    assert!(gitlab_maskable("abc$defgh", true));

    // Job tokens cannot write variables; missing value.
    let r = c
        .put(format!("{base}/api/v4/projects/42/variables/HIDDEN_ONE"))
        .header("JOB-TOKEN", "glcbt-sim-job")
        .form(&[("value", "sim-hidden-value-2")])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .put(format!("{base}/api/v4/projects/42/variables/HIDDEN_ONE"))
        .header("PRIVATE-TOKEN", "test-gitlab-pat-sim-maintainer")
        .form(&[("masked", "true")])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"error": "value is missing"})
    );
    assert_eq!(sim.gitlab_writes(), 2);

    // Groups.
    sim.gitlab_add_group(9, "group");
    sim.gitlab_set_variable(
        GitLabScope::Group(9),
        GitLabVariable::masked_protected("YOUTUBE_REFRESH_TOKEN", "1//sim-group"),
    );
    let (s, b) = get(
        "groups/group/variables/YOUTUBE_REFRESH_TOKEN".into(),
        "test-gitlab-pat-sim-maintainer",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["value"], "1//sim-group");
}

#[tokio::test]
async fn actions_secrets_sealed_box_round_trip() {
    let (server, c) = start().await;
    let sim = server.sim();
    let base = server.base_url();
    sim.actions_add_token("ghp_simtoken");
    sim.actions_add_repo("sim-owner", "sim-repo");
    sim.actions_add_environment("sim-owner", "sim-repo", "production");
    sim.actions_add_org("sim-org");
    let b64 = base64::engine::general_purpose::STANDARD;

    let cases = [
        (
            "repos/sim-owner/sim-repo/actions/secrets",
            ActionsScope::Repo {
                owner: "sim-owner".into(),
                repo: "sim-repo".into(),
            },
            None,
        ),
        (
            "repos/sim-owner/sim-repo/environments/production/secrets",
            ActionsScope::Env {
                owner: "sim-owner".into(),
                repo: "sim-repo".into(),
                env: "production".into(),
            },
            None,
        ),
        (
            "orgs/sim-org/actions/secrets",
            ActionsScope::Org {
                org: "sim-org".into(),
            },
            Some("private"),
        ),
    ];
    for (prefix, scope, visibility) in cases {
        let r = c
            .get(format!("{base}/{prefix}/public-key"))
            .header("authorization", "token ghp_simtoken")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 200);
        let k: Value = r.json().await.expect("json");
        let key_id = k["key_id"].as_str().expect("key_id").to_string();
        let raw: [u8; 32] = b64
            .decode(k["key"].as_str().expect("key"))
            .expect("b64")
            .try_into()
            .expect("32 bytes");
        let pk = PublicKey::from(raw);
        let sealed = pk
            .seal(&mut crypto_box::aead::OsRng, b"rft.sim-secret-value")
            .expect("seal");
        let mut body = json!({"encrypted_value": b64.encode(&sealed), "key_id": key_id});
        if let Some(v) = visibility {
            body["visibility"] = json!(v);
        }
        let put = |body: Value| {
            let c = c.clone();
            let url = format!("{base}/{prefix}/TIKTOK_REFRESH_TOKEN");
            async move {
                c.put(url)
                    .bearer_auth("ghp_simtoken")
                    .json(&body)
                    .send()
                    .await
                    .expect("send")
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(put(body.clone()).await, 201, "{prefix}");
        assert_eq!(put(body.clone()).await, 204, "{prefix}");
        assert_eq!(
            sim.actions_secret_plaintext(scope.clone(), "TIKTOK_REFRESH_TOKEN")
                .as_deref(),
            Some("rft.sim-secret-value")
        );
        let mut wrong = body.clone();
        wrong["key_id"] = json!("123");
        assert_eq!(put(wrong).await, 422);
    }
    assert_eq!(
        sim.actions_secret_visibility("sim-org", "TIKTOK_REFRESH_TOKEN")
            .as_deref(),
        Some("private")
    );

    // Unknown repo, bad credentials.
    let r = c
        .get(format!(
            "{base}/repos/sim-owner/other/actions/secrets/public-key"
        ))
        .bearer_auth("ghp_simtoken")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 404);
    let r = c
        .get(format!(
            "{base}/repos/sim-owner/sim-repo/actions/secrets/public-key"
        ))
        .bearer_auth("ghp_wrong")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.json::<Value>().await.expect("json")["message"],
        "Bad credentials"
    );
}
