//! Instagram, Google, TikTok and LinkedIn behaviours evertoken relies on.

use evertoken_sim::{SimOptions, SimServer};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn start() -> SimServer {
    SimServer::start(SimOptions::default())
        .await
        .expect("start")
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

async fn tiktok_refresh(c: &reqwest::Client, base: &str, rt: &str) -> (u16, Value) {
    let r = c
        .post(format!("{base}/v2/oauth/token/"))
        .form(&[
            ("client_key", "sim-tt-key"),
            ("client_secret", "sim-tt-secret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
        ])
        .send()
        .await
        .expect("send");
    let s = r.status().as_u16();
    (s, r.json().await.expect("json"))
}

#[tokio::test]
async fn tiktok_rotation_invalidates_old_token_and_counts_reuse() {
    let server = start().await;
    let sim = server.sim();
    let base = server.base_url();
    sim.tiktok_add_client("sim-tt-key", "sim-tt-secret");
    sim.tiktok_set_lifetimes(7200, 15_552_000);
    sim.tiktok_add_refresh_token("sim-tt-key", "rft.sim-old", sim.now() + days(100));
    let c = client();

    let (s, body) = tiktok_refresh(&c, &base, "rft.sim-old").await;
    assert_eq!(s, 200, "{body}");
    let new_rt = body["refresh_token"].as_str().expect("rt").to_string();
    assert!(new_rt.starts_with("rft.sim-"));
    assert_ne!(new_rt, "rft.sim-old");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["refresh_expires_in"], 15_552_000);
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        body["access_token"]
            .as_str()
            .expect("at")
            .starts_with("act.sim-")
    );
    assert!(body["open_id"].is_string());
    assert!(body["scope"].is_string());
    assert_eq!(sim.tiktok_live_refresh_tokens(), vec![new_rt.clone()]);
    assert!(!sim.tiktok_is_live("rft.sim-old"));

    // Double rotation: the old token fails like TikTok says, and is counted.
    let (s, body) = tiktok_refresh(&c, &base, "rft.sim-old").await;
    assert_eq!(s, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"].is_string());
    assert!(body["log_id"].is_string());
    let stats = sim.stats();
    assert_eq!(stats.reused_rotated_tokens, 1);
    assert_eq!(stats.rotations, 1);
    assert_eq!(stats.requests["tiktok"], 2);
    assert!(sim.tiktok_is_live(&new_rt));

    // Wrong secret.
    let r = c
        .post(format!("{base}/v2/oauth/token/"))
        .form(&[
            ("client_key", "sim-tt-key"),
            ("client_secret", "nope"),
            ("grant_type", "refresh_token"),
            ("refresh_token", new_rt.as_str()),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"], "invalid_client");
    assert!(sim.tiktok_is_live(&new_rt));
}

#[tokio::test]
async fn instagram_24h_rule_and_expiry() {
    let server = start().await;
    let sim = server.sim();
    let base = server.base_url();
    let now: Timestamp = "2026-11-23T09:00:00Z".parse().expect("ts");
    sim.set_now(Some(now));
    sim.instagram_add_token(
        "sim-ig-young",
        now - SignedDuration::from_hours(2),
        now + days(59),
    );
    sim.instagram_add_token("sim-ig-old", now - days(40), now + days(20));
    sim.instagram_add_token("sim-ig-dead", now - days(70), now - days(1));
    let c = client();
    let get = |t: &'static str| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let r = c
                .get(format!("{base}/refresh_access_token"))
                .query(&[("grant_type", "ig_refresh_token"), ("access_token", t)])
                .send()
                .await
                .expect("send");
            (r.status().as_u16(), r.json::<Value>().await.expect("json"))
        }
    };
    let (s, b) = get("sim-ig-young").await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["type"], "OAuthException");
    assert!(
        b["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("24 hours")
    );
    assert!(b["error"]["fbtrace_id"].is_string());

    let (s, b) = get("sim-ig-old").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["token_type"], "bearer");
    assert_eq!(b["expires_in"], 5_184_000);
    let new = b["access_token"].as_str().expect("token").to_string();
    assert_ne!(new, "sim-ig-old");
    assert!(sim.instagram_is_valid(&new));
    assert!(
        sim.instagram_is_valid("sim-ig-old"),
        "old token lives until its own expiry"
    );

    let (s, b) = get("sim-ig-dead").await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["code"], 190);
    assert_eq!(b["error"]["error_subcode"], 463);

    let (s, b) = get("sim-ig-unknown").await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["code"], 190);

    // The fresh token is itself too young until a day has passed.
    sim.set_now(Some(now + days(2)));
    let r = c
        .get(format!("{base}/refresh_access_token"))
        .query(&[
            ("grant_type", "ig_refresh_token"),
            ("access_token", new.as_str()),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
}

async fn google_refresh(c: &reqwest::Client, base: &str, rt: &str) -> (u16, Value) {
    let r = c
        .post(format!("{base}/token"))
        .form(&[
            ("client_id", "sim-g.apps.googleusercontent.com"),
            ("client_secret", "sim-g-secret"),
            ("refresh_token", rt),
            ("grant_type", "refresh_token"),
        ])
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.json().await.expect("json"))
}

