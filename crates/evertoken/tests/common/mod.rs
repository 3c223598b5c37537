//! The test environment every integration test uses: a throw-away HOME with XDG
//! dirs, a running simulator, a config writer, and `cmd()` returning the real
//! binary with a clean environment. Every output a test sees through [`TestEnv::run`]
//! is recorded and scanned for the registered test secrets (no output
//! ever contains a whole secret).
#![allow(dead_code)]

pub mod apps;
pub mod bao;
pub mod child;
pub mod login;
pub mod oidc;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use assert_cmd::Command;
use evertoken_sim::scenario::{Platform, Scenario, platform};
use evertoken_sim::{SimOptions, SimServer};

/// Variables the binary inherits from the test process; everything else is
/// cleared, so a developer's real setup (tokens, `EVERTOKEN_*`, Vault, GitLab,
/// GitHub, a keychain bus) never reaches a test. `USER`/`LOGNAME` name the OS
/// user (the schedule checks lingering); `LLVM_PROFILE_FILE` keeps coverage runs
/// counting the child.
const INHERIT: &[&str] = &["PATH", "USER", "LOGNAME", "TMPDIR", "LLVM_PROFILE_FILE"];

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Exit 0, and the first result `rotated`.
    pub fn assert_rotated(&self) {
        self.expect_code(0);
        assert_eq!(
            self.json()["results"][0]["state"],
            "rotated",
            "{}",
            self.stdout
        );
    }

    /// Fails unless the exit code is `code`, showing both streams.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// [`Output::expect_code`] for one case of a table, named on failure.
    #[track_caller]
    pub fn expect_code_for(&self, case: std::fmt::Arguments, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "{case}: exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// [`Output::stderr_has`] for one case of a table, named on failure.
    #[track_caller]
    pub fn stderr_has_for(&self, case: std::fmt::Arguments, needles: &[&str]) -> &Self {
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "{case}: expected `{n}` in:\n{}",
                self.stderr
            );
        }
        self
    }

    /// Fails unless stderr contains each of `needles`.
    #[track_caller]
    pub fn stderr_has(&self, needles: &[&str]) -> &Self {
        assert_contains(&self.stderr, needles);
        self
    }

    /// Fails unless stdout contains each of `needles`.
    #[track_caller]
    pub fn stdout_has(&self, needles: &[&str]) -> &Self {
        assert_contains(&self.stdout, needles);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub sim: SimServer,
    secrets: Mutex<Vec<String>>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        Self::with(SimOptions::default())
    }

    pub fn with(opts: SimOptions) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("evertoken-test-")
            .tempdir()
            .unwrap();
        for d in ["home", "config", "state", "work"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let sim = SimServer::start_background(opts).expect("simulator starts");
        TestEnv {
            dir,
            sim,
            secrets: Mutex::new(Vec::new()),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn home(&self) -> PathBuf {
        self.path("home")
    }
    /// The working directory of commands; `evertoken.yaml` here is found by default.
    pub fn work(&self) -> PathBuf {
        self.path("work")
    }
    pub fn state_dir(&self) -> PathBuf {
        self.path("state/evertoken")
    }
    pub fn base_url(&self) -> String {
        self.sim.base_url()
    }

    /// Registers a value that must never appear whole in any output.
    pub fn secret(&self, s: &str) -> String {
        self.secrets.lock().unwrap().push(s.to_owned());
        s.to_owned()
    }

    /// Writes `work/evertoken.yaml`.
    pub fn config(&self, yaml: &str) -> PathBuf {
        let p = self.work().join("evertoken.yaml");
        std::fs::write(&p, yaml).unwrap();
        p
    }

    /// Writes `work/credentials.yaml`, mode 0600.
    pub fn credentials(&self, yaml: &str) -> PathBuf {
        let p = self.work().join("credentials.yaml");
        std::fs::write(&p, yaml).unwrap();
        set_mode(&p, 0o600);
        p
    }

    /// Sets up `s`: seeds the simulator, registers every secret it made, writes
    /// `work/evertoken.yaml` and the store's files (mode 0600) below `work/`.
    /// A remote store's variables ([`Scenario::store_vars`]) are the test's to seed.
    pub fn scenario(&self, s: &Scenario) {
        self.scenario_without_files(s);
        for f in s.store_files() {
            let p = self.work().join(&f.path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, f.contents).unwrap();
            set_mode(&p, 0o600);
        }
    }

    /// [`TestEnv::scenario`] without the store's files.
    pub fn scenario_without_files(&self, s: &Scenario) {
        for secret in s.secrets() {
            self.secret(&secret);
        }
        s.seed(&self.sim.sim());
        self.config(&s.config_yaml(&self.base_url()));
    }

    /// [`TestEnv::cmd`] with the environment `s` gives the run
    /// ([`Scenario::env_vars`]: the store's credential, the client secrets the
    /// store does not hold).
    pub fn cmd_for(&self, s: &Scenario) -> Command {
        let mut c = self.cmd();
        c.envs(s.env_vars());
        c
    }

    /// `evertoken auth refresh all --json` in the environment of `s`, plus `vars`.
    pub fn refresh(&self, s: &Scenario, vars: &[(&str, &str)]) -> Output {
        let mut c = self.cmd_for(s);
        c.args(["auth", "refresh", "all", "--json"])
            .envs(vars.iter().copied());
        self.run(&mut c)
    }

    /// The simulator's GitLab with the project [`GITLAB_PROJECT`] (`acme/publisher`,
    /// id 4242) reached with API token `token`, registered as a secret; returns
    /// the simulator.
    ///
    /// [`GITLAB_PROJECT`]: evertoken_sim::scenario::GITLAB_PROJECT
    pub fn gitlab_project(&self, token: &str) -> evertoken_sim::Sim {
        use evertoken_sim::scenario::GITLAB_PROJECT;
        self.secret(token);
        let sim = self.sim.sim();
        sim.gitlab_add_token(token);
        sim.gitlab_add_project(GITLAB_PROJECT.0, GITLAB_PROJECT.1);
        sim
    }

    /// [`TestEnv::gitlab_project`] holding each `(key, value)` as a masked,
    /// protected variable; returns the `auth.writeback` value that stores there.
    pub fn gitlab_store(&self, token: &str, vars: &[(&str, &str)]) -> String {
        use evertoken_sim::scenario::GITLAB_PROJECT;
        let sim = self.gitlab_project(token);
        for (k, v) in vars {
            sim.gitlab_set_variable(
                evertoken_sim::GitLabScope::Project(GITLAB_PROJECT.0),
                evertoken_sim::GitLabVariable::masked_protected(k, v),
            );
        }
        format!(
            "{{ backend: gitlab, gitlab: {{ project: \"{}\", api_url: \"{}/api/v4\" }} }}",
            GITLAB_PROJECT.1,
            self.base_url()
        )
    }

    /// `work/tokens.env` with `text` (mode 0600); returns the `auth.writeback`
    /// value that stores there.
    pub fn env_file_store(&self, text: &str) -> String {
        let p = self.work().join("tokens.env");
        std::fs::write(&p, text).unwrap();
        set_mode(&p, 0o600);
        "{ backend: env-file, env_file: { path: tokens.env } }".to_owned()
    }

    /// Whether the journal holds a pending record (a kill during the journal's
    /// own atomic write leaves only a hidden temp file, which does not count).
    pub fn journal_pending(&self) -> bool {
        std::fs::read_dir(self.state_dir().join("journal"))
            .map(|d| {
                d.filter_map(|e| e.ok()).any(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    !n.starts_with('.') && n.ends_with(".json")
                })
            })
            .unwrap_or(false)
    }

    /// Starts every command at once (stdout and stderr piped), waits for each,
    /// and scans what each printed as [`TestEnv::run`] does.
    pub fn run_concurrently(&self, cmds: Vec<std::process::Command>) -> Vec<Output> {
        let children: Vec<_> = cmds
            .into_iter()
            .map(|mut c| {
                c.stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawns")
            })
            .collect();
        children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                let o = Output {
                    code: out.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                };
                self.assert_no_leak(&format!("{}\n{}", o.stdout, o.stderr));
                o
            })
            .collect()
    }

    /// How many requests the simulator counted under `stat` (`tiktok`,
    /// `linkedin_token`, …).
    pub fn calls(&self, stat: &str) -> u64 {
        self.sim
            .sim()
            .stats()
            .requests
            .get(stat)
            .copied()
            .unwrap_or(0)
    }

    /// The credentials file parses and is still private (mode 0600).
    #[track_caller]
    pub fn assert_credentials_intact(&self, what: &str) {
        self.read_credentials();
        assert_eq!(mode(&self.work().join("credentials.yaml")), 0o600, "{what}");
    }

    /// The one refresh token the simulator's TikTok accepts now.
    pub fn live_tiktok(&self) -> String {
        let live = self.sim.sim().tiktok_live_refresh_tokens();
        assert_eq!(
            live.len(),
            1,
            "exactly one live TikTok refresh token: {live:?}"
        );
        live[0].clone()
    }

    pub fn read_credentials(&self) -> serde_norway::Value {
        let text = std::fs::read_to_string(self.work().join("credentials.yaml")).unwrap();
        serde_norway::from_str(&text).unwrap()
    }

    /// The stored value of a variable in the credentials file (either form).
    pub fn stored(&self, var: &str) -> Option<String> {
        let doc = self.read_credentials();
        let v = doc.get(var)?;
        match v {
            serde_norway::Value::String(s) => Some(s.clone()),
            m => m.get("value").and_then(|x| x.as_str()).map(str::to_owned),
        }
    }

    /// The binary, in `work/`, with a cleared environment: [`INHERIT`], plus HOME
    /// and the XDG dirs pointing at the temp dirs, `CI=true` and `NO_COLOR=1`.
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// The same as [`TestEnv::cmd`], as a `std::process::Command` (to spawn, kill
    /// or race several at once).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("evertoken"));
        c.env_clear();
        for v in INHERIT {
            if let Some(val) = std::env::var_os(v) {
                c.env(v, val);
            }
        }
        c.current_dir(self.work())
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("CI", "true")
            .env("NO_COLOR", "1");
        c
    }

    /// Runs a command, records its output for the leak scan, and returns it.
    pub fn run(&self, cmd: &mut Command) -> Output {
        let out = cmd.output().expect("runs");
        let o = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.assert_no_leak(&format!("{}\n{}", o.stdout, o.stderr));
        o
    }

    /// `evertoken <args>` through [`TestEnv::run`].
    pub fn ev(&self, args: &[&str]) -> Output {
        self.run(self.cmd().args(args))
    }

    /// `evertoken <args>` with these variables set, through [`TestEnv::run`].
    pub fn ev_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut c = self.cmd();
        c.envs(vars.iter().copied()).args(args);
        self.run(&mut c)
    }

    /// `evertoken <args>` at the instant `now` (`EVERTOKEN_NOW`), with these
    /// variables set, through [`TestEnv::run`].
    pub fn ev_at(&self, now: &str, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut c = self.cmd();
        c.env("EVERTOKEN_NOW", now)
            .envs(vars.iter().copied())
            .args(args);
        self.run(&mut c)
    }

    /// Fails if `text` contains a registered secret, whole or in a common encoding.
    /// With `EVERTOKEN_LEAK_TALLY` naming a file, each scan is tallied there for
    /// docs/RELIABILITY.md (`scripts/reliability`).
    pub fn assert_no_leak(&self, text: &str) {
        let secrets = self.secrets.lock().unwrap();
        let mut forms = 0;
        for s in secrets.iter() {
            for form in encodings(s) {
                forms += 1;
                assert!(
                    !text.contains(&form),
                    "output leaks a test secret ({}…):\n{text}",
                    &s[..s.len().min(6)]
                );
            }
        }
        if let Some(path) = std::env::var_os("EVERTOKEN_LEAK_TALLY") {
            use std::io::Write;
            // One write(2) per line on an O_APPEND file: lines from parallel tests never interleave.
            let line = format!("{}\t{forms}\t0\n", text.len());
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = f.write_all(line.as_bytes());
            }
        }
    }
}

