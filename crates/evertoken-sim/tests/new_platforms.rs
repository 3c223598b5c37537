//! X, Threads and Pinterest behaviours the client will rely on, plus a real
//! RFC 6749 server (npm `oidc-provider`) for `kind: oauth2`.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use evertoken_sim::{Sim, SimOptions, SimServer};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use sha2::Digest as _;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn start() -> (SimServer, Sim, String) {
    let server = SimServer::start(SimOptions::default())
        .await
        .expect("start");
    let sim = server.sim();
    let base = server.base_url();
    (server, sim, base)
}

fn hours(n: i64) -> SignedDuration {
    SignedDuration::from_hours(n)
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// Sends an authorize request; returns the status and the redirect's query
/// pairs (empty when there is no `Location`) and its raw value.
async fn authorize(
    c: &reqwest::Client,
    url: &str,
    q: &[(&str, &str)],
) -> (u16, HashMap<String, String>, String) {
    let r = c.get(url).query(q).send().await.expect("send");
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().expect("ascii").to_string())
        .unwrap_or_default();
    let pairs = if loc.is_empty() {
        HashMap::new()
    } else {
        let u = url::Url::parse(&loc).expect("location is a URL");
        u.query_pairs().into_owned().collect()
    };
    (status, pairs, loc)
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let s = r.status().as_u16();
    (s, r.json().await.expect("json body"))
}

// ----------------------------------------------------------------------- X

const X_ID: &str = "sim-x-client";
const X_SECRET: &str = "sim-x-secret";
const X_CB: &str = "https://app.example/x/callback";

async fn x_token(
    c: &reqwest::Client,
    base: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = c.post(format!("{base}/2/oauth2/token")).form(form);
    if let Some((u, p)) = basic {
        req = req.basic_auth(u, Some(p));
    }
    json_of(req.send().await.expect("send")).await
}

async fn x_login(c: &reqwest::Client, base: &str, client_id: &str, scope: &str) -> String {
    let verifier = "x-verifier-0123456789-0123456789-0123456789";
    let challenge = s256(verifier);
    let (s, q, _) = authorize(
        c,
        &format!("{base}/i/oauth2/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", X_CB),
            ("scope", scope),
            ("state", "st-1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(s, 302);
    assert_eq!(q["state"], "st-1");
    let code = q["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", X_CB),
        ("code_verifier", verifier),
        ("client_id", client_id),
    ];
    let basic = (client_id == X_ID).then_some((X_ID, X_SECRET));
    let (s, body) = x_token(c, base, basic, &form).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["scope"], scope);
    assert!(body["access_token"].is_string());
    body["refresh_token"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn x_confidential_client_rotates_and_a_used_refresh_token_is_invalid_request() {
    let (_server, sim, base) = start().await;
    sim.x_add_client(X_ID, Some(X_SECRET), &[X_CB]);
    let c = client();

    let rt1 = x_login(&c, &base, X_ID, "tweet.read users.read offline.access").await;
    assert!(!rt1.is_empty(), "offline.access yields a refresh token");

    let refresh = |rt: String| {
        let c = c.clone();
        let base = base.clone();
        async move {
            x_token(
                &c,
                &base,
                Some((X_ID, X_SECRET)),
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            )
            .await
        }
    };
    let (s, body) = refresh(rt1.clone()).await;
    assert_eq!(s, 200, "{body}");
    let rt2 = body["refresh_token"].as_str().expect("rotated").to_string();
    assert_ne!(rt1, rt2);
    assert_eq!(body["expires_in"], 7200);
    assert!(sim.x_access_token_valid(body["access_token"].as_str().expect("at")));
    assert!(
        !sim.x_is_live(&rt1),
        "the previous refresh token dies on use"
    );
    assert_eq!(sim.x_live_refresh_tokens(), vec![rt2.clone()]);

    // The dead one: X's exact answer.
    let (s, body) = refresh(rt1).await;
    assert_eq!(s, 400);
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "Value passed for the token was invalid."
    );
    assert_eq!(sim.stats().reused_rotated_tokens, 1);
    assert_eq!(sim.stats().rotations, 1);

    // Revocation kills the live one too.
    let r = c
        .post(format!("{base}/2/oauth2/revoke"))
        .basic_auth(X_ID, Some(X_SECRET))
        .form(&[
            ("token", rt2.as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .expect("send");
    let (s, body) = json_of(r).await;
    assert_eq!((s, body["revoked"].clone()), (200, Value::Bool(true)));
    let (s, body) = refresh(rt2).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));

    // An unknown token gets the same answer.
    let (s, body) = refresh("sim-x-rt-never-issued".into()).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));
}

