//! Instagram, Google, TikTok and LinkedIn behaviours evertoken relies on.

use evertoken_sim::scenario::{Scenario, platform};
use evertoken_sim::{SimOptions, SimServer};

use crate::common::*;

#[tokio::test]
async fn tiktok_rotation_invalidates_old_token_and_counts_reuse() {
    let old = "rft.sim-old";
    let s = Scenario::wall_clock().with(platform("tiktok").value(old).expires_in_days(100));
    let (e, tt) = Env::seeded_app(&s, &TIKTOK, "tiktok").await;
    e.sim.tiktok_set_lifetimes(7200, 15_552_000);

    let b = e.refresh(&tt, old).await;
    let rotated = json!({"expires_in": 7200, "refresh_expires_in": 15_552_000,
                         "token_type": "Bearer", "open_id": STRING, "scope": STRING});
    b.check(200, rotated);
    let new_rt = b.str("refresh_token");
    assert!(new_rt.starts_with("rft.sim-"));
    assert_ne!(new_rt, old);
    assert!(b.str("access_token").starts_with("act.sim-"));
    assert_eq!(e.sim.tiktok_live_refresh_tokens(), vec![new_rt.clone()]);
    assert!(!e.sim.tiktok_is_live(old));

    // Double rotation: the old token fails like TikTok says, and is counted.
    let reused = json!({"error": "invalid_grant", "error_description": STRING, "log_id": STRING});
    e.refresh(&tt, old).await.check(400, reused);
    let stats = e.sim.stats();
    assert_eq!(stats.reused_rotated_tokens, 1);
    assert_eq!(stats.rotations, 1);
    assert_eq!(stats.requests["tiktok"], 2);
    assert!(e.sim.tiktok_is_live(&new_rt));

    // Wrong secret.
    let wrong = e.refresh(&tt.with_secret("nope"), &new_rt).await;
    wrong.check(401, json!({"error": "invalid_client"}));
    assert!(e.sim.tiktok_is_live(&new_rt));
}

#[tokio::test]
async fn instagram_24h_rule_and_expiry() {
    let e = Env::at_fixed_now().await;
    let new = graph_refresh_rules(&e, &INSTAGRAM).await;
    // The fresh token is itself too young until a day has passed.
    let young = e.meta_refresh(&INSTAGRAM, &new).await;
    young.check(400, json!({"error": {"code": 10}}));
    e.sim.set_now(Some(fixed_now() + days(2)));
    e.meta_refresh(&INSTAGRAM, &new).await.ok();
}

#[tokio::test]
async fn google_refresh_revoke_and_testing_mode() {
    let rt = "test-google-rt-sim-rt";
    let s = Scenario::wall_clock().with(platform("youtube").value(rt));
    let (e, g) = Env::seeded_app(&s, &GOOGLE, "youtube").await;
    let fresh = json!({"expires_in": 3599, "token_type": "Bearer", "scope": STRING,
                       "refresh_token": ABSENT});
    e.refresh(&g, rt).await.check(200, fresh);

    e.sim.google_revoke(rt);
    let revoked = "Token has been expired or revoked.";
    let revoked = json!({"error": "invalid_grant", "error_description": revoked});
    e.refresh(&g, rt).await.check(400, revoked);

    // Testing mode: 7 days.
    let rt2 = "test-google-rt-sim-rt2";
    e.sim.google_set_testing_mode(g.id, true);
    e.sim.google_add_refresh_token(g.id, rt2);
    e.refresh(&g, rt2).await.ok();
    e.sim.set_now(Some(e.sim.now() + days(8)));
    let b = e.refresh(&g, rt2).await;
    b.check(400, json!({"error": "invalid_grant"}));

    // Unknown client.
    let other = App::new(&GOOGLE, "other", "x");
    let b = e.refresh(&other, rt2).await;
    b.check(401, json!({"error": "invalid_client"}));
}

#[tokio::test]
async fn linkedin_refresh_keeps_token_and_introspection() {
    let now = fixed_now();
    let at = platform("linkedin").value("sim-li-at").expires_in_days(10);
    let s = Scenario::at(now).with(at);
    let (e, li) = Env::seeded_app(&s, &LINKEDIN, "linkedin").await;
    let rt = "sim-li-rt";
    e.sim.linkedin_add_refresh_token(li.id, rt, now + days(300));
    let b = e.refresh(&li, rt).await;
    let kept = json!({"refresh_token": "sim-li-rt", "refresh_token_expires_in": 300 * 86400,
                      "expires_in": 5_184_000});
    b.check(200, kept);
    assert!(e.sim.linkedin_is_valid_access(&b.str("access_token")));

    let introspect = |t| {
        let form = [
            ("client_id", li.id),
            ("client_secret", li.secret()),
            ("token", t),
        ];
        e.post("/oauth/v2/introspectToken").form(&form).answer()
    };
    let expires_at = (now + days(10)).as_second();
    let active = json!({"active": true, "status": "active", "expires_at": expires_at,
                        "auth_type": "3L", "created_at": I64, "authorized_at": I64});
    introspect("sim-li-at").await.check(200, active);
    let unknown = introspect("sim-li-nope").await;
    assert_eq!(unknown.body, json!({"active": false}));
    e.sim.set_now(Some(now + days(11)));
    let b = introspect("sim-li-at").await.body;
    assert_fields(&b, &json!({"active": false, "status": "expired"}));
    assert_eq!(e.sim.stats().requests["linkedin_introspect"], 3);
}

#[tokio::test]
async fn lenient_mode_accepts_unknown_clients_and_tokens() {
    const ANY: App = App::new(&TIKTOK, "anything", "whatever");
    const G: App = App::new(&GOOGLE, "sim-g.apps.googleusercontent.com", "sim-g-secret");
    let e = Env::lenient().await;
    let b = e.refresh(&ANY, "rft.sim-bench-1").await;
    assert!(!e.sim.tiktok_is_live("rft.sim-bench-1"));
    b.ok();
    assert!(e.sim.tiktok_is_live(&b.str("refresh_token")));

    e.meta_refresh(&INSTAGRAM, "sim-ig-bench").await.ok();
    e.refresh(&G, "test-google-rt-sim-bench").await.ok();
    // Reuse after rotation still fails, even in lenient mode.
    assert_eq!(e.refresh(&ANY, "rft.sim-bench-1").await.status, 400);
    assert_eq!(e.sim.stats().reused_rotated_tokens, 1);
}

#[test]
fn background_server_serves_sync_callers() {
    const K: App = App::new(&TIKTOK, "k", "s");
    let server = SimServer::start_background(SimOptions::default()).expect("start");
    let e = Env::of(server);
    e.register(&K, &[]);
    assert!(e.base.starts_with("http://127.0.0.1:"));
    // The client's id and secret, and nothing else: no grant.
    assert_eq!(block_on(e.token(&K, &[])).status, 400);
    drop(e);
}
