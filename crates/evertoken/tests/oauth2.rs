//! `kind: oauth2`: any RFC 6749 service, configured with no code, against a
//! real, certified authorization server (npm `oidc-provider`, started from
//! tests/support/oidc-provider/server.mjs). It rotates refresh tokens on every
//! use and revokes the whole grant when a used one comes back, so these tests
//! fail if evertoken ever loses a rotated token or sends a used one again.

use crate::common;

use std::process::{Command, Stdio};

use common::TestEnv;
use common::child::Spawned;
use common::oidc::{CLIENTS, block, first_token, free_port, oidc, support};

fn config(env: &TestEnv, issuer: &str) {
    let mut y = String::from("platforms:\n");
    for (service, _, id, auth, _) in CLIENTS {
        y.push_str(&block(service, issuer, id, auth));
    }
    y.push_str("auth: { writeback: { local: { keychain: off } } }\n");
    env.config(&y);
}

fn results(out: &common::Output) -> Vec<serde_json::Value> {
    out.json()["results"].as_array().unwrap().clone()
}

fn state_of(out: &common::Output, platform: &str) -> String {
    results(out)
        .iter()
        .find(|r| r["platform"] == platform)
        .unwrap_or_else(|| panic!("no result for {platform}: {}", out.stdout))["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn any_oauth2_service_rotates_and_persists_every_new_refresh_token() {
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let Some(server) = oidc(&redirect, 120) else {
        return;
    };
    let env = TestEnv::new();
    config(&env, &server.issuer);
    let mut creds = String::new();
    let mut first = Vec::new();
    for (service, client, _, _, secret) in CLIENTS {
        let t = first_token(&env, &server.issuer, client, &redirect);
        let var = service.to_uppercase();
        creds.push_str(&format!(
            "{var}_REFRESH_TOKEN: {}\n",
            t["refresh_token"].as_str().unwrap()
        ));
        if let Some(s) = secret {
            creds.push_str(&format!("{var}_CLIENT_SECRET: {s}\n"));
        }
        first.push((var, t["refresh_token"].as_str().unwrap().to_owned()));
    }
    env.credentials(&creds);

    // Two runs: each rotates every service. The second works only if the first
    // persisted the rotated refresh tokens (the server revokes a grant whose
    // used refresh token comes back).
    let mut previous = first.clone();
    for run in 1..=2 {
        let out = env.ev(&["auth", "refresh", "all", "--json"]);
        assert_eq!(out.code, 0, "run {run}: {}\n{}", out.stdout, out.stderr);
        for (service, ..) in CLIENTS {
            assert_eq!(state_of(&out, service), "rotated", "run {run} {service}");
        }
        for (var, old) in &previous {
            let new = env.stored(&format!("{var}_REFRESH_TOKEN")).unwrap();
            env.secret(&new);
            assert_ne!(&new, old, "run {run}: {var} was rotated and stored");
            let access = env.stored(&format!("{var}_ACCESS_TOKEN")).unwrap();
            env.secret(&access);
        }
        previous = previous
            .iter()
            .map(|(v, _)| {
                (
                    v.clone(),
                    env.stored(&format!("{v}_REFRESH_TOKEN")).unwrap(),
                )
            })
            .collect();
    }

    // The status names the services by their display names and JSON keys.
    let status = env.ev(&["auth", "status", "--json"]);
    status.expect_code(0);
    assert_eq!(results(&status).len(), CLIENTS.len());
    env.ev(&["auth", "status"]).stdout_has(&["acme"]);

    // A copy of the first tokens (a second runner that never saw the rotation)
    // sends a used refresh token: the server revokes that whole grant, so this
    // copy's run and then the real one report `reauth_required`, exit 1.
    let stale = TestEnv::new();
    config(&stale, &server.issuer);
    let (var, old) = &first[0];
    stale.credentials(&format!(
        "{var}_REFRESH_TOKEN: {old}\n{var}_CLIENT_SECRET: evt-confidential-secret\n"
    ));
    stale.secret(old);
    let out = stale.ev(&["auth", "refresh", "acme", "--json"]);
    out.expect_code(1);
    assert_eq!(state_of(&out, "acme"), "reauth_required");
    let out = env.ev(&["auth", "refresh", "acme", "--json"]);
    out.expect_code(1);
    assert_eq!(state_of(&out, "acme"), "reauth_required");
    let r = results(&out).remove(0);
    common::assert_fields(&r, &[("message", "invalid_grant")]);
    assert!(
        r["fix"].to_string().contains("evertoken auth login acme"),
        "{r}"
    );
}

#[test]
fn auth_login_for_an_oauth2_service_through_a_real_authorization_server() {
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let Some(server) = oidc(&redirect, 3600) else {
        return;
    };
    let env = TestEnv::new();
    config(&env, &server.issuer);
    env.credentials("ACME_CLIENT_SECRET: evt-confidential-secret\n");

    for service in ["acme", "gamma"] {
        let mut login = env.std_cmd();
        login.args([
            "auth",
            "login",
            service,
            "--no-browser",
            "--redirect-uri",
            &redirect,
        ]);
        let mut child = Spawned::start(&mut login);
        let url = child.rest_of_line(&format!("{}/auth?", server.issuer));
        let u = url::Url::parse(&url).unwrap();
        let q: std::collections::BTreeMap<String, String> = u.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["scope"], "openid offline_access api");
        assert_eq!(q["prompt"], "consent");
        common::tool_ok(
            Command::new("node")
                .arg(support("get-first-token.mjs"))
                .args(["--authorize-url", &url])
                .stdout(Stdio::null()),
            "the browser's part (get-first-token.mjs)",
        );
        let (code, all, _) = child.finish();
        env.assert_no_leak(&all);
        assert_eq!(code, 0, "login {service}:\n{all}");
        let var = service.to_uppercase();
        let rt = env
            .stored(&format!("{var}_REFRESH_TOKEN"))
            .unwrap_or_else(|| panic!("{var}_REFRESH_TOKEN stored:\n{all}"));
        env.secret(&rt);
        env.secret(&env.stored(&format!("{var}_ACCESS_TOKEN")).unwrap());
    }

    // What the logins stored is healthy, and `auth token` hands the access token
    // over (stdout only, for `$(…)`).
    let out = env.ev(&["auth", "status", "acme", "--json"]);
    out.expect_code(0);
    assert_eq!(state_of(&out, "acme"), "ok");
    // Every run refreshes a configured service, a valid access token included:
    // the rotated refresh token is stored.
    let before = env.stored("ACME_REFRESH_TOKEN").unwrap();
    let out = env.ev(&["auth", "refresh", "acme", "--json"]);
    out.expect_code(0);
    assert_eq!(state_of(&out, "acme"), "rotated");
    let after = env.stored("ACME_REFRESH_TOKEN").unwrap();
    env.secret(&after);
    env.secret(&env.stored("ACME_ACCESS_TOKEN").unwrap());
    assert_ne!(before, after);
    let token = env.cmd().args(["auth", "token", "gamma"]).output().unwrap();
    assert!(token.status.success());
    assert_eq!(
        String::from_utf8_lossy(&token.stdout).trim(),
        env.stored("GAMMA_ACCESS_TOKEN").unwrap()
    );
}

