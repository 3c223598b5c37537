//! GitHub App fixtures: an app the simulator knows, installed on an
//! organization; its private key on disk; the `github.apps.default` config.

use std::path::{Path, PathBuf};

use super::{TestEnv, set_mode};

/// The client id every test app is registered with.
pub const CLIENT_ID: &str = "Iv1.test-client-not-a-real-id";

/// Variables through which a developer's own GitHub setup could reach a helper
/// program (git, a chat bot) that runs evertoken: cleared from its environment.
pub const AMBIENT_GITHUB_VARS: &[&str] = &[
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "GITHUB_ACTIONS",
    "GITHUB_APP_ID",
    "GITHUB_APP_INSTALLATION_ID",
    "GITHUB_APP_PRIVATE_KEY_PATH",
    "EVERTOKEN_NOW",
];

/// `github bootstrap` of app 4242, installation 777, with the key at `key`.
pub fn bootstrap_args(key: &Path) -> [&str; 8] {
    [
        "github",
        "bootstrap",
        "--app-id",
        "4242",
        "--installation-id",
        "777",
        "--private-key",
        key.to_str().unwrap(),
    ]
}

/// The token in a token env file (`GH_TOKEN=` line) at `path`.
#[track_caller]
pub fn token_in(path: &Path) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the token file {}: {e}", path.display()));
    text.lines()
        .find_map(|l| l.strip_prefix("GH_TOKEN="))
        .expect("GH_TOKEN line")
        .to_owned()
}

/// Registers app `app_id` (the test key pair's public half, [`CLIENT_ID`]) with
/// the simulator, installed as `installation` on the organization `org` for
/// `repos` (none: every repository). Returns the app's private key (PEM).
pub fn install(env: &TestEnv, app_id: u64, installation: u64, org: &str, repos: &[&str]) -> String {
    let (private, public) = evertoken_sim::test_rsa_keypair();
    let sim = env.sim.sim();
    sim.github_add_app(app_id, CLIENT_ID, &public);
    sim.github_add_installation(
        app_id,
        installation,
        org,
        "Organization",
        repos.iter().map(|r| r.to_string()).collect(),
    );
    private
}

/// The test app's private key at `path`, with `mode`.
pub fn write_key_to(path: &Path, mode: u32) {
    let (private, _) = evertoken_sim::test_rsa_keypair();
    std::fs::write(path, private).unwrap();
    set_mode(path, mode);
}

/// The test app's private key at `work/app.pem`, mode 0600; returns the path.
pub fn write_key(env: &TestEnv) -> PathBuf {
    let key = env.work().join("app.pem");
    write_key_to(&key, 0o600);
    key
}

/// The `github:` section: app `default` with `app_id` and `installation`, its
/// key at `app.pem`, the simulator as its API, then each of `lines` (`key: value`).
pub fn config(env: &TestEnv, app_id: u64, installation: u64, lines: &[&str]) -> String {
    let mut s = format!(
        "github:\n  apps:\n    default:\n      app_id: {app_id}\n      installation_id: {installation}\n      private_key_path: app.pem\n      api_url: {}\n",
        env.base_url()
    );
    for l in lines {
        s.push_str(&format!("      {l}\n"));
    }
    s
}

/// [`install`] on `sim-org` for every repository, [`write_key`], and the config
/// [`config`] with `lines`: a host that mints with the app's own key.
pub fn installed(env: &TestEnv, app_id: u64, installation: u64, lines: &[&str]) {
    install(env, app_id, installation, "sim-org", &[]);
    write_key(env);
    env.config(&config(env, app_id, installation, lines));
}
