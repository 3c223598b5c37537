//! Every `Fault` kind, latency, stats and the request log.

use std::time::{Duration, Instant};

use evertoken_sim::{Fault, Route, SimOptions, SimServer};
use serde_json::Value;

async fn setup() -> (SimServer, reqwest::Client) {
    let server = SimServer::start(SimOptions::default())
        .await
        .expect("start");
    let sim = server.sim();
    sim.tiktok_add_client("sim-k", "sim-s");
    sim.tiktok_add_refresh_token(
        "sim-k",
        "rft.sim-a",
        sim.now() + jiff::SignedDuration::from_hours(24 * 90),
    );
    (server, reqwest::Client::new())
}

async fn refresh(c: &reqwest::Client, base: &str, rt: &str) -> reqwest::Result<reqwest::Response> {
    c.post(format!("{base}/v2/oauth/token/"))
        .form(&[
            ("client_key", "sim-k"),
            ("client_secret", "sim-s"),
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
        ])
        .send()
        .await
}

#[tokio::test]
async fn status_and_rate_limit_faults_are_provider_shaped_and_consumed_once() {
    let (server, c) = setup().await;
    let sim = server.sim();
    let base = server.base_url();
    sim.push_fault(Route::TikTok, Fault::Status(503));
    sim.push_fault(
        Route::TikTok,
        Fault::TooManyRequests {
            retry_after_secs: Some(7),
        },
    );
    let r = refresh(&c, &base, "rft.sim-a").await.expect("send");
    assert_eq!(r.status().as_u16(), 503);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"], "temporarily_unavailable");
    assert!(b["log_id"].is_string());
    let r = refresh(&c, &base, "rft.sim-a").await.expect("send");
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    // Faults did not touch state: the token still rotates.
    let r = refresh(&c, &base, "rft.sim-a").await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(sim.stats().rotations, 1);

    // Google's 500 and GitHub's 500 have their own shapes.
    sim.push_fault(Route::Google, Fault::Status(500));
    let r = c.post(format!("{base}/token")).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 500);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"], "server_error");
    sim.push_fault(Route::Any, Fault::Status(500));
    let r = c
        .get(format!("{base}/rate_limit"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 500);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["status"], "500");
    assert!(b["message"].is_string());
}

#[tokio::test]
async fn grant_client_and_auth_faults() {
    let (server, c) = setup().await;
    let sim = server.sim();
    let base = server.base_url();
    sim.push_fault(Route::TikTok, Fault::InvalidGrant);
    sim.push_fault(Route::TikTok, Fault::InvalidClient);
    sim.push_fault(Route::TikTok, Fault::Unauthorized);
    let r = refresh(&c, &base, "rft.sim-a").await.expect("send");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"],
        "invalid_grant"
    );
    let r = refresh(&c, &base, "rft.sim-a").await.expect("send");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"],
        "invalid_client"
    );
    let r = refresh(&c, &base, "rft.sim-a").await.expect("send");
    assert_eq!(r.status().as_u16(), 401);
    assert!(sim.tiktok_is_live("rft.sim-a"));

    sim.push_fault(Route::Instagram, Fault::InvalidGrant);
    let r = c
        .get(format!(
            "{base}/refresh_access_token?grant_type=ig_refresh_token&access_token=x"
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<Value>().await.expect("json")["error"]["code"], 190);

    sim.push_fault(Route::GitLab, Fault::Unauthorized);
    let r = c
        .get(format!("{base}/api/v4/projects/1/variables/X"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        serde_json::json!({"message": "401 Unauthorized"})
    );
}

#[tokio::test]
async fn html_malformed_and_truncated_bodies() {
    let (server, c) = setup().await;
    let sim = server.sim();
    let base = server.base_url();
    sim.push_fault(Route::TikTok, Fault::HtmlErrorPage);
    let r = refresh(&c, &base, "rft.sim-a").await.expect("send");
    assert_eq!(r.status().as_u16(), 502);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    assert!(r.text().await.expect("text").contains("502 Bad Gateway"));

    // MalformedJson runs the request (the token rotates) but garbles the answer.
    sim.push_fault(Route::TikTok, Fault::MalformedJson);
    let r = refresh(&c, &base, "rft.sim-a").await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.json::<Value>().await.is_err());
    assert!(!sim.tiktok_is_live("rft.sim-a"));
    let live = sim.tiktok_live_refresh_tokens();
    assert_eq!(live.len(), 1);

    // TruncatedBody: Content-Length promises more than arrives.
    sim.push_fault(Route::TikTok, Fault::TruncatedBody);
    let r = refresh(&c, &base, &live[0]).await.expect("headers arrive");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.bytes().await.is_err(), "the body must be cut short");
    assert_eq!(sim.stats().rotations, 2);
}