#[tokio::test]
async fn x_public_client_sends_client_id_in_the_body_and_needs_pkce() {
    let (_server, sim, base) = start().await;
    sim.x_add_client("sim-x-public", None, &[X_CB]);
    let c = client();

    let rt = x_login(&c, &base, "sim-x-public", "tweet.read offline.access").await;
    let (s, body) = x_token(
        &c,
        &base,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", "sim-x-public"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(!sim.x_is_live(&rt));

    // No code_challenge at authorize: an error redirect, no code.
    let (s, q, _) = authorize(
        &c,
        &format!("{base}/i/oauth2/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", "sim-x-public"),
            ("redirect_uri", X_CB),
            ("scope", "tweet.read offline.access"),
            ("state", "st"),
        ],
    )
    .await;
    assert_eq!(s, 302);
    assert_eq!(q["error"], "invalid_request");
    assert!(!q.contains_key("code"));

    // A code exchanged without, or with the wrong, code_verifier fails.
    let (_, q, _) = authorize(
        &c,
        &format!("{base}/i/oauth2/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", "sim-x-public"),
            ("redirect_uri", X_CB),
            ("scope", "tweet.read offline.access"),
            ("state", "st"),
            (
                "code_challenge",
                &s256("right-verifier-right-verifier-right-verifier"),
            ),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let code = q["code"].clone();
    let base_form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", X_CB),
        ("client_id", "sim-x-public"),
    ];
    let (s, body) = x_token(&c, &base, None, &base_form).await;
    assert_eq!(s, 400);
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "Missing required parameter [code_verifier]."
    );
    let mut wrong = base_form.to_vec();
    wrong.push((
        "code_verifier",
        "wrong-verifier-wrong-verifier-wrong-verifier",
    ));
    let (s, body) = x_token(&c, &base, None, &wrong).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));
}

#[tokio::test]
async fn x_rejects_wrong_client_auth_with_unauthorized_client() {
    let (_server, sim, base) = start().await;
    sim.x_add_client(X_ID, Some(X_SECRET), &[X_CB]);
    sim.x_add_refresh_token(X_ID, "sim-x-rt-seeded");
    let c = client();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "sim-x-rt-seeded"),
    ];
    let mut body_only = form.to_vec();
    body_only.push(("client_id", X_ID));
    body_only.push(("client_secret", X_SECRET));

    for (basic, f) in [
        (Some((X_ID, "wrong-secret")), form.to_vec()),
        (None, body_only.clone()),
        (Some(("sim-x-unknown", X_SECRET)), form.to_vec()),
        (None, form.to_vec()),
    ] {
        let (s, body) = x_token(&c, &base, basic, &f).await;
        assert_eq!(s, 401, "{body}");
        assert_eq!(body["error"], "unauthorized_client");
        assert_eq!(
            body["error_description"],
            "Missing valid authorization header"
        );
    }
    assert!(
        sim.x_is_live("sim-x-rt-seeded"),
        "a rejected request rotates nothing"
    );
}

#[tokio::test]
async fn x_redirect_uri_must_be_registered_and_match_and_no_offline_means_no_refresh_token() {
    let (_server, sim, base) = start().await;
    sim.x_add_client(X_ID, Some(X_SECRET), &[X_CB]);
    let c = client();
    let challenge = s256("v-0123456789-0123456789-0123456789-0123456789");
    let q = |redirect: &'static str| {
        vec![
            ("response_type", "code"),
            ("client_id", X_ID),
            ("redirect_uri", redirect),
            ("scope", "tweet.read"),
            ("state", "st"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
    };
    let (s, _, loc) = authorize(
        &c,
        &format!("{base}/i/oauth2/authorize"),
        &q("https://evil.example/cb"),
    )
    .await;
    assert_eq!(s, 400);
    assert!(loc.is_empty(), "never redirects to an unregistered URI");

    let (s, pairs, _) = authorize(&c, &format!("{base}/i/oauth2/authorize"), &q(X_CB)).await;
    assert_eq!(s, 302);
    let code = pairs["code"].clone();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://app.example/x/other"),
        (
            "code_verifier",
            "v-0123456789-0123456789-0123456789-0123456789",
        ),
    ];
    let (s, body) = x_token(&c, &base, Some((X_ID, X_SECRET)), &form).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));
    form[2] = ("redirect_uri", X_CB);
    let (s, body) = x_token(&c, &base, Some((X_ID, X_SECRET)), &form).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "without offline.access X issues no refresh token"
    );
    // A code works once.
    let (s, body) = x_token(&c, &base, Some((X_ID, X_SECRET)), &form).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));
}

