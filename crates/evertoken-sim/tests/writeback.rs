//! GitLab CI/CD variables and GitHub Actions secrets.

use base64::Engine as _;
use crypto_box::PublicKey;
use evertoken_sim::scenario::{
    ACTIONS_REPO, ACTIONS_TOKEN, GITLAB_GROUP, GITLAB_PROJECT, GITLAB_TOKEN, Scenario, Store,
};
use evertoken_sim::{ActionsScope, GitLabScope, GitLabVariable, gitlab_maskable};

use crate::common::*;

#[tokio::test]
async fn gitlab_variables_get_put_masking_and_errors() {
    let (id, path) = GITLAB_PROJECT;
    let e = Env::seeded(&Scenario::wall_clock().store(Store::gitlab_project(path))).await;
    e.sim.gitlab_add_job_token("glcbt-sim-job");
    e.sim.gitlab_add_developer_token("test-gitlab-pat-sim-dev");
    let p = GitLabScope::Project(id);
    let initial = GitLabVariable::masked_protected("TIKTOK_REFRESH_TOKEN", "rft.sim-initial");
    e.sim.gitlab_set_variable(p, initial);
    let mut prod = GitLabVariable::masked_protected("TIKTOK_REFRESH_TOKEN", "rft.sim-prod-initial");
    prod.environment_scope = "production".into();
    e.sim.gitlab_set_variable(p, prod);
    let mut hidden = GitLabVariable::masked_protected("HIDDEN_ONE", "sim-hidden-value");
    hidden.hidden = true;
    e.sim.gitlab_set_variable(p, hidden);

    let var = |name: &str| format!("projects/{id}/variables/{name}");
    let get = |path: &str, token: &str| e.gitlab(Method::GET, path, token).answer();
    // Ambiguous without a filter.
    assert_eq!(
        get(&var("TIKTOK_REFRESH_TOKEN"), GITLAB_TOKEN).await.status,
        409
    );
    let encoded = path.replace('/', "%2F");
    let filter = "filter[environment_scope]=*";
    let by_path = format!("projects/{encoded}/variables/TIKTOK_REFRESH_TOKEN?{filter}");
    get(&by_path, GITLAB_TOKEN).await.exactly(
        200,
        json!({"variable_type": "env_var", "key": "TIKTOK_REFRESH_TOKEN", "value": "rft.sim-initial",
               "protected": true, "masked": true, "hidden": false, "raw": false,
               "environment_scope": "*", "description": null}),
    );
    let b = get(&var("HIDDEN_ONE"), GITLAB_TOKEN).await;
    b.check(200, json!({"value": null, "hidden": true}));
    for (path, token, status, message) in [
        (var("NOPE"), GITLAB_TOKEN, 404, "404 Variable Not Found"),
        (
            "projects/7/variables/NOPE".into(),
            GITLAB_TOKEN,
            404,
            "404 Project Not Found",
        ),
        (
            var("HIDDEN_ONE"),
            "test-gitlab-pat-wrong",
            401,
            "401 Unauthorized",
        ),
        (
            var("HIDDEN_ONE"),
            "test-gitlab-pat-sim-dev",
            403,
            "403 Forbidden",
        ),
    ] {
        let b = get(&path, token).await;
        b.exactly(status, json!({"message": message}));
    }
    let list = get(&format!("projects/{id}/variables"), GITLAB_TOKEN).await;
    assert_eq!(list.ok().as_array().expect("list").len(), 3);

    // PUT as a form, with the environment filter.
    let put = |name: &str| e.gitlab(Method::PUT, &var(name), GITLAB_TOKEN);
    let form = [
        ("value", "rft.sim-rotated-1"),
        ("filter[environment_scope]", "production"),
    ];
    assert_eq!(put("TIKTOK_REFRESH_TOKEN").form(&form).status().await, 200);
    let value = |name, scope| e.sim.gitlab_variable(p, name, scope).expect("var").value;
    assert_eq!(
        value("TIKTOK_REFRESH_TOKEN", "production"),
        "rft.sim-rotated-1"
    );
    assert_eq!(value("TIKTOK_REFRESH_TOKEN", "*"), "rft.sim-initial");
    // PUT as JSON on the hidden variable.
    let rotated = json!({"value": "sim-hidden-rotated"});
    let b = put("HIDDEN_ONE").json(&rotated).answer().await;
    b.check(200, json!({"value": null}));
    let v = e.sim.gitlab_variable(p, "HIDDEN_ONE", "*").expect("var");
    assert_eq!(v.value, "sim-hidden-rotated");
    assert!(v.masked && v.hidden);

    // Masking rules: too short, spaces, newline, bad characters.
    for bad in [
        "short",
        "has space here",
        "two\nlines-here",
        "bad|chars|here",
    ] {
        let b = put("HIDDEN_ONE").form(&[("value", bad)]).answer().await;
        assert_eq!(b.status, 400, "{bad:?}");
        assert_eq!(b.body, json!({"message": {"value": ["is invalid"]}}));
    }
    assert!(gitlab_maskable("rft.sim-abc_DEF~x:y@z/+=", false));
    assert!(!gitlab_maskable("abc$defgh", false));
    assert!(gitlab_maskable("abc$defgh", true));

    // Job tokens cannot write variables; missing value.
    let job = e.req(Method::PUT, &format!("/api/v4/{}", var("HIDDEN_ONE")));
    let job = job.header("JOB-TOKEN", "glcbt-sim-job");
    assert_eq!(
        job.form(&[("value", "sim-hidden-value-2")]).status().await,
        401
    );
    let b = put("HIDDEN_ONE").form(&[("masked", "true")]).answer().await;
    b.exactly(400, json!({"error": "value is missing"}));
    assert_eq!(e.sim.gitlab_writes(), 2);

    // Groups.
    let (group_id, group) = GITLAB_GROUP;
    let youtube = GitLabVariable::masked_protected("YOUTUBE_REFRESH_TOKEN", "1//sim-group");
    e.sim
        .gitlab_set_variable(GitLabScope::Group(group_id), youtube);
    let b = get(
        &format!("groups/{group}/variables/YOUTUBE_REFRESH_TOKEN"),
        GITLAB_TOKEN,
    )
    .await;
    b.check(200, json!({"value": "1//sim-group"}));
}

