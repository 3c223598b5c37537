//! Issue 12: the `local` store's default, the OS keychain, against a real Secret
//! Service: Debian's `gnome-keyring` in a `dbus-run-session`, its login keyring
//! unlocked with a test password, read and written by evertoken (keyring v4 →
//! zbus Secret Service) and checked with `secret-tool` (libsecret-tools), as a
//! user would. And the headless path: no Secret Service → `auto` falls back to
//! the credentials file and says so, `required` refuses (exit 2).
//!
//! keyring v4 stores each value as an item with the attributes `service` =
//! `evertoken` and `username` = the variable name (label `keyring:VAR@evertoken`),
//! content type `application/octet-stream`; `secret-tool lookup service evertoken
//! username VAR` prints it.
//!
//! `gnome-keyring-daemon`, `secret-tool` and `dbus-run-session` come from
//! `scripts/apt-packages` (installed by ./scripts/test); under `CI=true` a missing
//! one fails these tests.

use crate::common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{OLD_RT, TestEnv, require_tool};
use evertoken_sim::scenario::{Scenario, Store};

const KEYRING_PASSWORD: &str = "test-keyring-password";

/// A private D-Bus session with gnome-keyring's Secret Service, unlocked; torn
/// down (session ended, daemon gone) on drop.
struct SecretService {
    /// `dbus-run-session`; it ends its bus (and gnome-keyring with it) when its
    /// child, a `sleep` whose pid is in `home/session`, is killed.
    session: Child,
    address: String,
    home: tempfile::TempDir,
}