/// A secret and the forms it could leak in.
pub fn encodings(s: &str) -> Vec<String> {
    use base64::Engine as _;
    let mut v = vec![s.to_owned()];
    v.push(base64::engine::general_purpose::STANDARD.encode(s));
    v.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s));
    let url = url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    if url != s {
        v.push(url);
    }
    v
}

pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// The four built-in OAuth platforms of the fault matrices (`hostile`,
/// `provider_faults`); each file adds what it needs of them in its own `impl`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum P {
    Instagram,
    Youtube,
    Tiktok,
    Linkedin,
}

pub const ALL: [P; 4] = [P::Instagram, P::Youtube, P::Tiktok, P::Linkedin];

impl P {
    /// The platform's key: its config section and its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            P::Instagram => "instagram",
            P::Youtube => "youtube",
            P::Tiktok => "tiktok",
            P::Linkedin => "linkedin",
        }
    }
}

/// The write-back tests' TikTok refresh token, before it rotates.
pub const OLD_RT: &str = "rft.test-old-refresh-token-not-a-real-secret";

/// The write-back tests' platform: TikTok with [`OLD_RT`] (300 days left, no
/// access token yet: the first refresh rotates it), on the real clock.
pub fn tiktok() -> Platform {
    platform("tiktok").value(OLD_RT).expires_in_days(300)
}

