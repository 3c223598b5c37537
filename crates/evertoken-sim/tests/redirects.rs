//! What the real providers refuse in their authorization-code flows, refused
//! here too: non-loopback `http` redirects, unregistered or altered redirect URIs,
//! a token request whose `redirect_uri` differs from the authorize request's, a
//! missing or wrong PKCE verifier, TikTok's hex challenge vs RFC 7636 base64url;
//! and the knobs the client tests lean on (non-extending refresh tokens, `/me`).

use base64::Engine as _;
use evertoken_sim::{SimOptions, SimServer};
use serde_json::Value;
use sha2::Digest as _;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location)
        .expect("url")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

const VERIFIER: &str = "sim-verifier-0123456789-0123456789-0123456789";

fn b64(v: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(v))
}

fn hexed(v: &str) -> String {
    hex::encode(sha2::Sha256::digest(v))
}

/// GET an authorize endpoint: (status, Location).
async fn authorize(c: &reqwest::Client, url: String, q: &[(&str, &str)]) -> (u16, Option<String>) {
    let r = c.get(url).query(q).send().await.expect("send");
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().expect("loc").to_string());
    (r.status().as_u16(), loc)
}

async fn tiktok_authorize(
    c: &reqwest::Client,
    base: &str,
    key: &str,
    redirect: &str,
    challenge: Option<&str>,
) -> (u16, Option<String>) {
    let mut q = vec![
        ("client_key", key),
        ("redirect_uri", redirect),
        ("response_type", "code"),
        ("scope", "user.info.basic"),
        ("state", "st"),
    ];
    if let Some(ch) = challenge {
        q.push(("code_challenge", ch));
        q.push(("code_challenge_method", "S256"));
    }
    authorize(c, format!("{base}/v2/auth/authorize/"), &q).await
}

async fn tiktok_token(
    c: &reqwest::Client,
    base: &str,
    key: &str,
    code: &str,
    redirect: &str,
    verifier: Option<&str>,
) -> (u16, Value) {
    let mut f = vec![
        ("client_key", key),
        ("client_secret", "sim-tt-secret"),
        ("code", code),
        ("grant_type", "authorization_code"),
        ("redirect_uri", redirect),
    ];
    if let Some(v) = verifier {
        f.push(("code_verifier", v));
    }
    let r = c
        .post(format!("{base}/v2/oauth/token/"))
        .form(&f)
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.json().await.expect("json"))
}

