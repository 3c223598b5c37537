//! X, Threads and Pinterest behaviours the client will rely on, plus a real
//! RFC 6749 server (npm `oidc-provider`) for `kind: oauth2`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use evertoken_sim::scenario::{Scenario, platform};
use evertoken_sim::{Fault, Route};

use crate::common::ClientAuth::{Basic, Body, Nothing};
use crate::common::*;

// ----------------------------------------------------------------------- X

const X_ID: &str = "sim-x-client";
const X_SECRET: &str = "sim-x-secret";
const X_CB: &str = "https://app.example/x/callback";
const X_APP: App = App::new(&X, X_ID, X_SECRET).scoped("tweet.read users.read offline.access");
const X_PUBLIC: App = App::public(&X, "sim-x-public").scoped("tweet.read offline.access");

/// X's login with PKCE: the token answer X gives, and its refresh token (empty
/// without `offline.access`).
async fn x_login(e: &Env, app: &App) -> String {
    let b = e.login(app, X_CB, Some(VERIFIER)).await;
    let bearer = json!({"token_type": "bearer", "expires_in": 7200, "access_token": STRING,
                        "scope": app.scope});
    let b = b.check(200, bearer);
    b["refresh_token"].as_str().unwrap_or("").to_owned()
}

#[tokio::test]
async fn x_confidential_client_rotates_and_a_used_refresh_token_is_invalid_request() {
    let e = Env::start().await;
    e.register(&X_APP, &[X_CB]);
    let rt1 = x_login(&e, &X_APP).await;
    assert!(!rt1.is_empty(), "offline.access yields a refresh token");

    let b = e.refresh(&X_APP, &rt1).await;
    b.check(200, json!({"expires_in": 7200}));
    let rt2 = b.str("refresh_token");
    assert_ne!(rt1, rt2);
    assert!(e.sim.x_access_token_valid(&b.str("access_token")));
    assert!(
        !e.sim.x_is_live(&rt1),
        "the previous refresh token dies on use"
    );
    assert_eq!(e.sim.x_live_refresh_tokens(), vec![rt2.clone()]);

    // The dead one: X's exact answer.
    let b = e.refresh(&X_APP, &rt1).await;
    let invalid = json!({"error": "invalid_request",
                         "error_description": "Value passed for the token was invalid."});
    b.check(400, invalid);
    assert_eq!(e.sim.stats().reused_rotated_tokens, 1);
    assert_eq!(e.sim.stats().rotations, 1);

    // Revocation kills the live one too.
    let revoke = e.post("/2/oauth2/revoke").basic_auth(X_ID, Some(X_SECRET));
    let revoke = revoke.form(&[("token", &*rt2), ("token_type_hint", "refresh_token")]);
    revoke.answer().await.check(200, json!({"revoked": true}));
    let invalid = json!({"error": "invalid_request"});
    e.refresh(&X_APP, &rt2).await.check(400, invalid.clone());

    // An unknown token gets the same answer.
    let b = e.refresh(&X_APP, "sim-x-rt-never-issued").await;
    b.check(400, invalid);
}

#[tokio::test]
async fn x_public_client_sends_client_id_in_the_body_and_needs_pkce() {
    let e = Env::start().await;
    e.register(&X_PUBLIC, &[X_CB]);
    let rt = x_login(&e, &X_PUBLIC).await;
    e.refresh(&X_PUBLIC, &rt).await.ok();
    assert!(!e.sim.x_is_live(&rt));

    // No code_challenge at authorize: an error redirect, no code.
    let a = e.authorize(&X_PUBLIC, X_CB, None, &[]).await;
    a.error_redirect("invalid_request");

    // A code exchanged without, or with the wrong, code_verifier fails.
    let code = e.code(&X_PUBLIC, X_CB, Some(VERIFIER)).await;
    let b = e.exchange(&X_PUBLIC, &code, Some(X_CB), None).await;
    let missing = json!({"error": "invalid_request",
                         "error_description": "Missing required parameter [code_verifier]."});
    b.check(400, missing);
    let wrong = Some(WRONG_VERIFIER);
    let b = e.exchange(&X_PUBLIC, &code, Some(X_CB), wrong).await;
    b.check(400, json!({"error": "invalid_request"}));
}

