//! Chat-bot integration: the real `takopi` package (PyPI, in a throw-away
//! venv built by `scripts/setup-takopi`) discovers the `ghauth` command backend
//! through its entry point, and `/ghauth status|refresh|flow` answer through
//! Takopi's `CommandBackend` interface, calling evertoken against the simulator.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestEnv, repo_root, set_mode, takopi_venv};

const APP_ID: u64 = 5150;
const INSTALLATION: u64 = 8080;

struct Chat {
    env: TestEnv,
    venv: PathBuf,
    toml: PathBuf,
    fakebin: PathBuf,
    token_file: PathBuf,
}

impl Chat {
    fn new(venv: PathBuf, plugin_extra: &str) -> Chat {
        let env = TestEnv::new();
        common::apps::installed(&env, APP_ID, INSTALLATION, &[]);
        // Takopi checks that its default engine's CLI exists; /ghauth never runs it.
        let fakebin = env.path("fakebin");
        std::fs::create_dir_all(&fakebin).unwrap();
        let codex = fakebin.join("codex");
        std::fs::write(&codex, "#!/bin/sh\nexit 0\n").unwrap();
        set_mode(&codex, 0o755);
        let token_file = env.path("takopi-home/.config/takopi/github-token.env");
        let bin = assert_cmd::cargo::cargo_bin("evertoken");
        let toml = env.path("takopi-home/.takopi/takopi.toml");
        std::fs::create_dir_all(toml.parent().unwrap()).unwrap();
        std::fs::write(
            &toml,
            format!(
                "default_engine = \"codex\"\ntransport = \"telegram\"\n\n[transports.telegram]\n\
                 bot_token = \"123456:test-bot-token-not-a-real-secret\"\nchat_id = 123\n\n\
                 [plugins.ghauth]\ntoken_env_file = \"{}\"\n{}max_token_age_minutes = 55\n\
                 refresh_timeout_seconds = 30\nevertoken = \"{}\"\n{plugin_extra}",
                token_file.display(),
                if plugin_extra.contains("run_refresh_with") {
                    ""
                } else {
                    "run_refresh_with = []\n"
                },
                bin.display()
            ),
        )
        .unwrap();
        Chat {
            env,
            venv,
            toml,
            fakebin,
            token_file,
        }
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        for v in common::apps::AMBIENT_GITHUB_VARS
            .iter()
            .chain(&["PYTHONPATH", "VIRTUAL_ENV"])
        {
            c.env_remove(v);
        }
        let path = format!(
            "{}:{}",
            self.fakebin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.current_dir(self.env.work())
            .env("PATH", path)
            .env("HOME", self.env.path("takopi-home"))
            .env("XDG_CONFIG_HOME", self.env.path("config"))
            .env("XDG_STATE_HOME", self.env.path("state"))
            .env("EVERTOKEN_CONFIG", self.env.work().join("evertoken.yaml"))
            .env("NO_COLOR", "1");
        c
    }

    /// `/ghauth <sub>` for each sub, through Takopi; the replies by subcommand.
    fn ghauth(&self, subs: &[&str]) -> serde_json::Value {
        let script = repo_root().join("integrations/takopi/tests/run_ghauth.py");
        let out = common::tool_ok(
            self.command(&self.venv.join("bin/python"))
                .arg(script)
                .arg(&self.toml)
                .args(subs),
            "run_ghauth.py failed",
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        let v: serde_json::Value =
            serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        self.env.assert_no_leak(&stdout);
        v
    }

    fn stored_token(&self) -> String {
        std::fs::read_to_string(&self.token_file)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("GH_TOKEN=").map(str::to_owned))
            .unwrap()
    }
}

#[test]
fn takopi_lists_the_ghauth_command_backend() {
    let Some(venv) = takopi_venv() else { return };
    let chat = Chat::new(venv, "");
    let out = common::tool_ok(
        chat.command(&chat.venv.join("bin/takopi"))
            .args(["plugins", "--load"]),
        "takopi plugins --load",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let section = stdout
        .split("command backends:")
        .nth(1)
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(section.contains("ghauth (takopi-ghauth)"), "{stdout}");
    assert!(
        !stdout.contains("command ghauth (takopi-ghauth):"),
        "load error: {stdout}"
    );
}

#[test]
fn ghauth_status_refresh_and_flow_answer_through_takopi() {
    let Some(venv) = takopi_venv() else { return };
    let chat = Chat::new(venv, "");
    let before = chat.ghauth(&["status"]);
    let s = before["status"].as_str().unwrap();
    common::assert_contains(s, &["token: missing", "evertoken github refresh"]);

    let replies = chat.ghauth(&["refresh", "status", "flow", "help"]);
    let refresh = replies["refresh"].as_str().unwrap();
    assert!(refresh.starts_with("refresh ok"), "{refresh}");
    let token = chat.env.secret(&chat.stored_token());
    assert!(chat.env.sim.sim().github_is_valid_token(&token));
    let status = replies["status"].as_str().unwrap();
    common::assert_contains(
        status,
        &[
            "token: present",
            &format!("prefix: {}", &token[..8]),
            "age: 0 min",
            "healthy",
        ],
    );
    assert!(replies["flow"].as_str().unwrap().contains("45 minutes"));
    assert!(
        replies["help"]
            .as_str()
            .unwrap()
            .contains("/ghauth refresh")
    );
}

#[test]
fn a_refresh_script_runs_behind_run_refresh_with_and_returns_its_output_tail() {
    let Some(venv) = takopi_venv() else { return };
    let script_dir = tempfile::tempdir().unwrap();
    let script = script_dir.path().join("refresh-github-token");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"wrapped=$GHAUTH_WRAPPED\"\necho 'got ghs_test-token-not-a-real-secret'\necho 'error: GitHub said 401' >&2\nexit 3\n",
    )
    .unwrap();
    set_mode(&script, 0o755);
    let chat = Chat::new(
        venv,
        &format!(
            "refresh_script = \"{}\"\nrun_refresh_with = [\"env\", \"GHAUTH_WRAPPED=yes\"]\n",
            script.display()
        ),
    );
    let r = chat.ghauth(&["refresh"]);
    let reply = r["refresh"].as_str().unwrap();
    assert!(reply.starts_with("refresh failed (exit 3"), "{reply}");
    common::assert_contains(reply, &["wrapped=yes", "error: GitHub said 401"]);
    assert!(
        !reply.contains("ghs_test-token-not-a-real-secret"),
        "{reply}"
    );

    std::fs::remove_file(&script).unwrap();
    let gone = chat.ghauth(&["refresh"]);
    assert!(
        gone["refresh"]
            .as_str()
            .unwrap()
            .starts_with("script not found"),
        "{gone}"
    );
}