#[tokio::test]
async fn x_control_api_seeds_and_inspects() {
    let (_server, sim, base) = start().await;
    let c = client();
    let post = |path: &'static str, v: Value| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let r = c
                .post(format!("{base}{path}"))
                .json(&v)
                .send()
                .await
                .expect("send");
            assert_eq!(r.status().as_u16(), 200, "{path}");
        }
    };
    post(
        "/_sim/x/client",
        serde_json::json!({"client_id": X_ID, "client_secret": X_SECRET, "redirect_uris": [X_CB]}),
    )
    .await;
    post(
        "/_sim/x/refresh_token",
        serde_json::json!({"client_id": X_ID, "refresh_token": "sim-x-rt-ctl"}),
    )
    .await;
    let live: Value = c
        .get(format!("{base}/_sim/x/live"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(live["refresh_tokens"], serde_json::json!(["sim-x-rt-ctl"]));
    let (s, _) = x_token(
        &c,
        &base,
        Some((X_ID, X_SECRET)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "sim-x-rt-ctl"),
        ],
    )
    .await;
    assert_eq!(s, 200);
    post(
        "/_sim/x/revoke",
        serde_json::json!({"refresh_token": sim.x_live_refresh_tokens()[0]}),
    )
    .await;
    assert!(sim.x_live_refresh_tokens().is_empty());
}

// ----------------------------------------------------------------- Threads

const TH_APP: &str = "1234567890";
const TH_SECRET: &str = "sim-threads-secret";
const TH_CB: &str = "https://app.example/threads/callback";

async fn th_refresh(c: &reqwest::Client, base: &str, token: &str) -> (u16, Value) {
    let r = c
        .get(format!("{base}/refresh_access_token"))
        .query(&[("grant_type", "th_refresh_token"), ("access_token", token)])
        .send()
        .await
        .expect("send");
    json_of(r).await
}

#[tokio::test]
async fn threads_refresh_needs_a_day_old_unexpired_token_and_gives_sixty_days() {
    let (_server, sim, base) = start().await;
    let now: Timestamp = "2026-11-23T09:00:00Z".parse().expect("ts");
    sim.set_now(Some(now));
    let c = client();

    sim.threads_add_token("sim-th-young", now - hours(2), now + hours(24 * 60));
    let (s, body) = th_refresh(&c, &base, "sim-th-young").await;
    assert_eq!(s, 400);
    assert_eq!(body["error"]["type"], "OAuthException");
    assert_eq!(body["error"]["code"], 10);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("24 hours")
    );

    sim.threads_add_token("sim-th-old", now - hours(48), now + hours(24 * 20));
    let (s, body) = th_refresh(&c, &base, "sim-th-old").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 60 * 86_400);
    let new = body["access_token"].as_str().expect("token");
    assert!(sim.threads_is_valid(new));
    assert_eq!(sim.threads_expires_at(new), Some(now + hours(24 * 60)));

    sim.threads_add_token("sim-th-expired", now - hours(24 * 61), now - hours(1));
    let (s, body) = th_refresh(&c, &base, "sim-th-expired").await;
    assert_eq!(s, 400);
    assert_eq!(body["error"]["code"], 190);
    assert_eq!(body["error"]["error_subcode"], 463);

    let (s, body) = th_refresh(&c, &base, "sim-th-never-issued").await;
    assert_eq!((s, body["error"]["code"].as_i64()), (400, Some(190)));

    // The versioned path answers the same.
    let r = c
        .get(format!("{base}/v1.0/refresh_access_token"))
        .query(&[
            ("grant_type", "th_refresh_token"),
            ("access_token", "sim-th-young"),
        ])
        .send()
        .await
        .expect("send");
    let (s, body) = json_of(r).await;
    assert_eq!((s, body["error"]["code"].as_i64()), (400, Some(10)));
}

