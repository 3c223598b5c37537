//! GitHub App installation tokens, against the simulator: mint, the token
//! env file, status, `token`, clock skew, git's credential helper, gh's stored
//! auth, GitHub Actions masking, and bootstrap with its systemd units.

use crate::common;

use std::path::{Path, PathBuf};

use common::{TestEnv, apps, mode, require_tool, set_mode};

const APP_ID: u64 = 4242;
const INSTALLATION: u64 = 777;

/// A simulator with one app installed on `sim-org`, its key at `work/app.pem`
/// (0600) and a config pointing at the simulator; `extra` is appended to the app.
fn setup(extra: &str) -> TestEnv {
    let env = TestEnv::new();
    apps::install(&env, APP_ID, INSTALLATION, "sim-org", &[]);
    apps::write_key(&env);
    env.config(&app_config(&env, extra));
    env
}

fn app_config(env: &TestEnv, extra: &str) -> String {
    let mut s = format!(
        "github:\n  apps:\n    default:\n      app_id: {APP_ID}\n      private_key_path: app.pem\n      api_url: {}\n",
        env.base_url()
    );
    if !extra.contains("installation_id") && !extra.contains("owner") {
        s.push_str(&format!("      installation_id: {INSTALLATION}\n"));
    }
    for line in extra.lines().filter(|l| !l.trim().is_empty()) {
        s.push_str(&format!("      {}\n", line.trim()));
    }
    s
}

fn token_file(env: &TestEnv) -> PathBuf {
    env.path("config/evertoken/github-token.env")
}

/// The token in the env file.
fn stored_token(env: &TestEnv) -> String {
    apps::token_in(&token_file(env))
}

fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[test]
fn refresh_writes_a_0600_env_file_with_a_token_github_accepts() {
    let env = setup("");
    let out = env.ev(&["github", "refresh"]);
    out.expect_code(0);
    let path = token_file(&env);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(&path).unwrap();
    let token = env.secret(&stored_token(&env));
    assert!(token.starts_with("ghs_"), "{token:.4}");
    assert!(text.contains(&format!("GITHUB_TOKEN={token}\n")));
    let exp = text
        .lines()
        .find_map(|l| l.strip_prefix("GITHUB_TOKEN_EXPIRES_AT="))
        .unwrap();
    assert!(exp.parse::<jiff::Timestamp>().is_ok(), "expiry `{exp}`");
    assert!(env.sim.sim().github_is_valid_token(&token));
    // stderr names the prefix, never the token (TestEnv::run scans for it).
    out.stderr_has(&[&token[..8]]);
}

#[test]
fn status_shows_only_the_prefix_and_judges_missing_and_stale_tokens() {
    let env = setup("");
    env.ev(&["github", "status"])
        .expect_code(1)
        .stdout_has(&["missing", "evertoken github refresh"]);

    assert_eq!(env.ev(&["github", "refresh"]).code, 0);
    let token = env.secret(&stored_token(&env));
    let human = env.ev(&["github", "status"]);
    human.expect_code(0);
    assert!(human.stdout.contains(&token[..8]));
    assert!(!human.stdout.contains(&token));

    let js = env.ev(&["github", "status", "--json"]);
    js.expect_code(0);
    let v = js.json();
    assert_eq!(v["version"], 1);
    assert_eq!(v["app"], "default");
    assert_eq!(v["healthy"], true);
    assert_eq!(v["token_file"]["present"], true);
    assert_eq!(v["token_file"]["stale"], false);
    assert_eq!(v["token_file"]["age_minutes"], 0);
    let prefix = v["token_file"]["prefix"].as_str().unwrap();
    assert!(
        prefix.ends_with('…') && token.starts_with(prefix.trim_end_matches('…')),
        "{prefix}"
    );
    assert_eq!(v["gh"]["checked"], false);
    assert!(v["timer"]["state"].is_string());

    // Two hours later the same file is stale and expired: exit 1, says what to do.
    let later = rfc3339(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2));
    let old = env.ev_at(&later, &["github", "status", "--json"], &[]);
    old.expect_code(1);
    let v = old.json();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["token_file"]["stale"], true);
    assert!(
        v["problems"][0]
            .as_str()
            .unwrap()
            .contains("evertoken github refresh"),
        "{v}"
    );
}

#[test]
fn a_key_readable_by_others_is_refused_with_the_chmod_fix() {
    let env = setup("");
    let key = env.work().join("app.pem");
    set_mode(&key, 0o644);
    env.ev(&["github", "refresh"])
        .expect_code(2)
        .stderr_has(&[&format!("chmod 600 {}", key.display())]);
    assert_eq!(env.sim.sim().github_tokens_issued(), 0);
    assert!(!token_file(&env).exists());
}