#[tokio::test]
async fn tiktok_desktop_wants_loopback_and_hex_pkce_web_wants_https() {
    let server = SimServer::start(SimOptions::default())
        .await
        .expect("start");
    let sim = server.sim();
    let base = server.base_url();
    let c = client();
    sim.tiktok_add_client("web-app", "sim-tt-secret");
    sim.tiktok_add_desktop_client("desk-app", "sim-tt-secret");
    let lo = "http://127.0.0.1:43123/callback/";

    // Web apps: https only.
    assert_eq!(
        tiktok_authorize(&c, &base, "web-app", lo, None).await.0,
        400
    );
    assert_eq!(
        tiktok_authorize(&c, &base, "web-app", "http://app.example/cb/", None)
            .await
            .0,
        400
    );
    let (s, loc) = tiktok_authorize(&c, &base, "web-app", "https://app.example/cb/", None).await;
    assert_eq!(s, 302);
    assert!(loc.unwrap().starts_with("https://app.example/cb/?code="));

    // Desktop apps: loopback only, PKCE required.
    let (s, _) = tiktok_authorize(
        &c,
        &base,
        "desk-app",
        "https://app.example/cb/",
        Some(&hexed(VERIFIER)),
    )
    .await;
    assert_eq!(s, 400, "a desktop app cannot redirect to a web URL");
    let (s, loc) = tiktok_authorize(&c, &base, "desk-app", lo, None).await;
    assert_eq!(s, 302);
    assert_eq!(
        query_of(&loc.unwrap())["error"],
        "invalid_request",
        "PKCE is required"
    );

    // A base64url (RFC 7636) challenge does not match TikTok's hex.
    let (_, loc) = tiktok_authorize(&c, &base, "desk-app", lo, Some(&b64(VERIFIER))).await;
    let code = query_of(&loc.unwrap())["code"].clone();
    let (s, b) = tiktok_token(&c, &base, "desk-app", &code, lo, Some(VERIFIER)).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_request")),
        "{b}"
    );
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains("Code verifier")
    );

    // Hex challenge: a missing or wrong verifier fails, the right one works,
    // and the redirect URI must be repeated exactly.
    for (verifier, redirect) in [
        (None, lo),
        (Some("wrong-verifier-wrong-verifier-wrong-verifier"), lo),
        (Some(VERIFIER), "http://127.0.0.1:43123/callback"),
    ] {
        let (_, loc) = tiktok_authorize(&c, &base, "desk-app", lo, Some(&hexed(VERIFIER))).await;
        let code = query_of(&loc.unwrap())["code"].clone();
        let (s, b) = tiktok_token(&c, &base, "desk-app", &code, redirect, verifier).await;
        assert_eq!(s, 400, "{verifier:?} {redirect}: {b}");
    }
    let (_, loc) = tiktok_authorize(&c, &base, "desk-app", lo, Some(&hexed(VERIFIER))).await;
    let code = query_of(&loc.unwrap())["code"].clone();
    let (s, b) = tiktok_token(&c, &base, "desk-app", &code, lo, Some(VERIFIER)).await;
    assert_eq!(s, 200, "{b}");

    // Registered URIs: TikTok's wildcard port matches any port, nothing else.
    sim.oauth_register_redirect("tiktok", "desk-app", "http://127.0.0.1:*/callback/");
    let ch = hexed(VERIFIER);
    assert_eq!(
        tiktok_authorize(
            &c,
            &base,
            "desk-app",
            "http://127.0.0.1:5/callback/",
            Some(&ch)
        )
        .await
        .0,
        302
    );
    assert_eq!(
        tiktok_authorize(
            &c,
            &base,
            "desk-app",
            "http://127.0.0.1:5/callback",
            Some(&ch)
        )
        .await
        .0,
        400
    );
    assert_eq!(
        tiktok_authorize(
            &c,
            &base,
            "desk-app",
            "http://127.0.0.1:5/other/",
            Some(&ch)
        )
        .await
        .0,
        400
    );
}

/// TikTok desktop: "Only localhost or loopback IP 127.0.0.1 are allowed host
/// names", with a port, `http` or `https`; the default lifetimes are the current
/// docs' 2 hours and 180 days.
#[tokio::test]
async fn tiktok_desktop_hosts_and_default_lifetimes() {
    let server = SimServer::start(SimOptions::default())
        .await
        .expect("start");
    let sim = server.sim();
    let base = server.base_url();
    let c = client();
    sim.tiktok_add_desktop_client("desk-app", "sim-tt-secret");
    let ch = hexed(VERIFIER);
    for (redirect, want) in [
        ("http://127.0.0.1:5/callback/", 302),
        ("http://localhost:5/callback/", 302),
        ("https://127.0.0.1:3455/callback/", 302),
        ("http://127.0.0.2:5/callback/", 400),
        ("http://[::1]:5/callback/", 400),
        ("https://[::1]:3455/callback/", 400),
        ("http://127.0.0.1/callback/", 400),
    ] {
        let (s, _) = tiktok_authorize(&c, &base, "desk-app", redirect, Some(&ch)).await;
        assert_eq!(s, want, "{redirect}");
    }
    let lo = "https://127.0.0.1:3455/callback/";
    let (_, loc) = tiktok_authorize(&c, &base, "desk-app", lo, Some(&ch)).await;
    let code = query_of(&loc.unwrap())["code"].clone();
    let (s, b) = tiktok_token(&c, &base, "desk-app", &code, lo, Some(VERIFIER)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["expires_in"], 7200, "{b}");
    assert_eq!(b["refresh_expires_in"], 15_552_000, "{b}");
}

