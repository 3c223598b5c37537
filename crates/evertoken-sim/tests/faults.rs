//! Every `Fault` kind, latency, stats and the request log.

use std::time::{Duration, Instant};

use evertoken_sim::scenario::{Scenario, platform};
use evertoken_sim::{Fault, Route};

use crate::common::*;

/// The scenario's TikTok app with a refresh token of 90 days: the simulator,
/// the app and the token.
async fn setup() -> (Env, App, String) {
    let s = Scenario::wall_clock().with(platform("tiktok").expires_in_days(90));
    let (e, tt) = Env::seeded_app(&s, &TIKTOK, "tiktok").await;
    (e, tt, s.token("tiktok"))
}

#[tokio::test]
async fn status_and_rate_limit_faults_are_provider_shaped_and_consumed_once() {
    let (e, tt, rt) = setup().await;
    e.sim.push_fault(Route::TikTok, Fault::Status(503));
    let limited = Fault::TooManyRequests {
        retry_after_secs: Some(7),
    };
    e.sim.push_fault(Route::TikTok, limited);
    let unavailable = json!({"error": "temporarily_unavailable", "log_id": STRING});
    e.refresh(&tt, &rt).await.check(503, unavailable);
    let r = e.refresh_request(&tt, &rt, &[]).sent().await;
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    // Faults did not touch state: the token still rotates.
    e.refresh(&tt, &rt).await.ok();
    assert_eq!(e.sim.stats().rotations, 1);

    // Google's 500 and GitHub's 500 have their own shapes.
    e.sim.push_fault(Route::Google, Fault::Status(500));
    let google = e.post("/token").answer().await;
    google.check(500, json!({"error": "server_error"}));
    e.sim.push_fault(Route::Any, Fault::Status(500));
    let github = e.get("/rate_limit").answer().await;
    github.check(500, json!({"status": "500", "message": STRING}));
}

#[tokio::test]
async fn grant_client_and_auth_faults() {
    let (e, tt, rt) = setup().await;
    for fault in [
        Fault::InvalidGrant,
        Fault::InvalidClient,
        Fault::Unauthorized,
    ] {
        e.sim.push_fault(Route::TikTok, fault);
    }
    let b = e.refresh(&tt, &rt).await;
    b.check(400, json!({"error": "invalid_grant"}));
    let b = e.refresh(&tt, &rt).await;
    b.check(401, json!({"error": "invalid_client"}));
    assert_eq!(e.refresh_request(&tt, &rt, &[]).status().await, 401);
    assert!(e.sim.tiktok_is_live(&rt));

    e.sim.push_fault(Route::Instagram, Fault::InvalidGrant);
    let ig = e.meta_refresh(&INSTAGRAM, "x").await;
    ig.check(400, json!({"error": {"code": 190}}));

    e.sim.push_fault(Route::GitLab, Fault::Unauthorized);
    let r = e.get("/api/v4/projects/1/variables/X").answer().await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"message": "401 Unauthorized"}));
}

#[tokio::test]
async fn html_malformed_and_truncated_bodies() {
    let (e, tt, rt) = setup().await;
    e.sim.push_fault(Route::TikTok, Fault::HtmlErrorPage);
    let r = e.refresh_request(&tt, &rt, &[]).sent().await;
    assert_eq!(r.status().as_u16(), 502);
    let content_type = r.headers()["content-type"].to_str().expect("ct");
    assert!(content_type.starts_with("text/html"));
    assert!(r.text().await.expect("text").contains("502 Bad Gateway"));

    // MalformedJson runs the request (the token rotates) but garbles the answer.
    e.sim.push_fault(Route::TikTok, Fault::MalformedJson);
    let r = e.refresh_request(&tt, &rt, &[]).sent().await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.json::<Value>().await.is_err());
    assert!(!e.sim.tiktok_is_live(&rt));
    let live = e.sim.tiktok_live_refresh_tokens();
    assert_eq!(live.len(), 1);

    // TruncatedBody: Content-Length promises more than arrives.
    e.sim.push_fault(Route::TikTok, Fault::TruncatedBody);
    let r = e.refresh_request(&tt, &live[0], &[]).sent().await;
    assert_eq!(r.status().as_u16(), 200, "headers arrive");
    assert!(r.bytes().await.is_err(), "the body must be cut short");
    assert_eq!(e.sim.stats().rotations, 2);
}

#[tokio::test]
async fn drop_rotated_token_and_hang_after_processing() {
    let (e, tt, rt) = setup().await;
    e.sim.push_fault(Route::TikTok, Fault::DropRotatedToken);
    let dropped = json!({"refresh_token": ABSENT, "access_token": STRING});
    e.refresh(&tt, &rt).await.check(200, dropped);
    assert!(!e.sim.tiktok_is_live(&rt));
    let live = e.sim.tiktok_live_refresh_tokens();
    assert_eq!(live.len(), 1);

    // The client gives up; the rotation happened anyway.
    let hang = Fault::HangAfterProcessing(Duration::from_secs(5));
    e.sim.push_fault(Route::TikTok, hang);
    let req = e.refresh_request(&tt, &live[0], &[]);
    let err = req.timeout(Duration::from_millis(300)).send().await;
    assert!(err.expect_err("times out").is_timeout());
    assert!(!e.sim.tiktok_is_live(&live[0]));
    assert_eq!(e.sim.stats().rotations, 2);
}

#[tokio::test]
async fn hang_latency_and_persistent_faults() {
    let (e, tt, rt) = setup().await;
    e.sim
        .push_fault(Route::TikTok, Fault::Hang(Duration::from_millis(300)));
    let t = Instant::now();
    e.refresh(&tt, &rt).await.ok();
    assert!(t.elapsed() >= Duration::from_millis(300));

    e.sim.set_latency(Duration::from_millis(150));
    let t = Instant::now();
    let _ = e.get("/rate_limit").sent().await;
    assert!(t.elapsed() >= Duration::from_millis(150));
    let t = Instant::now();
    let _ = e.get("/_sim/stats").sent().await;
    let quick = t.elapsed() < Duration::from_millis(150);
    assert!(quick, "control API has no latency");
    e.sim.set_latency(Duration::ZERO);

    e.sim
        .set_persistent_fault(Route::Google, Some(Fault::Status(502)));
    for _ in 0..3 {
        assert_eq!(e.post("/token").status().await, 502);
    }
    e.sim.set_persistent_fault(Route::Google, None);
    assert_eq!(e.post("/token").status().await, 400);

    e.sim.push_faults(Route::Webhook, Fault::Status(500), 2);
    for expect in [500, 500, 200] {
        let hook = e.post("/webhook/slack/T000/B000/sim");
        assert_eq!(hook.json(&json!({"text": "hi"})).status().await, expect);
    }
}

#[tokio::test]
async fn request_log_redacts_credentials() {
    let (e, _, _) = setup().await;
    let gitlab = e.gitlab(
        Method::GET,
        "projects/1/variables/X",
        "test-gitlab-pat-sim-secret",
    );
    let _ = gitlab.sent().await;
    let _ = e
        .get("/api/v3/rate_limit")
        .bearer_auth("ghs_simsecret")
        .sent()
        .await;
    let stats = e.sim.stats();
    assert_eq!(stats.requests["gitlab"], 1);
    assert_eq!(stats.requests["github_app"], 1);
    let log = &stats.requests_log;
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].path, "/rate_limit");
    let credentials = log.iter().flat_map(|r| &r.headers);
    for (k, v) in credentials.filter(|(k, _)| k == "authorization" || k == "private-token") {
        assert_eq!(v, "<redacted>", "{k}");
    }
}
