//! Driving `auth login` without a browser. [`setup`] gives a login scenario
//! ([`evertoken_sim::scenario::login`]) its environment; [`Login`] runs the
//! command in the background and reads its stderr; [`Login::consent`] plays the
//! browser of a loopback login (authorize URL → provider redirect → the CLI's
//! listener), [`Login::paste_consent`] the user of a pasted one (the address the
//! provider redirected to, typed on stdin).

use std::collections::HashMap;
use std::io::Write as _;
use std::process::Stdio;

use evertoken_sim::scenario::{Platform, Scenario};

use super::child::Spawned;
use super::{Output, TestEnv};

/// A fresh environment with `p` set up on the real clock: the simulator knows
/// its app, the config signs in at the simulator, the store holds the secret.
pub fn setup(p: Platform) -> (TestEnv, Scenario) {
    let s = Scenario::wall_clock().with(p);
    let env = TestEnv::new();
    env.scenario(&s);
    (env, s)
}

/// Where `platform`'s authorize endpoint is on the simulator (with the `?`).
pub fn authorize_path(platform: &str) -> &'static str {
    match platform {
        "linkedin" => "/oauth/v2/authorization?",
        "youtube" => "/o/oauth2/v2/auth?",
        "tiktok" => "/v2/auth/authorize/?",
        "instagram" => "/oauth/authorize?",
        p => panic!("no authorize path for `{p}`"),
    }
}

/// A GET without following redirects: (status, Location).
pub fn get(url: &str) -> (u16, Option<String>) {
    super::http_get(url)
}

/// The query of `url`, decoded.
pub fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// A port free on `host` (`127.0.0.1`, `[::1]`) just now.
pub fn free_port(host: &str) -> u16 {
    std::net::TcpListener::bind(format!("{host}:0"))
        .unwrap_or_else(|e| panic!("bind {host}: {e}"))
        .local_addr()
        .unwrap()
        .port()
}

/// The browser's part of a loopback login: opens `url`, follows the provider's
/// redirect to the CLI's listener (which answers 200) and returns that address.
pub fn browse(url: &str) -> String {
    let (status, location) = get(url);
    assert_eq!(status, 302, "the authorize endpoint redirects");
    let mut callback = location.expect("a Location to the loopback callback");
    // A browser does not send the fragment (Instagram appends `#_`).
    if let Some(i) = callback.find('#') {
        callback.truncate(i);
    }
    assert_eq!(get(&callback).0, 200, "the CLI's callback page");
    callback
}

/// Each of `vars` is stored; registers each value as a secret and checks
/// `stderr` leaks none. The values, in order.
pub fn stored(env: &TestEnv, stderr: &str, vars: &[&str]) -> Vec<String> {
    let values = vars
        .iter()
        .map(|v| {
            let t = env.stored(v).unwrap_or_else(|| panic!("{v} is stored"));
            env.secret(&t)
        })
        .collect();
    env.assert_no_leak(stderr);
    values
}

/// [`stored`], as an array.
pub fn stored_tokens<const N: usize>(env: &TestEnv, stderr: &str, vars: [&str; N]) -> [String; N] {
    stored(env, stderr, &vars).try_into().unwrap()
}

/// A loopback login ([`Login::loopback`], [`Login::consent`]) that succeeds:
/// (authorize URL, stderr).
pub fn login_via_loopback(env: &TestEnv, args: &[&str]) -> (String, String) {
    let mut login = Login::loopback(env, args);
    let url = login.consent();
    (url, login.succeeds())
}

/// A pasted-callback login ([`Login::pasted`], [`Login::paste_consent`]) that
/// succeeds: (authorize URL, stderr).
pub fn login_via_paste(env: &TestEnv, platform: &str, redirect: &str) -> (String, String) {
    let mut login = Login::pasted(env, platform, redirect);
    let (url, _) = login.paste_consent(redirect);
    (url, login.succeeds())
}

/// The credentials file records `var`'s expiry.
pub fn assert_expiry_stored(env: &TestEnv, var: &str) {
    let creds = env.read_credentials();
    assert!(
        creds[var]["expires_at"].as_str().is_some(),
        "{var}'s expiry is stored"
    );
}

/// `out` exited `code` and its stderr says `says`.
pub fn assert_exit(out: &Output, code: i32, says: &str) {
    assert_eq!(out.code, code, "{}", out.stderr);
    assert!(out.stderr.contains(says), "{}", out.stderr);
}

/// `auth refresh <platform> --json` exits 0.
pub fn refresh_ok(env: &TestEnv, platform: &str) -> Output {
    let after = env.ev(&["auth", "refresh", platform, "--json"]);
    assert_eq!(after.code, 0, "{}", after.stderr);
    after
}

