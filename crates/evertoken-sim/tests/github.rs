//! GitHub App JWT verification and installation tokens.

use evertoken_sim::rs256;
use evertoken_sim::{SimOptions, SimServer, test_rsa_keypair, test_rsa_private_pkcs8};
use serde_json::{Value, json};

const APP: u64 = 424242;
const INST: u64 = 987654;

fn jwt_with(iat: i64, exp: i64, iss: Value) -> String {
    let (private_pem, _) = test_rsa_keypair();
    rs256::sign(&private_pem, &json!({"iat": iat, "exp": exp, "iss": iss})).expect("sign")
}

async fn setup() -> (SimServer, reqwest::Client, i64) {
    let server = SimServer::start(SimOptions::default())
        .await
        .expect("start");
    let sim = server.sim();
    let (_, public_pem) = test_rsa_keypair();
    sim.github_add_app(APP, "Iv23simclient", &public_pem);
    sim.github_add_installation(
        APP,
        INST,
        "sim-org",
        "Organization",
        vec!["repo-a".into(), "repo-b".into()],
    );
    let now = sim.now().as_second();
    (server, reqwest::Client::new(), now)
}

async fn mint(c: &reqwest::Client, base: &str, jwt: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = c
        .post(format!("{base}/app/installations/{INST}/access_tokens"))
        .bearer_auth(jwt)
        .header("accept", "application/vnd.github+json");
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("send");
    assert!(r.headers().contains_key("date"), "GitHub always sends Date");
    let s = r.status().as_u16();
    (s, r.json().await.expect("json"))
}

