//! GitHub App keys off the host, first half: the app JWT signed by a real OpenBao
//! Transit key (`github.apps.<a>.signer: {backend: vault-transit}`), with no
//! private key file anywhere under the test's HOME; `doctor` checks the key and
//! the token's right to sign.

use crate::common;

use std::path::Path;

use common::TestEnv;
use common::bao::Bao;

const APP_ID: u64 = 6161;
const INSTALLATION: u64 = 9191;

/// Base64 of the PKCS#8 DER (the PEM's body): what `bao transit import` takes.
fn pkcs8_b64() -> String {
    evertoken_sim::test_rsa_private_pkcs8()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

/// OpenBao with Transit, the app's key imported (BYOK) as `github-app`, and a
/// token whose policy may only read that key and sign with it.
fn transit(bao: &Bao) -> String {
    bao.ok(&["secrets", "enable", "transit"]);
    let staged = bao.home.path().join("key.b64");
    std::fs::write(&staged, pkcs8_b64()).unwrap();
    bao.ok(&[
        "transit",
        "import",
        "transit/keys/github-app",
        &format!("@{}", staged.display()),
        "type=rsa-2048",
    ]);
    std::fs::remove_file(&staged).unwrap();
    let policy = bao.home.path().join("signer.hcl");
    std::fs::write(
        &policy,
        "path \"transit/sign/github-app/sha2-256\" { capabilities = [\"update\"] }\n\
         path \"transit/keys/github-app\" { capabilities = [\"read\"] }\n",
    )
    .unwrap();
    bao.ok(&[
        "policy",
        "write",
        "github-app-signer",
        policy.to_str().unwrap(),
    ]);
    bao.ok(&[
        "token",
        "create",
        "-policy=github-app-signer",
        "-field=token",
    ])
}

fn setup(bao: &Bao, key: &str) -> TestEnv {
    let env = TestEnv::new();
    common::apps::install(&env, APP_ID, INSTALLATION, "sim-org", &[]);
    env.config(&format!(
        "github:\n  apps:\n    default:\n      app_id: {APP_ID}\n      installation_id: {INSTALLATION}\n      \
         api_url: {}\n      signer:\n        backend: vault-transit\n        address: {}\n        \
         mount: transit\n        key: {key}\n",
        env.base_url(),
        bao.addr
    ));
    env
}

/// Every file under `dir` that holds a private key.
fn private_keys_under(dir: &Path) -> Vec<String> {
    common::walk(dir)
        .into_iter()
        .filter(|p| {
            !p.is_dir()
                && std::fs::read(p)
                    .map(|b| String::from_utf8_lossy(&b).contains("PRIVATE KEY"))
                    .unwrap_or(false)
        })
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn refresh_mints_with_a_transit_key_and_no_key_file_on_the_host() {
    let Some(bao) = Bao::start() else { return };
    let token = transit(&bao);
    let env = setup(&bao, "github-app");
    env.secret(&token);
    env.secret(common::bao::ROOT_TOKEN);
    env.ev_env(&["github", "refresh"], &[("VAULT_TOKEN", &token)])
        .expect_code(0);
    let minted = common::apps::token_in(&env.path("config/evertoken/github-token.env"));
    env.secret(&minted);
    assert!(env.sim.sim().github_is_valid_token(&minted));
    assert_eq!(env.sim.sim().github_tokens_issued(), 1);
    assert_eq!(
        private_keys_under(env.dir.path()),
        Vec::<String>::new(),
        "a private key file exists on the host"
    );
    assert!(!env.path("config/evertoken/github-app.pem").exists());

    // doctor: the key exists, is RSA, and this token may sign with it.
    let doc = env.run(env.cmd().env("VAULT_TOKEN", &token).arg("doctor"));
    doc.stdout_has(&["github default: signer", "rsa-2048", "signing allowed"]);
    assert!(!doc.stdout.contains("private key"), "{}", doc.stdout);
}

#[test]
fn a_token_without_sign_rights_and_a_non_rsa_key_are_explained() {
    let Some(bao) = Bao::start() else { return };
    let signer = transit(&bao);
    bao.ok(&["write", "-f", "transit/keys/ed", "type=ed25519"]);
    // A token that may read the key but not sign.
    let policy = bao.home.path().join("reader.hcl");
    std::fs::write(
        &policy,
        "path \"transit/keys/github-app\" { capabilities = [\"read\"] }\n",
    )
    .unwrap();
    bao.ok(&["policy", "write", "reader", policy.to_str().unwrap()]);
    let reader = bao.ok(&["token", "create", "-policy=reader", "-field=token"]);

    let env = setup(&bao, "github-app");
    env.secret(&signer);
    env.secret(&reader);
    let doc = env.run(env.cmd().env("VAULT_TOKEN", &reader).arg("doctor"));
    assert_ne!(doc.code, 0);
    doc.stdout_has(&["may not sign", "capabilities"]);
    let refresh = env.ev_env(&["github", "refresh"], &[("VAULT_TOKEN", &reader)]);
    refresh
        .expect_code(1)
        .stderr_has(&["403", "transit/sign/github-app/sha2-256"]);
    assert!(!env.path("config/evertoken/github-token.env").exists());

    let env = setup(&bao, "ed");
    env.run(
        env.cmd()
            .env("VAULT_TOKEN", common::bao::ROOT_TOKEN)
            .arg("doctor"),
    )
    .stdout_has(&["not RSA", "ed25519"]);

    // No Vault credentials at all: refresh says how to log in.
    env.ev(&["github", "refresh"])
        .expect_code(2)
        .stderr_has(&["VAULT_TOKEN"]);
}

/// Transit's sign endpoint is an `update`: a policy granting only `create` and
/// `sudo` on it cannot sign, and `doctor` must say so instead of "signing allowed".
#[test]
fn create_or_sudo_alone_is_not_a_right_to_sign() {
    let Some(bao) = Bao::start() else { return };
    let signer = transit(&bao);
    let policy = bao.home.path().join("create-only.hcl");
    std::fs::write(
        &policy,
        "path \"transit/sign/github-app/sha2-256\" { capabilities = [\"create\", \"sudo\"] }\n\
         path \"transit/keys/github-app\" { capabilities = [\"read\"] }\n",
    )
    .unwrap();
    bao.ok(&["policy", "write", "create-only", policy.to_str().unwrap()]);
    let token = bao.ok(&["token", "create", "-policy=create-only", "-field=token"]);
    let env = setup(&bao, "github-app");
    env.secret(&signer);
    env.secret(&token);
    // Vault itself refuses the signature with this token …
    env.ev_env(&["github", "refresh"], &[("VAULT_TOKEN", &token)])
        .expect_code(1)
        .stderr_has(&["403"]);
    // … so doctor must not call it allowed.
    let doc = env.run(env.cmd().env("VAULT_TOKEN", &token).arg("doctor"));
    assert_ne!(doc.code, 0, "{}", doc.stdout);
    doc.stdout_has(&["may not sign", "create"]);
    assert!(!doc.stdout.contains("signing allowed"), "{}", doc.stdout);
}

#[test]
fn approle_login_signs_too() {
    let Some(bao) = Bao::start() else { return };
    transit(&bao);
    bao.ok(&["auth", "enable", "approle"]);
    bao.ok(&[
        "write",
        "auth/approle/role/minter",
        "token_policies=github-app-signer",
    ]);
    let role_id = bao.ok(&["read", "-field=role_id", "auth/approle/role/minter/role-id"]);
    let secret_id = bao.ok(&[
        "write",
        "-f",
        "-field=secret_id",
        "auth/approle/role/minter/secret-id",
    ]);
    let env = setup(&bao, "github-app");
    env.secret(&secret_id);
    let out = env.ev_env(
        &["github", "token"],
        &[("VAULT_ROLE_ID", &role_id), ("VAULT_SECRET_ID", &secret_id)],
    );
    out.expect_code(0);
    let t = env.secret(out.stdout.trim());
    assert!(env.sim.sim().github_is_valid_token(&t));
}

#[test]
fn the_broker_mints_with_a_transit_signer() {
    use std::io::{BufRead, BufReader};
    let Some(bao) = Bao::start() else { return };
    let token = transit(&bao);
    let env = TestEnv::new();
    env.secret(&token);
    common::apps::install(&env, APP_ID, INSTALLATION, "sim-org", &["site"]);
    let secret = env.secret("transit-broker-client-secret-not-a-real-secret");
    let hash = common::sha256_hex(&secret);
    env.config(&format!(
        "github:\n  apps:\n    default:\n      app_id: {APP_ID}\n      installation_id: {INSTALLATION}\n      \
         api_url: {}\n      signer: {{ backend: vault-transit, address: \"{}\", key: github-app }}\n\
         broker:\n  listen: 127.0.0.1:0\n  clients: [{{ name: host, token_sha256: \"{hash}\" }}]\n  policies:\n    \
         - {{ name: host, client: host, repositories: [site], permissions: {{ contents: read }} }}\n  audit_log: audit.jsonl\n",
        env.base_url(),
        bao.addr
    ));
    let mut child = env
        .std_cmd()
        .env("VAULT_TOKEN", &token)
        .args(["broker", "serve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the broker prints where it listens")
            .unwrap();
        env.assert_no_leak(&line);
        if let Some(rest) = line.split("Listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let out = env.run(
        env.cmd()
            .env("BROKER_SECRET", &secret)
            .args(["github", "token", "--broker", &url, "--policy", "host"])
            .args(["--id-token-env", "BROKER_SECRET"]),
    );
    let _ = child.kill();
    let _ = child.wait();
    out.expect_code(0);
    let minted = env.secret(out.stdout.trim());
    assert!(env.sim.sim().github_is_valid_token(&minted));
    assert_eq!(
        env.sim.sim().github_token_scope(&minted).unwrap().0,
        Some(vec!["site".to_owned()])
    );
    assert_eq!(private_keys_under(env.dir.path()), Vec::<String>::new());
}