#[tokio::test]
async fn google_refresh_revoke_and_testing_mode() {
    let server = start().await;
    let sim = server.sim();
    let base = server.base_url();
    let c = client();
    sim.google_add_client("sim-g.apps.googleusercontent.com", "sim-g-secret");
    sim.google_add_refresh_token("sim-g.apps.googleusercontent.com", "test-google-rt-sim-rt");
    let (s, b) = google_refresh(&c, &base, "test-google-rt-sim-rt").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["expires_in"], 3599);
    assert_eq!(b["token_type"], "Bearer");
    assert!(b["scope"].is_string());
    assert!(b.get("refresh_token").is_none());

    sim.google_revoke("test-google-rt-sim-rt");
    let (s, b) = google_refresh(&c, &base, "test-google-rt-sim-rt").await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "invalid_grant");
    assert_eq!(b["error_description"], "Token has been expired or revoked.");

    // Testing mode: 7 days.
    sim.google_set_testing_mode("sim-g.apps.googleusercontent.com", true);
    sim.google_add_refresh_token("sim-g.apps.googleusercontent.com", "test-google-rt-sim-rt2");
    assert_eq!(
        google_refresh(&c, &base, "test-google-rt-sim-rt2").await.0,
        200
    );
    sim.set_now(Some(sim.now() + days(8)));
    let (s, b) = google_refresh(&c, &base, "test-google-rt-sim-rt2").await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    // Unknown client.
    let r = c
        .post(format!("{base}/token"))
        .form(&[
            ("client_id", "other"),
            ("client_secret", "x"),
            ("refresh_token", "test-google-rt-sim-rt2"),
            ("grant_type", "refresh_token"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"], "invalid_client");
}

#[tokio::test]
async fn linkedin_refresh_keeps_token_and_introspection() {
    let server = start().await;
    let sim = server.sim();
    let base = server.base_url();
    let c = client();
    let now: Timestamp = "2026-11-23T09:00:00Z".parse().expect("ts");
    sim.set_now(Some(now));
    sim.linkedin_add_client("sim-li-id", "sim-li-secret");
    sim.linkedin_add_refresh_token("sim-li-id", "sim-li-rt", now + days(300));
    let r = c
        .post(format!("{base}/oauth/v2/accessToken"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "sim-li-rt"),
            ("client_id", "sim-li-id"),
            ("client_secret", "sim-li-secret"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["refresh_token"], "sim-li-rt");
    assert_eq!(b["refresh_token_expires_in"], 300 * 86400);
    assert_eq!(b["expires_in"], 5_184_000);
    let at = b["access_token"].as_str().expect("at").to_string();
    assert!(sim.linkedin_is_valid_access(&at));

    sim.linkedin_add_access_token("sim-li-at", now + days(10));
    let introspect = |t: String| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let r = c
                .post(format!("{base}/oauth/v2/introspectToken"))
                .form(&[
                    ("client_id", "sim-li-id"),
                    ("client_secret", "sim-li-secret"),
                    ("token", t.as_str()),
                ])
                .send()
                .await
                .expect("send");
            (r.status().as_u16(), r.json::<Value>().await.expect("json"))
        }
    };
    let (s, b) = introspect("sim-li-at".into()).await;
    assert_eq!(s, 200);
    assert_eq!(b["active"], true);
    assert_eq!(b["status"], "active");
    assert_eq!(b["expires_at"], (now + days(10)).as_second());
    assert_eq!(b["auth_type"], "3L");
    assert!(b["created_at"].is_i64() && b["authorized_at"].is_i64());
    let (_, b) = introspect("sim-li-nope".into()).await;
    assert_eq!(b, serde_json::json!({"active": false}));
    sim.set_now(Some(now + days(11)));
    let (_, b) = introspect("sim-li-at".into()).await;
    assert_eq!(b["active"], false);
    assert_eq!(b["status"], "expired");
    assert_eq!(sim.stats().requests["linkedin_introspect"], 3);
}

#[tokio::test]
async fn lenient_mode_accepts_unknown_clients_and_tokens() {
    let server = SimServer::start(SimOptions {
        lenient: true,
        ..Default::default()
    })
    .await
    .expect("start");
    let sim = server.sim();
    let base = server.base_url();
    let c = client();
    let r = c
        .post(format!("{base}/v2/oauth/token/"))
        .form(&[
            ("client_key", "anything"),
            ("client_secret", "whatever"),
            ("grant_type", "refresh_token"),
            ("refresh_token", "rft.sim-bench-1"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.expect("json");
    assert!(!sim.tiktok_is_live("rft.sim-bench-1"));
    assert!(sim.tiktok_is_live(b["refresh_token"].as_str().expect("rt")));

    let r = c
        .get(format!("{base}/refresh_access_token"))
        .query(&[
            ("grant_type", "ig_refresh_token"),
            ("access_token", "sim-ig-bench"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let (s, _) = google_refresh(&c, &base, "test-google-rt-sim-bench").await;
    assert_eq!(s, 200);
    // Reuse after rotation still fails, even in lenient mode.
    let r = c
        .post(format!("{base}/v2/oauth/token/"))
        .form(&[
            ("client_key", "anything"),
            ("client_secret", "whatever"),
            ("grant_type", "refresh_token"),
            ("refresh_token", "rft.sim-bench-1"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(sim.stats().reused_rotated_tokens, 1);
}

#[test]
fn background_server_serves_sync_callers() {
    let server = SimServer::start_background(SimOptions::default()).expect("start");
    let sim = server.sim();
    sim.tiktok_add_client("k", "s");
    let base = server.base_url();
    assert!(base.starts_with("http://127.0.0.1:"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let status = rt.block_on(async {
        client()
            .post(format!("{base}/v2/oauth/token/"))
            .form(&[("client_key", "k"), ("client_secret", "s")])
            .send()
            .await
            .expect("send")
            .status()
            .as_u16()
    });
    assert_eq!(status, 400);
    drop(server);
}