#[tokio::test]
async fn x_rejects_wrong_client_auth_with_unauthorized_client() {
    let rt = "sim-x-rt-seeded";
    let s = Scenario::wall_clock().with(platform("x").value(rt));
    let (e, x) = Env::seeded_app(&s, &X, "x").await;
    let (id, secret) = (x.id, x.secret());
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    let auths = [
        Basic(id, "wrong-secret"),
        Body(id, Some(secret)),
        Basic("sim-x-unknown", secret),
        Nothing,
    ];
    let refused = "Missing valid authorization header";
    let refused = json!({"error": "unauthorized_client", "error_description": refused});
    e.rejects_client_auth(&X, &form, &auths, 401, refused).await;
    assert!(e.sim.x_is_live(rt), "a rejected request rotates nothing");
}

#[tokio::test]
async fn x_redirect_uri_must_be_registered_and_match_and_no_offline_means_no_refresh_token() {
    let e = Env::start().await;
    let x = X_APP.scoped("tweet.read");
    e.register(&x, &[X_CB]);
    let unregistered = [("https://evil.example/cb", 400)];
    e.authorize_statuses(&x, Some(&s256(VERIFIER)), &unregistered)
        .await;

    let code = e.code(&x, X_CB, Some(VERIFIER)).await;
    let exchange = |redirect| e.exchange(&x, &code, Some(redirect), Some(VERIFIER));
    let invalid = json!({"error": "invalid_request"});
    let other = exchange("https://app.example/x/other").await;
    other.check(400, invalid.clone());
    // Without offline.access X issues no refresh token.
    let b = exchange(X_CB).await;
    b.check(200, json!({"refresh_token": ABSENT}));
    // A code works once.
    exchange(X_CB).await.check(400, invalid);
}

#[tokio::test]
async fn x_control_api_seeds_and_inspects() {
    let e = Env::start().await;
    e.controls(json!([
        ["/_sim/x/client", {"client_id": X_ID, "client_secret": X_SECRET, "redirect_uris": [X_CB]}, 200],
        ["/_sim/x/refresh_token", {"client_id": X_ID, "refresh_token": "sim-x-rt-ctl"}, 200],
    ]))
    .await;
    let live = e.inspect("/_sim/x/live").await;
    assert_eq!(live["refresh_tokens"], json!(["sim-x-rt-ctl"]));
    assert_eq!(e.refresh(&X_APP, "sim-x-rt-ctl").await.status, 200);
    let revoke = json!({"refresh_token": e.sim.x_live_refresh_tokens()[0]});
    assert_eq!(e.control("/_sim/x/revoke", revoke).await, 200);
    assert!(e.sim.x_live_refresh_tokens().is_empty());
}

// ----------------------------------------------------------------- Threads

const TH_APP_ID: &str = "1234567890";
const TH_SECRET: &str = "sim-threads-secret";
const TH_CB: &str = "https://app.example/threads/callback";
const TH_APP: App =
    App::new(&THREADS, TH_APP_ID, TH_SECRET).scoped("threads_basic,threads_content_publish");

#[tokio::test]
async fn threads_refresh_needs_a_day_old_unexpired_token_and_gives_sixty_days() {
    let e = Env::at_fixed_now().await;
    graph_refresh_rules(&e, &THREADS).await;
    // The versioned path answers the same.
    let v1 = "/v1.0/refresh_access_token";
    let b = e.graph_refresh(v1, "th_refresh_token", "sim-young").await;
    b.check(400, json!({"error": {"code": 10}}));
}

