//! `auth login`: the authorization-code flow, driven without a browser. Each
//! test is a scenario (a platform before its first login, or one due for a
//! re-authorisation), a login command and what it must store. Loopback: the test
//! reads the printed authorize URL, follows the simulator's redirect by hand (as a
//! browser would) to the CLI's loopback callback. Pasted callback
//! (`--redirect-uri https://…`): the test pastes the address the simulator
//! redirected to on the CLI's stdin, or passes it with `--callback-url`. Then it
//! checks the stored tokens and that the next refresh is healthy.

use crate::common;

use std::collections::HashMap;

use common::TestEnv;
use common::login::{
    Login, assert_exit, assert_expiry_stored, assert_hex_pkce, browse, free_port, get,
    login_via_loopback, login_via_paste, query, refresh_ok, setup, stored, stored_tokens,
};
use evertoken_sim::scenario::{self, Client, Platform, Scenario, platform};

/// LinkedIn due for a re-authorisation: its access token three days from expiry
/// (recorded in the store), so `auth refresh` wants a login.
fn linkedin() -> Platform {
    platform("linkedin")
        .signs_in()
        .expires_in_days(3)
        .store_records_expiry(true)
}

/// The login stored nothing: LinkedIn's old access token is still there.
fn assert_old_token_kept(env: &TestEnv, s: &Scenario) {
    assert_eq!(
        env.stored("LINKEDIN_ACCESS_TOKEN"),
        Some(s.token("linkedin"))
    );
}

#[test]
fn linkedin_login_stores_a_new_token_and_the_next_refresh_is_healthy() {
    let (env, s) = setup(linkedin());
    let before = env.ev(&["auth", "refresh", "linkedin", "--json"]);
    assert_eq!(before.code, 1);
    assert_eq!(before.json()["results"][0]["state"], "reauth_required");

    let (url, stderr) = login_via_loopback(&env, &["linkedin"]);
    let q = query(&url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], s.client_id("linkedin"));
    assert!(
        q["redirect_uri"].starts_with("http://127.0.0.1:")
            && q["redirect_uri"].ends_with("/callback")
    );
    assert!(q["state"].len() >= 32, "an unguessable state");

    let [new] = stored_tokens(&env, &stderr, ["LINKEDIN_ACCESS_TOKEN"]);
    assert_ne!(new, s.token("linkedin"));
    assert!(env.sim.sim().linkedin_is_valid_access(&new));
    assert!(
        stderr.contains("Stored LINKEDIN_ACCESS_TOKEN (expires "),
        "{stderr}"
    );
    assert!(
        stderr.contains("no refresh token"),
        "says a standard app cannot refresh: {stderr}"
    );
    assert_expiry_stored(&env, "LINKEDIN_ACCESS_TOKEN");
    assert_eq!(common::mode(&env.work().join("credentials.yaml")), 0o600);

    let after = refresh_ok(&env, "linkedin");
    assert_eq!(after.json()["results"][0]["state"], "ok");
}

#[test]
fn a_redirect_with_the_wrong_state_is_refused_and_nothing_is_stored() {
    let (env, s) = setup(linkedin());
    let mut login = Login::loopback(&env, &["linkedin"]);
    let (_, location) = get(&login.authorize_url());
    let forged = location.unwrap().replace("state=", "state=forged");
    assert_eq!(get(&forged).0, 400);
    let stderr = login.fails(&env);
    assert!(stderr.contains("state"), "{stderr}");
    assert_old_token_kept(&env, &s);
}

#[test]
fn a_refused_consent_is_reported() {
    let (env, _) = setup(linkedin());
    let mut login = Login::loopback(&env, &["linkedin"]);
    let q = query(&login.authorize_url());
    let denied = format!(
        "{}?error=user_cancelled_authorize&error_description=The+member+declined&state={}",
        q["redirect_uri"], q["state"]
    );
    assert_eq!(get(&denied).0, 400);
    let stderr = login.fails(&env);
    assert!(
        stderr.contains("user_cancelled_authorize") && stderr.contains("hint:"),
        "{stderr}"
    );
}

