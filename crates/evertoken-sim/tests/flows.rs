//! Webhooks, OAuth authorization-code flows (PKCE), control API and the binary.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use evertoken_sim::{Fault, Route};

use crate::common::*;

#[tokio::test]
async fn webhooks_answer_like_each_service() {
    let e = Env::start().await;
    let hook = |path: &str, body: Value| e.post(path).json(&body);
    let slack = hook("/webhook/slack/T0/B0/simsecret", json!({"text": "alert"}));
    assert_eq!(slack.text().await, (200, "ok".to_owned()));
    let discord = || hook("/webhook/discord/123/simtoken", json!({"content": "alert"}));
    assert_eq!(discord().status().await, 204);
    let teams = json!({"type": "message", "attachments": []});
    let teams = hook("/webhook/teams/workflows/sim", teams).status().await;
    assert_eq!(teams, 202);
    let got = e.sim.webhook_received();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, "/webhook/slack/T0/B0/simsecret");
    assert_eq!(got[1].1["content"], "alert");

    let limited = Fault::TooManyRequests {
        retry_after_secs: Some(2),
    };
    e.sim.push_fault(Route::Webhook, limited);
    let r = discord().answer().await;
    assert_eq!(r.headers["retry-after"], "2");
    let rate_limited = json!({"message": "You are being rate limited.", "global": false});
    r.check(429, rate_limited);
    let no_text = hook("/webhook/slack/x", json!({})).text().await;
    assert_eq!(no_text, (400, "no_text".to_owned()));
}

const GOOGLE_APP: App = App::new(&GOOGLE, "sim-g", "sim-g-secret")
    .scoped("https://www.googleapis.com/auth/youtube.upload");
const TIKTOK_DESKTOP_APP: App =
    App::new(&TIKTOK_DESKTOP, "sim-tt", "sim-tt-secret").scoped("user.info.basic,video.publish");

#[tokio::test]
async fn google_and_tiktok_code_flows_with_pkce() {
    let e = Env::start().await;
    let (g, tt) = (&GOOGLE_APP, &TIKTOK_DESKTOP_APP);
    e.register(g, &[]);
    let offline = [("access_type", "offline"), ("prompt", "consent")];
    let challenge = s256(VERIFIER);
    let a = e.authorize(g, LOOPBACK, Some(&challenge), &offline).await;
    let code = a.code();
    assert_eq!(a.q["state"], STATE);
    assert_eq!(e.sim.oauth_codes_issued(), 1);
    let exchange = |verifier| e.exchange(g, &code, Some(LOOPBACK), Some(verifier));
    let wrong = exchange(WRONG_VERIFIER).await;
    wrong.check(400, json!({"error": "invalid_grant"}));
    let b = exchange(VERIFIER).await;
    let rt = b.ok()["refresh_token"].as_str();
    let rt = rt.expect("offline + consent gives a refresh token");
    assert!(e.sim.google_is_valid(rt));
    assert_eq!(exchange(VERIFIER).await.status, 400, "codes are single-use");

    // TikTok's desktop flow: loopback redirect, hex S256 challenge.
    e.register(tt, &[]);
    let a = e.authorize(tt, LOOPBACK, Some(&hexed(VERIFIER)), &[]).await;
    assert_eq!(a.q["scopes"], "user.info.basic,video.publish");
    let code = a.code();
    let b = e.exchange(tt, &code, Some(LOOPBACK), Some(VERIFIER)).await;
    b.ok();
    assert!(e.sim.tiktok_is_live(&b.str("refresh_token")));
}