/// [`tiktok`] against `store`, which holds the client secret too, with
/// `http: { retries: 1, timeout_seconds: 10 }`.
pub fn tiktok_against(store: evertoken_sim::scenario::Store) -> Scenario {
    Scenario::wall_clock()
        .with(tiktok())
        .store(store)
        .http("retries: 1, timeout_seconds: 10")
}

/// [`tiktok_against`] `store`, the client secret in the run's environment, as a
/// CI job has it.
pub fn tiktok_ci(store: evertoken_sim::scenario::Store) -> Scenario {
    tiktok_against(store).with(tiktok().client_secret_not_stored())
}

/// The fixed instant of the tests on a pinned clock (`EVERTOKEN_NOW`).
pub const NOW: &str = "2026-11-23T09:00:00Z";

/// [`NOW`] as a timestamp.
pub fn now() -> jiff::Timestamp {
    NOW.parse().unwrap()
}

/// `now` + days.
#[allow(unused_imports)]
pub use evertoken_sim::scenario::days_from;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A tool a test needs, as `scripts/setup-*` installs it below the repository
/// (the first of `installed` that is a file), else [`require_tool`] `name`.
pub fn test_tool(name: &str, installed: &[&str]) -> Option<PathBuf> {
    installed
        .iter()
        .map(|rel| repo_root().join(rel))
        .find(|p| p.is_file())
        .or_else(|| require_tool(name))
}