/// TikTok's desktop PKCE in the authorize URL: S256 as 64 lowercase hex digits,
/// not base64url.
pub fn assert_hex_pkce(url: &str) {
    let q = query(url);
    assert_eq!(q["code_challenge_method"], "S256", "{url}");
    assert_eq!(q["code_challenge"].len(), 64, "{url}");
    assert!(
        q["code_challenge"]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{url}"
    );
}

/// `evertoken auth login <args>` running in the background, its stderr lines
/// read as they come ([`Spawned`]).
pub struct Login {
    proc: Spawned,
    authorize: String,
}

impl Login {
    /// `auth login <args>`, stdin closed; `args` start with the platform.
    pub fn start(env: &TestEnv, args: &[&str]) -> Login {
        Self::spawn(env, args, false)
    }

    /// With stdin piped, for [`Login::paste`].
    pub fn start_piped(env: &TestEnv, args: &[&str]) -> Login {
        Self::spawn(env, args, true)
    }

    /// `auth login <args> --no-browser --port 0`: the loopback flow.
    pub fn loopback(env: &TestEnv, args: &[&str]) -> Login {
        Self::start(env, &[args, &["--no-browser", "--port", "0"]].concat())
    }

    /// `auth login <platform> --no-browser --redirect-uri <redirect>`, stdin
    /// closed.
    pub fn redirect_uri(env: &TestEnv, platform: &str, redirect: &str) -> Login {
        Self::start(env, &[platform, "--no-browser", "--redirect-uri", redirect])
    }

    /// [`Login::redirect_uri`] with stdin piped: the pasted-callback flow.
    pub fn pasted(env: &TestEnv, platform: &str, redirect: &str) -> Login {
        let args = [platform, "--no-browser", "--redirect-uri", redirect];
        Self::start_piped(env, &args)
    }

    fn spawn(env: &TestEnv, args: &[&str], piped: bool) -> Login {
        let mut c = env.std_cmd();
        let stdin = if piped { Stdio::piped() } else { Stdio::null() };
        c.args(["auth", "login"]).args(args).stdin(stdin);
        let authorize = format!("{}{}", env.base_url(), authorize_path(args[0]));
        Self::command(c, &authorize)
    }

    /// Any `auth login` command the caller has set up (its config, environment
    /// and stdin), printing an authorize URL that starts with `authorize`.
    pub fn command(mut c: std::process::Command, authorize: &str) -> Login {
        Login {
            proc: Spawned::spawn(&mut c),
            authorize: authorize.to_owned(),
        }
    }

    /// Types `line` on the CLI's stdin, as a user pasting the browser's address.
    pub fn paste(&mut self, line: &str) {
        let stdin = self.proc.child.stdin.as_mut().expect("stdin is piped");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The first stderr line starting with `prefix`.
    #[track_caller]
    pub fn line_starting(&mut self, prefix: &str) -> String {
        self.proc.line_starting(prefix)
    }

    /// The authorize URL it prints (the simulator's authorize endpoint).
    pub fn authorize_url(&mut self) -> String {
        let prefix = self.authorize.clone();
        self.line_starting(&prefix)
    }

    /// The browser's part of the loopback flow ([`browse`]), the listener on
    /// 127.0.0.1 at `/callback`. Returns the authorize URL.
    pub fn consent(&mut self) -> String {
        let url = self.authorize_url();
        let callback = browse(&url);
        assert!(
            callback.starts_with("http://127.0.0.1:") && callback.contains("/callback?"),
            "{callback}"
        );
        url
    }

    /// The pasted-callback flow: lets the simulator redirect to `redirect` (an
    /// https page nobody serves) and pastes that address when asked. Returns the
    /// authorize URL and the pasted address.
    pub fn paste_consent(&mut self, redirect: &str) -> (String, String) {
        let url = self.authorize_url();
        let (status, location) = get(&url);
        assert_eq!(status, 302, "the authorize endpoint redirects");
        let landed = location.expect("a Location");
        assert!(landed.starts_with(&format!("{redirect}?")), "{landed}");
        self.line_starting("Paste that whole address");
        self.paste(&landed);
        (url, landed)
    }

    /// Waits for the exit; (code, whole stderr).
    pub fn finish(self) -> (i32, String) {
        let (code, stderr, _) = self.proc.finish();
        (code, stderr)
    }

    /// [`Login::finish`], which must exit 0; the whole stderr.
    pub fn succeeds(self) -> String {
        let (code, stderr) = self.finish();
        assert_eq!(code, 0, "{stderr}");
        stderr
    }

    /// Waits for the exit, which must be 1, and scans both outputs for the
    /// test's secrets; the whole stderr.
    pub fn fails(self, env: &TestEnv) -> String {
        let (code, stderr, stdout) = self.proc.finish();
        assert_eq!(code, 1, "{stderr}");
        env.assert_no_leak(&stderr);
        env.assert_no_leak(&stdout);
        stderr
    }
}
