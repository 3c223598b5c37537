//! GitHub App JWT verification and installation tokens.

use evertoken_sim::rs256;
use evertoken_sim::{test_rsa_keypair, test_rsa_private_pkcs8};

use crate::common::*;

const APP: u64 = 424242;
const INST: u64 = 987654;

fn jwt_with(iat: i64, exp: i64, iss: Value) -> String {
    let (private_pem, _) = test_rsa_keypair();
    rs256::sign(&private_pem, &json!({"iat": iat, "exp": exp, "iss": iss})).expect("sign")
}

/// The app (the test key) installed on `sim-org`'s `repo-a` and `repo-b`; the
/// simulator and its clock in seconds.
async fn setup() -> (Env, i64) {
    let e = Env::start().await;
    let (_, public_pem) = test_rsa_keypair();
    e.sim.github_add_app(APP, "Iv23simclient", &public_pem);
    let repos = vec!["repo-a".into(), "repo-b".into()];
    e.sim
        .github_add_installation(APP, INST, "sim-org", "Organization", repos);
    let now = e.sim.now().as_second();
    (e, now)
}

fn tokens_path(installation: u64) -> String {
    format!("/app/installations/{installation}/access_tokens")
}

/// Mints an installation token at `path` with `jwt` (and a narrowing `body`).
async fn mint_at(e: &Env, path: &str, jwt: &str, body: Option<Value>) -> Answer {
    let mut req = e.post(path).bearer_auth(jwt);
    req = req.header("accept", "application/vnd.github+json");
    if let Some(b) = body {
        req = req.json(&b);
    }
    let a = req.answer().await;
    assert!(a.headers.contains_key("date"), "GitHub always sends Date");
    a
}

/// Mints a token of the installation `INST`.
async fn mint(e: &Env, jwt: &str, body: Option<Value>) -> Answer {
    mint_at(e, &tokens_path(INST), jwt, body).await
}

#[tokio::test]
async fn valid_jwt_mints_a_token() {
    let (e, now) = setup().await;
    let jwt = |iss: Value| jwt_with(now - 60, now + 540, iss);
    let b = mint(&e, &jwt(json!(APP)), None).await;
    let minted = json!({"repository_selection": "selected", "permissions": OBJECT});
    b.check(201, minted);
    let token = b.str("token");
    assert!(token.starts_with("ghs_"));
    assert_eq!(token.len(), 40);
    assert!(b.str("expires_at").ends_with('Z'));
    assert!(e.sim.github_is_valid_token(&token));
    assert_eq!(e.sim.github_tokens_issued(), 1);

    // iss as a string and as the client id; and the GHES prefix.
    let ghes = format!("/api/v3{}", tokens_path(INST));
    let b = mint_at(&e, &ghes, &jwt(json!(APP.to_string())), None).await;
    assert_eq!(b.status, 201);
    assert_eq!(
        mint(&e, &jwt(json!("Iv23simclient")), None).await.status,
        201
    );

    // Cheap verify and revoke with the installation token.
    let repos = e.get("/installation/repositories");
    let repos = repos.header("authorization", format!("token {token}"));
    repos.answer().await.check(200, json!({"total_count": 2}));
    let revoke = e
        .req(Method::DELETE, "/installation/token")
        .bearer_auth(&token);
    assert_eq!(revoke.status().await, 204);
    assert!(!e.sim.github_is_valid_token(&token));
    assert_eq!(e.sim.github_revoked_count(), 1);
    let repos = e.get("/installation/repositories").bearer_auth(&token);
    let b = repos.answer().await;
    b.check(401, json!({"message": "Bad credentials"}));
}

#[tokio::test]
async fn bad_jwts_get_githubs_401_messages() {
    let (e, now) = setup().await;
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
        let refused = json!({"message": msg, "status": "401", "documentation_url": STRING});
        mint(&e, &jwt, None).await.check(401, refused);
    }
    assert_eq!(e.sim.github_tokens_issued(), 0);
}

