//! Moving a host set up by takopi-ghauth's `bootstrap_user_refresh.sh` onto
//! evertoken with one `github bootstrap --from-takopi-ghauth`: the source setup's
//! files are planted under a temp HOME, `systemctl` and `loginctl` are stand-ins on
//! PATH that keep unit state and record every call. Afterwards exactly one timer
//! (evertoken's) mints, the key stayed where it was (0600), the token file the
//! `/ghauth` plugin reads is fresh, a second run changes nothing, and `/ghauth
//! status` answers through the real Takopi plugin from that file.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use common::{TestEnv, mode, repo_root, set_mode, takopi_venv};

const APP_ID: u64 = 5150;
const INSTALLATION: u64 = 8080;
const OLD_TOKEN: &str = "ghs_oldtakopitoken0000000000000000000000";

struct Host {
    env: TestEnv,
    fakebin: PathBuf,
    units: PathBuf,
}

/// The source setup, as its bootstrap script leaves it.
fn plant() -> Host {
    let env = TestEnv::new();
    env.secret(OLD_TOKEN);
    let private = common::apps::install(&env, APP_ID, INSTALLATION, "sim-org", &[]);
    let home = env.home();
    let takopi = home.join(".config/takopi");
    std::fs::create_dir_all(&takopi).unwrap();
    set_mode(&takopi, 0o700);
    std::fs::write(takopi.join("github-app.pem"), private).unwrap();
    // Looser than it should be: bootstrap enforces 0600 in place.
    set_mode(&takopi.join("github-app.pem"), 0o640);
    std::fs::write(
        takopi.join("github-app.env"),
        format!(
            "# written by bootstrap_user_refresh.sh\nGITHUB_APP_ID={APP_ID}\nGITHUB_APP_INSTALLATION_ID=\"{INSTALLATION}\"\n\
             export GITHUB_APP_PRIVATE_KEY_PATH=~/.config/takopi/github-app.pem\n"
        ),
    )
    .unwrap();
    set_mode(&takopi.join("github-app.env"), 0o600);
    std::fs::write(
        takopi.join("github-token.env"),
        format!("GH_TOKEN={OLD_TOKEN}\nGITHUB_TOKEN={OLD_TOKEN}\n"),
    )
    .unwrap();
    set_mode(&takopi.join("github-token.env"), 0o600);
    let script = home.join(".local/bin/takopi-refresh-github-token");
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::write(
        &script,
        "#!/bin/sh\necho takopi-refresh-ran >> \"$HOME/takopi-refresh.log\"\n",
    )
    .unwrap();
    set_mode(&script, 0o755);
    let units = env.path("config/systemd/user");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(
        units.join("takopi-github-token-refresh.service"),
        format!("[Unit]\nDescription=Refresh GitHub App token for Takopi\n\n[Service]\nType=oneshot\nExecStart={}\n", script.display()),
    )
    .unwrap();
    std::fs::write(
        units.join("takopi-github-token-refresh.timer"),
        "[Unit]\nDescription=Refresh GitHub App token every 45 minutes\n\n[Timer]\nOnBootSec=2min\nOnUnitActiveSec=45min\n\
         Unit=takopi-github-token-refresh.service\n\n[Install]\nWantedBy=timers.target\n",
    )
    .unwrap();
    // The stand-in user manager: state files per unit, every call recorded.
    let fakebin = env.path("fakebin");
    let state = env.path("systemd-state");
    std::fs::create_dir_all(&fakebin).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("takopi-github-token-refresh.timer.enabled"),
        "enabled",
    )
    .unwrap();
    std::fs::write(
        state.join("takopi-github-token-refresh.timer.active"),
        "active",
    )
    .unwrap();
    let systemctl = format!(
        r#"#!/bin/sh
s='{state}'
echo "$*" >> "$s/calls"
[ "$1" = "--user" ] || exit 9
shift
case "$1" in
  daemon-reload) exit 0 ;;
  is-enabled) cat "$s/$2.enabled" 2>/dev/null || {{ echo not-found; exit 4; }}; [ "$(cat "$s/$2.enabled")" = enabled ] ;;
  is-active) cat "$s/$2.active" 2>/dev/null || {{ echo inactive; exit 3; }}; [ "$(cat "$s/$2.active")" = active ] ;;
  enable) echo enabled > "$s/$3.enabled"; echo active > "$s/$3.active" ;;
  disable) echo disabled > "$s/$3.enabled"; echo inactive > "$s/$3.active" ;;
  *) exit 1 ;;
esac
"#,
        state = state.display()
    );
    for (name, text) in [
        ("systemctl", systemctl.as_str()),
        ("loginctl", "#!/bin/sh\necho Linger=no\n"),
        // takopi checks its default engine's CLI exists; /ghauth never runs it.
        ("codex", "#!/bin/sh\nexit 0\n"),
        // gh: takes the token on stdin like the real one.
        (
            "gh",
            "#!/bin/sh\nif [ \"$1 $2\" = 'auth login' ]; then cat > /dev/null; fi\nexit 0\n",
        ),
    ] {
        std::fs::write(fakebin.join(name), text).unwrap();
        set_mode(&fakebin.join(name), 0o755);
    }
    std::os::unix::fs::symlink(
        assert_cmd::cargo::cargo_bin("evertoken"),
        fakebin.join("evertoken"),
    )
    .unwrap();
    Host {
        env,
        fakebin,
        units,
    }
}

