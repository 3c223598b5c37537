//! The real OAuth 2.0 server of the `kind: oauth2` tests: npm `oidc-provider`,
//! started from tests/support/oidc-provider/server.mjs (installed by
//! scripts/setup-oidc-provider), and its first tokens, obtained through its
//! login and consent pages over HTTP.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::{TestEnv, require_tool};

/// The test clients server.mjs registers: (name in evertoken, client id,
/// `client_auth`, secret).
pub const CLIENTS: &[(&str, &str, &str, &str, Option<&str>)] = &[
    // (service, get-first-token --client, client_id, client_auth, secret)
    (
        "acme",
        "confidential",
        "evt-confidential",
        "basic",
        Some("evt-confidential-secret"),
    ),
    ("beta", "post", "evt-post", "post", Some("evt-post-secret")),
    ("gamma", "public", "evt-public", "none", None),
];

pub fn support(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/oidc-provider")
        .join(file)
}

/// A running oidc-provider; killed on drop.
pub struct Oidc {
    child: Child,
    pub issuer: String,
}

impl Drop for Oidc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the server with `redirect` registered for every client and access
/// tokens living `access_ttl` seconds.
pub fn oidc(redirect: &str, access_ttl: u32) -> Option<Oidc> {
    let server = require_tool("oidc-test-server")?;
    require_tool("node")?;
    let mut child = Command::new(server)
        .args(["--port", "0", "--redirect-uri", redirect, "--watch-stdin"])
        .args(["--access-ttl", &access_ttl.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("oidc-test-server starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let issuer = first
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("oidc-test-server said {first:?}"))
        .to_owned();
    Some(Oidc { child, issuer })
}

/// A first token answer for `client`, obtained through the server's login and
/// consent pages over HTTP (no browser).
pub fn first_token(env: &TestEnv, issuer: &str, client: &str, redirect: &str) -> serde_json::Value {
    let out = env.path(&format!("first-{client}.json"));
    let status = Command::new("node")
        .arg(support("get-first-token.mjs"))
        .args([
            "--issuer",
            issuer,
            "--client",
            client,
            "--redirect-uri",
            redirect,
        ])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "get-first-token for {client}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    for k in ["access_token", "refresh_token", "id_token"] {
        env.secret(v[k].as_str().unwrap());
    }
    v
}

pub fn block(service: &str, issuer: &str, client_id: &str, auth: &str) -> String {
    format!(
        "  {service}:\n    kind: oauth2\n    display_name: {service} service\n    token_url: {issuer}/token\n    authorize_url: {issuer}/auth\n    client_id: {client_id}\n    client_auth: {auth}\n    scopes: [openid, offline_access, api]\n    authorize_params: {{ prompt: consent }}\n"
    )
}
