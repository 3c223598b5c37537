//! What the real providers refuse in their authorization-code flows, refused
//! here too: non-loopback `http` redirects, unregistered or altered redirect URIs,
//! a token request whose `redirect_uri` differs from the authorize request's, a
//! missing or wrong PKCE verifier, TikTok's hex challenge vs RFC 7636 base64url;
//! and the knobs the client tests lean on (non-extending refresh tokens, `/me`).

use evertoken_sim::scenario::{Scenario, platform};

use crate::common::*;

const WEB: App = App::new(&TIKTOK, "web-app", "sim-tt-secret").scoped("user.info.basic");
const DESK: App = App::new(&TIKTOK_DESKTOP, "desk-app", "sim-tt-secret").scoped("user.info.basic");

#[tokio::test]
async fn tiktok_desktop_wants_loopback_and_hex_pkce_web_wants_https() {
    let e = Env::start().await;
    e.register(&WEB, &[]);
    e.register(&DESK, &[]);
    let lo = "http://127.0.0.1:43123/callback/";

    // Web apps: https only.
    let web = [(lo, 400), ("http://app.example/cb/", 400)];
    e.authorize_statuses(&WEB, None, &web).await;
    let https = "https://app.example/cb/";
    let a = e.authorize(&WEB, https, None, &[]).await;
    a.code();
    assert!(a.loc.starts_with("https://app.example/cb/?code="));

    // Desktop apps: loopback only, PKCE required.
    let hex = hexed(VERIFIER);
    let a = e.authorize(&DESK, https, Some(&hex), &[]).await;
    assert_eq!(a.status, 400, "a desktop app cannot redirect to a web URL");
    // PKCE is required.
    let a = e.authorize(&DESK, lo, None, &[]).await;
    a.error_redirect("invalid_request");

    // A base64url (RFC 7636) challenge does not match TikTok's hex.
    let a = e.authorize(&DESK, lo, Some(&s256(VERIFIER)), &[]).await;
    let b = e.exchange(&DESK, &a.code(), Some(lo), Some(VERIFIER)).await;
    let b = b.check(400, json!({"error": "invalid_request"}));
    let description = b["error_description"].as_str().expect("description");
    assert!(description.contains("Code verifier"), "{b}");

    // Hex challenge: a missing or wrong verifier fails, the right one works,
    // and the redirect URI must be repeated exactly.
    for (verifier, redirect) in [
        (None, lo),
        (Some(WRONG_VERIFIER), lo),
        (Some(VERIFIER), "http://127.0.0.1:43123/callback"),
    ] {
        let code = e.code(&DESK, lo, Some(VERIFIER)).await;
        let b = e.exchange(&DESK, &code, Some(redirect), verifier).await;
        assert_eq!(b.status, 400, "{verifier:?} {redirect}: {}", b.body);
    }
    e.login(&DESK, lo, Some(VERIFIER)).await.ok();

    // Registered URIs: TikTok's wildcard port matches any port, nothing else.
    e.sim
        .oauth_register_redirect("tiktok", "desk-app", "http://127.0.0.1:*/callback/");
    let registered = [
        ("http://127.0.0.1:5/callback/", 302),
        ("http://127.0.0.1:5/callback", 400),
        ("http://127.0.0.1:5/other/", 400),
    ];
    e.authorize_statuses(&DESK, Some(&hex), &registered).await;
}

/// TikTok desktop: "Only localhost or loopback IP 127.0.0.1 are allowed host
/// names", with a port, `http` or `https`; the default lifetimes are the current
/// docs' 2 hours and 180 days.
#[tokio::test]
async fn tiktok_desktop_hosts_and_default_lifetimes() {
    let e = Env::start().await;
    e.register(&DESK, &[]);
    let hosts = [
        ("http://127.0.0.1:5/callback/", 302),
        ("http://localhost:5/callback/", 302),
        ("https://127.0.0.1:3455/callback/", 302),
        ("http://127.0.0.2:5/callback/", 400),
        ("http://[::1]:5/callback/", 400),
        ("https://[::1]:3455/callback/", 400),
        ("http://127.0.0.1/callback/", 400),
    ];
    e.authorize_statuses(&DESK, Some(&hexed(VERIFIER)), &hosts)
        .await;
    let lo = "https://127.0.0.1:3455/callback/";
    let b = e.login(&DESK, lo, Some(VERIFIER)).await;
    let lifetimes = json!({"expires_in": 7200, "refresh_expires_in": 15_552_000});
    b.check(200, lifetimes);
}