#[test]
fn login_usage_errors_exit_2() {
    let (env, _) = setup(linkedin());
    let out = env.ev(&["auth", "login", "myspace", "--no-browser"]);
    assert_exit(&out, 2, "unknown platform");
    let out = env.ev(&["auth", "login", "tiktok", "--no-browser", "--port", "0"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn youtube_login_uses_pkce_and_offline_consent_and_stores_a_refresh_token() {
    let (env, _) = setup(scenario::login("youtube"));
    let (url, stderr) = login_via_loopback(&env, &["youtube"]);
    let q = query(&url);
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(
        stderr.contains("Testing"),
        "warns about Testing mode: {stderr}"
    );
    stored_tokens(&env, &stderr, ["YOUTUBE_REFRESH_TOKEN"]);
    refresh_ok(&env, "youtube");
}

#[test]
fn tiktok_login_stores_both_tokens_with_their_expiries() {
    // A desktop app, with its redirect registered as TikTok's console stores it.
    let tiktok = scenario::login("tiktok")
        .client(Client::Desktop)
        .redirect("http://127.0.0.1:*/callback")
        .accounts(&["brand-a"]);
    let (env, s) = setup(tiktok);
    let (url, stderr) = login_via_loopback(&env, &["tiktok", "--account", "brand-a"]);
    let client_key = format!("client_key={}", s.client_id("tiktok"));
    assert!(url.contains(&client_key), "{url}");
    assert_hex_pkce(&url);
    let [rt, _at] = stored_tokens(
        &env,
        &stderr,
        [
            "TIKTOK_REFRESH_TOKEN_BRAND_A",
            "TIKTOK_ACCESS_TOKEN_BRAND_A",
        ],
    );
    assert!(env.sim.sim().tiktok_is_live(&rt));
    assert_expiry_stored(&env, "TIKTOK_REFRESH_TOKEN_BRAND_A");
    refresh_ok(&env, "tiktok");
}

#[test]
fn instagram_login_exchanges_for_the_long_lived_token() {
    let redirect = "https://app.example/evertoken/instagram/";
    let (env, _) = setup(scenario::login("instagram").redirect(redirect));
    // Meta takes no loopback redirect: refused before anything starts.
    let out = env.ev(&["auth", "login", "instagram", "--no-browser"]);
    assert_exit(&out, 2, "--redirect-uri https://");
    assert_eq!(env.sim.sim().oauth_codes_issued(), 0);

    // Meta appends `#_` to the redirect; it is not part of the code and the
    // client must strip it (the simulator redeems the code exactly as sent).
    let mut login = Login::pasted(&env, "instagram", redirect);
    let (_, landed) = login.paste_consent(redirect);
    assert!(landed.ends_with("#_"), "{landed}");
    let stderr = login.succeeds();
    let [token] = stored_tokens(&env, &stderr, ["INSTAGRAM_ACCESS_TOKEN"]);
    let exp = env
        .sim
        .sim()
        .instagram_expires_at(&token)
        .expect("a token the simulator issued");
    assert!(
        exp > common::days_from(jiff::Timestamp::now(), 50),
        "the ~60-day token, not the 1-hour one"
    );
    refresh_ok(&env, "instagram");
}

#[test]
fn a_partner_app_login_also_stores_the_refresh_token() {
    let (env, _) = setup(linkedin().client(Client::Partner));
    let (_, stderr) = login_via_loopback(&env, &["linkedin"]);
    stored_tokens(
        &env,
        &stderr,
        ["LINKEDIN_REFRESH_TOKEN", "LINKEDIN_ACCESS_TOKEN"],
    );
    assert!(!stderr.contains("no refresh token"), "{stderr}");
    assert_expiry_stored(&env, "LINKEDIN_REFRESH_TOKEN");
    refresh_ok(&env, "linkedin");
}

#[test]
fn every_platform_logs_in_through_an_https_redirect_and_a_pasted_address() {
    const REDIRECT: &str = "https://app.example/evertoken/callback/";
    type Check = fn(&HashMap<String, String>);
    // (platform, the tokens it stores, its credential first; what its authorize
    // request carries besides the redirect URI).
    let cases: [(Platform, &[&str], Check); 3] = [
        // LinkedIn (a partner app: both tokens).
        (
            linkedin().client(Client::Partner),
            &["LINKEDIN_ACCESS_TOKEN", "LINKEDIN_REFRESH_TOKEN"],
            |_| {},
        ),
        // YouTube (Google, PKCE base64url).
        (
            scenario::login("youtube"),
            &["YOUTUBE_REFRESH_TOKEN"],
            |q| assert_eq!(q["code_challenge"].len(), 43),
        ),
        // TikTok as a web app: https redirect, no PKCE.
        (
            scenario::login("tiktok"),
            &["TIKTOK_REFRESH_TOKEN", "TIKTOK_ACCESS_TOKEN"],
            |q| assert!(!q.contains_key("code_challenge"), "{q:?}"),
        ),
    ];
    for (p, tokens, check) in cases {
        let key = p.key();
        let (env, s) = setup(p.redirect(REDIRECT));
        let (url, stderr) = login_via_paste(&env, key, REDIRECT);
        let q = query(&url);
        assert_eq!(
            q["redirect_uri"], REDIRECT,
            "the URI verbatim, slash and all"
        );
        check(&q);
        let tokens = stored(&env, &stderr, tokens);
        assert!(s.is_live(&env.sim.sim(), key, &tokens[0]), "{key}");
        refresh_ok(&env, key);
    }
}

#[test]
fn a_tiktok_web_app_cannot_use_the_loopback_desktop_flow() {
    let (env, _) = setup(scenario::login("tiktok"));
    let mut login = Login::loopback(&env, &["tiktok", "--timeout", "3"]);
    let (status, _) = get(&login.authorize_url());
    assert_eq!(
        status, 400,
        "TikTok refuses a loopback redirect for a web app"
    );
    login.fails(&env);
    assert!(env.stored("TIKTOK_REFRESH_TOKEN").is_none());
}

#[test]
fn a_login_can_be_finished_later_with_callback_url() {
    let redirect = "https://app.example/li/";
    let (env, _) = setup(linkedin().redirect(redirect));
    // First run: nothing pasted (stdin closed). It says how to finish.
    let mut login = Login::redirect_uri(&env, "linkedin", redirect);
    let url = login.authorize_url();
    let stderr = login.fails(&env);
    assert!(stderr.contains("--callback-url"), "{stderr}");
    let landed = get(&url).1.unwrap();
    let finish = |redirect: &str| {
        let args = ["auth", "login", "linkedin", "--redirect-uri", redirect];
        env.ev(&[&args[..], &["--callback-url", &landed]].concat())
    };

    // Another redirect URI than the one the login started with: refused.
    let out = finish("https://app.example/other/");
    assert_exit(&out, 2, "same --redirect-uri");

    let out = finish(redirect);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let [new] = stored_tokens(&env, &out.stderr, ["LINKEDIN_ACCESS_TOKEN"]);
    assert!(env.sim.sim().linkedin_is_valid_access(&new));

    // The waiting login is spent: the same address cannot be used twice.
    assert_exit(&finish(redirect), 1, "no LinkedIn login is waiting");
}

#[test]
fn pasted_addresses_that_do_not_belong_to_the_login_are_refused() {
    let redirect = "https://app.example/li/";
    for (tamper, expect) in [
        ("state", "state"),
        ("error", "access_denied"),
        ("nocode", "neither a `code`"),
        ("elsewhere", "not the redirect URI"),
    ] {
        let (env, s) = setup(linkedin());
        let mut login = Login::pasted(&env, "linkedin", redirect);
        let url = login.authorize_url();
        let state = query(&url)["state"].clone();
        let landed = get(&url).1.unwrap();
        let pasted = match tamper {
            "state" => landed.replace("state=", "state=forged"),
            "error" => {
                format!("{redirect}?error=access_denied&error_description=declined&state={state}")
            }
            "nocode" => format!("{redirect}?state={state}"),
            _ => landed.replace("app.example", "evil.example"),
        };
        login.line_starting("Paste that whole address");
        login.paste(&pasted);
        let stderr = login.fails(&env);
        assert!(
            stderr.contains(expect) && stderr.contains("hint:"),
            "{tamper}: {stderr}"
        );
        assert_old_token_kept(&env, &s);
    }
}

#[test]
fn an_http_redirect_to_another_host_is_refused_before_starting() {
    let (env, _) = setup(linkedin());
    for bad in [
        "http://app.example/cb",
        "https://app.example/cb#frag",
        "app.example/cb",
    ] {
        let out = env.ev(&[
            "auth",
            "login",
            "linkedin",
            "--no-browser",
            "--redirect-uri",
            bad,
        ]);
        assert_exit(&out, 2, "--redirect-uri");
    }
    assert_eq!(env.sim.sim().oauth_codes_issued(), 0);
    // --callback-url alone makes no sense.
    let out = env.ev(&[
        "auth",
        "login",
        "linkedin",
        "--callback-url",
        "https://app.example/cb?code=x",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn a_loopback_redirect_uri_is_served_verbatim() {
    // The console stores `http://127.0.0.1:PORT/callback/` with its slash: the
    // listener answers that path, and the exchange repeats the URI exactly.
    let redirect = format!("http://127.0.0.1:{}/callback/", free_port("127.0.0.1"));
    let (env, _) = setup(linkedin().redirect(&redirect));
    let mut login = Login::redirect_uri(&env, "linkedin", &redirect);
    let url = login.authorize_url();
    assert_eq!(query(&url)["redirect_uri"], redirect);
    browse(&url);
    login.succeeds();
}

/// TikTok's desktop docs list `https://127.0.0.1:3455/callback/`: an https
/// redirect on a loopback host is a desktop app, so the authorize request carries
/// the hex PKCE challenge although the address is pasted, not served.
#[test]
fn a_tiktok_desktop_app_with_an_https_loopback_redirect_uses_hex_pkce() {
    let redirect = "https://127.0.0.1:3455/callback/";
    let tiktok = scenario::login("tiktok").client(Client::Desktop);
    let (env, _) = setup(tiktok.redirect(redirect));
    let (url, stderr) = login_via_paste(&env, "tiktok", redirect);
    assert_hex_pkce(&url);
    let [rt, _at] = stored_tokens(
        &env,
        &stderr,
        ["TIKTOK_REFRESH_TOKEN", "TIKTOK_ACCESS_TOKEN"],
    );
    assert!(env.sim.sim().tiktok_is_live(&rt));
}

/// `--redirect-uri http://[::1]:PORT/…` is served on `[::1]`, the address the
/// browser will be sent to, not on 127.0.0.1.
#[test]
fn an_ipv6_loopback_redirect_is_served_on_ipv6() {
    let port = free_port("[::1]");
    let redirect = format!("http://[::1]:{port}/callback");
    let (env, _) = setup(linkedin().redirect(&redirect));
    let mut login = Login::redirect_uri(&env, "linkedin", &redirect);
    let url = login.authorize_url();
    assert_eq!(query(&url)["redirect_uri"], redirect);
    // `browse` checks the CLI answers on [::1].
    let callback = browse(&url);
    assert!(
        callback.starts_with(&format!("http://[::1]:{port}/callback?")),
        "{callback}"
    );
    let stderr = login.succeeds();
    stored_tokens(&env, &stderr, ["LINKEDIN_ACCESS_TOKEN"]);
}