#[test]
fn a_wrong_installation_id_names_the_installation() {
    let env = setup("installation_id: 999001");
    let out = env.ev(&["github", "refresh"]);
    out.expect_code(1)
        .stderr_has(&["installation 999001", "404"]);
    out.stderr_has(&["hint:"]);
}

#[test]
fn the_installation_is_looked_up_from_the_owner() {
    let env = setup("owner: sim-org");
    env.ev(&["github", "refresh"])
        .expect_code(0)
        .stderr_has(&[&format!("installation {INSTALLATION}")]);
    let none = setup("owner: nobody-here");
    none.ev(&["github", "refresh"])
        .expect_code(1)
        .stderr_has(&["not installed on the installation on nobody-here"]);
}

#[test]
fn token_prints_a_usable_token_and_reuses_a_fresh_one() {
    let env = setup("");
    env.sim.sim().github_set_token_style(true);
    let first = env.ev(&["github", "token"]);
    first.expect_code(0);
    let token = first.stdout.strip_suffix('\n').expect("one line");
    assert!(!token.contains('\n'));
    // The stateless ~520-character form works like any other token.
    assert!(token.len() > 400, "{}", token.len());
    assert!(env.sim.sim().github_is_valid_token(token));
    assert_eq!(stored_token(&env), token);
    let second = env.ev(&["github", "token"]);
    assert_eq!(second.stdout, first.stdout);
    assert_eq!(env.sim.sim().github_tokens_issued(), 1);
    // Close to expiry (an hour later), it mints again.
    let later = rfc3339(jiff::Timestamp::now() + jiff::SignedDuration::from_mins(58));
    let third = env.ev_at(&later, &["github", "token"], &[]);
    third.expect_code(0);
    assert_ne!(third.stdout, first.stdout);
    assert_eq!(env.sim.sim().github_tokens_issued(), 2);
}

#[test]
fn clock_skew_is_corrected_once_from_githubs_date_header() {
    let env = setup("");
    // The local clock is 20 minutes behind GitHub's: the JWT looks expired.
    let behind = rfc3339(jiff::Timestamp::now() - jiff::SignedDuration::from_mins(20));
    env.ev_at(&behind, &["github", "refresh"], &[])
        .expect_code(0)
        .stderr_has(&["behind GitHub's", "NTP"]);
    assert_eq!(env.sim.sim().github_tokens_issued(), 1);
    assert_eq!(
        env.sim.sim().request_count(evertoken_sim::Route::GitHubApp),
        2
    );
}

#[test]
fn narrowing_to_a_repository_the_installation_lacks_explains_422() {
    let env = TestEnv::new();
    apps::install(&env, APP_ID, INSTALLATION, "sim-org", &["repo-a"]);
    apps::write_key(&env);
    env.config(&app_config(&env, "repositories: [repo-b]"));
    env.ev(&["github", "refresh"])
        .expect_code(1)
        .stderr_has(&["422", "not granted"]);
}

#[test]
fn verify_and_revoke_previous_keep_one_live_token() {
    let env = setup("verify: true\nrevoke_previous: true");
    assert_eq!(env.ev(&["github", "refresh"]).code, 0);
    let first = stored_token(&env);
    let out = env.ev(&["github", "refresh"]);
    out.expect_code(0);
    let second = stored_token(&env);
    assert_ne!(first, second);
    let sim = env.sim.sim();
    assert!(!sim.github_is_valid_token(&first));
    assert!(sim.github_is_valid_token(&second));
    assert_eq!(sim.github_revoked_count(), 1);
    out.stderr_has(&["revoked the previous token"]);
}