#[tokio::test]
async fn google_linkedin_instagram_redirect_rules() {
    const G: App = App::new(&GOOGLE, "g", "g-secret").scoped("s");
    const LI: App = App::new(&LINKEDIN, "li", "li-secret").scoped("w_member_social");
    const IG: App = App::new(&INSTAGRAM, "ig", "ig-secret").scoped("instagram_business_basic");
    let e = Env::start().await;
    for app in [&G, &LI, &IG] {
        e.register(app, &[]);
    }

    // Google: no non-loopback http; the loopback port is free even when a port
    // is registered; an unregistered URI is refused.
    let ch = s256(VERIFIER);
    e.authorize_statuses(&G, Some(&ch), &[("http://example.com/cb", 400)])
        .await;
    e.sim
        .oauth_register_redirect("google", "g", "http://127.0.0.1:1/");
    let registered = [
        ("http://127.0.0.1:4000/", 302),
        ("https://other.example/", 400),
    ];
    e.authorize_statuses(&G, Some(&ch), &registered).await;
    // A hex challenge is not Google's S256.
    let lo = "http://127.0.0.1:4000/";
    let a = e.authorize(&G, lo, Some(&hexed(VERIFIER)), &[]).await;
    let b = e.exchange(&G, &a.code(), Some(lo), Some(VERIFIER)).await;
    assert_eq!(b.status, 400, "{}", b.body);

    // LinkedIn: no non-loopback http; the exact registered string, trailing
    // slash included, at authorize and at the exchange.
    e.authorize_statuses(&LI, None, &[("http://example.com/cb/", 400)])
        .await;
    e.sim
        .oauth_register_redirect("linkedin", "li", "https://app.example/li/cb/");
    let (cb, no_slash) = ("https://app.example/li/cb/", "https://app.example/li/cb");
    e.authorize_statuses(&LI, None, &[(no_slash, 400)]).await;
    let code = e.code(&LI, cb, None).await;
    assert_eq!(
        e.exchange(&LI, &code, Some(no_slash), None).await.status,
        400
    );
    e.login(&LI, cb, None).await.ok();

    // Instagram (Meta): https only, even on loopback; redirect repeated at the exchange.
    e.authorize_statuses(&IG, None, &[("http://127.0.0.1:8765/callback", 400)])
        .await;
    let code = e.code(&IG, "https://app.example/ig/", None).await;
    let b = e.exchange(&IG, &code, None, None).await;
    assert_eq!(b.status, 400, "no redirect_uri at the exchange");
}

#[tokio::test]
async fn the_new_knobs_are_on_the_control_api() {
    let e = Env::start().await;
    e.controls(json!([
        ["/_sim/tiktok/desktop_client", {"client_key": "d", "client_secret": "s"}, 200],
        ["/_sim/oauth/redirect", {"provider": "tiktok", "client_id": "d", "uri": "http://127.0.0.1:*/cb/"}, 200],
    ]))
    .await;
    let d = App::new(&TIKTOK_DESKTOP, "d", "s").scoped("user.info.basic");
    let wildcard = [
        ("http://127.0.0.1:7/cb/", 302),
        ("http://127.0.0.1:7/other/", 400),
    ];
    e.authorize_statuses(&d, Some(&hexed(VERIFIER)), &wildcard)
        .await;
    let secret = |visibility: &str| json!({"org": "acme", "name": "T", "value": "v", "visibility": visibility});
    let mut selected = secret("selected");
    selected["selected_repository_ids"] = json!([3, 5]);
    e.controls(json!([
        ["/_sim/tiktok/refresh_extends", {"extends": false}, 200],
        ["/_sim/tiktok/refresh_extends", {}, 400],
        ["/_sim/linkedin/refresh_extends", {"extends": true}, 200],
        ["/_sim/instagram/young_message", {"message": "nope"}, 200],
        ["/_sim/actions/org_secret", selected, 200],
        ["/_sim/actions/org_secret", secret("public"), 400],
    ]))
    .await;
    assert_eq!(e.sim.actions_secret_repositories("acme", "T"), vec![3, 5]);
    let got = e.inspect("/_sim/actions/org_secret?org=acme&name=T").await;
    assert_eq!(got["visibility"], "selected");
}

#[tokio::test]
async fn non_extending_refresh_tokens_and_instagram_me() {
    let s = Scenario::wall_clock()
        .with(platform("tiktok").value("sim-rt-0").expires_in_days(10))
        .with(platform("instagram").value("sim-ig-tok"));
    let (e, tt) = Env::seeded_app(&s, &TIKTOK, "tiktok").await;
    e.sim.tiktok_set_refresh_extends(false);
    let b = e.refresh(&tt, "sim-rt-0").await;
    let left = b.body["refresh_expires_in"].as_i64();
    let left = left.expect("refresh_expires_in");
    assert!(left <= 10 * 86400 && left > 10 * 86400 - 60, "{}", b.body);
    assert_ne!(b.body["refresh_token"], "sim-rt-0", "still rotates");

    let me = |t| {
        e.get("/me")
            .query(&[("fields", "id"), ("access_token", t)])
            .answer()
    };
    me("sim-ig-tok").await.check(200, json!({"id": STRING}));
    e.sim.instagram_revoke("sim-ig-tok");
    let b = me("sim-ig-tok").await;
    b.check(400, json!({"error": {"code": 190}}));
}