#[tokio::test]
async fn valid_jwt_mints_a_token() {
    let (server, c, now) = setup().await;
    let sim = server.sim();
    let base = server.base_url();
    let (s, b) = mint(&c, &base, &jwt_with(now - 60, now + 540, json!(APP)), None).await;
    assert_eq!(s, 201, "{b}");
    let token = b["token"].as_str().expect("token");
    assert!(token.starts_with("ghs_"));
    assert_eq!(token.len(), 40);
    assert!(b["expires_at"].as_str().expect("exp").ends_with('Z'));
    assert_eq!(b["repository_selection"], "selected");
    assert!(b["permissions"].is_object());
    assert!(sim.github_is_valid_token(token));
    assert_eq!(sim.github_tokens_issued(), 1);

    // iss as a string and as the client id; and the GHES prefix.
    let (s, _) = mint(
        &c,
        &format!("{base}/api/v3"),
        &jwt_with(now - 60, now + 540, json!(APP.to_string())),
        None,
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = mint(
        &c,
        &base,
        &jwt_with(now - 60, now + 540, json!("Iv23simclient")),
        None,
    )
    .await;
    assert_eq!(s, 201);

    // Cheap verify and revoke with the installation token.
    let r = c
        .get(format!("{base}/installation/repositories"))
        .header("authorization", format!("token {token}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["total_count"], 2);
    let r = c
        .delete(format!("{base}/installation/token"))
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 204);
    assert!(!sim.github_is_valid_token(token));
    assert_eq!(sim.github_revoked_count(), 1);
    let r = c
        .get(format!("{base}/installation/repositories"))
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.json::<Value>().await.expect("json")["message"],
        "Bad credentials"
    );
}

#[tokio::test]
async fn bad_jwts_get_githubs_401_messages() {
    let (server, c, now) = setup().await;
    let base = server.base_url();
    // Bad signature: payload swapped after signing.
    let good = jwt_with(now - 60, now + 540, json!(APP));
    let other = jwt_with(now - 61, now + 539, json!(APP));
    let parts: Vec<&str> = good.split('.').collect();
    let other_parts: Vec<&str> = other.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
    let cases = [
        (forged, "A JSON web token could not be decoded"),
        (
            "not-a-jwt".to_string(),
            "A JSON web token could not be decoded",
        ),
        (
            jwt_with(now - 60, now + 1200, json!(APP)),
            "'Expiration time' claim ('exp') is too far in the future",
        ),
        (
            jwt_with(now + 300, now + 540, json!(APP)),
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        ),
        (
            jwt_with(now - 900, now - 300, json!(APP)),
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        ),
    ];
    for (jwt, msg) in cases {
        let (s, b) = mint(&c, &base, &jwt, None).await;
        assert_eq!(s, 401, "{b}");
        assert_eq!(b["message"], msg);
        assert_eq!(b["status"], "401");
        assert!(b["documentation_url"].is_string());
    }
    assert_eq!(server.sim().github_tokens_issued(), 0);
}

#[tokio::test]
async fn unknown_installation_repos_and_lookups() {
    let (server, c, now) = setup().await;
    let sim = server.sim();
    let base = server.base_url();
    let jwt = jwt_with(now - 60, now + 540, json!(APP));
    let r = c
        .post(format!("{base}/app/installations/1/access_tokens"))
        .bearer_auth(&jwt)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app", "status": "404"})
    );
    let (s, b) = mint(&c, &base, &jwt, Some(json!({"repositories": ["repo-z"]}))).await;
    assert_eq!(s, 422, "{b}");
    let (s, b) = mint(
        &c,
        &base,
        &jwt,
        Some(json!({"repositories": ["repo-a"], "permissions": {"contents": "read"}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["permissions"], json!({"contents": "read"}));
    assert_eq!(b["repositories"][0]["name"], "repo-a");
    let (s, _) = mint(
        &c,
        &base,
        &jwt,
        Some(json!({"permissions": {"administration": "write"}})),
    )
    .await;
    assert_eq!(s, 422);

    for path in [
        "repos/sim-org/repo-b/installation",
        "orgs/sim-org/installation",
        "users/sim-org/installation",
    ] {
        let r = c
            .get(format!("{base}/{path}"))
            .bearer_auth(&jwt)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let b: Value = r.json().await.expect("json");
        assert_eq!(b["id"], INST);
        assert_eq!(b["app_id"], APP);
        assert_eq!(b["account"]["login"], "sim-org");
        assert_eq!(b["account"]["type"], "Organization");
    }
    let r = c
        .get(format!("{base}/repos/sim-org/nope/installation"))
        .bearer_auth(&jwt)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 404);

    // Long stateless tokens.
    sim.github_set_token_style(true);
    let (s, b) = mint(&c, &base, &jwt, None).await;
    assert_eq!(s, 201);
    let t = b["token"].as_str().expect("token");
    assert!(t.starts_with(&format!("ghs_{APP}_")));
    assert!((480..=560).contains(&t.len()), "len {}", t.len());
    assert!(sim.github_is_valid_token(t));
}

#[test]
fn pkcs8_and_pkcs1_keys_are_the_same_key() {
    let (pkcs1, public_pem) = test_rsa_keypair();
    let pkcs8 = test_rsa_private_pkcs8();
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    let claims = json!({"iat": 1, "exp": 2, "iss": 3});
    let a = rs256::sign(&pkcs1, &claims).expect("a");
    let b = rs256::sign(&pkcs8, &claims).expect("b");
    assert_eq!(a, b, "RS256 is deterministic: same key, same signature");
}

#[tokio::test]
async fn lenient_mode_accepts_unknown_apps_signed_with_the_test_key() {
    let server = SimServer::start(SimOptions {
        lenient: true,
        ..Default::default()
    })
    .await
    .expect("start");
    let now = server.sim().now().as_second();
    let r = reqwest::Client::new()
        .post(format!(
            "{}/app/installations/5150/access_tokens",
            server.base_url()
        ))
        .bearer_auth(jwt_with(now - 60, now + 540, json!(777)))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 201);
}

/// `repositories` are names without the owner (at most 500): GitHub answers 422
/// to `owner/name`; `repository_ids` work on an installation on all repositories.
#[tokio::test]
async fn narrowing_takes_repository_names_and_ids() {
    let (server, c, now) = setup().await;
    let sim = server.sim();
    let base = server.base_url();
    let jwt = jwt_with(now - 60, now + 540, json!(APP));
    for repos in [
        json!(["sim-org/repo-a"]),
        json!(["repo-a", "sim-org/repo-b"]),
        json!((0..501).map(|i| format!("repo-{i}")).collect::<Vec<_>>()),
    ] {
        let (s, b) = mint(&c, &base, &jwt, Some(json!({ "repositories": repos }))).await;
        assert_eq!(s, 422, "{repos}: {b}");
    }
    let (s, b) = mint(&c, &base, &jwt, Some(json!({"repositories": ["repo-a"]}))).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["repositories"][0]["full_name"], "sim-org/repo-a");

    // An installation on all repositories: any id of its account is accepted.
    let all = INST + 1000;
    sim.github_add_installation(APP, all, "all-org", "Organization", vec![]);
    let r = c
        .post(format!("{base}/app/installations/{all}/access_tokens"))
        .bearer_auth(&jwt)
        .json(&json!({"repository_ids": [123_456_789u64], "permissions": {"contents": "read"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 201);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["repository_selection"], "selected", "{b}");
    assert_eq!(b["repositories"][0]["id"], 123_456_789u64, "{b}");
    let r = c
        .post(format!("{base}/app/installations/{all}/access_tokens"))
        .bearer_auth(&jwt)
        .json(&json!({"repositories": ["all-org/site"]}))
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status().as_u16(),
        422,
        "owner/name on an all-repositories installation"
    );
    // A selected-repositories installation still refuses an id it does not have.
    let (s, b) = mint(
        &c,
        &base,
        &jwt,
        Some(json!({"repository_ids": [123_456_789u64]})),
    )
    .await;
    assert_eq!(s, 422, "{b}");
}