#[test]
fn git_credential_fill_returns_the_token() {
    let Some(git) = require_tool("git") else {
        return;
    };
    let env = setup("host: github.com");
    let config = env.work().join("evertoken.yaml");
    let bin = assert_cmd::cargo::cargo_bin("evertoken");
    let helper = format!("!'{}' github git-credential", bin.display());
    let mut git_cmd = std::process::Command::new(&git);
    for v in apps::AMBIENT_GITHUB_VARS
        .iter()
        .chain(&["GIT_DIR", "GIT_CONFIG_GLOBAL"])
    {
        git_cmd.env_remove(v);
    }
    git_cmd
        .current_dir(env.work())
        .env("HOME", env.home())
        .env("XDG_CONFIG_HOME", env.path("config"))
        .env("XDG_STATE_HOME", env.path("state"))
        .env("EVERTOKEN_CONFIG", &config)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("SSH_ASKPASS", "/bin/false")
        .args(["-c", "credential.helper=", "-c"])
        .arg(format!("credential.helper={helper}"))
        .args(["credential", "fill"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = git_cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"protocol=https\nhost=github.com\npath=sim-org/repo.git\n\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = stored_token(&env);
    common::assert_contains(&stdout, &["username=x-access-token\n"]);
    assert!(stdout.contains(&format!("password={token}\n")));
    assert!(env.sim.sim().github_is_valid_token(&token));
    // store and erase are accepted and change nothing.
    for op in ["store", "erase"] {
        let o = env.run(
            env.cmd()
                .args(["github", "git-credential", op])
                .write_stdin("protocol=https\nhost=github.com\n\n"),
        );
        o.expect_code(0);
        assert!(o.stdout.is_empty());
    }
    // Another host: nothing, so git asks its next helper.
    let other = env.run(
        env.cmd()
            .args(["github", "git-credential", "get"])
            .write_stdin("protocol=https\nhost=gitlab.com\n\n"),
    );
    other.expect_code(0);
    assert!(other.stdout.is_empty());
}

#[test]
fn github_actions_masks_the_token_before_anything_else() {
    let env = setup("");
    let out = env.ev_env(&["github", "refresh"], &[("GITHUB_ACTIONS", "true")]);
    out.expect_code(0);
    let token = stored_token(&env);
    assert_eq!(out.stdout, format!("::add-mask::{token}\n"));
    // `github token` keeps stdout to the token alone; the mask goes first on stderr.
    let later = rfc3339(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2));
    let t = env.ev_at(&later, &["github", "token"], &[("GITHUB_ACTIONS", "true")]);
    t.expect_code(0);
    let new = stored_token(&env);
    assert_eq!(t.stdout, format!("{new}\n"));
    assert!(
        t.stderr.starts_with(&format!("::add-mask::{new}\n")),
        "{}",
        t.stderr
    );
}

/// A stand-in `gh` that records its argv, its stdin and whether GH_TOKEN reached it.
fn fake_gh(dir: &Path) -> PathBuf {
    let bin = dir.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{rec}/argv'\nif [ \"$1 $2\" = 'auth login' ]; then cat > '{rec}/stdin'; \
         echo \"GH_TOKEN=${{GH_TOKEN:-unset}} GITHUB_TOKEN=${{GITHUB_TOKEN:-unset}}\" > '{rec}/env'; fi\nexit 0\n",
        rec = dir.display()
    );
    let gh = bin.join("gh");
    std::fs::write(&gh, script).unwrap();
    set_mode(&gh, 0o755);
    bin
}

#[test]
fn gh_gets_the_token_on_stdin_never_in_argv_and_without_gh_token() {
    let env = setup("gh_cli: true\nhost: github.com");
    let rec = env.path("gh-record");
    let bin = fake_gh(&rec);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = env.ev_env(
        &["github", "refresh"],
        &[
            ("PATH", &path),
            ("GH_TOKEN", "test-stale-gh-token-not-a-real-secret"),
        ],
    );
    out.expect_code(0);
    let token = stored_token(&env);
    let argv = std::fs::read_to_string(rec.join("argv")).unwrap();
    assert_eq!(argv, "auth\nlogin\n--hostname\ngithub.com\n--with-token\n");
    assert!(!argv.contains(&token));
    assert_eq!(
        std::fs::read_to_string(rec.join("stdin")).unwrap(),
        format!("{token}\n")
    );
    assert_eq!(
        std::fs::read_to_string(rec.join("env")).unwrap(),
        "GH_TOKEN=unset GITHUB_TOKEN=unset\n"
    );
    // The consumer's GH_TOKEN shadows gh's stored auth: said, with the fix.
    out.stderr_has(&["GH_TOKEN is set in this environment"]);
}

#[test]
fn gh_missing_is_explained_and_fails_the_refresh_after_writing_the_file() {
    let env = setup("gh_cli: true");
    let empty = env.path("emptybin");
    std::fs::create_dir_all(&empty).unwrap();
    env.ev_env(&["github", "refresh"], &[("PATH", empty.to_str().unwrap())])
        .expect_code(1)
        .stderr_has(&["`gh` (the GitHub CLI) is not installed", "gh_cli: false"]);
    assert!(token_file(&env).exists());
    let st = env.ev_env(
        &["github", "status", "--json"],
        &[("PATH", empty.to_str().unwrap())],
    );
    st.expect_code(1);
    assert_eq!(st.json()["gh"]["authenticated"], false);
}