impl SecretService {
    fn start() -> Option<SecretService> {
        let tools = ["dbus-run-session", "gnome-keyring-daemon", "secret-tool"];
        let found: Vec<_> = tools.iter().map(|t| require_tool(t)).collect();
        if found.iter().any(Option::is_none) {
            return None;
        }
        let home = tempfile::Builder::new()
            .prefix("evertoken-keyring-")
            .tempdir()
            .unwrap();
        let runtime = home.path().join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        common::set_mode(&runtime, 0o700);
        let ready = home.path().join("session");
        // Inside the session: unlock (creating) the login keyring with the test
        // password, publish the bus address and the holder's pid, then wait.
        let script = format!(
            "printf %s '{KEYRING_PASSWORD}' | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 1\n\
             printf '%s\\n%s\\n' \"$DBUS_SESSION_BUS_ADDRESS\" $$ > '{0}.tmp' && mv '{0}.tmp' '{0}'\n\
             exec sleep 600\n",
            ready.display()
        );
        let session = Command::new("dbus-run-session")
            .args(["--", "sh", "-c", &script])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dbus-run-session starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        let text = loop {
            if let Ok(t) = std::fs::read_to_string(&ready) {
                break t;
            }
            assert!(
                Instant::now() < deadline,
                "the Secret Service session did not come up"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut lines = text.lines();
        let address = lines.next().unwrap_or_default().to_owned();
        assert!(address.starts_with("unix:"), "bus address: {address:?}");
        Some(SecretService {
            session,
            address,
            home,
        })
    }

    /// A command in this session (the evertoken binary is given its env by the caller).
    fn apply(&self, c: &mut Command) {
        c.env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("XDG_RUNTIME_DIR", self.home.path().join("run"));
    }

    fn secret_tool(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let mut c = Command::new("secret-tool");
        self.apply(&mut c);
        c.env("HOME", self.home.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            let mut input = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                input.write_all(s.as_bytes()).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    }

    /// `secret-tool store` the way the docs tell a user to seed a value.
    fn store(&self, var: &str, value: &str) {
        let out = self.secret_tool(
            &[
                "store",
                "--label",
                &format!("evertoken {var}"),
                "service",
                "evertoken",
                "username",
                var,
            ],
            Some(value),
        );
        assert!(
            out.status.success(),
            "secret-tool store: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stores what the scenario's store holds ([`Scenario::store_vars`]).
    fn seed(&self, s: &Scenario) {
        for (var, value) in s.store_vars() {
            self.store(&var, &value);
        }
    }

    /// `secret-tool lookup service evertoken username VAR`.
    fn lookup(&self, var: &str) -> Option<String> {
        let out = self.secret_tool(&["lookup", "service", "evertoken", "username", var], None);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The attributes and metadata `secret-tool search` shows for VAR (no secret).
    fn describe(&self, var: &str) -> String {
        let out = self.secret_tool(&["search", "service", "evertoken", "username", var], None);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
            .filter(|l| !l.starts_with("secret ="))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(self.home.path().join("session"))
            .ok()
            .and_then(|t| t.lines().nth(1).and_then(|p| p.parse::<i32>().ok()))
        {
            // SAFETY: kill(2) of the `sleep` this test started inside its session.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        // dbus-run-session ends its bus (and gnome-keyring with it) when its child exits.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.session.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.session.kill();
        let _ = self.session.wait();
    }
}

/// TikTok against the local store with `keychain: <keychain>`; the token and the
/// client secret are the store's (in the file, without metadata, if the test
/// writes it).
fn rig(keychain: &'static str) -> (TestEnv, Scenario) {
    let env = TestEnv::new();
    env.secret(KEYRING_PASSWORD);
    let s = Scenario::wall_clock()
        .with(common::tiktok().store_records_expiry(false))
        .store(Store::local().keychain(keychain));
    (env, s)
}

fn credentials_path(env: &TestEnv) -> PathBuf {
    env.work().join("credentials.yaml")
}

/// Write-back into a real, unlocked gnome-keyring with `keychain: required`: the
/// rotated refresh token is in the keychain (read back with `secret-tool`), the
/// credentials file holds only metadata, and the next run reads the keychain.
#[test]
fn rotated_token_lands_in_a_real_secret_service() {
    let Some(ss) = SecretService::start() else {
        return;
    };
    let (env, s) = rig("required");
    env.scenario_without_files(&s);
    ss.seed(&s);
    let run = |args: &[&str]| {
        let mut c = env.std_cmd();
        ss.apply(&mut c);
        env.run(assert_cmd::Command::from_std(c).args(args))
    };

    let out = run(&["auth", "status", "--json"]);
    let doc = out.json();
    assert_eq!(
        doc["secrets"][0]["source"]["kind"], "keychain",
        "the client secret is read from the keychain: {}",
        out.stdout
    );
    assert_eq!(
        doc["results"][0]["credentials"][0]["source"]["kind"], "keychain",
        "{}",
        out.stdout
    );

    let out = run(&["auth", "refresh", "tiktok", "--json"]);
    out.assert_rotated();
    let live = env.sim.sim().tiktok_live_refresh_tokens();
    assert_eq!(live.len(), 1);
    let new = env.secret(&live[0]);
    assert_ne!(new, OLD_RT);
    assert_eq!(
        ss.lookup("TIKTOK_REFRESH_TOKEN").as_deref(),
        Some(new.as_str()),
        "secret-tool does not read the rotated token back"
    );
    // The access token went to the keychain too.
    let access = ss
        .lookup("TIKTOK_ACCESS_TOKEN")
        .expect("access token in the keychain");
    env.secret(&access);
    assert!(!access.is_empty() && !access.ends_with('\n'));
    // What keyring v4 wrote: the attributes secret-tool searches by.
    let item = ss.describe("TIKTOK_REFRESH_TOKEN");
    common::assert_contains(
        &item,
        &[
            "attribute.service = evertoken",
            "attribute.username = TIKTOK_REFRESH_TOKEN",
        ],
    );
    // The file beside the config keeps metadata only, never the value.
    let file = std::fs::read_to_string(credentials_path(&env)).unwrap_or_default();
    assert!(
        !file.contains(&new) && !file.contains(OLD_RT),
        "token in the file"
    );
    assert!(
        !env.path("state/evertoken/journal").exists() || {
            std::fs::read_dir(env.path("state/evertoken/journal"))
                .unwrap()
                .filter_map(|e| e.ok())
                .all(|e| e.file_name().to_string_lossy().starts_with('.'))
        }
    );

    // The next run reads the rotated token from the keychain: healthy, no reuse.
    run(&["auth", "refresh", "tiktok", "--json"]).expect_code(0);
    let stats = env.sim.sim().stats();
    assert_eq!(stats.reused_rotated_tokens, 0);
    let out = run(&["auth", "status", "--json"]);
    assert_eq!(
        out.json()["results"][0]["credentials"][0]["source"]["kind"],
        "keychain"
    );
}

/// No Secret Service (a headless host, a CI job): `auto` falls back to the
/// credentials file and says so; `required` refuses before contacting anyone.
#[test]
fn without_a_secret_service_auto_falls_back_and_required_refuses() {
    for keychain in ["auto", "required"] {
        let (env, s) = rig(keychain);
        env.scenario(&s);
        let mut c = env.std_cmd();
        // A bus address where nothing listens, whatever the host has.
        c.env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", env.path("no-bus").display()),
        )
        .env("XDG_RUNTIME_DIR", env.path("no-runtime"));
        let out = env.run(assert_cmd::Command::from_std(c).args(["auth", "refresh", "--json"]));
        if keychain == "auto" {
            out.expect_code(0);
            assert!(
                out.stderr.contains("using the credentials file"),
                "the fallback must be announced: {}",
                out.stderr
            );
            let live = env.sim.sim().tiktok_live_refresh_tokens();
            env.secret(&live[0]);
            assert_eq!(
                env.stored("TIKTOK_REFRESH_TOKEN").as_deref(),
                Some(live[0].as_str())
            );
            assert_eq!(common::mode(&credentials_path(&env)), 0o600);
        } else {
            out.expect_code(2)
                .stderr_has(&["auth.writeback.local.keychain"]);
            assert_eq!(
                env.sim.sim().stats().rotations,
                0,
                "nothing may be contacted"
            );
            assert_eq!(env.stored("TIKTOK_REFRESH_TOKEN").as_deref(), Some(OLD_RT));
        }
    }
}