#[test]
fn oauth2_blocks_are_checked_when_the_config_loads() {
    let env = TestEnv::new();
    let cases: &[(&str, &str)] = &[
        (
            "  acme: { kind: oauth2, client_id: x }\n",
            "platforms.acme.token_url",
        ),
        (
            "  acme: { kind: oauth2, client_id: x, token_url: \"http://auth.example.com/token\" }\n",
            "must be an https URL",
        ),
        (
            "  acme: { kind: oauth2, token_url: \"https://auth.example.com/token\" }\n",
            "platforms.acme.client_id",
        ),
        (
            "  acme: { kind: oauth2, client_id: x, token_url: \"https://a.example/t\", client_auth: mtls }\n",
            "client_auth",
        ),
        (
            "  acme: { kind: oauth2, client_id: x, token_url: \"https://a.example/t\", tokn_url: y }\n",
            "tokn_url",
        ),
        (
            "  acme: { kind: oauth2, client_id: x, token_url: \"https://a.example/t\", authorize_params: { state: y } }\n",
            "platforms.acme.authorize_params",
        ),
        ("  acme: { client_id: x }\n", "unknown key `platforms.acme`"),
        (
            "  Acme: { kind: oauth2, client_id: x, token_url: \"https://a.example/t\" }\n",
            "lowercase",
        ),
        (
            "  acme-x: { kind: oauth2, client_id: x, token_url: \"https://a.example/t\" }\n  acme_x: { kind: oauth2, client_id: y, token_url: \"https://a.example/t\" }\n",
            "would use the same variables",
        ),
        // Two services whose variables meet: one rotated token would overwrite
        // the other's (an account's variable, and an access slot against a
        // refresh slot).
        (
            "  acme: { kind: oauth2, client_id: x, token_url: \"https://a.example/t\", accounts: [b_refresh_token] }\n  acme_refresh_token_b: { kind: oauth2, client_id: y, token_url: \"https://a.example/t\" }\n",
            "would both use the variable ACME_REFRESH_TOKEN_B_REFRESH_TOKEN",
        ),
        (
            "  a: { kind: oauth2, client_id: x, token_url: \"https://a.example/t\", accounts: [x_refresh_token] }\n  a_access_token_x: { kind: oauth2, client_id: y, token_url: \"https://a.example/t\" }\n",
            "would both use the variable A_ACCESS_TOKEN_X_REFRESH_TOKEN",
        ),
        (
            "  acme: { kind: oauth2, client_id: x, token_url: \"https://a.example/t\", pkce: plain }\n",
            "platforms.acme.pkce",
        ),
        (
            "  acme: { kind: oauth2, client_id: x, token_url: \"https://a.example/t\", display_name: \"A\\e[31mcme\" }\n",
            "platforms.acme.display_name",
        ),
    ];
    for (block, want) in cases {
        env.config(&format!("platforms:\n{block}"));
        let out = env.ev(&["auth", "status"]);
        out.expect_code_for(format_args!("{block}"), 2);
        assert!(
            out.stderr.contains(want),
            "{block}: want {want}:\n{}",
            out.stderr
        );
    }
    // A target naming nothing configured or built in is a usage error.
    env.config(
        "platforms:\n  acme: { kind: oauth2, client_id: x, token_url: \"https://a.example/t\" }\n",
    );
    env.ev(&["auth", "status", "acne"])
        .expect_code(2)
        .stderr_has(&["unknown target `acne`", "acme"]);
}