/// The real gh (Debian's package). gh validates a token against its host over
/// HTTPS for github.com and GHES hosts; for `github.localhost` it uses plain HTTP
/// to `api.github.localhost`, which an HTTP proxy (the simulator, which serves
/// absolute-form requests) can answer. gh stores the token in `$GH_CONFIG_DIR/hosts.yml`.
#[test]
fn real_gh_uses_the_minted_token() {
    let Some(gh) = require_tool("gh") else { return };
    let env = setup("gh_cli: true\nhost: github.localhost");
    let gh_dir = env.path("gh-config");
    let proxy = env.base_url();
    let gh_env = [
        ("GH_CONFIG_DIR", gh_dir.as_os_str()),
        ("HTTP_PROXY", proxy.as_ref()),
        ("http_proxy", proxy.as_ref()),
        ("NO_PROXY", "127.0.0.1".as_ref()),
        ("no_proxy", "127.0.0.1".as_ref()),
    ];
    let out = env.run(env.cmd().envs(gh_env).args(["github", "refresh"]));
    out.expect_code(0);
    let token = stored_token(&env);
    let shown = common::tool_ok(
        std::process::Command::new(&gh)
            .envs(gh_env)
            .env("HOME", env.home())
            .env_remove("GH_TOKEN")
            .env_remove("GITHUB_TOKEN")
            .args(["auth", "token", "--hostname", "github.localhost"]),
        "gh auth token",
    );
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), token);
    let hosts = std::fs::read_to_string(gh_dir.join("hosts.yml")).unwrap();
    assert!(hosts.contains("github.localhost"));
    // No keyring here: gh keeps it in plain text, and evertoken says so.
    out.stderr_has(&["plain text"]);
    let st = env.run(env.cmd().envs(gh_env).args(["github", "status", "--json"]));
    st.expect_code(0);
    assert_eq!(st.json()["gh"]["authenticated"], true);
}

fn snapshot(paths: &[PathBuf]) -> Vec<(PathBuf, Vec<u8>, u32)> {
    paths
        .iter()
        .map(|p| {
            (
                p.clone(),
                std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
                mode(p),
            )
        })
        .collect()
}

#[test]
fn bootstrap_twice_produces_the_same_files_and_valid_units() {
    let env = TestEnv::new();
    apps::install(&env, APP_ID, INSTALLATION, "sim-org", &[]);
    // The config lives where evertoken looks by default; it already points at the simulator.
    let cfg_dir = env.path("config/evertoken");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    let cfg = cfg_dir.join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "github:\n  apps:\n    default:\n      api_url: {}\n      gh_cli: false\n",
            env.base_url()
        ),
    )
    .unwrap();
    let staged = env.path("staged-github-app.pem");
    apps::write_key_to(&staged, 0o644);
    let args = apps::bootstrap_args(&staged);
    let first = env.ev(&args);
    first.expect_code(0);
    let key = cfg_dir.join("github-app.pem");
    let units = env.path("config/systemd/user");
    let service = units.join("evertoken-github-token-refresh.service");
    let timer = units.join("evertoken-github-token-refresh.timer");
    let files = [
        key.clone(),
        cfg.clone(),
        service.clone(),
        timer.clone(),
        token_file(&env),
    ];
    let before = snapshot(&files);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(
        std::fs::read(&key).unwrap(),
        std::fs::read(&staged).unwrap()
    );
    first.stderr_has(&[&format!("rm -f {}", staged.display())]);
    let conf = std::fs::read_to_string(&cfg).unwrap();
    common::assert_contains(
        &conf,
        &[
            "app_id: 4242",
            "installation_id: 777",
            &format!("private_key_path: {}", key.display()),
        ],
    );
    let svc = std::fs::read_to_string(&service).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("evertoken");
    common::assert_contains(
        &svc,
        &[&format!(
            "ExecStart={} --config {} github refresh --app default",
            bin.display(),
            cfg.display()
        )],
    );
    let tmr = std::fs::read_to_string(&timer).unwrap();
    for line in [
        "OnBootSec=45min",
        "OnUnitActiveSec=45min",
        "Persistent=true",
        "WantedBy=timers.target",
    ] {
        common::assert_contains(&tmr, &[line]);
    }
    assert_eq!(env.sim.sim().github_tokens_issued(), 1);
    assert!(env.sim.sim().github_is_valid_token(&stored_token(&env)));

    let second = env.ev(&args);
    second.expect_code(0);
    assert_eq!(
        snapshot(&files),
        before,
        "a second bootstrap changed a file"
    );
    second.stderr_has(&["config unchanged"]);
    assert_eq!(env.sim.sim().github_tokens_issued(), 1);

    // --remove-source deletes the staged copy.
    env.ev(&[&args[..], &["--remove-source"]].concat())
        .expect_code(0);
    assert!(!staged.exists());
    assert_eq!(snapshot(&files), before);

    // The units are valid for systemd itself.
    let Some(msg) = common::systemd_verify(&env, false, &[&service, &timer]) else {
        return;
    };
    assert!(
        !msg.contains("evertoken-github-token-refresh"),
        "systemd-analyze verify complained: {msg}"
    );
}