#[tokio::test]
async fn drop_rotated_token_and_hang_after_processing() {
    let (server, c) = setup().await;
    let sim = server.sim();
    let base = server.base_url();
    sim.push_fault(Route::TikTok, Fault::DropRotatedToken);
    let r = refresh(&c, &base, "rft.sim-a").await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.expect("json");
    assert!(b.get("refresh_token").is_none());
    assert!(b["access_token"].is_string());
    assert!(!sim.tiktok_is_live("rft.sim-a"));
    let live = sim.tiktok_live_refresh_tokens();
    assert_eq!(live.len(), 1);

    // The client gives up; the rotation happened anyway.
    sim.push_fault(
        Route::TikTok,
        Fault::HangAfterProcessing(Duration::from_secs(5)),
    );
    let c2 = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let err = refresh(&c2, &base, &live[0]).await.expect_err("times out");
    assert!(err.is_timeout());
    assert!(!sim.tiktok_is_live(&live[0]));
    assert_eq!(sim.stats().rotations, 2);
}

#[tokio::test]
async fn hang_latency_and_persistent_faults() {
    let (server, c) = setup().await;
    let sim = server.sim();
    let base = server.base_url();
    sim.push_fault(Route::TikTok, Fault::Hang(Duration::from_millis(300)));
    let t = Instant::now();
    let r = refresh(&c, &base, "rft.sim-a").await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));

    sim.set_latency(Duration::from_millis(150));
    let t = Instant::now();
    let _ = c
        .get(format!("{base}/rate_limit"))
        .send()
        .await
        .expect("send");
    assert!(t.elapsed() >= Duration::from_millis(150));
    let t = Instant::now();
    let _ = c
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .expect("send");
    assert!(
        t.elapsed() < Duration::from_millis(150),
        "control API has no latency"
    );
    sim.set_latency(Duration::ZERO);

    sim.set_persistent_fault(Route::Google, Some(Fault::Status(502)));
    for _ in 0..3 {
        let r = c.post(format!("{base}/token")).send().await.expect("send");
        assert_eq!(r.status().as_u16(), 502);
    }
    sim.set_persistent_fault(Route::Google, None);
    let r = c.post(format!("{base}/token")).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 400);

    sim.push_faults(Route::Webhook, Fault::Status(500), 2);
    for expect in [500, 500, 200] {
        let r = c
            .post(format!("{base}/webhook/slack/T000/B000/sim"))
            .json(&serde_json::json!({"text": "hi"}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), expect);
    }
}

#[tokio::test]
async fn request_log_redacts_credentials() {
    let (server, c) = setup().await;
    let sim = server.sim();
    let base = server.base_url();
    let _ = c
        .get(format!("{base}/api/v4/projects/1/variables/X"))
        .header("PRIVATE-TOKEN", "test-gitlab-pat-sim-secret")
        .send()
        .await
        .expect("send");
    let _ = c
        .get(format!("{base}/api/v3/rate_limit"))
        .bearer_auth("ghs_simsecret")
        .send()
        .await
        .expect("send");
    let stats = sim.stats();
    assert_eq!(stats.requests["gitlab"], 1);
    assert_eq!(stats.requests["github_app"], 1);
    let log = &stats.requests_log;
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].path, "/rate_limit");
    for r in log {
        for (k, v) in &r.headers {
            if k == "authorization" || k == "private-token" {
                assert_eq!(v, "<redacted>");
            }
        }
    }
}