#[tokio::test]
async fn google_linkedin_instagram_redirect_rules() {
    let server = SimServer::start(SimOptions::default())
        .await
        .expect("start");
    let sim = server.sim();
    let base = server.base_url();
    let c = client();
    sim.google_add_client("g", "g-secret");
    sim.linkedin_add_client("li", "li-secret");
    sim.instagram_add_app("ig", "ig-secret");

    let google = |redirect: &'static str, challenge: String| {
        let c = c.clone();
        let base = base.clone();
        async move {
            authorize(
                &c,
                format!("{base}/o/oauth2/v2/auth"),
                &[
                    ("client_id", "g"),
                    ("redirect_uri", redirect),
                    ("response_type", "code"),
                    ("scope", "s"),
                    ("state", "st"),
                    ("code_challenge", challenge.as_str()),
                    ("code_challenge_method", "S256"),
                ],
            )
            .await
        }
    };
    assert_eq!(
        google("http://example.com/cb", b64(VERIFIER)).await.0,
        400,
        "non-loopback http"
    );
    // Google: the loopback port is free even when a port is registered.
    sim.oauth_register_redirect("google", "g", "http://127.0.0.1:1/");
    assert_eq!(google("http://127.0.0.1:4000/", b64(VERIFIER)).await.0, 302);
    assert_eq!(
        google("https://other.example/", b64(VERIFIER)).await.0,
        400,
        "unregistered"
    );
    // A hex challenge is not Google's S256.
    let (_, loc) = google("http://127.0.0.1:4000/", hexed(VERIFIER)).await;
    let code = query_of(&loc.unwrap())["code"].clone();
    let r = c
        .post(format!("{base}/token"))
        .form(&[
            ("client_id", "g"),
            ("client_secret", "g-secret"),
            ("code", code.as_str()),
            ("code_verifier", VERIFIER),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "http://127.0.0.1:4000/"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);

    // LinkedIn: exact registered string, trailing slash included.
    let li = |redirect: &'static str| {
        let c = c.clone();
        let base = base.clone();
        async move {
            authorize(
                &c,
                format!("{base}/oauth/v2/authorization"),
                &[
                    ("client_id", "li"),
                    ("redirect_uri", redirect),
                    ("response_type", "code"),
                    ("scope", "w_member_social"),
                    ("state", "st"),
                ],
            )
            .await
        }
    };
    assert_eq!(
        li("http://example.com/cb/").await.0,
        400,
        "non-loopback http"
    );
    sim.oauth_register_redirect("linkedin", "li", "https://app.example/li/cb/");
    assert_eq!(
        li("https://app.example/li/cb").await.0,
        400,
        "trailing slash matters"
    );
    let (s, loc) = li("https://app.example/li/cb/").await;
    assert_eq!(s, 302);
    let code = query_of(&loc.unwrap())["code"].clone();
    let token = |redirect: Option<&'static str>, code: String| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let mut f = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("client_id", "li"),
                ("client_secret", "li-secret"),
            ];
            if let Some(r) = redirect {
                f.push(("redirect_uri", r));
            }
            let r = c
                .post(format!("{base}/oauth/v2/accessToken"))
                .form(&f)
                .send()
                .await
                .expect("send");
            r.status().as_u16()
        }
    };
    assert_eq!(
        token(Some("https://app.example/li/cb"), code.clone()).await,
        400
    );
    let (_, loc) = li("https://app.example/li/cb/").await;
    let code2 = query_of(&loc.unwrap())["code"].clone();
    assert_eq!(token(Some("https://app.example/li/cb/"), code2).await, 200);

    // Instagram (Meta): https only, even on loopback; redirect repeated at the exchange.
    let ig = |redirect: &'static str| {
        let c = c.clone();
        let base = base.clone();
        async move {
            authorize(
                &c,
                format!("{base}/oauth/authorize"),
                &[
                    ("client_id", "ig"),
                    ("redirect_uri", redirect),
                    ("response_type", "code"),
                    ("scope", "instagram_business_basic"),
                    ("state", "st"),
                ],
            )
            .await
        }
    };
    assert_eq!(ig("http://127.0.0.1:8765/callback").await.0, 400);
    let (s, loc) = ig("https://app.example/ig/").await;
    assert_eq!(s, 302);
    let code = query_of(&loc.unwrap())["code"].clone();
    let r = c
        .post(format!("{base}/oauth/access_token"))
        .form(&[
            ("client_id", "ig"),
            ("client_secret", "ig-secret"),
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400, "no redirect_uri at the exchange");
}