#[test]
fn flow_explains_the_architecture() {
    let env = setup("gh_cli: true");
    let out = env.ev(&["github", "flow"]);
    out.expect_code(0);
    for part in [
        "work/app.pem",
        "github-token.env",
        "45 minutes",
        "gh auth login",
        "evertoken github status",
    ] {
        assert!(out.stdout.contains(part), "{part}: {}", out.stdout);
    }
}

#[test]
fn ghes_api_url_keeps_its_api_v3_path() {
    let env = setup("");
    // GitHub Enterprise Server: https://HOST/api/v3 (the simulator serves both).
    env.config(&app_config(&env, "").replace(
        &format!("api_url: {}\n", env.base_url()),
        &format!("api_url: {}/api/v3\n", env.base_url()),
    ));
    env.ev(&["github", "refresh"]).expect_code(0);
    assert!(env.sim.sim().github_is_valid_token(&stored_token(&env)));
    // The path of api_url is kept (only a prefix GitHub does not serve fails, naming the URL).
    env.config(&app_config(&env, "").replace(
        &format!("api_url: {}\n", env.base_url()),
        &format!("api_url: {}/elsewhere/api/v3\n", env.base_url()),
    ));
    env.ev(&["github", "refresh"])
        .expect_code(1)
        .stderr_has(&["/elsewhere/api/v3/app/installations/777/access_tokens"]);
}

#[test]
fn concurrent_token_requests_mint_once() {
    let env = setup("");
    let outputs: Vec<String> = env
        .run_concurrently(
            (0..4)
                .map(|_| {
                    let mut c = env.std_cmd();
                    c.args(["github", "token"]);
                    c
                })
                .collect(),
        )
        .into_iter()
        .map(|o| {
            o.expect_code(0);
            o.stdout
        })
        .collect();
    assert!(
        outputs.iter().all(|o| o == &outputs[0]),
        "runs printed different tokens"
    );
    assert_eq!(env.sim.sim().github_tokens_issued(), 1);
}

#[test]
fn the_source_scripts_environment_variables_still_work() {
    let env = setup("");
    // Only the API URL in the config; app, installation and key from the environment.
    env.config(&format!(
        "github:\n  apps:\n    default:\n      api_url: {}\n",
        env.base_url()
    ));
    let key = env.work().join("app.pem");
    env.ev_env(
        &["github", "refresh"],
        &[
            ("GITHUB_APP_ID", &APP_ID.to_string()),
            ("GITHUB_APP_INSTALLATION_ID", &INSTALLATION.to_string()),
            ("GITHUB_APP_PRIVATE_KEY_PATH", key.to_str().unwrap()),
        ],
    )
    .expect_code(0);
    assert!(env.sim.sim().github_is_valid_token(&stored_token(&env)));
    // Without them, the error says which key or variable to set.
    env.ev(&["github", "refresh"])
        .expect_code(2)
        .stderr_has(&["github.apps.default.app_id", "GITHUB_APP_ID"]);
}

/// Metrics on `github refresh|status`: the textfile-collector file carries
/// the token's expiry and the run's outcome, passes `promtool check metrics`, and
/// holds no token.
#[test]
fn github_refresh_and_status_write_metrics_files() {
    let env = setup("");
    let prom = env.path("metrics/github.prom");
    env.ev(&[
        "github",
        "refresh",
        "--metrics-file",
        prom.to_str().unwrap(),
    ])
    .expect_code(0);
    let token = env.secret(&stored_token(&env));
    let text = std::fs::read_to_string(&prom).unwrap();
    common::assert_contains(
        &text,
        &[
            "evertoken_credential_expiry_timestamp_seconds{",
            "evertoken_last_run_success{command=\"github\"} 1",
        ],
    );
    assert!(!text.contains(&token[..12]), "metrics carry no token");
    env.assert_no_leak(&text);
    common::promtool_check(&prom);
    env.ev(&["github", "status", "--metrics-file", prom.to_str().unwrap()])
        .expect_code(0);
    let text = std::fs::read_to_string(&prom).unwrap();
    common::assert_contains(&text, &["evertoken_last_run_success{command=\"github\"} 1"]);
}