#[tokio::test]
async fn instagram_keeps_its_paths_next_to_threads() {
    let old = |key, value| {
        platform(key)
            .value(value)
            .issued_days_ago(2)
            .expires_in_days(20)
    };
    let s = Scenario::wall_clock()
        .with(old("instagram", "sim-ig-old"))
        .with(old("threads", "sim-th-old"));
    let e = Env::seeded(&s).await;
    let b = e.meta_refresh(&INSTAGRAM, "sim-ig-old").await;
    b.ok();
    assert!(e.sim.instagram_is_valid(&b.str("access_token")));
    // A Threads token is not an Instagram one, and the reverse.
    assert_eq!(e.meta_refresh(&INSTAGRAM, "sim-th-old").await.status, 400);
    assert_eq!(e.meta_refresh(&THREADS, "sim-ig-old").await.status, 400);
}

#[tokio::test]
async fn threads_login_needs_an_exact_https_redirect_then_exchanges_for_a_long_lived_token() {
    let e = Env::start().await;
    e.register(&TH_APP, &[TH_CB]);
    let bad = [
        ("http://app.example/threads/callback", 400),
        ("https://app.example/threads/other", 400),
        ("http://127.0.0.1:8976/callback", 400),
    ];
    e.authorize_statuses(&TH_APP, None, &bad).await;
    let a = e.authorize(&TH_APP, TH_CB, None, &[]).await;
    let code = format!("{}#_", a.code());
    assert!(a.loc.ends_with("#_"), "Meta appends #_ to the redirect");

    let wrong = TH_APP.with_secret("wrong-secret");
    let b = e.exchange(&wrong, &code, Some(TH_CB), None).await;
    b.check(400, json!({"error": {"code": 1}}));
    let other = Some("https://app.example/threads/other");
    let b = e.exchange(&TH_APP, &code, other, None).await;
    b.check(400, json!({"error": {"error_subcode": 36008}}));
    let b = e.exchange(&TH_APP, &code, Some(TH_CB), None).await;
    b.check(200, json!({"user_id": STRING}));
    let short = b.str("access_token");
    let again = e.exchange(&TH_APP, &code, Some(TH_CB), None).await;
    assert_eq!(again.status, 400, "a code works once");

    // A short-lived token is not refreshable; it is exchanged for a long-lived one.
    let b = e.meta_refresh(&THREADS, &short).await;
    b.check(400, json!({"error": {"code": 190}}));
    let b = e.long_lived(&wrong, &short).await;
    b.check(400, json!({"error": {"code": 1}}));
    let b = e.long_lived(&TH_APP, &short).await;
    b.check(200, json!({"expires_in": 60 * 86_400}));
    let long = b.str("access_token");
    // Brand new: the 24-hour rule applies.
    let b = e.meta_refresh(&THREADS, &long).await;
    b.check(400, json!({"error": {"code": 10}}));
    e.sim.set_now(Some(e.sim.now() + hours(25)));
    e.meta_refresh(&THREADS, &long).await.ok();
}

#[tokio::test]
async fn instagram_login_still_works_on_the_shared_paths() {
    let e = Env::start().await;
    e.register(&TH_APP, &[TH_CB]);
    let ig = App::new(&INSTAGRAM, "sim-ig-app", "sim-ig-secret").scoped("instagram_business_basic");
    e.register(&ig, &[]);
    let b = e.login(&ig, "https://app.example/ig", None).await;
    // Instagram's shape.
    b.check(200, json!({"data": [{"access_token": STRING}]}));
}

#[tokio::test]
async fn threads_control_api_seeds_and_inspects() {
    let e = Env::start().await;
    let expires_at = "2099-01-01T00:00:00Z";
    let token = json!({"token": "sim-th-ctl", "issued_at": "2026-01-01T00:00:00Z", "expires_at": expires_at});
    assert_eq!(e.control("/_sim/threads/token", token).await, 200);
    let v = e.inspect("/_sim/threads/token?token=sim-th-ctl").await;
    assert_fields(&v, &json!({"valid": true, "expires_at": expires_at}));
    let app = json!({"app_id": TH_APP_ID, "app_secret": TH_SECRET, "redirect_uris": [TH_CB]});
    assert_eq!(e.control("/_sim/threads/app", app).await, 200);
}

// --------------------------------------------------------------- Pinterest