#[tokio::test]
async fn unknown_installation_repos_and_lookups() {
    let (e, now) = setup().await;
    let jwt = jwt_with(now - 60, now + 540, json!(APP));
    let docs =
        "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app";
    let not_found = json!({"message": "Not Found", "documentation_url": docs, "status": "404"});
    let b = mint_at(&e, &tokens_path(1), &jwt, None).await;
    b.exactly(404, not_found);
    let b = mint(&e, &jwt, Some(json!({"repositories": ["repo-z"]}))).await;
    assert_eq!(b.status, 422, "{}", b.body);
    let narrowed = json!({"repositories": ["repo-a"], "permissions": {"contents": "read"}});
    let b = mint(&e, &jwt, Some(narrowed)).await;
    b.check(201, json!({"repositories": [{"name": "repo-a"}]}));
    assert_eq!(b.body["permissions"], json!({"contents": "read"}));
    let admin = json!({"permissions": {"administration": "write"}});
    assert_eq!(mint(&e, &jwt, Some(admin)).await.status, 422);

    for path in [
        "/repos/sim-org/repo-b/installation",
        "/orgs/sim-org/installation",
        "/users/sim-org/installation",
    ] {
        let b = e.get(path).bearer_auth(&jwt).answer().await;
        assert_eq!(b.status, 200, "{path}");
        let account = json!({"login": "sim-org", "type": "Organization"});
        assert_fields(
            &b.body,
            &json!({"id": INST, "app_id": APP, "account": account}),
        );
    }
    let nope = e.get("/repos/sim-org/nope/installation").bearer_auth(&jwt);
    assert_eq!(nope.status().await, 404);

    // Long stateless tokens.
    e.sim.github_set_token_style(true);
    let b = mint(&e, &jwt, None).await;
    assert_eq!(b.status, 201);
    let t = b.str("token");
    assert!(t.starts_with(&format!("ghs_{APP}_")));
    assert!((480..=560).contains(&t.len()), "len {}", t.len());
    assert!(e.sim.github_is_valid_token(&t));
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
    let e = Env::lenient().await;
    let now = e.sim.now().as_second();
    let jwt = jwt_with(now - 60, now + 540, json!(777));
    let r = e.post(&tokens_path(5150)).bearer_auth(jwt);
    assert_eq!(r.status().await, 201);
}

/// `repositories` are names without the owner (at most 500): GitHub answers 422
/// to `owner/name`; `repository_ids` work on an installation on all repositories.
#[tokio::test]
async fn narrowing_takes_repository_names_and_ids() {
    let (e, now) = setup().await;
    let jwt = jwt_with(now - 60, now + 540, json!(APP));
    for repos in [
        json!(["sim-org/repo-a"]),
        json!(["repo-a", "sim-org/repo-b"]),
        json!((0..501).map(|i| format!("repo-{i}")).collect::<Vec<_>>()),
    ] {
        let b = mint(&e, &jwt, Some(json!({ "repositories": repos }))).await;
        assert_eq!(b.status, 422, "{repos}: {}", b.body);
    }
    let b = mint(&e, &jwt, Some(json!({"repositories": ["repo-a"]}))).await;
    let named = json!({"repositories": [{"full_name": "sim-org/repo-a"}]});
    b.check(201, named);

    // An installation on all repositories: any id of its account is accepted.
    let all = INST + 1000;
    e.sim
        .github_add_installation(APP, all, "all-org", "Organization", vec![]);
    let ids = json!({"repository_ids": [123_456_789u64], "permissions": {"contents": "read"}});
    let b = mint_at(&e, &tokens_path(all), &jwt, Some(ids)).await;
    let selected =
        json!({"repository_selection": "selected", "repositories": [{"id": 123_456_789u64}]});
    b.check(201, selected);
    let owner_name = Some(json!({"repositories": ["all-org/site"]}));
    let b = mint_at(&e, &tokens_path(all), &jwt, owner_name).await;
    assert_eq!(
        b.status, 422,
        "owner/name on an all-repositories installation"
    );
    // A selected-repositories installation still refuses an id it does not have.
    let b = mint(&e, &jwt, Some(json!({"repository_ids": [123_456_789u64]}))).await;
    assert_eq!(b.status, 422, "{}", b.body);
}