/// The venv with takopi and its ghauth plugin (`scripts/setup-takopi`), built on
/// first use. Under `CI=true` a venv that cannot be built fails the test;
/// elsewhere `None`, and the test is skipped.
pub fn takopi_venv() -> Option<PathBuf> {
    let venv = repo_root().join("target/test-tools/takopi-venv");
    if venv.join("bin/takopi").is_file() && venv.join("bin/python").is_file() {
        return Some(venv);
    }
    let out = std::process::Command::new(repo_root().join("scripts/setup-takopi")).output();
    let ok = matches!(&out, Ok(o) if o.status.success()) && venv.join("bin/takopi").is_file();
    if !ok {
        let why = match out {
            Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
            Err(e) => e.to_string(),
        };
        let msg = format!("the takopi venv could not be built (scripts/setup-takopi): {why}");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("skipping: {msg}");
        return None;
    }
    Some(venv)
}

/// `systemd-analyze verify` of `units` with this env's HOME and config dir (as
/// the user manager, `--user`, with a private runtime dir; else `--man=no`):
/// fails unless it exits 0, and returns what it said on stderr. `None` (outside
/// CI) where systemd-analyze is missing.
pub fn systemd_verify(env: &TestEnv, user_manager: bool, units: &[&Path]) -> Option<String> {
    let analyze = require_tool("systemd-analyze")?;
    let mut c = std::process::Command::new(analyze);
    if user_manager {
        let runtime = env.path("runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        set_mode(&runtime, 0o700);
        c.args(["--user", "verify"])
            .env("XDG_RUNTIME_DIR", &runtime);
    } else {
        c.args(["verify", "--man=no"]);
    }
    c.args(units)
        .env("HOME", env.home())
        .env("XDG_CONFIG_HOME", env.path("config"));
    let out = tool_ok(&mut c, "systemd-analyze verify");
    Some(String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A tool a test needs: its path, or (outside CI) `None` with a printed reason.
/// Under `CI=true` a missing tool fails the test: CI must never skip silently.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let msg = format!("`{name}` is not installed; run ./scripts/test, which installs it");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("skipping: {msg}");
    }
    found
}

/// `promtool check metrics` on the file: exit 0 and no lint complaint.
pub fn promtool_check(path: &Path) {
    let Some(promtool) = require_tool("promtool") else {
        return;
    };
    let out = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::from(
            std::fs::File::open(path).unwrap(),
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool rejects the metrics file:\n{}{}\n--- file ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap()
    );
}

/// A GET without following redirects, as a browser's first hop: (status,
/// Location). Reads bracketed IPv6 hosts (`[::1]`) too.
pub fn http_get(url: &str) -> (u16, Option<String>) {
    use std::io::{Read as _, Write as _};
    let u = url::Url::parse(url).unwrap();
    let mut s = std::net::TcpStream::connect(&*u.socket_addrs(|| None).unwrap()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let target = &u[url::Position::BeforePath..url::Position::AfterQuery];
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n\r\n",
        u.host_str().unwrap(),
        u.port().unwrap()
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let location = resp.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        l.split_once(':')
            .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
            .map(|(_, v)| v.trim().to_owned())
    });
    (status, location)
}