const PIN_APP_ID: &str = "1500000";
const PIN_SECRET: &str = "sim-pinterest-secret";
const PIN_CB: &str = "https://app.example/pinterest/callback";
const PIN: App = App::new(&PINTEREST, PIN_APP_ID, PIN_SECRET).scoped("boards:read,pins:read");
/// What evertoken sends with a Pinterest refresh.
const CONTINUOUS: &[(&str, &str)] = &[("continuous_refresh", "true")];

#[tokio::test]
async fn pinterest_continuous_refresh_rotates_and_the_old_token_dies() {
    let (e, now) = (Env::at_fixed_now().await, fixed_now());
    e.register(&PIN, &[PIN_CB]);

    let b = e.login(&PIN, PIN_CB, None).await;
    let login = json!({
        "token_type": "bearer",
        "expires_in": 30 * 86_400,
        "response_type": "authorization_code",
        "scope": "boards:read,pins:read",
        "refresh_token_expires_in": 60 * 86_400,
        "refresh_token_expires_at": (now + days(60)).as_second(),
    });
    b.check(200, login);
    let rt1 = b.str("refresh_token");

    e.sim.set_now(Some(now + days(10)));
    let b = e.refresh_with(&PIN, &rt1, CONTINUOUS).await;
    // Pinterest's OpenAPI: a continuous refresh answers `everlasting_refresh`;
    // a continuous refresh token slides: 60 days from this refresh.
    let slid = (now + days(70)).as_second();
    let everlasting =
        json!({"response_type": "everlasting_refresh", "refresh_token_expires_at": slid});
    b.check(200, everlasting);
    let rt2 = b.str("refresh_token");
    assert_ne!(rt1, rt2);
    assert!(e.sim.pinterest_access_token_valid(&b.str("access_token")));
    assert!(!e.sim.pinterest_is_live(&rt1));
    assert!(e.sim.pinterest_is_live(&rt2));

    let b = e.refresh_with(&PIN, &rt1, CONTINUOUS).await;
    let invalid = "The authorization grant is invalid";
    b.check(401, json!({"code": 283, "message": invalid}));
    assert_eq!(e.sim.stats().reused_rotated_tokens, 1);

    // A continuous token past its 60 days is dead.
    e.sim.set_now(Some(now + days(71)));
    let b = e.refresh_with(&PIN, &rt2, CONTINUOUS).await;
    b.check(401, json!({"code": 283}));
}

#[tokio::test]
async fn pinterest_legacy_refresh_token_keeps_a_fixed_expiry_then_dies() {
    let (e, now) = (Env::at_fixed_now().await, fixed_now());
    e.register(&PIN, &[PIN_CB]);
    e.sim.pinterest_set_legacy(true);

    let b = e.login(&PIN, PIN_CB, None).await;
    let deadline = now + days(365);
    let fixed = deadline.as_second();
    let legacy =
        json!({"refresh_token_expires_in": 365 * 86_400, "refresh_token_expires_at": fixed});
    b.check(200, legacy);
    let rt = b.str("refresh_token");

    e.sim.set_now(Some(now + days(100)));
    let b = e.refresh_with(&PIN, &rt, CONTINUOUS).await;
    // Legacy: no new refresh token.
    let kept =
        json!({"refresh_token": ABSENT, "response_type": "refresh_token", "access_token": STRING});
    b.check(200, kept);
    assert!(e.sim.pinterest_is_live(&rt));
    assert_eq!(e.sim.pinterest_refresh_expires_at(&rt), Some(deadline));

    e.sim.set_now(Some(deadline + hours(1)));
    let b = e.refresh_with(&PIN, &rt, CONTINUOUS).await;
    b.check(401, json!({"code": 283}));

    // With the app enrolled, `refresh_on=true` (the OpenAPI spec's name) or
    // `continuous_refresh=true` turns a legacy token into a continuous one.
    e.sim.pinterest_set_legacy(false);
    let seed = |rt: &str| {
        e.sim
            .pinterest_add_refresh_token(PIN_APP_ID, rt, deadline + days(30), false)
    };
    for (i, field) in ["refresh_on", "continuous_refresh"].into_iter().enumerate() {
        let legacy = format!("pinr.sim-legacy-{i}");
        seed(&legacy);
        let b = e.refresh_with(&PIN, &legacy, &[(field, "true")]).await;
        let continuous = json!({"refresh_token": STRING, "response_type": "everlasting_refresh"});
        assert_eq!(b.status, 200, "{field}: {}", b.body);
        assert_fields(&b.body, &continuous);
        assert!(!e.sim.pinterest_is_live(&legacy), "{field}");
    }
    // Without either, a legacy token stays legacy.
    seed("pinr.sim-legacy-2");
    let b = e.refresh(&PIN, "pinr.sim-legacy-2").await;
    b.check(200, json!({"refresh_token": ABSENT}));
    assert!(e.sim.pinterest_is_live("pinr.sim-legacy-2"));
}

