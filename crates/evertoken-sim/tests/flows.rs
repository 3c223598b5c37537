//! Webhooks, OAuth authorization-code flows (PKCE), control API and the binary.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use base64::Engine as _;
use evertoken_sim::{Route, SimOptions, SimServer};
use serde_json::{Value, json};
use sha2::Digest as _;

fn client() -> reqwest::Client {
    evertoken_sim::install_client_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    let url = url::Url::parse(location).expect("url");
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn webhooks_answer_like_each_service() {
    let server = SimServer::start(SimOptions::default())
        .await
        .expect("start");
    let sim = server.sim();
    let base = server.base_url();
    let c = client();
    let r = c
        .post(format!("{base}/webhook/slack/T0/B0/simsecret"))
        .json(&json!({"text": "alert"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.expect("text"), "ok");
    let r = c
        .post(format!("{base}/webhook/discord/123/simtoken"))
        .json(&json!({"content": "alert"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 204);
    let r = c
        .post(format!("{base}/webhook/teams/workflows/sim"))
        .json(&json!({"type": "message", "attachments": []}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 202);
    let got = sim.webhook_received();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, "/webhook/slack/T0/B0/simsecret");
    assert_eq!(got[1].1["content"], "alert");

    sim.push_fault(
        Route::Webhook,
        evertoken_sim::Fault::TooManyRequests {
            retry_after_secs: Some(2),
        },
    );
    let r = c
        .post(format!("{base}/webhook/discord/123/simtoken"))
        .json(&json!({"content": "alert"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["message"], "You are being rate limited.");
    assert_eq!(b["global"], false);
    let r = c
        .post(format!("{base}/webhook/slack/x"))
        .json(&json!({}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.text().await.expect("text"), "no_text");
}

#[tokio::test]
async fn google_and_tiktok_code_flows_with_pkce() {
    let server = SimServer::start(SimOptions::default())
        .await
        .expect("start");
    let sim = server.sim();
    let base = server.base_url();
    let c = client();
    let verifier = "sim-verifier-0123456789-0123456789-0123456789";
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier));

    sim.google_add_client("sim-g", "sim-g-secret");
    let r = c
        .get(format!("{base}/o/oauth2/v2/auth"))
        .query(&[
            ("client_id", "sim-g"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("response_type", "code"),
            ("scope", "https://www.googleapis.com/auth/youtube.upload"),
            ("access_type", "offline"),
            ("prompt", "consent"),
            ("state", "st-1"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 302);
    let q = query_of(r.headers()["location"].to_str().expect("loc"));
    assert_eq!(q["state"], "st-1");
    let code = q["code"].clone();
    assert_eq!(sim.oauth_codes_issued(), 1);
    let exchange = |code: String, verifier: &'static str| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let r = c
                .post(format!("{base}/token"))
                .form(&[
                    ("client_id", "sim-g"),
                    ("client_secret", "sim-g-secret"),
                    ("code", code.as_str()),
                    ("code_verifier", verifier),
                    ("grant_type", "authorization_code"),
                    ("redirect_uri", "http://127.0.0.1:9/cb"),
                ])
                .send()
                .await
                .expect("send");
            (r.status().as_u16(), r.json::<Value>().await.expect("json"))
        }
    };
    let (s, b) = exchange(code.clone(), "wrong-verifier-wrong-verifier-wrong-verifier").await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    let (s, b) = exchange(
        code.clone(),
        "sim-verifier-0123456789-0123456789-0123456789",
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let rt = b["refresh_token"]
        .as_str()
        .expect("offline + consent gives a refresh token");
    assert!(sim.google_is_valid(rt));
    let (s, _) = exchange(code, "sim-verifier-0123456789-0123456789-0123456789").await;
    assert_eq!(s, 400, "codes are single-use");

    // TikTok's desktop flow: loopback redirect, hex S256 challenge.
    sim.tiktok_add_desktop_client("sim-tt", "sim-tt-secret");
    let hex_challenge = hex::encode(sha2::Sha256::digest(verifier));
    let r = c
        .get(format!("{base}/v2/auth/authorize/"))
        .query(&[
            ("client_key", "sim-tt"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("response_type", "code"),
            ("scope", "user.info.basic,video.publish"),
            ("state", "st-2"),
            ("code_challenge", hex_challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 302);
    let q = query_of(r.headers()["location"].to_str().expect("loc"));
    assert_eq!(q["scopes"], "user.info.basic,video.publish");
    let r = c
        .post(format!("{base}/v2/oauth/token/"))
        .form(&[
            ("client_key", "sim-tt"),
            ("client_secret", "sim-tt-secret"),
            ("code", q["code"].as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.expect("json");
    assert!(sim.tiktok_is_live(b["refresh_token"].as_str().expect("rt")));
}

#[tokio::test]
async fn control_api_seeds_and_steers() {
    let server = SimServer::start(SimOptions::default())
        .await
        .expect("start");
    let base = server.base_url();
    let c = client();
    let post = |path: &'static str, body: Value| {
        let c = c.clone();
        let base = base.clone();
        async move {
            c.post(format!("{base}{path}"))
                .json(&body)
                .send()
                .await
                .expect("send")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post(
            "/_sim/tiktok/client",
            json!({"client_key": "k", "client_secret": "s"})
        )
        .await,
        200
    );
    assert_eq!(
        post(
            "/_sim/tiktok/refresh_token",
            json!({"client_key": "k", "refresh_token": "rft.sim-c"})
        )
        .await,
        200
    );
    assert_eq!(
        post(
            "/_sim/faults",
            json!({"route": "tiktok", "fault": {"kind": "status", "status": 503}, "count": 1})
        )
        .await,
        200
    );
    assert_eq!(
        post(
            "/_sim/faults",
            json!({"route": "nope", "fault": "malformed_json"})
        )
        .await,
        400
    );
    assert_eq!(
        post("/_sim/now", json!({"now": "2026-11-23T09:00:00Z"})).await,
        200
    );
    assert_eq!(
        post(
            "/_sim/gitlab/token",
            json!({"token": "test-gitlab-pat-sim"})
        )
        .await,
        200
    );
    assert_eq!(
        post("/_sim/gitlab/project", json!({"id": 5, "path": "g/p"})).await,
        200
    );
    assert_eq!(
        post(
            "/_sim/gitlab/variable",
            json!({"id": 5, "key": "K", "value": "sim-value-1"})
        )
        .await,
        200
    );
    assert_eq!(post("/_sim/github/app", json!({"app_id": 7})).await, 200);
    assert_eq!(
        post(
            "/_sim/github/installation",
            json!({"app_id": 7, "installation_id": 8, "account_login": "o"})
        )
        .await,
        200
    );
    assert_eq!(server.sim().now().to_string(), "2026-11-23T09:00:00Z");

    let form = [
        ("client_key", "k"),
        ("client_secret", "s"),
        ("grant_type", "refresh_token"),
        ("refresh_token", "rft.sim-c"),
    ];
    let r = c
        .post(format!("{base}/v2/oauth/token/"))
        .form(&form)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 503);
    let r = c
        .post(format!("{base}/v2/oauth/token/"))
        .form(&form)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let stats: Value = c
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["rotations"], 1);
    assert_eq!(stats["requests"]["tiktok"], 2);
    let r = c
        .get(format!("{base}/api/v4/projects/g%2Fp/variables/K"))
        .header("PRIVATE-TOKEN", "test-gitlab-pat-sim")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn binary_prints_one_line_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_evertoken-sim"))
        .args([
            "--lenient",
            "--github-app-id",
            "11",
            "--github-installation-id",
            "22",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .expect("prefix")
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let status = rt.block_on(async {
        client()
            .get(format!("{base}/_sim/stats"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn instagram_and_linkedin_login_flows() {
    let server = SimServer::start(SimOptions::default())
        .await
        .expect("start");
    let sim = server.sim();
    let base = server.base_url();
    let c = client();
    sim.instagram_add_app("sim-ig-app", "sim-ig-app-secret");
    let r = c
        .get(format!("{base}/oauth/authorize"))
        .query(&[
            ("client_id", "sim-ig-app"),
            ("redirect_uri", "https://app.example/ig/cb"),
            ("response_type", "code"),
            ("scope", "instagram_business_basic"),
            ("state", "s1"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 302);
    let loc = r.headers()["location"].to_str().expect("loc").to_string();
    assert!(loc.ends_with("#_"), "Instagram appends #_: {loc}");
    let code = query_of(&loc)["code"].clone();
    // The `#_` is not part of the code: Meta's client must strip it, and a code
    // still carrying it is refused.
    let r = c
        .post(format!("{base}/oauth/access_token"))
        .form(&[
            ("client_id", "sim-ig-app"),
            ("client_secret", "sim-ig-app-secret"),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "https://app.example/ig/cb"),
            ("code", format!("{code}#_").as_str()),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400, "a code with `#_` left on it");
    let r = c
        .post(format!("{base}/oauth/access_token"))
        .form(&[
            ("client_id", "sim-ig-app"),
            ("client_secret", "sim-ig-app-secret"),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "https://app.example/ig/cb"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.expect("json");
    let short = b["data"][0]["access_token"]
        .as_str()
        .expect("short")
        .to_string();
    assert!(b["data"][0]["user_id"].is_string());
    // ig_exchange_token takes the secret of the app the token belongs to, not
    // any registered app's.
    sim.instagram_add_app("sim-ig-other-app", "sim-ig-other-secret");
    let r = c
        .get(format!("{base}/access_token"))
        .query(&[
            ("grant_type", "ig_exchange_token"),
            ("client_secret", "sim-ig-other-secret"),
            ("access_token", short.as_str()),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"]["code"], 1, "{b}");
    let r = c
        .get(format!("{base}/access_token"))
        .query(&[
            ("grant_type", "ig_exchange_token"),
            ("client_secret", "sim-ig-app-secret"),
            ("access_token", short.as_str()),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["expires_in"], 5_184_000);
    assert!(sim.instagram_is_valid(b["access_token"].as_str().expect("long")));

    sim.linkedin_add_client("sim-li", "sim-li-secret");
    sim.linkedin_set_programmatic_refresh("sim-li", true);
    let r = c
        .get(format!("{base}/oauth/v2/authorization"))
        .query(&[
            ("client_id", "sim-li"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("response_type", "code"),
            ("scope", "w_member_social"),
            ("state", "s2"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 302);
    let code = query_of(r.headers()["location"].to_str().expect("loc"))["code"].clone();
    let r = c
        .post(format!("{base}/oauth/v2/accessToken"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", "sim-li"),
            ("client_secret", "sim-li-secret"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.expect("json");
    assert!(sim.linkedin_is_valid_access(b["access_token"].as_str().expect("at")));
    assert_eq!(b["refresh_token_expires_in"], 31_536_000);
    assert_eq!(sim.oauth_codes_issued(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lenient_mode_handles_thousands_of_accounts_quickly() {
    let server = SimServer::start(SimOptions {
        lenient: true,
        ..Default::default()
    })
    .await
    .expect("start");
    let base = server.base_url();
    let c = client();
    let started = std::time::Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in 0..2000 {
        let (c, base, sem) = (c.clone(), base.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.expect("permit");
            let rt = format!("rft.sim-bench-{i}");
            c.post(format!("{base}/v2/oauth/token/"))
                .form(&[
                    ("client_key", "bench"),
                    ("client_secret", "bench"),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
                .expect("send")
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join"), 200);
    }
    assert_eq!(server.sim().stats().rotations, 2000);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