/// Fails unless `text` contains each of `needles`, showing `text`.
#[track_caller]
pub fn assert_contains(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "expected `{n}` in:\n{text}");
    }
}

/// Fails unless, for each `(key, needle)`, the string `v[key]` contains
/// `needle`, showing `v`.
#[track_caller]
pub fn assert_fields(v: &serde_json::Value, fields: &[(&str, &str)]) {
    for (key, needle) in fields {
        let s = v[*key]
            .as_str()
            .unwrap_or_else(|| panic!("`{key}` is not a string in {v:#}"));
        assert!(
            s.contains(needle),
            "expected `{needle}` in `{key}` of {v:#}"
        );
    }
}

/// The entry of `doc["results"]` whose `platform` is `platform`.
#[track_caller]
pub fn result<'a>(doc: &'a serde_json::Value, platform: &str) -> &'a serde_json::Value {
    doc["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {doc:#}"))
        .iter()
        .find(|r| r["platform"] == platform)
        .unwrap_or_else(|| panic!("no {platform} in {doc:#}"))
}

/// The `state` of each of `doc["results"]`, in order.
#[track_caller]
pub fn states(doc: &serde_json::Value) -> Vec<String> {
    doc["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {doc:#}"))
        .iter()
        .map(|r| r["state"].as_str().unwrap().to_owned())
        .collect()
}

/// The keys every result of `auth refresh|status --json` carries.
pub const RESULT_KEYS: &[&str] = &[
    "platform",
    "account",
    "state",
    "action",
    "expires_at",
    "refresh_expires_at",
    "message",
    "reauth_by",
];

/// Runs an outside tool (a linter, `openssl`, `git`): fails unless it exits 0,
/// showing `what` and both its streams; returns its output.
#[track_caller]
pub fn tool_ok(cmd: &mut std::process::Command, what: &str) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The SHA-256 of `s`, in lowercase hex.
pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every path below `root` (directories too), depth first.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    // Symlinked directories are followed (a key behind one counts), each once.
    let mut visited = std::collections::HashSet::new();
    while let Some(d) = stack.pop() {
        if !visited.insert(std::fs::canonicalize(&d).unwrap_or_else(|_| d.clone())) {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// A named pipe at `path`: a file that never ends when read.
pub fn mkfifo(path: &Path) {
    tool_ok(std::process::Command::new("mkfifo").arg(path), "mkfifo");
}