#[tokio::test]
async fn pinterest_rejects_bad_client_auth_redirects_and_grants() {
    let e = Env::start().await;
    e.register(&PIN, &[PIN_CB]);
    let rt = "pinr.sim-seeded";
    let expires = e.sim.now() + days(30);
    e.sim
        .pinterest_add_refresh_token(PIN_APP_ID, rt, expires, true);

    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        CONTINUOUS[0],
    ];
    let auths = [
        Basic(PIN_APP_ID, "wrong-secret"),
        Body(PIN_APP_ID, Some(PIN_SECRET)),
        Basic("999", PIN_SECRET),
    ];
    let failed = json!({"code": 2, "message": "Authentication failed."});
    e.rejects_client_auth(&PINTEREST, &form, &auths, 401, failed)
        .await;
    assert!(e.sim.pinterest_is_live(rt));

    let b = e.token(&PIN, &[("refresh_token", "x")]).await;
    b.check(400, json!({"code": 1}));
    let wider = [CONTINUOUS[0], ("scope", "ads:write")];
    let b = e.refresh_with(&PIN, rt, &wider).await;
    b.check(400, json!({"code": 1}));

    let bad = [
        ("http://app.example/pinterest/callback", 400),
        ("https://app.example/pinterest/other", 400),
    ];
    e.authorize_statuses(&PIN.scoped("boards:read"), None, &bad)
        .await;
    let code = e.code(&PIN.scoped("boards:read"), PIN_CB, None).await;
    let other = Some("https://app.example/pinterest/other");
    let b = e.exchange(&PIN, &code, other, None).await;
    b.check(401, json!({"code": 283}));
}

#[tokio::test]
async fn pinterest_control_api_seeds_and_inspects() {
    let e = Env::start().await;
    let expires_at = "2099-01-01T00:00:00Z";
    e.controls(json!([
        ["/_sim/pinterest/app", {"app_id": PIN_APP_ID, "app_secret": PIN_SECRET, "redirect_uris": [PIN_CB]}, 200],
        ["/_sim/pinterest/refresh_token", {"app_id": PIN_APP_ID, "refresh_token": "pinr.sim-ctl",
                                           "expires_at": expires_at, "continuous": false}, 200],
        ["/_sim/pinterest/legacy", {"legacy": true}, 200],
    ]))
    .await;
    let v = e
        .inspect("/_sim/pinterest/refresh_token?refresh_token=pinr.sim-ctl")
        .await;
    assert_fields(&v, &json!({"live": true, "expires_at": expires_at}));
    // The legacy knob is on.
    let b = e.refresh_with(&PIN, "pinr.sim-ctl", CONTINUOUS).await;
    b.check(200, json!({"refresh_token": ABSENT}));
    assert!(e.sim.pinterest_is_live("pinr.sim-ctl"));
}

// ------------------------------------------------------- oidc-provider (kind: oauth2)

/// The oidc-provider test server's token endpoint (`/token` under its issuer),
/// its clients authenticating with HTTP Basic…
const OIDC: Provider = Provider {
    name: "oidc-provider",
    token: "/token",
    style: Style::Basic,
    ..GOOGLE
};
/// … or in the body (`client_secret_post`).
const OIDC_POST: Provider = Provider {
    style: Style::Body,
    ..OIDC
};

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