impl Host {
    fn path_var(&self) -> String {
        format!(
            "{}:{}",
            self.fakebin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    fn bootstrap(&self, extra: &[&str]) -> common::Output {
        let api = self.env.base_url();
        let mut args = vec![
            "github",
            "bootstrap",
            "--from-takopi-ghauth",
            "--api-url",
            &api,
        ];
        args.extend_from_slice(extra);
        self.env.run(
            self.env
                .cmd()
                .env("PATH", self.path_var())
                .env("USER", "takopi")
                .args(&args),
        )
    }

    fn state(&self, unit: &str, what: &str) -> String {
        std::fs::read_to_string(self.env.path(&format!("systemd-state/{unit}.{what}")))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.env.path("systemd-state/calls")).unwrap_or_default()
    }

    fn token_file(&self) -> PathBuf {
        self.env.home().join(".config/takopi/github-token.env")
    }

    fn files(&self) -> Vec<PathBuf> {
        let home = self.env.home();
        vec![
            home.join(".config/takopi/github-app.pem"),
            home.join(".config/takopi/github-app.env"),
            self.token_file(),
            self.env.path("config/evertoken/config.yaml"),
            self.units.join("evertoken-github-token-refresh.service"),
            self.units.join("evertoken-github-token-refresh.timer"),
            self.units.join("takopi-github-token-refresh.timer"),
        ]
    }

    fn snapshot(&self) -> Vec<(PathBuf, Option<Vec<u8>>, Option<u32>)> {
        self.files()
            .into_iter()
            .map(|p| {
                let b = std::fs::read(&p).ok();
                let m = b.as_ref().map(|_| mode(&p));
                (p, b, m)
            })
            .collect()
    }
}

#[test]
fn one_bootstrap_moves_a_takopi_host_and_a_second_changes_nothing() {
    let host = plant();
    let sim = host.env.sim.sim();
    let key = host.env.home().join(".config/takopi/github-app.pem");
    let key_bytes = std::fs::read(&key).unwrap();

    // --dry-run: says what it would do, changes nothing, mints nothing.
    let before = host.snapshot();
    let dry = host.bootstrap(&["--dry-run"]);
    dry.expect_code(0).stderr_has(&[
        "would stop and disable takopi-github-token-refresh.timer",
        "would write",
        "nothing was changed",
    ]);
    assert_eq!(host.snapshot(), before, "--dry-run changed a file");
    assert!(!host.calls().contains("disable") && !host.calls().contains("enable --now"));
    assert_eq!(sim.github_tokens_issued(), 0);

    // The move.
    let out = host.bootstrap(&[]);
    out.expect_code(0)
        .stderr_has(&["stopped and disabled takopi-github-token-refresh.timer"]);
    // Exactly one timer mints: takopi's is disabled and stopped, evertoken's runs.
    assert_eq!(
        host.state("takopi-github-token-refresh.timer", "enabled"),
        "disabled"
    );
    assert_eq!(
        host.state("takopi-github-token-refresh.timer", "active"),
        "inactive"
    );
    assert_eq!(
        host.state("evertoken-github-token-refresh.timer", "enabled"),
        "enabled"
    );
    assert!(
        host.calls()
            .contains("--user disable --now takopi-github-token-refresh.timer")
    );
    assert!(
        host.calls()
            .contains("--user enable --now evertoken-github-token-refresh.timer")
    );
    // The linger hint, with the command.
    out.stderr_has(&["sudo loginctl enable-linger takopi"]);
    // The key stayed where it was, now 0600; no copy elsewhere.
    assert_eq!(std::fs::read(&key).unwrap(), key_bytes);
    assert_eq!(mode(&key), 0o600);
    assert!(!host.env.path("config/evertoken/github-app.pem").exists());
    // The token file the plugin reads holds a fresh token GitHub accepts.
    let text = std::fs::read_to_string(host.token_file()).unwrap();
    let token = common::apps::token_in(&host.token_file());
    host.env.secret(&token);
    assert_ne!(token, OLD_TOKEN);
    assert!(sim.github_is_valid_token(&token));
    common::assert_contains(&text, &["GITHUB_TOKEN_EXPIRES_AT="]);
    assert_eq!(mode(&host.token_file()), 0o600);
    assert_eq!(sim.github_tokens_issued(), 1);
    let conf = std::fs::read_to_string(host.env.path("config/evertoken/config.yaml")).unwrap();
    common::assert_contains(
        &conf,
        &[
            &format!("private_key_path: {}", key.display()),
            &format!("token_env_file: {}", host.token_file().display()),
            &format!("api_url: {}", host.env.base_url()),
        ],
    );
    // The service the timer runs refreshes that file.
    let service = host.units.join("evertoken-github-token-refresh.service");
    let svc = std::fs::read_to_string(&service).unwrap();
    common::assert_contains(&svc, &["github refresh --app default"]);

    // Twice: nothing changes, and it says so.
    let after = host.snapshot();
    let calls_before = host.calls();
    let again = host.bootstrap(&[]);
    again.expect_code(0);
    assert_eq!(host.snapshot(), after, "a second run changed a file");
    again.stderr_has(&[
        "config unchanged",
        "takopi-github-token-refresh.timer already stopped and disabled",
        "is current",
    ]);
    assert_eq!(sim.github_tokens_issued(), 1);
    let new_calls = &host.calls()[calls_before.len()..];
    assert!(!new_calls.contains("disable"), "{new_calls}");

    // The timer's own command mints into the same file.
    let refresh = host
        .env
        .ev_env(&["github", "refresh"], &[("PATH", &host.path_var())]);
    refresh.expect_code(0);
    assert_eq!(sim.github_tokens_issued(), 2);

    // The units are valid for systemd itself.
    let timer = host.units.join("evertoken-github-token-refresh.timer");
    let Some(msg) = common::systemd_verify(&host.env, false, &[&service, &timer]) else {
        return;
    };
    assert!(!msg.contains("evertoken-github-token-refresh"), "{msg}");
}

#[test]
fn without_a_user_manager_the_exact_commands_are_printed() {
    let host = plant();
    std::fs::write(
        host.fakebin.join("systemctl"),
        "#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n",
    )
    .unwrap();
    host.bootstrap(&[]).expect_code(0).stderr_has(&[
        "systemctl --user disable --now takopi-github-token-refresh.timer",
        "systemctl --user enable --now evertoken-github-token-refresh.timer",
    ]);
    assert_eq!(host.env.sim.sim().github_tokens_issued(), 1);
}

#[test]
fn a_missing_or_broken_source_setup_is_explained() {
    let host = plant();
    let envf = host.env.home().join(".config/takopi/github-app.env");
    std::fs::write(&envf, "GITHUB_APP_ID=abc\nGITHUB_APP_INSTALLATION_ID=1\n").unwrap();
    host.bootstrap(&[])
        .expect_code(2)
        .stderr_has(&["GITHUB_APP_ID is `abc`"]);
    std::fs::remove_file(&envf).unwrap();
    host.bootstrap(&[])
        .expect_code(2)
        .stderr_has(&["github-app.env", "--private-key"]);
    assert_eq!(host.env.sim.sim().github_tokens_issued(), 0);
    assert_eq!(
        host.state("takopi-github-token-refresh.timer", "enabled"),
        "enabled"
    );
}

#[test]
fn ghauth_status_reads_the_fresh_token_through_the_unchanged_plugin_config() {
    let Some(venv) = takopi_venv() else { return };
    let host = plant();
    // `[plugins.ghauth]` exactly as the source document writes it.
    let toml = host.env.home().join(".takopi/takopi.toml");
    std::fs::create_dir_all(toml.parent().unwrap()).unwrap();
    std::fs::write(
        &toml,
        "default_engine = \"codex\"\ntransport = \"telegram\"\n\n[transports.telegram]\n\
         bot_token = \"123456:test-bot-token-not-a-real-secret\"\nchat_id = 123\n\n\
         [plugins.ghauth]\ntoken_env_file = \"~/.config/takopi/github-token.env\"\n\
         refresh_script = \"~/.local/bin/takopi-refresh-github-token\"\nrun_refresh_with = []\n\
         max_token_age_minutes = 55\nrefresh_timeout_seconds = 30\n",
    )
    .unwrap();
    host.bootstrap(&[]).expect_code(0);
    let token = std::fs::read_to_string(host.token_file())
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("GH_TOKEN=").map(str::to_owned))
        .unwrap();
    host.env.secret(&token);
    let script = repo_root().join("integrations/takopi/tests/run_ghauth.py");
    let mut c = Command::new(venv.join("bin/python"));
    for v in [
        "GH_TOKEN",
        "GITHUB_TOKEN",
        "GITHUB_ACTIONS",
        "EVERTOKEN_CONFIG",
        "EVERTOKEN_NOW",
        "PYTHONPATH",
        "VIRTUAL_ENV",
    ] {
        c.env_remove(v);
    }
    let run = c
        .arg(script)
        .arg(&toml)
        .arg("status")
        .current_dir(host.env.home())
        .env("PATH", host.path_var())
        .env("HOME", host.env.home())
        .env("XDG_CONFIG_HOME", host.env.path("config"))
        .env("XDG_STATE_HOME", host.env.path("state"))
        .env("NO_COLOR", "1");
    let run = common::tool_ok(run, "run_ghauth.py status");
    let stdout = String::from_utf8_lossy(&run.stdout);
    host.env.assert_no_leak(&stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let s = v["status"].as_str().unwrap();
    common::assert_contains(
        s,
        &[
            "token: present",
            &format!("prefix: {}", &token[..8]),
            "age: 0 min",
        ],
    );
}