#[tokio::test]
async fn actions_secrets_sealed_box_round_trip() {
    let e = Env::seeded(&Scenario::wall_clock().store(Store::github_organization())).await;
    let (owner, repo, env) = ACTIONS_REPO;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (o, r) = (owner.to_owned(), repo.to_owned());
    let cases = [
        (
            format!("/repos/{owner}/{repo}/actions/secrets"),
            ActionsScope::Repo {
                owner: o.clone(),
                repo: r.clone(),
            },
            None,
        ),
        (
            format!("/repos/{owner}/{repo}/environments/{env}/secrets"),
            ActionsScope::Env {
                owner: o.clone(),
                repo: r,
                env: env.into(),
            },
            None,
        ),
        (
            format!("/orgs/{owner}/actions/secrets"),
            ActionsScope::Org { org: o },
            Some("private"),
        ),
    ];
    for (prefix, scope, visibility) in cases {
        let key = e.get(&format!("{prefix}/public-key"));
        let key = key.header("authorization", format!("token {ACTIONS_TOKEN}"));
        let key = key.answer().await;
        let k = key.ok();
        let raw = b64.decode(k["key"].as_str().expect("key")).expect("b64");
        let raw: [u8; 32] = raw.try_into().expect("32 bytes");
        let plaintext = b"rft.sim-secret-value";
        let sealed = PublicKey::from(raw).seal(&mut crypto_box::aead::OsRng, plaintext);
        let sealed = b64.encode(sealed.expect("seal"));
        let mut body = json!({"encrypted_value": sealed, "key_id": k["key_id"]});
        if let Some(v) = visibility {
            body["visibility"] = json!(v);
        }
        let path = format!("{prefix}/TIKTOK_REFRESH_TOKEN");
        let put = |body: &Value| {
            e.req(Method::PUT, &path)
                .bearer_auth(ACTIONS_TOKEN)
                .json(body)
        };
        assert_eq!(put(&body).status().await, 201, "{prefix}");
        assert_eq!(put(&body).status().await, 204, "{prefix}");
        let stored = e
            .sim
            .actions_secret_plaintext(scope, "TIKTOK_REFRESH_TOKEN");
        assert_eq!(stored.as_deref(), Some("rft.sim-secret-value"));
        let mut wrong = body.clone();
        wrong["key_id"] = json!("123");
        assert_eq!(put(&wrong).status().await, 422);
    }
    let visibility = e
        .sim
        .actions_secret_visibility(owner, "TIKTOK_REFRESH_TOKEN");
    assert_eq!(visibility.as_deref(), Some("private"));

    // Unknown repo, bad credentials.
    let key = |repo: &str| e.get(&format!("/repos/{owner}/{repo}/actions/secrets/public-key"));
    assert_eq!(key("other").bearer_auth(ACTIONS_TOKEN).status().await, 404);
    let b = key(repo).bearer_auth("ghp_wrong").answer().await;
    b.check(401, json!({"message": "Bad credentials"}));
}