#[tokio::test]
async fn the_new_knobs_are_on_the_control_api() {
    use serde_json::json;
    let server = SimServer::start(SimOptions::default())
        .await
        .expect("start");
    let sim = server.sim();
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
            "/_sim/tiktok/desktop_client",
            json!({"client_key": "d", "client_secret": "s"})
        )
        .await,
        200
    );
    assert_eq!(
        post(
            "/_sim/oauth/redirect",
            json!({"provider": "tiktok", "client_id": "d", "uri": "http://127.0.0.1:*/cb/"})
        )
        .await,
        200
    );
    let ch = hexed(VERIFIER);
    assert_eq!(
        tiktok_authorize(&c, &base, "d", "http://127.0.0.1:7/cb/", Some(&ch))
            .await
            .0,
        302
    );
    assert_eq!(
        tiktok_authorize(&c, &base, "d", "http://127.0.0.1:7/other/", Some(&ch))
            .await
            .0,
        400
    );
    assert_eq!(
        post("/_sim/tiktok/refresh_extends", json!({"extends": false})).await,
        200
    );
    assert_eq!(post("/_sim/tiktok/refresh_extends", json!({})).await, 400);
    assert_eq!(
        post("/_sim/linkedin/refresh_extends", json!({"extends": true})).await,
        200
    );
    assert_eq!(
        post("/_sim/instagram/young_message", json!({"message": "nope"})).await,
        200
    );
    assert_eq!(
        post(
            "/_sim/actions/org_secret",
            json!({"org": "acme", "name": "T", "value": "v", "visibility": "selected", "selected_repository_ids": [3, 5]})
        )
        .await,
        200
    );
    assert_eq!(sim.actions_secret_repositories("acme", "T"), vec![3, 5]);
    let got: Value = c
        .get(format!("{base}/_sim/actions/org_secret?org=acme&name=T"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(got["visibility"], "selected");
    assert_eq!(
        post(
            "/_sim/actions/org_secret",
            json!({"org": "acme", "name": "T", "value": "v", "visibility": "public"})
        )
        .await,
        400
    );
}

#[tokio::test]
async fn non_extending_refresh_tokens_and_instagram_me() {
    let server = SimServer::start(SimOptions::default())
        .await
        .expect("start");
    let sim = server.sim();
    let base = server.base_url();
    let c = client();
    sim.tiktok_add_client("tt", "sim-tt-secret");
    let exp = sim.now() + jiff::SignedDuration::from_hours(24 * 10);
    sim.tiktok_add_refresh_token("tt", "sim-rt-0", exp);
    sim.tiktok_set_refresh_extends(false);
    let r = c
        .post(format!("{base}/v2/oauth/token/"))
        .form(&[
            ("client_key", "tt"),
            ("client_secret", "sim-tt-secret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", "sim-rt-0"),
        ])
        .send()
        .await
        .expect("send");
    let b: Value = r.json().await.expect("json");
    let left = b["refresh_expires_in"]
        .as_i64()
        .expect("refresh_expires_in");
    assert!(left <= 10 * 86400 && left > 10 * 86400 - 60, "{b}");
    assert_ne!(b["refresh_token"], "sim-rt-0", "still rotates");

    let now = sim.now();
    sim.instagram_add_token(
        "sim-ig-tok",
        now,
        now + jiff::SignedDuration::from_hours(24 * 60),
    );
    let me = |t: &'static str| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let r = c
                .get(format!("{base}/me"))
                .query(&[("fields", "id"), ("access_token", t)])
                .send()
                .await
                .expect("send");
            (r.status().as_u16(), r.json::<Value>().await.expect("json"))
        }
    };
    let (s, b) = me("sim-ig-tok").await;
    assert_eq!(s, 200);
    assert!(b["id"].is_string());
    sim.instagram_revoke("sim-ig-tok");
    let (s, b) = me("sim-ig-tok").await;
    assert_eq!((s, b["error"]["code"].as_i64()), (400, Some(190)));
}
