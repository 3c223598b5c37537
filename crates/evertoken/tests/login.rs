//! `auth login`: the authorization-code flow, driven without a browser. Loopback:
//! the test reads the printed authorize URL, follows the simulator's redirect by
//! hand (as a browser would) to the CLI's loopback callback. Pasted callback
//! (`--redirect-uri https://…`): the test pastes the address the simulator
//! redirected to on the CLI's stdin, or passes it with `--callback-url`. Then it
//! checks the stored tokens and that the next refresh is healthy.

use crate::common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::TestEnv;

const LI_SECRET: &str = "li-client-secret-test-not-a-real-secret";
const OLD_ACCESS: &str = "li-old-access-test-not-a-real-secret";

fn get(url: &str) -> (u16, Option<String>) {
    common::http_get(url)
}

/// `evertoken auth login <args>` running in the background, its stderr lines
/// arriving on a channel.
struct Login {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Login {
    fn start(env: &TestEnv, args: &[&str]) -> Login {
        Self::spawn(env, args, false)
    }

    /// With stdin piped, for [`Login::paste`].
    fn start_piped(env: &TestEnv, args: &[&str]) -> Login {
        Self::spawn(env, args, true)
    }

    /// Types `line` on the CLI's stdin, as a user pasting the browser's address.
    fn paste(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin is piped");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    fn spawn(env: &TestEnv, args: &[&str], piped: bool) -> Login {
        let mut c = env.std_cmd();
        c.args(["auth", "login"])
            .args(args)
            .stdin(if piped { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Login {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first stderr line starting with `prefix`.
    fn line_starting(&mut self, prefix: &str) -> String {
        loop {
            let l = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| {
                    panic!(
                        "no line starting with {prefix}; stderr so far:\n{}",
                        self.seen.join("\n")
                    )
                });
            self.seen.push(l.clone());
            if l.starts_with(prefix) {
                return l;
            }
        }
    }

    /// Waits for the exit; (code, whole stderr).
    fn finish(mut self) -> (i32, String) {
        let status = self.child.wait().unwrap();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(l);
        }
        (status.code().unwrap_or(-1), self.seen.join("\n"))
    }
}

/// Drives the browser's part: authorize URL → provider redirect → loopback callback.
fn consent(login: &mut Login, env: &TestEnv, authorize_path: &str) -> String {
    let url = login.line_starting(&format!("{}{authorize_path}", env.base_url()));
    let (status, location) = get(&url);
    assert_eq!(status, 302, "the authorize endpoint redirects");
    let mut callback = location.expect("a Location to the loopback callback");
    assert!(
        callback.starts_with("http://127.0.0.1:") && callback.contains("/callback?"),
        "{callback}"
    );
    // A browser does not send the fragment (Instagram appends `#_`).
    if let Some(i) = callback.find('#') {
        callback.truncate(i);
    }
    let (status, _) = get(&callback);
    assert_eq!(status, 200, "the CLI's callback page");
    url
}

/// The pasted-callback flow: reads the authorize URL, lets the simulator redirect
/// (to an https page nobody serves), and pastes that address. Returns the
/// authorize URL.
fn paste_consent(login: &mut Login, env: &TestEnv, authorize_path: &str, redirect: &str) -> String {
    let url = login.line_starting(&format!("{}{authorize_path}", env.base_url()));
    let (status, location) = get(&url);
    assert_eq!(status, 302, "the authorize endpoint redirects");
    let landed = location.expect("a Location");
    assert!(landed.starts_with(&format!("{redirect}?")), "{landed}");
    login.line_starting("Paste that whole address");
    login.paste(&landed);
    url
}

fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn linkedin_env() -> TestEnv {
    let env = TestEnv::new();
    env.secret(LI_SECRET);
    env.secret(OLD_ACCESS);
    env.sim
        .sim()
        .linkedin_add_client("test-li-client", LI_SECRET);
    let base = env.base_url();
    env.config(&format!("platforms:\n  linkedin: {{ enabled: true, client_id: test-li-client, base_url: \"{base}\", auth_url: \"{base}\" }}\n"));
    // An access token three days from expiry: `auth refresh` wants a re-auth.
    let exp = common::days_from(jiff::Timestamp::now(), 3);
    env.credentials(&format!("LINKEDIN_ACCESS_TOKEN:\n  value: \"{OLD_ACCESS}\"\n  expires_at: {exp}\nLINKEDIN_CLIENT_SECRET: \"{LI_SECRET}\"\n"));
    env
}

#[test]
fn linkedin_login_stores_a_new_token_and_the_next_refresh_is_healthy() {
    let env = linkedin_env();
    let before = env.ev(&["auth", "refresh", "linkedin", "--json"]);
    assert_eq!(before.code, 1);
    assert_eq!(before.json()["results"][0]["state"], "reauth_required");

    let mut login = Login::start(&env, &["linkedin", "--no-browser", "--port", "0"]);
    let url = consent(&mut login, &env, "/oauth/v2/authorization?");
    let (code, stderr) = login.finish();
    assert_eq!(code, 0, "{stderr}");
    let u = url::Url::parse(&url).unwrap();
    let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "test-li-client");
    assert!(
        q["redirect_uri"].starts_with("http://127.0.0.1:")
            && q["redirect_uri"].ends_with("/callback")
    );
    assert!(q["state"].len() >= 32, "an unguessable state");

    let new = env.stored("LINKEDIN_ACCESS_TOKEN").unwrap();
    env.secret(&new);
    env.assert_no_leak(&stderr);
    assert_ne!(new, OLD_ACCESS);
    assert!(env.sim.sim().linkedin_is_valid_access(&new));
    assert!(
        stderr.contains("Stored LINKEDIN_ACCESS_TOKEN (expires "),
        "{stderr}"
    );
    assert!(
        stderr.contains("no refresh token"),
        "says a standard app cannot refresh: {stderr}"
    );
    let creds = env.read_credentials();
    assert!(
        creds["LINKEDIN_ACCESS_TOKEN"]["expires_at"]
            .as_str()
            .is_some(),
        "the expiry is stored"
    );
    assert_eq!(common::mode(&env.work().join("credentials.yaml")), 0o600);

    let after = env.ev(&["auth", "refresh", "linkedin", "--json"]);
    assert_eq!(after.code, 0, "{}", after.stderr);
    assert_eq!(after.json()["results"][0]["state"], "ok");
}

#[test]
fn a_redirect_with_the_wrong_state_is_refused_and_nothing_is_stored() {
    let env = linkedin_env();
    let mut login = Login::start(&env, &["linkedin", "--no-browser", "--port", "0"]);
    let url = login.line_starting(&format!("{}/oauth/v2/authorization?", env.base_url()));
    let (_, location) = get(&url);
    let forged = location.unwrap().replace("state=", "state=forged");
    let (status, _) = get(&forged);
    assert_eq!(status, 400);
    let (code, stderr) = login.finish();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("state"), "{stderr}");
    assert_eq!(
        env.stored("LINKEDIN_ACCESS_TOKEN").as_deref(),
        Some(OLD_ACCESS)
    );
}

#[test]
fn a_refused_consent_is_reported() {
    let env = linkedin_env();
    let mut login = Login::start(&env, &["linkedin", "--no-browser", "--port", "0"]);
    let url = login.line_starting(&format!("{}/oauth/v2/authorization?", env.base_url()));
    let u = url::Url::parse(&url).unwrap();
    let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
    let denied = format!(
        "{}?error=user_cancelled_authorize&error_description=The+member+declined&state={}",
        q["redirect_uri"], q["state"]
    );
    assert_eq!(get(&denied).0, 400);
    let (code, stderr) = login.finish();
    assert_eq!(code, 1);
    assert!(
        stderr.contains("user_cancelled_authorize") && stderr.contains("hint:"),
        "{stderr}"
    );
}

#[test]
fn login_usage_errors_exit_2() {
    let env = linkedin_env();
    let out = env.ev(&["auth", "login", "myspace", "--no-browser"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("unknown platform"), "{}", out.stderr);
    let out = env.ev(&["auth", "login", "tiktok", "--no-browser", "--port", "0"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn youtube_login_uses_pkce_and_offline_consent_and_stores_a_refresh_token() {
    let env = TestEnv::new();
    let secret = env.secret("yt-client-secret-test-not-a-real-secret");
    env.sim
        .sim()
        .google_add_client("test-yt.apps.googleusercontent.com", &secret);
    let base = env.base_url();
    env.config(&format!("platforms:\n  youtube: {{ enabled: true, client_id: test-yt.apps.googleusercontent.com, base_url: \"{base}\", auth_url: \"{base}\" }}\n"));
    env.credentials(&format!("YOUTUBE_CLIENT_SECRET: \"{secret}\"\n"));
    let mut login = Login::start(&env, &["youtube", "--no-browser", "--port", "0"]);
    let url = consent(&mut login, &env, "/o/oauth2/v2/auth?");
    let (code, stderr) = login.finish();
    assert_eq!(code, 0, "{stderr}");
    let q: std::collections::HashMap<_, _> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(
        stderr.contains("Testing"),
        "warns about Testing mode: {stderr}"
    );
    let rt = env.stored("YOUTUBE_REFRESH_TOKEN").unwrap();
    env.secret(&rt);
    env.assert_no_leak(&stderr);
    let after = env.ev(&["auth", "refresh", "youtube", "--json"]);
    assert_eq!(after.code, 0, "{}", after.stderr);
}

#[test]
fn tiktok_login_stores_both_tokens_with_their_expiries() {
    let env = TestEnv::new();
    let secret = env.secret("tt-client-secret-test-not-a-real-secret");
    // A desktop app, with its redirect registered as TikTok's console stores it.
    env.sim
        .sim()
        .tiktok_add_desktop_client("test-tt-key", &secret);
    env.sim
        .sim()
        .oauth_register_redirect("tiktok", "test-tt-key", "http://127.0.0.1:*/callback");
    let base = env.base_url();
    env.config(&format!("platforms:\n  tiktok: {{ enabled: true, client_key: test-tt-key, base_url: \"{base}\", auth_url: \"{base}\", accounts: [brand-a] }}\n"));
    env.credentials(&format!("TIKTOK_CLIENT_SECRET: \"{secret}\"\n"));
    let mut login = Login::start(
        &env,
        &[
            "tiktok",
            "--account",
            "brand-a",
            "--no-browser",
            "--port",
            "0",
        ],
    );
    let url = consent(&mut login, &env, "/v2/auth/authorize/?");
    let (code, stderr) = login.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(url.contains("client_key=test-tt-key"), "{url}");
    // TikTok's desktop PKCE: S256 as 64 lowercase hex digits, not base64url.
    let q = query(&url);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 64, "{url}");
    assert!(
        q["code_challenge"]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{url}"
    );
    let rt = env.stored("TIKTOK_REFRESH_TOKEN_BRAND_A").unwrap();
    let at = env.stored("TIKTOK_ACCESS_TOKEN_BRAND_A").unwrap();
    env.secret(&rt);
    env.secret(&at);
    env.assert_no_leak(&stderr);
    assert!(env.sim.sim().tiktok_is_live(&rt));
    let creds = env.read_credentials();
    assert!(
        creds["TIKTOK_REFRESH_TOKEN_BRAND_A"]["expires_at"]
            .as_str()
            .is_some()
    );
    let after = env.ev(&["auth", "refresh", "tiktok", "--json"]);
    assert_eq!(after.code, 0, "{}", after.stderr);
}

#[test]
fn instagram_login_exchanges_for_the_long_lived_token() {
    let env = TestEnv::new();
    let secret = env.secret("ig-app-secret-test-not-a-real-secret");
    env.sim.sim().instagram_add_app("1234567890", &secret);
    let redirect = "https://app.example/evertoken/instagram/";
    env.sim
        .sim()
        .oauth_register_redirect("instagram", "1234567890", redirect);
    let base = env.base_url();
    env.config(&format!("platforms:\n  instagram: {{ enabled: true, app_id: \"1234567890\", base_url: \"{base}\", auth_url: \"{base}\" }}\n"));
    env.credentials(&format!("INSTAGRAM_APP_SECRET: \"{secret}\"\n"));
    // Meta takes no loopback redirect: refused before anything starts.
    let out = env.ev(&["auth", "login", "instagram", "--no-browser"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--redirect-uri https://"),
        "{}",
        out.stderr
    );
    assert_eq!(env.sim.sim().oauth_codes_issued(), 0);

    let mut login = Login::start_piped(
        &env,
        &["instagram", "--no-browser", "--redirect-uri", redirect],
    );
    // Meta appends `#_` to the redirect; it is not part of the code and the
    // client must strip it (the simulator redeems the code exactly as sent).
    let url = login.line_starting(&format!("{}/oauth/authorize?", env.base_url()));
    let (status, location) = get(&url);
    assert_eq!(status, 302);
    let landed = location.unwrap();
    assert!(landed.ends_with("#_"), "{landed}");
    login.line_starting("Paste that whole address");
    login.paste(&landed);
    let (code, stderr) = login.finish();
    assert_eq!(code, 0, "{stderr}");
    let token = env.stored("INSTAGRAM_ACCESS_TOKEN").unwrap();
    env.secret(&token);
    env.assert_no_leak(&stderr);
    let exp = env
        .sim
        .sim()
        .instagram_expires_at(&token)
        .expect("a token the simulator issued");
    assert!(
        exp > common::days_from(jiff::Timestamp::now(), 50),
        "the ~60-day token, not the 1-hour one"
    );
    let after = env.ev(&["auth", "refresh", "instagram", "--json"]);
    assert_eq!(after.code, 0, "{}", after.stderr);
}

#[test]
fn a_partner_app_login_also_stores_the_refresh_token() {
    let env = linkedin_env();
    env.sim
        .sim()
        .linkedin_set_programmatic_refresh("test-li-client", true);
    let mut login = Login::start(&env, &["linkedin", "--no-browser", "--port", "0"]);
    consent(&mut login, &env, "/oauth/v2/authorization?");
    let (code, stderr) = login.finish();
    assert_eq!(code, 0, "{stderr}");
    let rt = env
        .stored("LINKEDIN_REFRESH_TOKEN")
        .expect("the refresh token is stored");
    let at = env.stored("LINKEDIN_ACCESS_TOKEN").unwrap();
    env.secret(&rt);
    env.secret(&at);
    env.assert_no_leak(&stderr);
    assert!(!stderr.contains("no refresh token"), "{stderr}");
    let creds = env.read_credentials();
    assert!(
        creds["LINKEDIN_REFRESH_TOKEN"]["expires_at"]
            .as_str()
            .is_some()
    );
    let after = env.ev(&["auth", "refresh", "linkedin", "--json"]);
    assert_eq!(after.code, 0, "{}", after.stderr);
}

#[test]
fn every_platform_logs_in_through_an_https_redirect_and_a_pasted_address() {
    let redirect = "https://app.example/evertoken/callback/";
    // LinkedIn (a partner app: both tokens).
    let env = linkedin_env();
    env.sim
        .sim()
        .linkedin_set_programmatic_refresh("test-li-client", true);
    env.sim
        .sim()
        .oauth_register_redirect("linkedin", "test-li-client", redirect);
    let mut login = Login::start_piped(
        &env,
        &["linkedin", "--no-browser", "--redirect-uri", redirect],
    );
    let url = paste_consent(&mut login, &env, "/oauth/v2/authorization?", redirect);
    let (code, stderr) = login.finish();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        query(&url)["redirect_uri"],
        redirect,
        "the URI verbatim, slash and all"
    );
    let at = env.stored("LINKEDIN_ACCESS_TOKEN").unwrap();
    let rt = env.stored("LINKEDIN_REFRESH_TOKEN").unwrap();
    env.secret(&at);
    env.secret(&rt);
    env.assert_no_leak(&stderr);
    assert!(env.sim.sim().linkedin_is_valid_access(&at));

    // YouTube (Google, PKCE base64url).
    let env = TestEnv::new();
    let secret = env.secret("yt-client-secret-test-not-a-real-secret");
    env.sim
        .sim()
        .google_add_client("test-yt.apps.googleusercontent.com", &secret);
    env.sim
        .sim()
        .oauth_register_redirect("google", "test-yt.apps.googleusercontent.com", redirect);
    let base = env.base_url();
    env.config(&format!("platforms:\n  youtube: {{ enabled: true, client_id: test-yt.apps.googleusercontent.com, base_url: \"{base}\", auth_url: \"{base}\" }}\n"));
    env.credentials(&format!("YOUTUBE_CLIENT_SECRET: \"{secret}\"\n"));
    let mut login = Login::start_piped(
        &env,
        &["youtube", "--no-browser", "--redirect-uri", redirect],
    );
    let url = paste_consent(&mut login, &env, "/o/oauth2/v2/auth?", redirect);
    let (code, stderr) = login.finish();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(query(&url)["code_challenge"].len(), 43);
    let rt = env.stored("YOUTUBE_REFRESH_TOKEN").unwrap();
    env.secret(&rt);
    env.assert_no_leak(&stderr);
    assert!(env.sim.sim().google_is_valid(&rt));

    // TikTok as a web app: https redirect, no PKCE.
    let env = TestEnv::new();
    let secret = env.secret("tt-client-secret-test-not-a-real-secret");
    env.sim.sim().tiktok_add_client("test-tt-web", &secret);
    env.sim
        .sim()
        .oauth_register_redirect("tiktok", "test-tt-web", redirect);
    let base = env.base_url();
    env.config(&format!("platforms:\n  tiktok: {{ enabled: true, client_key: test-tt-web, base_url: \"{base}\", auth_url: \"{base}\" }}\n"));
    env.credentials(&format!("TIKTOK_CLIENT_SECRET: \"{secret}\"\n"));
    let mut login = Login::start_piped(
        &env,
        &["tiktok", "--no-browser", "--redirect-uri", redirect],
    );
    let url = paste_consent(&mut login, &env, "/v2/auth/authorize/?", redirect);
    let (code, stderr) = login.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(!query(&url).contains_key("code_challenge"), "{url}");
    let rt = env.stored("TIKTOK_REFRESH_TOKEN").unwrap();
    let at = env.stored("TIKTOK_ACCESS_TOKEN").unwrap();
    env.secret(&rt);
    env.secret(&at);
    env.assert_no_leak(&stderr);
    assert!(env.sim.sim().tiktok_is_live(&rt));
    let after = env.ev(&["auth", "refresh", "tiktok", "--json"]);
    assert_eq!(after.code, 0, "{}", after.stderr);
}

#[test]
fn a_tiktok_web_app_cannot_use_the_loopback_desktop_flow() {
    let env = TestEnv::new();
    let secret = env.secret("tt-client-secret-test-not-a-real-secret");
    env.sim.sim().tiktok_add_client("test-tt-web", &secret);
    let base = env.base_url();
    env.config(&format!("platforms:\n  tiktok: {{ enabled: true, client_key: test-tt-web, base_url: \"{base}\", auth_url: \"{base}\" }}\n"));
    env.credentials(&format!("TIKTOK_CLIENT_SECRET: \"{secret}\"\n"));
    let mut login = Login::start(
        &env,
        &["tiktok", "--no-browser", "--port", "0", "--timeout", "3"],
    );
    let url = login.line_starting(&format!("{}/v2/auth/authorize/?", env.base_url()));
    let (status, _) = get(&url);
    assert_eq!(
        status, 400,
        "TikTok refuses a loopback redirect for a web app"
    );
    let (code, _) = login.finish();
    assert_eq!(code, 1);
    assert!(env.stored("TIKTOK_REFRESH_TOKEN").is_none());
}

#[test]
fn a_login_can_be_finished_later_with_callback_url() {
    let env = linkedin_env();
    let redirect = "https://app.example/li/";
    env.sim
        .sim()
        .oauth_register_redirect("linkedin", "test-li-client", redirect);
    // First run: nothing pasted (stdin closed). It says how to finish.
    let mut login = Login::start(
        &env,
        &["linkedin", "--no-browser", "--redirect-uri", redirect],
    );
    let url = login.line_starting(&format!("{}/oauth/v2/authorization?", env.base_url()));
    let (code, stderr) = login.finish();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("--callback-url"), "{stderr}");
    let (_, landed) = get(&url);
    let landed = landed.unwrap();

    // Another redirect URI than the one the login started with: refused.
    let out = env.ev(&[
        "auth",
        "login",
        "linkedin",
        "--redirect-uri",
        "https://app.example/other/",
        "--callback-url",
        &landed,
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("same --redirect-uri"), "{}", out.stderr);

    let out = env.ev(&[
        "auth",
        "login",
        "linkedin",
        "--redirect-uri",
        redirect,
        "--callback-url",
        &landed,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let new = env.stored("LINKEDIN_ACCESS_TOKEN").unwrap();
    env.secret(&new);
    env.assert_no_leak(&out.stderr);
    assert!(env.sim.sim().linkedin_is_valid_access(&new));

    // The waiting login is spent: the same address cannot be used twice.
    let again = env.ev(&[
        "auth",
        "login",
        "linkedin",
        "--redirect-uri",
        redirect,
        "--callback-url",
        &landed,
    ]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains("no LinkedIn login is waiting"),
        "{}",
        again.stderr
    );
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
        let env = linkedin_env();
        let mut login = Login::start_piped(
            &env,
            &["linkedin", "--no-browser", "--redirect-uri", redirect],
        );
        let url = login.line_starting(&format!("{}/oauth/v2/authorization?", env.base_url()));
        let state = query(&url)["state"].clone();
        let (_, landed) = get(&url);
        let landed = landed.unwrap();
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
        let (code, stderr) = login.finish();
        assert_eq!(code, 1, "{tamper}: {stderr}");
        assert!(
            stderr.contains(expect) && stderr.contains("hint:"),
            "{tamper}: {stderr}"
        );
        assert_eq!(
            env.stored("LINKEDIN_ACCESS_TOKEN").as_deref(),
            Some(OLD_ACCESS)
        );
    }
}

#[test]
fn an_http_redirect_to_another_host_is_refused_before_starting() {
    let env = linkedin_env();
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
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert!(out.stderr.contains("--redirect-uri"), "{}", out.stderr);
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
    let env = linkedin_env();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redirect = format!("http://127.0.0.1:{port}/callback/");
    env.sim
        .sim()
        .oauth_register_redirect("linkedin", "test-li-client", &redirect);
    let mut login = Login::start(
        &env,
        &["linkedin", "--no-browser", "--redirect-uri", &redirect],
    );
    let url = login.line_starting(&format!("{}/oauth/v2/authorization?", env.base_url()));
    assert_eq!(query(&url)["redirect_uri"], redirect);
    let (status, location) = get(&url);
    assert_eq!(status, 302);
    assert_eq!(get(&location.unwrap()).0, 200);
    let (code, stderr) = login.finish();
    assert_eq!(code, 0, "{stderr}");
}

/// TikTok's desktop docs list `https://127.0.0.1:3455/callback/`: an https
/// redirect on a loopback host is a desktop app, so the authorize request carries
/// the hex PKCE challenge although the address is pasted, not served.
#[test]
fn a_tiktok_desktop_app_with_an_https_loopback_redirect_uses_hex_pkce() {
    let env = TestEnv::new();
    let secret = env.secret("tt-client-secret-test-not-a-real-secret");
    let redirect = "https://127.0.0.1:3455/callback/";
    env.sim
        .sim()
        .tiktok_add_desktop_client("test-tt-desk", &secret);
    env.sim
        .sim()
        .oauth_register_redirect("tiktok", "test-tt-desk", redirect);
    let base = env.base_url();
    env.config(&format!("platforms:\n  tiktok: {{ enabled: true, client_key: test-tt-desk, base_url: \"{base}\", auth_url: \"{base}\" }}\n"));
    env.credentials(&format!("TIKTOK_CLIENT_SECRET: \"{secret}\"\n"));
    let mut login = Login::start_piped(
        &env,
        &["tiktok", "--no-browser", "--redirect-uri", redirect],
    );
    let url = paste_consent(&mut login, &env, "/v2/auth/authorize/?", redirect);
    let (code, stderr) = login.finish();
    assert_eq!(code, 0, "{stderr}");
    let q = query(&url);
    assert_eq!(q["code_challenge_method"], "S256", "{url}");
    assert_eq!(q["code_challenge"].len(), 64, "{url}");
    assert!(
        q["code_challenge"]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{url}"
    );
    let rt = env.stored("TIKTOK_REFRESH_TOKEN").unwrap();
    let at = env.stored("TIKTOK_ACCESS_TOKEN").unwrap();
    env.secret(&rt);
    env.secret(&at);
    env.assert_no_leak(&stderr);
    assert!(env.sim.sim().tiktok_is_live(&rt));
}

/// `--redirect-uri http://[::1]:PORT/…` is served on `[::1]`, the address the
/// browser will be sent to, not on 127.0.0.1.
#[test]
fn an_ipv6_loopback_redirect_is_served_on_ipv6() {
    let env = linkedin_env();
    let port = std::net::TcpListener::bind("[::1]:0")
        .expect("IPv6 loopback")
        .local_addr()
        .unwrap()
        .port();
    let redirect = format!("http://[::1]:{port}/callback");
    env.sim
        .sim()
        .oauth_register_redirect("linkedin", "test-li-client", &redirect);
    let mut login = Login::start(
        &env,
        &["linkedin", "--no-browser", "--redirect-uri", &redirect],
    );
    let url = login.line_starting(&format!("{}/oauth/v2/authorization?", env.base_url()));
    assert_eq!(query(&url)["redirect_uri"], redirect);
    let (status, location) = get(&url);
    assert_eq!(status, 302);
    let callback = location.unwrap();
    assert!(
        callback.starts_with(&format!("http://[::1]:{port}/callback?")),
        "{callback}"
    );
    assert_eq!(get(&callback).0, 200, "the CLI answers on [::1]");
    let (code, stderr) = login.finish();
    assert_eq!(code, 0, "{stderr}");
    let at = env.stored("LINKEDIN_ACCESS_TOKEN").unwrap();
    env.secret(&at);
    env.assert_no_leak(&stderr);
}