/// Runs get-first-token.mjs for `client` and returns its refresh token.
fn first_refresh_token(node: &Path, issuer: &str, client: &str) -> String {
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
    v["refresh_token"].as_str().expect("rt").to_owned()
}

#[tokio::test]
async fn oidc_provider_rotates_refresh_tokens_and_reuse_revokes_the_grant() {
    const CONFIDENTIAL: App = App::new(&OIDC, "evt-confidential", "evt-confidential-secret");
    const PUBLIC: App = App::public(&OIDC, "evt-public");
    const POST: App = App::new(&OIDC_POST, "evt-post", "evt-post-secret");
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
    let http = Http::new(oidc.issuer.clone());
    let first = |client| first_refresh_token(&node, &oidc.issuer, client);

    // Confidential client, client_secret_basic.
    let rt1 = first("confidential");
    let b = http.refresh(&CONFIDENTIAL, &rt1).await;
    assert_eq!(b.status, 200, "refresh failed: {}", b.body["error"]);
    let rt2 = b.str("refresh_token");
    assert_ne!(rt1, rt2, "rotation is on");
    assert_fields(&b.body, &json!({"access_token": STRING, "expires_in": U64}));

    // Reusing the rotated-away token fails and revokes the grant: the newest
    // refresh token dies too.
    let invalid = json!({"error": "invalid_grant"});
    let b = http.refresh(&CONFIDENTIAL, &rt1).await;
    b.check(400, invalid.clone());
    http.refresh(&CONFIDENTIAL, &rt2).await.check(400, invalid);

    // Public client: client_id in the body, no secret; also rotates.
    let rt = first("public");
    let b = http.refresh(&PUBLIC, &rt).await;
    assert_eq!(b.status, 200, "public refresh failed: {}", b.body["error"]);
    assert_ne!(b.body["refresh_token"].as_str(), Some(rt.as_str()));

    // Wrong client secret: invalid_client, and the token survives.
    let rt = first("post");
    let b = http.refresh(&POST.with_secret("wrong"), &rt).await;
    b.check(401, json!({"error": "invalid_client"}));
    assert_eq!(http.refresh(&POST, &rt).await.status, 200);
}

// ------------------------------------------------------------------ faults

#[tokio::test]
async fn injected_faults_on_x_and_pinterest_speak_each_providers_shape() {
    let (x_rt, pin_rt) = ("sim-x-rt-faulted", "pinr.sim-faulted");
    let s = Scenario::wall_clock()
        .with(platform("x").value(x_rt))
        .with(platform("pinterest").value(pin_rt).expires_in_days(30));
    let e = Env::seeded(&s).await;
    let (x, pin) = (
        App::seeded(&X, &s, "x"),
        App::seeded(&PINTEREST, &s, "pinterest"),
    );

    e.sim
        .push_fault(Route::parse("x").expect("route"), Fault::Status(503));
    e.sim.push_fault(Route::X, Fault::InvalidGrant);
    e.refresh(&x, x_rt).await.check(503, json!({"status": 503}));
    let b = e.refresh(&x, x_rt).await;
    b.check(400, json!({"error": "invalid_request"}));
    assert!(e.sim.x_is_live(x_rt), "a fault rotates nothing");
    e.refresh(&x, x_rt).await.ok();
    assert_eq!(e.sim.request_count(Route::X), 3);

    let limited = Fault::TooManyRequests {
        retry_after_secs: Some(7),
    };
    e.sim.push_fault(Route::Pinterest, limited);
    let b = e.refresh_with(&pin, pin_rt, CONTINUOUS).await;
    assert_eq!(b.headers["retry-after"], "7");
    b.check(429, json!({"code": I64, "message": STRING}));
    assert!(e.sim.pinterest_is_live(pin_rt));
    assert_eq!(e.sim.request_count(Route::Pinterest), 1);

    // Threads' versioned paths are Graph routes (Instagram's fault shapes).
    e.sim.push_fault(Route::Instagram, Fault::Status(500));
    let v1 = "/v1.0/refresh_access_token";
    let b = e.graph_refresh(v1, "th_refresh_token", "t").await;
    b.check(500, json!({"error": {"is_transient": true}}));
}