#[tokio::test]
async fn instagram_keeps_its_paths_next_to_threads() {
    let (_server, sim, base) = start().await;
    let now = sim.now();
    sim.instagram_add_token("sim-ig-old", now - hours(48), now + hours(24 * 20));
    sim.threads_add_token("sim-th-old", now - hours(48), now + hours(24 * 20));
    let c = client();
    let r = c
        .get(format!("{base}/refresh_access_token"))
        .query(&[
            ("grant_type", "ig_refresh_token"),
            ("access_token", "sim-ig-old"),
        ])
        .send()
        .await
        .expect("send");
    let (s, body) = json_of(r).await;
    assert_eq!(s, 200, "{body}");
    assert!(sim.instagram_is_valid(body["access_token"].as_str().expect("token")));
    // A Threads token is not an Instagram one, and the reverse.
    let r = c
        .get(format!("{base}/refresh_access_token"))
        .query(&[
            ("grant_type", "ig_refresh_token"),
            ("access_token", "sim-th-old"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let (s, _) = th_refresh(&c, &base, "sim-ig-old").await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn threads_login_needs_an_exact_https_redirect_then_exchanges_for_a_long_lived_token() {
    let (_server, sim, base) = start().await;
    sim.threads_add_app(TH_APP, TH_SECRET, &[TH_CB]);
    let c = client();
    let auth = format!("{base}/oauth/authorize");
    let q = |redirect: &'static str| {
        vec![
            ("client_id", TH_APP),
            ("redirect_uri", redirect),
            ("scope", "threads_basic,threads_content_publish"),
            ("response_type", "code"),
            ("state", "st-th"),
        ]
    };
    for bad in [
        "http://app.example/threads/callback",
        "https://app.example/threads/other",
        "http://127.0.0.1:8976/callback",
    ] {
        let (s, _, loc) = authorize(&c, &auth, &q(bad)).await;
        assert_eq!(s, 400, "{bad}");
        assert!(loc.is_empty());
    }
    let (s, pairs, loc) = authorize(&c, &auth, &q(TH_CB)).await;
    assert_eq!(s, 302);
    assert!(loc.ends_with("#_"), "Meta appends #_ to the redirect");
    assert_eq!(pairs["state"], "st-th");
    let code = format!("{}#_", pairs["code"]);

    let exchange = |redirect: &'static str, secret: &'static str| {
        let c = c.clone();
        let base = base.clone();
        let code = code.clone();
        async move {
            let r = c
                .post(format!("{base}/oauth/access_token"))
                .form(&[
                    ("client_id", TH_APP),
                    ("client_secret", secret),
                    ("code", code.as_str()),
                    ("grant_type", "authorization_code"),
                    ("redirect_uri", redirect),
                ])
                .send()
                .await
                .expect("send");
            json_of(r).await
        }
    };
    let (s, body) = exchange(TH_CB, "wrong-secret").await;
    assert_eq!((s, body["error"]["code"].as_i64()), (400, Some(1)));
    let (s, body) = exchange("https://app.example/threads/other", TH_SECRET).await;
    assert_eq!(s, 400);
    assert_eq!(body["error"]["error_subcode"], 36008);
    let (s, body) = exchange(TH_CB, TH_SECRET).await;
    assert_eq!(s, 200, "{body}");
    assert!(body["user_id"].is_string());
    let short = body["access_token"].as_str().expect("token").to_string();
    let (s, _) = exchange(TH_CB, TH_SECRET).await;
    assert_eq!(s, 400, "a code works once");

    // A short-lived token is not refreshable; it is exchanged for a long-lived one.
    let (s, body) = th_refresh(&c, &base, &short).await;
    assert_eq!((s, body["error"]["code"].as_i64()), (400, Some(190)));
    let long = |secret: &'static str| {
        let c = c.clone();
        let base = base.clone();
        let short = short.clone();
        async move {
            let r = c
                .get(format!("{base}/access_token"))
                .query(&[
                    ("grant_type", "th_exchange_token"),
                    ("client_secret", secret),
                    ("access_token", short.as_str()),
                ])
                .send()
                .await
                .expect("send");
            json_of(r).await
        }
    };
    let (s, body) = long("wrong-secret").await;
    assert_eq!((s, body["error"]["code"].as_i64()), (400, Some(1)));
    let (s, body) = long(TH_SECRET).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["expires_in"], 60 * 86_400);
    let long_token = body["access_token"].as_str().expect("token").to_string();
    // Brand new: the 24-hour rule applies.
    let (s, body) = th_refresh(&c, &base, &long_token).await;
    assert_eq!((s, body["error"]["code"].as_i64()), (400, Some(10)));
    sim.set_now(Some(sim.now() + hours(25)));
    let (s, _) = th_refresh(&c, &base, &long_token).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn instagram_login_still_works_on_the_shared_paths() {
    let (_server, sim, base) = start().await;
    sim.threads_add_app(TH_APP, TH_SECRET, &[TH_CB]);
    sim.instagram_add_app("sim-ig-app", "sim-ig-secret");
    let c = client();
    let (s, pairs, _) = authorize(
        &c,
        &format!("{base}/oauth/authorize"),
        &[
            ("client_id", "sim-ig-app"),
            ("redirect_uri", "https://app.example/ig"),
            ("scope", "instagram_business_basic"),
            ("response_type", "code"),
        ],
    )
    .await;
    assert_eq!(s, 302);
    let r = c
        .post(format!("{base}/oauth/access_token"))
        .form(&[
            ("client_id", "sim-ig-app"),
            ("client_secret", "sim-ig-secret"),
            ("code", pairs["code"].as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "https://app.example/ig"),
        ])
        .send()
        .await
        .expect("send");
    let (s, body) = json_of(r).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body["data"][0]["access_token"].is_string(),
        "Instagram's shape"
    );
}

#[tokio::test]
async fn threads_control_api_seeds_and_inspects() {
    let (_server, _sim, base) = start().await;
    let c = client();
    let r = c
        .post(format!("{base}/_sim/threads/token"))
        .json(&serde_json::json!({
            "token": "sim-th-ctl",
            "issued_at": "2026-01-01T00:00:00Z",
            "expires_at": "2099-01-01T00:00:00Z",
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = c
        .get(format!("{base}/_sim/threads/token?token=sim-th-ctl"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["valid"], true);
    assert_eq!(v["expires_at"], "2099-01-01T00:00:00Z");
    let r = c
        .post(format!("{base}/_sim/threads/app"))
        .json(&serde_json::json!({"app_id": TH_APP, "app_secret": TH_SECRET, "redirect_uris": [TH_CB]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
}

// --------------------------------------------------------------- Pinterest

const PIN_APP: &str = "1500000";
const PIN_SECRET: &str = "sim-pinterest-secret";
const PIN_CB: &str = "https://app.example/pinterest/callback";

async fn pin_token(
    c: &reqwest::Client,
    base: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = c.post(format!("{base}/v5/oauth/token")).form(form);
    if let Some((u, p)) = basic {
        req = req.basic_auth(u, Some(p));
    }
    json_of(req.send().await.expect("send")).await
}

async fn pin_login(c: &reqwest::Client, base: &str) -> Value {
    let (s, pairs, _) = authorize(
        c,
        &format!("{base}/oauth/"),
        &[
            ("client_id", PIN_APP),
            ("redirect_uri", PIN_CB),
            ("response_type", "code"),
            ("scope", "boards:read,pins:read"),
            ("state", "st-pin"),
        ],
    )
    .await;
    assert_eq!(s, 302);
    assert_eq!(pairs["state"], "st-pin");
    let (s, body) = pin_token(
        c,
        base,
        Some((PIN_APP, PIN_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", pairs["code"].as_str()),
            ("redirect_uri", PIN_CB),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    body
}

fn pin_refresh_form(rt: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("continuous_refresh", "true"),
    ]
}

#[tokio::test]
async fn pinterest_continuous_refresh_rotates_and_the_old_token_dies() {
    let (_server, sim, base) = start().await;
    let now: Timestamp = "2026-11-23T09:00:00Z".parse().expect("ts");
    sim.set_now(Some(now));
    sim.pinterest_add_app(PIN_APP, PIN_SECRET, &[PIN_CB]);
    let c = client();

    let body = pin_login(&c, &base).await;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 30 * 86_400);
    assert_eq!(body["response_type"], "authorization_code");
    assert_eq!(body["scope"], "boards:read,pins:read");
    assert_eq!(body["refresh_token_expires_in"], 60 * 86_400);
    assert_eq!(
        body["refresh_token_expires_at"],
        (now + hours(24 * 60)).as_second()
    );
    let rt1 = body["refresh_token"].as_str().expect("rt").to_string();

    sim.set_now(Some(now + hours(24 * 10)));
    let (s, body) = pin_token(
        &c,
        &base,
        Some((PIN_APP, PIN_SECRET)),
        &pin_refresh_form(&rt1),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let rt2 = body["refresh_token"].as_str().expect("rotated").to_string();
    assert_ne!(rt1, rt2);
    // Pinterest's OpenAPI: a continuous refresh answers `everlasting_refresh`.
    assert_eq!(body["response_type"], "everlasting_refresh");
    assert_eq!(
        body["refresh_token_expires_at"],
        (now + hours(24 * 70)).as_second(),
        "a continuous refresh token slides: 60 days from this refresh"
    );
    assert!(sim.pinterest_access_token_valid(body["access_token"].as_str().expect("at")));
    assert!(!sim.pinterest_is_live(&rt1));
    assert!(sim.pinterest_is_live(&rt2));

    let (s, body) = pin_token(
        &c,
        &base,
        Some((PIN_APP, PIN_SECRET)),
        &pin_refresh_form(&rt1),
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(body["code"], 283);
    assert_eq!(body["message"], "The authorization grant is invalid");
    assert_eq!(sim.stats().reused_rotated_tokens, 1);

    // A continuous token past its 60 days is dead.
    sim.set_now(Some(now + hours(24 * 71)));
    let (s, body) = pin_token(
        &c,
        &base,
        Some((PIN_APP, PIN_SECRET)),
        &pin_refresh_form(&rt2),
    )
    .await;
    assert_eq!((s, body["code"].as_i64()), (401, Some(283)));
}

#[tokio::test]
async fn pinterest_legacy_refresh_token_keeps_a_fixed_expiry_then_dies() {
    let (_server, sim, base) = start().await;
    let now: Timestamp = "2026-11-23T09:00:00Z".parse().expect("ts");
    sim.set_now(Some(now));
    sim.pinterest_add_app(PIN_APP, PIN_SECRET, &[PIN_CB]);
    sim.pinterest_set_legacy(true);
    let c = client();

    let body = pin_login(&c, &base).await;
    assert_eq!(body["refresh_token_expires_in"], 365 * 86_400);
    let deadline = now + hours(24 * 365);
    assert_eq!(body["refresh_token_expires_at"], deadline.as_second());
    let rt = body["refresh_token"].as_str().expect("rt").to_string();

    sim.set_now(Some(now + hours(24 * 100)));
    let (s, body) = pin_token(
        &c,
        &base,
        Some((PIN_APP, PIN_SECRET)),
        &pin_refresh_form(&rt),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "legacy: no new refresh token"
    );
    assert_eq!(body["response_type"], "refresh_token");
    assert!(body["access_token"].is_string());
    assert!(sim.pinterest_is_live(&rt));
    assert_eq!(sim.pinterest_refresh_expires_at(&rt), Some(deadline));

    sim.set_now(Some(deadline + hours(1)));
    let (s, body) = pin_token(
        &c,
        &base,
        Some((PIN_APP, PIN_SECRET)),
        &pin_refresh_form(&rt),
    )
    .await;
    assert_eq!((s, body["code"].as_i64()), (401, Some(283)));

    // With the app enrolled, `refresh_on=true` (the OpenAPI spec's name) or
    // `continuous_refresh=true` turns a legacy token into a continuous one.
    sim.pinterest_set_legacy(false);
    for (i, field) in ["refresh_on", "continuous_refresh"].into_iter().enumerate() {
        let legacy = format!("pinr.sim-legacy-{i}");
        sim.pinterest_add_refresh_token(PIN_APP, &legacy, deadline + hours(24 * 30), false);
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", legacy.as_str()),
            (field, "true"),
        ];
        let (s, body) = pin_token(&c, &base, Some((PIN_APP, PIN_SECRET)), &form).await;
        assert_eq!(s, 200, "{field}: {body}");
        assert!(body["refresh_token"].is_string(), "{field}: {body}");
        assert_eq!(body["response_type"], "everlasting_refresh", "{field}");
        assert!(!sim.pinterest_is_live(&legacy), "{field}");
    }
    // Without either, a legacy token stays legacy.
    sim.pinterest_add_refresh_token(
        PIN_APP,
        "pinr.sim-legacy-2",
        deadline + hours(24 * 30),
        false,
    );
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "pinr.sim-legacy-2"),
    ];
    let (s, body) = pin_token(&c, &base, Some((PIN_APP, PIN_SECRET)), &form).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(sim.pinterest_is_live("pinr.sim-legacy-2"));
}

#[tokio::test]
async fn pinterest_rejects_bad_client_auth_redirects_and_grants() {
    let (_server, sim, base) = start().await;
    sim.pinterest_add_app(PIN_APP, PIN_SECRET, &[PIN_CB]);
    sim.pinterest_add_refresh_token(PIN_APP, "pinr.sim-seeded", sim.now() + hours(24 * 30), true);
    let c = client();

    let mut in_body = pin_refresh_form("pinr.sim-seeded");
    in_body.push(("client_id", PIN_APP));
    in_body.push(("client_secret", PIN_SECRET));
    for (basic, form) in [
        (
            Some((PIN_APP, "wrong-secret")),
            pin_refresh_form("pinr.sim-seeded"),
        ),
        (None, in_body),
        (
            Some(("999", PIN_SECRET)),
            pin_refresh_form("pinr.sim-seeded"),
        ),
    ] {
        let (s, body) = pin_token(&c, &base, basic, &form).await;
        assert_eq!(s, 401, "{body}");
        assert_eq!(body["code"], 2);
        assert_eq!(body["message"], "Authentication failed.");
    }
    assert!(sim.pinterest_is_live("pinr.sim-seeded"));

    let (s, body) = pin_token(
        &c,
        &base,
        Some((PIN_APP, PIN_SECRET)),
        &[("refresh_token", "x")],
    )
    .await;
    assert_eq!((s, body["code"].as_i64()), (400, Some(1)));
    let mut wider = pin_refresh_form("pinr.sim-seeded");
    wider.push(("scope", "ads:write"));
    let (s, body) = pin_token(&c, &base, Some((PIN_APP, PIN_SECRET)), &wider).await;
    assert_eq!((s, body["code"].as_i64()), (400, Some(1)));

    for bad in [
        "http://app.example/pinterest/callback",
        "https://app.example/pinterest/other",
    ] {
        let (s, _, loc) = authorize(
            &c,
            &format!("{base}/oauth/"),
            &[
                ("client_id", PIN_APP),
                ("redirect_uri", bad),
                ("response_type", "code"),
                ("scope", "boards:read"),
            ],
        )
        .await;
        assert_eq!(s, 400, "{bad}");
        assert!(loc.is_empty());
    }
    let (_, pairs, _) = authorize(
        &c,
        &format!("{base}/oauth/"),
        &[
            ("client_id", PIN_APP),
            ("redirect_uri", PIN_CB),
            ("response_type", "code"),
            ("scope", "boards:read"),
        ],
    )
    .await;
    let (s, body) = pin_token(
        &c,
        &base,
        Some((PIN_APP, PIN_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", pairs["code"].as_str()),
            ("redirect_uri", "https://app.example/pinterest/other"),
        ],
    )
    .await;
    assert_eq!((s, body["code"].as_i64()), (401, Some(283)));
}

#[tokio::test]
async fn pinterest_control_api_seeds_and_inspects() {
    let (_server, sim, base) = start().await;
    let c = client();
    for (path, v) in [
        (
            "/_sim/pinterest/app",
            serde_json::json!({"app_id": PIN_APP, "app_secret": PIN_SECRET, "redirect_uris": [PIN_CB]}),
        ),
        (
            "/_sim/pinterest/refresh_token",
            serde_json::json!({"app_id": PIN_APP, "refresh_token": "pinr.sim-ctl",
                               "expires_at": "2099-01-01T00:00:00Z", "continuous": false}),
        ),
        (
            "/_sim/pinterest/legacy",
            serde_json::json!({"legacy": true}),
        ),
    ] {
        let r = c
            .post(format!("{base}{path}"))
            .json(&v)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let v: Value = c
        .get(format!(
            "{base}/_sim/pinterest/refresh_token?refresh_token=pinr.sim-ctl"
        ))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["live"], true);
    assert_eq!(v["expires_at"], "2099-01-01T00:00:00Z");
    let (s, body) = pin_token(
        &c,
        &base,
        Some((PIN_APP, PIN_SECRET)),
        &pin_refresh_form("pinr.sim-ctl"),
    )
    .await;
    assert_eq!(s, 200);
    assert!(body.get("refresh_token").is_none(), "the legacy knob is on");
    assert!(sim.pinterest_is_live("pinr.sim-ctl"));
}

// ------------------------------------------------------- oidc-provider (kind: oauth2)

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A tool the test needs: under `CI=true` its absence fails the test; elsewhere
/// the test is skipped with the reason.
fn find_tool(name: &str, installed: Option<PathBuf>, hint: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    let found = on_path.or_else(|| installed.filter(|p| p.is_file()));
    if found.is_none() {
        let msg = format!("`{name}` is not installed: {hint}");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("skipping: {msg}");
    }
    found
}

/// The oidc-provider test server, killed on drop.
struct Oidc {
    child: Child,
    issuer: String,
}

impl Drop for Oidc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_oidc(server: &Path) -> Oidc {
    let mut child = Command::new(server)
        .args(["--port", "0", "--watch-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn oidc-test-server");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut oidc = Oidc {
        child,
        issuer: String::new(),
    };
    // A guard against a server that never comes up, not a timing assertion.
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("oidc-test-server printed its issuer");
    oidc.issuer = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line from oidc-test-server: {line:?}"))
        .to_string();
    oidc
}

/// Runs get-first-token.mjs and returns its token answer.
fn first_token(node: &Path, issuer: &str, client: &str) -> Value {
    let out = std::env::temp_dir().join(format!(
        "evertoken-sim-first-token-{}-{client}.json",
        std::process::id()
    ));
    let script =
        repo_root().join("crates/evertoken/tests/support/oidc-provider/get-first-token.mjs");
    let status = Command::new(node)
        .arg(&script)
        .args(["--issuer", issuer, "--client", client, "--out"])
        .arg(&out)
        .status()
        .expect("run get-first-token.mjs");
    assert!(status.success(), "get-first-token.mjs failed");
    let v: Value = serde_json::from_slice(&std::fs::read(&out).expect("token file")).expect("json");
    let _ = std::fs::remove_file(&out);
    v
}

#[tokio::test]
async fn oidc_provider_rotates_refresh_tokens_and_reuse_revokes_the_grant() {
    evertoken_sim::install_client_crypto();
    let Some(server) = find_tool(
        "oidc-test-server",
        Some(repo_root().join("target/test-tools/oidc-provider/bin/oidc-test-server")),
        "run scripts/setup-oidc-provider (scripts/test does)",
    ) else {
        return;
    };
    let Some(node) = find_tool("node", None, "install Node.js >= 20") else {
        return;
    };
    let oidc = start_oidc(&server);
    let c = client();
    let token_url = format!("{}/token", oidc.issuer);

    // Confidential client, client_secret_basic.
    let first = first_token(&node, &oidc.issuer, "confidential");
    let rt1 = first["refresh_token"].as_str().expect("rt").to_string();
    let refresh = |rt: String| {
        let c = c.clone();
        let url = token_url.clone();
        async move {
            let r = c
                .post(url)
                .basic_auth("evt-confidential", Some("evt-confidential-secret"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
                .expect("send");
            json_of(r).await
        }
    };
    let (s, body) = refresh(rt1.clone()).await;
    assert_eq!(s, 200, "refresh failed: {}", body["error"]);
    let rt2 = body["refresh_token"].as_str().expect("rotated").to_string();
    assert_ne!(rt1, rt2, "rotation is on");
    assert!(body["access_token"].is_string());
    assert!(body["expires_in"].is_u64());

    // Reusing the rotated-away token fails and revokes the grant: the newest
    // refresh token dies too.
    let (s, body) = refresh(rt1).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    let (s, body) = refresh(rt2).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

    // Public client: client_id in the body, no secret; also rotates.
    let first = first_token(&node, &oidc.issuer, "public");
    let rt = first["refresh_token"].as_str().expect("rt").to_string();
    let r = c
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", "evt-public"),
        ])
        .send()
        .await
        .expect("send");
    let (s, body) = json_of(r).await;
    assert_eq!(s, 200, "public refresh failed: {}", body["error"]);
    assert_ne!(body["refresh_token"].as_str(), Some(rt.as_str()));

    // Wrong client secret: invalid_client, and the token survives.
    let first = first_token(&node, &oidc.issuer, "post");
    let rt = first["refresh_token"].as_str().expect("rt").to_string();
    let r = c
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", "evt-post"),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .expect("send");
    let (s, body) = json_of(r).await;
    assert_eq!((s, body["error"].as_str()), (401, Some("invalid_client")));
    let r = c
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", "evt-post"),
            ("client_secret", "evt-post-secret"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
}

// ------------------------------------------------------------------ faults

#[tokio::test]
async fn injected_faults_on_x_and_pinterest_speak_each_providers_shape() {
    use evertoken_sim::{Fault, Route};
    let (_server, sim, base) = start().await;
    sim.x_add_client(X_ID, Some(X_SECRET), &[X_CB]);
    sim.x_add_refresh_token(X_ID, "sim-x-rt-faulted");
    sim.pinterest_add_app(PIN_APP, PIN_SECRET, &[PIN_CB]);
    sim.pinterest_add_refresh_token(
        PIN_APP,
        "pinr.sim-faulted",
        sim.now() + hours(24 * 30),
        true,
    );
    let c = client();
    let x_form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "sim-x-rt-faulted"),
    ];

    sim.push_fault(Route::parse("x").expect("route"), Fault::Status(503));
    sim.push_fault(Route::X, Fault::InvalidGrant);
    let (s, body) = x_token(&c, &base, Some((X_ID, X_SECRET)), &x_form).await;
    assert_eq!((s, body["status"].as_u64()), (503, Some(503)));
    let (s, body) = x_token(&c, &base, Some((X_ID, X_SECRET)), &x_form).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));
    assert!(sim.x_is_live("sim-x-rt-faulted"), "a fault rotates nothing");
    let (s, _) = x_token(&c, &base, Some((X_ID, X_SECRET)), &x_form).await;
    assert_eq!(s, 200);
    assert_eq!(sim.request_count(Route::X), 3);

    sim.push_fault(
        Route::Pinterest,
        Fault::TooManyRequests {
            retry_after_secs: Some(7),
        },
    );
    let r = c
        .post(format!("{base}/v5/oauth/token"))
        .basic_auth(PIN_APP, Some(PIN_SECRET))
        .form(&pin_refresh_form("pinr.sim-faulted"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.headers()["retry-after"], "7");
    let (s, body) = json_of(r).await;
    assert_eq!(s, 429);
    assert!(body["code"].is_i64() && body["message"].is_string());
    assert!(sim.pinterest_is_live("pinr.sim-faulted"));
    assert_eq!(sim.request_count(Route::Pinterest), 1);

    // Threads' versioned paths are Graph routes (Instagram's fault shapes).
    sim.push_fault(Route::Instagram, Fault::Status(500));
    let r = c
        .get(format!("{base}/v1.0/refresh_access_token"))
        .query(&[("grant_type", "th_refresh_token"), ("access_token", "t")])
        .send()
        .await
        .expect("send");
    let (s, body) = json_of(r).await;
    assert_eq!(
        (s, body["error"]["is_transient"].as_bool()),
        (500, Some(true))
    );
}