#[tokio::test]
async fn control_api_seeds_and_steers() {
    let e = Env::start().await;
    e.controls(json!([
        ["/_sim/tiktok/client", {"client_key": "k", "client_secret": "s"}, 200],
        ["/_sim/tiktok/refresh_token", {"client_key": "k", "refresh_token": "rft.sim-c"}, 200],
        ["/_sim/faults", {"route": "tiktok", "fault": {"kind": "status", "status": 503}, "count": 1}, 200],
        ["/_sim/faults", {"route": "nope", "fault": "malformed_json"}, 400],
        ["/_sim/now", {"now": NOW}, 200],
        ["/_sim/gitlab/token", {"token": "test-gitlab-pat-sim"}, 200],
        ["/_sim/gitlab/project", {"id": 5, "path": "g/p"}, 200],
        ["/_sim/gitlab/variable", {"id": 5, "key": "K", "value": "sim-value-1"}, 200],
        ["/_sim/github/app", {"app_id": 7}, 200],
        ["/_sim/github/installation", {"app_id": 7, "installation_id": 8, "account_login": "o"}, 200],
    ]))
    .await;
    assert_eq!(e.sim.now().to_string(), NOW);

    let app = App::new(&TIKTOK, "k", "s");
    let refresh = || e.refresh_request(&app, "rft.sim-c", &[]).status();
    assert_eq!(refresh().await, 503);
    assert_eq!(refresh().await, 200);
    let stats = e.inspect("/_sim/stats").await;
    assert_eq!(stats["rotations"], 1);
    assert_eq!(stats["requests"]["tiktok"], 2);
    let token = "test-gitlab-pat-sim";
    let variable = e.gitlab(Method::GET, "projects/g%2Fp/variables/K", token);
    assert_eq!(variable.status().await, 200);
}

#[test]
fn binary_prints_one_line_and_serves() {
    let args = [
        "--lenient",
        "--github-app-id",
        "11",
        "--github-installation-id",
        "22",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_evertoken-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut line).expect("line");
    let base = line.trim().strip_prefix("listening on ").expect("prefix");
    assert!(base.starts_with("http://127.0.0.1:"));
    let http = Http::new(base.to_owned());
    let status = block_on(http.get("/_sim/stats").status());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
}

const IG_APP: App =
    App::new(&INSTAGRAM, "sim-ig-app", "sim-ig-app-secret").scoped("instagram_business_basic");
const LINKEDIN_APP: App = App::new(&LINKEDIN, "sim-li", "sim-li-secret").scoped("w_member_social");

#[tokio::test]
async fn instagram_and_linkedin_login_flows() {
    let e = Env::start().await;
    e.register(&IG_APP, &[]);
    let cb = "https://app.example/ig/cb";
    let a = e.authorize(&IG_APP, cb, None, &[]).await;
    let code = a.code();
    assert!(a.loc.ends_with("#_"), "Instagram appends #_: {}", a.loc);
    // The `#_` is not part of the code: Meta's client must strip it, and a code
    // still carrying it is refused.
    let with_fragment = format!("{code}#_");
    let b = e.exchange(&IG_APP, &with_fragment, Some(cb), None).await;
    assert_eq!(b.status, 400, "a code with `#_` left on it");
    let b = e.exchange(&IG_APP, &code, Some(cb), None).await;
    let user = json!({"data": [{"access_token": STRING, "user_id": STRING}]});
    let short = b.check(200, user)["data"][0]["access_token"].as_str();
    let short = short.expect("short");
    // ig_exchange_token takes the secret of the app the token belongs to, not
    // any registered app's.
    let other = App::new(&INSTAGRAM, "sim-ig-other-app", "sim-ig-other-secret");
    e.register(&other, &[]);
    let b = e.long_lived(&other, short).await;
    b.check(400, json!({"error": {"code": 1}}));
    let b = e.long_lived(&IG_APP, short).await;
    b.check(200, json!({"expires_in": 5_184_000}));
    assert!(e.sim.instagram_is_valid(&b.str("access_token")));

    e.register(&LINKEDIN_APP, &[]);
    e.sim.linkedin_set_programmatic_refresh("sim-li", true);
    let b = e.login(&LINKEDIN_APP, LOOPBACK, None).await;
    b.check(200, json!({"refresh_token_expires_in": 31_536_000}));
    assert!(e.sim.linkedin_is_valid_access(&b.str("access_token")));
    assert_eq!(e.sim.oauth_codes_issued(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lenient_mode_handles_thousands_of_accounts_quickly() {
    const BENCH: App = App::new(&TIKTOK, "bench", "bench");
    let e = Env::lenient().await;
    let started = std::time::Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in 0..2000 {
        let (http, sem) = (e.http.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.expect("permit");
            let rt = format!("rft.sim-bench-{i}");
            http.refresh_request(&BENCH, &rt, &[]).status().await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join"), 200);
    }
    assert_eq!(e.sim.stats().rotations, 2000);
    let elapsed = started.elapsed();
    assert!(elapsed < std::time::Duration::from_secs(15), "{elapsed:?}");
}
