//! The token broker (`evertoken broker serve`) as a real process, against the
//! simulator's GitHub (which records what each token was narrowed to) and its
//! OIDC issuer (discovery, JWKS, key rotation, RS256 and ES256 ID tokens): the
//! allowed path, every 401/403 with its audit line, rate limiting, a fuzzed
//! `Authorization` header and body, the clients (`github token --broker`, a
//! `github.apps.<a>.broker` entry, GitHub Actions' ID token), `/metrics`, graceful
//! SIGTERM, and no token in any output or in the audit log.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestEnv, apps, set_mode};
use evertoken_sim::OidcAlg;
use serde_json::{Value, json};

const APP_ID: u64 = 7373;
const INSTALLATION: u64 = 3737;
const CLIENT_SECRET: &str = "broker-client-secret-not-a-real-secret-0123456789";
const MAIN: &str = "repo:acme/site:ref:refs/heads/main";

use common::sha256_hex;

struct Broker {
    env: TestEnv,
    child: Child,
    url: String,
    stderr: Arc<Mutex<String>>,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

fn issuer(env: &TestEnv) -> String {
    format!("{}/oidc", env.base_url())
}

fn start(rate: u32) -> Broker {
    start_with(rate, |_| String::new())
}

/// `extra(env)` is appended to the `broker:` block (e.g. `tls:`).
fn start_with(rate: u32, extra: impl Fn(&TestEnv) -> String) -> Broker {
    let env = TestEnv::new();
    env.secret(CLIENT_SECRET);
    apps::install(
        &env,
        APP_ID,
        INSTALLATION,
        "acme",
        &["site", "docs", "other"],
    );
    apps::write_key(&env);
    let iss = issuer(&env);
    env.config(&format!(
        r#"github:
  apps:
    default:
      app_id: {APP_ID}
      installation_id: {INSTALLATION}
      private_key_path: app.pem
      api_url: {base}
broker:
  listen: 127.0.0.1:0
  audience: evertoken
  issuers: [{iss}]
  clients:
    - {{ name: takopi-host, token_sha256: "{hash}" }}
  policies:
    - name: site-deploy
      issuer: {iss}
      subject: "{MAIN}"
      claims: {{ repository_owner_id: "1234" }}
      repositories: [site]
      permissions: {{ contents: write }}
    - name: site-read
      issuer: {iss}
      subject_pattern: "repo:acme/site:ref:refs/heads/.*"
      repositories: [site]
      permissions: {{ contents: read, metadata: read }}
    - name: host
      client: takopi-host
      repositories: [docs]
      permissions: {{ issues: write }}
    - name: broken
      client: takopi-host
      repositories: [not-installed]
      permissions: {{ issues: write }}
  audit_log: audit.jsonl
  rate_limit_per_minute: {rate}
{extra}"#,
        base = env.base_url(),
        hash = sha256_hex(CLIENT_SECRET),
        extra = extra(&env),
    ));
    let mut child = env
        .std_cmd()
        .args(["broker", "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("Listening on ").nth(1) {
                let url = rest.split_whitespace().next().unwrap_or("").to_owned();
                let _ = tx.send(url);
            }
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("the broker did not start: {}", stderr.lock().unwrap()));
    let mut http = reqwest::Client::builder();
    let ca = env.path("tls-ca.pem");
    if ca.exists() {
        http = http.add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap(),
        );
    }
    Broker {
        env,
        child,
        url,
        stderr,
        rt: tokio::runtime::Runtime::new().unwrap(),
        http: http.build().unwrap(),
    }
}

impl Broker {
    fn post_raw(&self, auth: Option<&[u8]>, body: &[u8]) -> (u16, String) {
        let url = format!("{}/v1/token", self.url);
        self.rt.block_on(async {
            let mut rb = self.http.post(url).body(body.to_vec());
            if let Some(a) = auth {
                match reqwest::header::HeaderValue::from_bytes(a) {
                    Ok(v) => rb = rb.header("authorization", v),
                    Err(_) => return (0, String::new()),
                }
            }
            let r = rb.send().await.expect("the broker answers");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        })
    }

    fn ask(&self, bearer: &str, policy: &str) -> (u16, Value) {
        let (st, body) = self.post_raw(
            Some(format!("Bearer {bearer}").as_bytes()),
            json!({ "policy": policy }).to_string().as_bytes(),
        );
        (st, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> (u16, String) {
        let url = format!("{}{path}", self.url);
        self.rt.block_on(async {
            let r = self.http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    }

    fn id_token(&self, alg: OidcAlg, claims: Value) -> String {
        let mut c = json!({ "iss": issuer(&self.env), "aud": "evertoken", "sub": MAIN, "repository_owner_id": "1234" });
        for (k, v) in claims.as_object().unwrap() {
            c[k] = v.clone();
        }
        self.env.secret(&self.env.sim.sim().oidc_token(alg, c))
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.env.work().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
            .collect()
    }

    /// SIGTERM, then waits for the exit code.
    fn sigterm(&mut self) -> i32 {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the broker ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(mut self) -> (i32, String) {
        let code = self.sigterm();
        std::thread::sleep(Duration::from_millis(100));
        let err = self.stderr.lock().unwrap().clone();
        self.env.assert_no_leak(&err);
        let audit =
            std::fs::read_to_string(self.env.work().join("audit.jsonl")).unwrap_or_default();
        self.env.assert_no_leak(&audit);
        (code, err)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_matching_ci_job_gets_a_token_narrowed_to_its_policy() {
    let b = start(1000);
    for alg in [OidcAlg::Rs256, OidcAlg::Es256] {
        let id = b.id_token(alg, json!({}));
        let (st, v) = b.ask(&id, "site-deploy");
        assert_eq!(st, 200, "{v}");
        let token = b.env.secret(v["token"].as_str().unwrap());
        assert_eq!(v["repositories"], json!(["site"]));
        assert_eq!(v["permissions"], json!({ "contents": "write" }));
        assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));
        // What GitHub was asked for, and granted: exactly the policy.
        let (repos, perms) = b.env.sim.sim().github_token_scope(&token).unwrap();
        assert_eq!(repos, Some(vec!["site".to_owned()]));
        assert_eq!(
            perms.into_iter().collect::<Vec<_>>(),
            vec![("contents".to_owned(), "write".to_owned())]
        );
    }
    // An anchored pattern admits any branch of acme/site.
    let feature = b.id_token(
        OidcAlg::Es256,
        json!({ "sub": "repo:acme/site:ref:refs/heads/feature-x" }),
    );
    let (st, v) = b.ask(&feature, "site-read");
    assert_eq!(st, 200, "{v}");
    let t = b.env.secret(v["token"].as_str().unwrap());
    let (_, perms) = b.env.sim.sim().github_token_scope(&t).unwrap();
    assert_eq!(perms.get("contents").map(String::as_str), Some("read"));
    assert_eq!(perms.len(), 2);
    // A static client.
    let (st, v) = b.ask(CLIENT_SECRET, "host");
    assert_eq!(st, 200, "{v}");
    let t = b.env.secret(v["token"].as_str().unwrap());
    assert_eq!(
        b.env.sim.sim().github_token_scope(&t).unwrap().0,
        Some(vec!["docs".to_owned()])
    );
    let audit = b.audit();
    assert_eq!(audit.len(), 4);
    assert!(
        audit
            .iter()
            .all(|l| l["allowed"] == true && l["status"] == 200)
    );
    assert_eq!(audit[0]["who"], format!("{}|{MAIN}", issuer(&b.env)));
    assert_eq!(audit[0]["repositories"], json!(["site"]));
    assert_eq!(audit[3]["who"], "client:takopi-host");
    let (code, err) = b.stop();
    assert_eq!(code, 0, "{err}");
    common::assert_contains(&err, &["shut down cleanly"]);
}

#[test]
fn every_refusal_is_a_401_or_403_with_an_audit_line() {
    let b = start(1000);
    let now = jiff::Timestamp::now().as_second();
    let good = b.id_token(OidcAlg::Rs256, json!({}));
    let mut bad_sig = good.clone();
    let last = bad_sig.pop().unwrap();
    bad_sig.push(if last == 'A' { 'B' } else { 'A' });
    let mut tampered: Vec<String> = good.split('.').map(str::to_owned).collect();
    {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: Value = serde_json::from_slice(&b64.decode(&tampered[1]).unwrap()).unwrap();
        claims["sub"] = json!("repo:evil/site:ref:refs/heads/main");
        tampered[1] = b64.encode(claims.to_string());
    }
    let tampered = tampered.join(".");
    let cases: Vec<(&str, String, &str, u16, &str)> = vec![
        (
            "wrong audience",
            b.id_token(OidcAlg::Rs256, json!({ "aud": "someone-else" })),
            "site-deploy",
            401,
            "wrong audience",
        ),
        (
            "expired",
            b.id_token(
                OidcAlg::Es256,
                json!({ "exp": now - 120, "iat": now - 600, "nbf": now - 600 }),
            ),
            "site-deploy",
            401,
            "expired",
        ),
        (
            "not yet valid",
            b.id_token(OidcAlg::Es256, json!({ "nbf": now + 600 })),
            "site-deploy",
            401,
            "nbf",
        ),
        (
            "unknown issuer",
            b.id_token(
                OidcAlg::Rs256,
                json!({ "iss": "https://token.actions.githubusercontent.com" }),
            ),
            "site-deploy",
            401,
            "unknown issuer",
        ),
        (
            "bad signature",
            bad_sig,
            "site-deploy",
            401,
            "bad signature",
        ),
        (
            "tampered claims",
            tampered,
            "site-deploy",
            401,
            "bad signature",
        ),
        (
            "subject",
            b.id_token(
                OidcAlg::Rs256,
                json!({ "sub": "repo:acme/site:ref:refs/heads/feature" }),
            ),
            "site-deploy",
            403,
            "subject does not match",
        ),
        (
            "claim",
            b.id_token(OidcAlg::Rs256, json!({ "repository_owner_id": "999" })),
            "site-deploy",
            403,
            "repository_owner_id",
        ),
        (
            "anchored",
            b.id_token(
                OidcAlg::Rs256,
                json!({ "sub": "xrepo:acme/site:ref:refs/heads/main" }),
            ),
            "site-read",
            403,
            "subject does not match",
        ),
        (
            "unknown policy",
            good.clone(),
            "no-such-policy",
            403,
            "no such policy",
        ),
        (
            "unknown client",
            "not-a-known-client-secret-0123456789".to_owned(),
            "host",
            401,
            "unknown client",
        ),
        (
            "client on an OIDC policy",
            CLIENT_SECRET.to_owned(),
            "site-deploy",
            403,
            "OIDC callers",
        ),
        (
            "OIDC on a client policy",
            good.clone(),
            "host",
            403,
            "for client",
        ),
        (
            "alg none",
            {
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                let parts: Vec<&str> = good.split('.').collect();
                format!(
                    "{}.{}.",
                    b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
                    parts[1]
                )
            },
            "site-deploy",
            401,
            "not accepted",
        ),
    ];
    for (what, bearer, policy, status, reason) in &cases {
        b.env.secret(bearer);
        let before = b.audit().len();
        let (st, v) = b.ask(bearer, policy);
        assert_eq!(st, *status, "{what}: {v}");
        assert!(v.get("token").is_none(), "{what}: {v}");
        let audit = b.audit();
        assert_eq!(audit.len(), before + 1, "{what}: one audit line");
        let line = audit.last().unwrap();
        assert_eq!(line["allowed"], false, "{what}");
        assert_eq!(line["status"], *status, "{what}");
        assert!(
            line["reason"].as_str().unwrap().contains(reason),
            "{what}: {line}"
        );
    }
    // No credential at all.
    let (st, _) = b.post_raw(None, br#"{"policy":"site-deploy"}"#);
    assert_eq!(st, 401);
    // GitHub refusing the mint is a 502, audited.
    let (st, v) = b.ask(CLIENT_SECRET, "broken");
    assert_eq!(st, 502, "{v}");
    common::assert_fields(&v, &[("error", "422")]);
    let last = b.audit().pop().unwrap();
    assert_eq!(last["status"], 502);
    assert_eq!(last["policy"], "broken");
    assert_eq!(last["repositories"], json!(["not-installed"]));
    assert_eq!(b.env.sim.sim().github_tokens_issued(), 0);

    // /metrics counts every outcome, in Prometheus' text format.
    let (st, m) = b.get("/metrics");
    assert_eq!(st, 200);
    common::assert_contains(
        &m,
        &[
            "evertoken_broker_requests_total{outcome=\"unauthorized\"} 9",
            "evertoken_broker_requests_total{outcome=\"forbidden\"} 6",
            "evertoken_broker_requests_total{outcome=\"upstream_failed\"} 1",
        ],
    );
    let mf = b.env.path("metrics.prom");
    std::fs::write(&mf, &m).unwrap();
    common::promtool_check(&mf);
    let (code, _) = b.stop();
    assert_eq!(code, 0);
}

#[test]
fn jwks_is_cached_and_refetched_once_on_a_rotated_key() {
    let b = start(1000);
    let sim = b.env.sim.sim();
    for _ in 0..3 {
        let id = b.id_token(OidcAlg::Es256, json!({}));
        assert_eq!(b.ask(&id, "site-deploy").0, 200);
    }
    assert_eq!(sim.oidc_jwks_fetches(), 1, "keys are cached");
    let old = b.id_token(OidcAlg::Es256, json!({}));
    sim.oidc_rotate(false);
    let new = b.id_token(OidcAlg::Es256, json!({}));
    assert_eq!(b.ask(&new, "site-deploy").0, 200, "the new key is fetched");
    assert_eq!(sim.oidc_jwks_fetches(), 2);
    // The retired key is gone, and unknown kids do not make the broker refetch in a loop.
    let (st, v) = b.ask(&old, "site-deploy");
    assert_eq!(st, 401, "{v}");
    common::assert_fields(&v, &[("error", "unknown key id")]);
    for _ in 0..5 {
        b.ask(&old, "site-deploy");
    }
    assert_eq!(sim.oidc_jwks_fetches(), 2, "refetches are bounded");
    b.stop();
}

#[test]
fn a_caller_over_its_rate_gets_429() {
    let b = start(2);
    assert_eq!(b.ask(CLIENT_SECRET, "host").0, 200);
    assert_eq!(b.ask(CLIENT_SECRET, "host").0, 200);
    let (st, v) = b.ask(CLIENT_SECRET, "host");
    assert_eq!(st, 429, "{v}");
    let last = b.audit().pop().unwrap();
    assert_eq!(last["status"], 429);
    assert_eq!(last["who"], "client:takopi-host");
    // Another caller has its own budget.
    let id = b.id_token(OidcAlg::Rs256, json!({}));
    assert_eq!(b.ask(&id, "site-deploy").0, 200);
    assert_eq!(b.env.sim.sim().github_tokens_issued(), 3);
    b.stop();
}

#[test]
fn fuzzed_authorization_headers_and_bodies_never_crash_the_broker() {
    use rand::{RngExt, SeedableRng};
    let b = start(100_000);
    let good = b.id_token(OidcAlg::Rs256, json!({}));
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let pieces: Vec<String> = good.split('.').map(str::to_owned).collect();
    for i in 0..400 {
        let auth: Vec<u8> = match i % 5 {
            0 => (0..rng.random_range(0..200))
                .map(|_| rng.random::<u8>())
                .collect(),
            1 => format!("Bearer {}", random_text(&mut rng)).into_bytes(),
            2 => {
                // JWT-shaped: real parts shuffled and mutated.
                let mut p = pieces.clone();
                let k = rng.random_range(0..3);
                p[k] = random_text(&mut rng);
                format!("bearer {}", p.join(".")).into_bytes()
            }
            3 => {
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                let header = [
                    r#"{"alg":"RS256","kid":"sim-rsa-1"}"#,
                    r#"{"alg":"ES256","kid":"\u0000"}"#,
                    r#"{"alg":["x"],"kid":7}"#,
                    "[]",
                    "null",
                ][rng.random_range(0..5)];
                let claims = [
                    r#"{"iss":null}"#,
                    r#"{"iss":"x","exp":1e309}"#,
                    r#"{"aud":[1,2],"exp":"soon"}"#,
                    "{}",
                ][rng.random_range(0..4)];
                format!(
                    "Bearer {}.{}.{}",
                    b64.encode(header),
                    b64.encode(claims),
                    pieces[2]
                )
                .into_bytes()
            }
            _ => format!("Bearer {good}").into_bytes(),
        };
        let body: Vec<u8> = match rng.random_range(0..4) {
            0 => (0..rng.random_range(0..300))
                .map(|_| rng.random::<u8>())
                .collect(),
            1 => br#"{"policy": 12}"#.to_vec(),
            2 => format!(
                "{{\"policy\":\"{}\"}}",
                random_text(&mut rng).replace(['"', '\\'], "")
            )
            .into_bytes(),
            _ => br#"[{"policy":"site-deploy"}]"#.to_vec(),
        };
        let (st, text) = b.post_raw(Some(&auth), &body);
        if st == 0 {
            continue; // not a valid header value: reqwest refuses to send it
        }
        assert!(
            matches!(st, 400 | 401 | 403 | 413),
            "input {i}: status {st}: {text}"
        );
    }
    assert_eq!(b.get("/healthz").0, 200);
    assert!(b.audit().iter().all(|l| l["allowed"] == false));
    let (code, _) = b.stop();
    assert_eq!(code, 0);
}

fn random_text(rng: &mut impl rand::RngExt) -> String {
    const ALPHABET: &[u8] = b"abcXYZ019-_.=+/ \t{}\":,";
    (0..rng.random_range(0..120))
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[test]
fn clients_get_tokens_without_any_key_or_config() {
    let b = start(1000);
    // `github token --broker` with the ID token in an env var: the token alone on stdout.
    let id = b.id_token(OidcAlg::Rs256, json!({}));
    let site_deploy = [
        "github",
        "token",
        "--broker",
        &b.url,
        "--policy",
        "site-deploy",
    ];
    let out = b.env.ev_env(
        &[
            &["--config", "/nonexistent/none.yaml"][..],
            &site_deploy,
            &["--id-token-env", "CI_JOB_JWT_EVERTOKEN"],
        ]
        .concat(),
        &[("CI_JOB_JWT_EVERTOKEN", &id)],
    );
    out.expect_code(0);
    let t = b.env.secret(out.stdout.trim());
    assert_eq!(out.stdout, format!("{t}\n"));
    assert!(b.env.sim.sim().github_is_valid_token(&t));

    // Inside GitHub Actions: the job's own ID token, masked before use.
    let request_url = format!(
        "{}/_sim/oidc/actions-token?sub={}&repository_owner_id=1234",
        b.env.base_url(),
        MAIN.replace(':', "%3A").replace('/', "%2F")
    );
    // What the runner gives a job that may ask for an ID token.
    let runner = [
        ("ACTIONS_ID_TOKEN_REQUEST_URL", request_url.as_str()),
        (
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            "actions-request-token-not-a-real-secret",
        ),
    ];
    let out = b.env.ev_env(
        &site_deploy,
        &[&[("GITHUB_ACTIONS", "true")], &runner[..]].concat(),
    );
    out.expect_code(0);
    let t = b.env.secret(out.stdout.trim());
    assert!(out.stderr.starts_with("::add-mask::"), "{}", out.stderr);
    assert!(b.env.sim.sim().github_is_valid_token(&t));
    // The audience the broker requires is what the client asked the runner for.
    let wrong = b.env.ev_env(
        &[&site_deploy[..], &["--audience", "other"]].concat(),
        &runner,
    );
    wrong.expect_code(1).stderr_has(&["401", "wrong audience"]);
    assert_eq!(wrong.stdout, "");

    // A plain-http broker that is not on loopback is refused before anything is sent.
    b.env
        .run(b.env.cmd().args([
            "github",
            "token",
            "--broker",
            "http://broker.example.com",
            "--policy",
            "x",
            "--id-token-env",
            "X",
        ]))
        .expect_code(2)
        .stderr_has(&["plain http"]);

    // A host whose app entry names the broker: `github refresh` (the timer's command)
    // writes the token file and `github status` judges it, with no key anywhere.
    let host = b.env.path("host.yaml");
    std::fs::write(
        &host,
        format!(
            "github:\n  apps:\n    default:\n      token_env_file: {}\n      broker:\n        url: {}\n        \
             policy: host\n        client_secret_env: EVERTOKEN_BROKER_SECRET\n",
            b.env.path("host-token.env").display(),
            b.url
        ),
    )
    .unwrap();
    let refresh = b.env.ev_env(
        &["--config", host.to_str().unwrap(), "github", "refresh"],
        &[("EVERTOKEN_BROKER_SECRET", CLIENT_SECRET)],
    );
    refresh.expect_code(0).stderr_has(&["token broker"]);
    let t = common::apps::token_in(&b.env.path("host-token.env"));
    b.env.secret(&t);
    assert!(b.env.sim.sim().github_is_valid_token(&t));
    assert_eq!(common::mode(&b.env.path("host-token.env")), 0o600);
    let st = b.env.ev(&[
        "--config",
        host.to_str().unwrap(),
        "github",
        "status",
        "--json",
    ]);
    assert_eq!(st.json()["token_file"]["present"], true, "{}", st.stdout);
    b.env
        .run(
            b.env
                .cmd()
                .args(["--config", host.to_str().unwrap(), "doctor"]),
        )
        .stdout_has(&["github default: broker"]);
    b.env
        .run(
            b.env
                .cmd()
                .args(["--config", host.to_str().unwrap(), "github", "flow"]),
        )
        .stdout_has(&["tokens come from the broker"]);
    // Without the secret, it says which variable to set.
    let missing = b
        .env
        .ev(&["--config", host.to_str().unwrap(), "github", "refresh"]);
    missing
        .expect_code(2)
        .stderr_has(&["EVERTOKEN_BROKER_SECRET"]);
    b.stop();
}

/// A broker serving TLS with a leaf certificate from a throw-away CA.
fn tls_broker() -> Option<Broker> {
    let openssl = common::require_tool("openssl")?;
    Some(start_with(1000, |env| {
        // A throw-away CA and a leaf certificate for 127.0.0.1 signed by it.
        std::fs::write(
            env.path("tls-ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        let p = |name: &str| env.path(name).to_string_lossy().into_owned();
        let steps: [Vec<String>; 3] = [
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([
                "-subj".into(),
                "/CN=evertoken test CA".into(),
                "-keyout".into(),
                p("tls-ca.key"),
                "-out".into(),
                p("tls-ca.pem"),
            ])
            .collect(),
            vec![
                "req".into(),
                "-newkey".into(),
                "rsa:2048".into(),
                "-nodes".into(),
                "-subj".into(),
                "/CN=localhost".into(),
                "-keyout".into(),
                p("tls-key.pem"),
                "-out".into(),
                p("tls.csr"),
            ],
            vec![
                "x509".into(),
                "-req".into(),
                "-in".into(),
                p("tls.csr"),
                "-CA".into(),
                p("tls-ca.pem"),
                "-CAkey".into(),
                p("tls-ca.key"),
                "-CAcreateserial".into(),
                "-days".into(),
                "1".into(),
                "-extfile".into(),
                p("tls-ext.cnf"),
                "-out".into(),
                p("tls-cert.pem"),
            ],
        ];
        for args in steps {
            common::tool_ok(std::process::Command::new(&openssl).args(&args), "openssl");
        }
        set_mode(&env.path("tls-key.pem"), 0o600);
        format!(
            "  tls: {{ cert_file: {}, key_file: {} }}\n",
            p("tls-cert.pem"),
            p("tls-key.pem")
        )
    }))
}

#[test]
fn tls_with_rustls_serves_the_same_answers() {
    let Some(b) = tls_broker() else { return };
    assert!(b.url.starts_with("https://127.0.0.1:"), "{}", b.url);
    assert_eq!(b.get("/healthz").0, 200);
    let (st, v) = b.ask(CLIENT_SECRET, "host");
    assert_eq!(st, 200, "{v}");
    b.env.secret(v["token"].as_str().unwrap());
    let (st, _) = b.ask("wrong-secret-for-tls-test-0123456789", "host");
    assert_eq!(st, 401);
    // Plain HTTP to the TLS port gets no answer from the broker.
    let plain = b.url.replace("https://", "http://");
    let r = b.rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{plain}/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
    });
    assert!(r.is_err() || !r.unwrap().status().is_success());
    let (code, err) = b.stop();
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_bad_broker_config_is_refused_before_listening() {
    let env = TestEnv::new();
    apps::write_key(&env);
    let app = format!(
        "github:\n  apps:\n    default:\n      app_id: 1\n      installation_id: 2\n      private_key_path: app.pem\n      api_url: {}\n",
        env.base_url()
    );
    let cases = [
        (
            "broker:\n  issuers: [http://issuer.example.com]\n",
            "broker.issuers[0]",
            "plain http",
        ),
        (
            "broker:\n  clients: [{ name: c, token_sha256: not-hex }]\n",
            "broker.clients[0].token_sha256",
            "sha256sum",
        ),
        (
            "broker:\n  issuers: [https://i.example.com]\n  policies:\n    - { name: p, issuer: https://i.example.com, subject: s, repositories: [], permissions: { contents: read } }\n",
            "broker.policies[0].repositories",
            "narrows",
        ),
        (
            "broker:\n  policies:\n    - { name: p, issuer: https://other.example.com, subject: s, repositories: [r], permissions: { contents: read } }\n",
            "broker.policies[0].issuer",
            "broker.issuers",
        ),
        (
            "broker:\n  issuers: [https://i.example.com]\n  policies:\n    - { name: p, issuer: https://i.example.com, subject_pattern: \"(\", repositories: [r], permissions: { contents: read } }\n",
            "broker.policies[0].subject_pattern",
            "regex",
        ),
        (
            "broker:\n  issuers: [https://i.example.com]\n  policies:\n    - { name: p, issuer: https://i.example.com, subject: s, repositories: [acme/site], permissions: { contents: read } }\n",
            "broker.policies[0].repositories[0]",
            "write `site`, not `acme/site`",
        ),
        ("", "no `broker:` section", "keys-off-host"),
    ];
    for (yaml, key, hint) in cases {
        env.config(&format!("{app}{yaml}"));
        let out = env.ev(&["broker", "serve", "--listen", "127.0.0.1:0"]);
        out.expect_code_for(format_args!("{yaml}"), 2);
        assert!(out.stderr.contains(key), "{yaml}: {}", out.stderr);
        assert!(out.stderr.contains(hint), "{yaml}: {}", out.stderr);
        assert!(!out.stderr.contains("Listening"), "{}", out.stderr);
    }
}

/// SIGTERM while a mint is in flight: the request still gets its token, new
/// connections are refused, and the broker exits 0.
fn in_flight_request_survives_sigterm(b: Broker) {
    b.env.sim.sim().set_latency(Duration::from_millis(1500));
    let url = format!("{}/v1/token", b.url);
    let ca = b.env.path("tls-ca.pem");
    let ca: Option<Vec<u8>> = ca.exists().then(|| std::fs::read(&ca).unwrap());
    let inflight = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let mut c = reqwest::Client::builder();
            if let Some(pem) = ca {
                c = c.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
            }
            let r = c
                .build()
                .unwrap()
                .post(url)
                .bearer_auth(CLIENT_SECRET)
                .body(r#"{"policy":"host"}"#)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    });
    // Wait until the mint is waiting on GitHub, then stop the broker.
    let start = Instant::now();
    while b.env.sim.sim().stats().requests.values().sum::<u64>() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the mint never reached GitHub"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe {
        libc::kill(b.child.id() as i32, libc::SIGTERM);
    }
    let (st, body) = inflight.join().unwrap();
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    b.env.secret(v["token"].as_str().unwrap());
    let (code, err) = b.stop();
    assert_eq!(code, 0, "{err}");
    common::assert_contains(&err, &["shut down cleanly"]);
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    in_flight_request_survives_sigterm(start(1000));
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_over_tls() {
    let Some(b) = tls_broker() else { return };
    in_flight_request_survives_sigterm(b);
}

/// Claims a hostile or buggy issuer could sign: the extremes of i64 and u64, a
/// string, and non-integer NumericDates (RFC 7519 allows them).
#[test]
fn extreme_and_fractional_dates_never_crash_the_broker() {
    let b = start(1000);
    let now = jiff::Timestamp::now().as_second();
    let refused = [
        (json!({ "exp": i64::MAX }), "`exp` is out of range"),
        (json!({ "exp": i64::MIN }), "`exp` is out of range"),
        (json!({ "exp": u64::MAX }), "`exp` is out of range"),
        (json!({ "exp": -1.5 }), "`exp` is out of range"),
        (json!({ "exp": 1e300 }), "`exp` is out of range"),
        (json!({ "nbf": i64::MIN }), "`nbf` is out of range"),
        (json!({ "nbf": i64::MAX }), "`nbf` is out of range"),
        (json!({ "iat": i64::MAX }), "`iat` is out of range"),
        (json!({ "iat": i64::MIN }), "`iat` is out of range"),
        (json!({ "exp": "soon" }), "not a NumericDate"),
        (json!({ "exp": now as f64 - 120.5 }), "expired"),
    ];
    for (claims, why) in &refused {
        let id = b.id_token(OidcAlg::Es256, claims.clone());
        let (st, v) = b.ask(&id, "site-deploy");
        assert_eq!(st, 401, "{claims}: {v}");
        assert!(v["error"].as_str().unwrap().contains(why), "{claims}: {v}");
        let last = b.audit().pop().unwrap();
        assert_eq!(last["status"], 401, "{claims}");
        assert!(last["reason"].as_str().unwrap().contains(why), "{last}");
    }
    for claims in [
        json!({ "exp": now as f64 + 300.5 }),
        json!({ "exp": 1.9e10, "iat": now as f64 - 0.25, "nbf": now as f64 - 0.75 }),
    ] {
        let id = b.id_token(OidcAlg::Rs256, claims.clone());
        let (st, v) = b.ask(&id, "site-deploy");
        assert_eq!(st, 200, "{claims}: {v}");
        b.env.secret(v["token"].as_str().unwrap());
    }
    assert_eq!(b.get("/healthz").0, 200);
    let (code, err) = b.stop();
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// More distinct identities than the limiter tracks, each refused by policy: the
/// oldest entries are evicted, so a newcomer and the static client still get in
/// and a fresh caller still has its own budget.
#[test]
fn a_flood_of_identities_does_not_lock_out_other_callers() {
    let b = start(3);
    let tokens: Vec<String> = (0..10_100)
        .map(|i| {
            b.env.sim.sim().oidc_token(
                OidcAlg::Es256,
                json!({ "iss": issuer(&b.env), "aud": "evertoken", "sub": format!("repo:evil/x{i}:ref:refs/heads/main") }),
            )
        })
        .collect();
    let url = format!("{}/v1/token", b.url);
    let statuses: Vec<u16> = b.rt.block_on(async {
        use futures::StreamExt as _;
        futures::stream::iter(tokens.iter())
            .map(|t| {
                let rb = b
                    .http
                    .post(&url)
                    .bearer_auth(t)
                    .body(r#"{"policy":"site-deploy"}"#);
                async move { rb.send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
            })
            .buffer_unordered(16)
            .collect()
            .await
    });
    assert!(statuses.iter().all(|s| *s == 403), "{:?}", &statuses[..5]);
    let newcomer = b.id_token(
        OidcAlg::Rs256,
        json!({ "sub": "repo:acme/site:ref:refs/heads/feature" }),
    );
    for _ in 0..3 {
        let (st, v) = b.ask(&newcomer, "site-read");
        assert_eq!(st, 200, "{v}");
    }
    let (st, v) = b.ask(&newcomer, "site-read");
    assert_eq!(st, 429, "{v}");
    common::assert_fields(&v, &[("error", "3 requests a minute")]);
    assert_eq!(b.ask(CLIENT_SECRET, "host").0, 200);
    b.stop();
}

fn post_from(b: &Broker, from: std::net::IpAddr, bearer: &str, body: &str) -> u16 {
    let url = format!("{}/v1/token", b.url);
    b.rt.block_on(async {
        let c = reqwest::Client::builder()
            .local_address(from)
            .build()
            .unwrap();
        c.post(url)
            .bearer_auth(bearer)
            .body(body.to_owned())
            .send()
            .await
            .expect("the broker answers")
            .status()
            .as_u16()
    })
}

/// Failed authentications are limited per source address and in all (429, with
/// the credential still checked, so a valid caller gets through), and the audit
/// log holds at most a burst of such lines plus one summary with the count; an
/// oversized body is audited too.
#[test]
fn failed_authentications_are_limited_and_cannot_flood_the_audit_log() {
    let b = start(5);
    let body = json!({ "policy": "host" }).to_string();
    let (st, _) = b.post_raw(
        Some(format!("Bearer {CLIENT_SECRET}").as_bytes()),
        &vec![b'x'; 17 * 1024],
    );
    assert_eq!(st, 413);
    let last = b.audit().pop().unwrap();
    assert_eq!(last["status"], 413, "{last}");
    common::assert_fields(&last, &[("reason", "16 KiB")]);

    let local = std::net::IpAddr::from([127, 0, 0, 1]);
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen.push(post_from(&b, local, "not-a-client-secret", &body));
    }
    // The 413 counted as this address's first failure.
    assert!(seen[..4].iter().all(|s| *s == 401), "{seen:?}");
    assert!(seen[4..].iter().all(|s| *s == 429), "{seen:?}");
    // A valid caller from the same address is not locked out.
    assert_eq!(post_from(&b, local, CLIENT_SECRET, &body), 200);

    // Other addresses have their own budget until the global cap (600 a minute).
    let mut global = Vec::new();
    for i in 0..130u8 {
        let from = std::net::IpAddr::from([127, 0, 1, i]);
        for _ in 0..5 {
            global.push(post_from(&b, from, "not-a-client-secret", &body));
        }
    }
    let first_429 = global
        .iter()
        .position(|s| *s == 429)
        .expect("the global cap");
    assert!(global[..first_429].iter().all(|s| *s == 401));
    assert!(global[first_429..].iter().all(|s| *s == 429));
    // 301 failures before, 600 in all: the 300th of this loop is the first over.
    assert_eq!(first_429, 600 - 301, "{global:?}");
    let fresh = std::net::IpAddr::from([127, 0, 2, 1]);
    assert_eq!(post_from(&b, fresh, CLIENT_SECRET, &body), 200);

    let lines = b.audit();
    let noisy = lines
        .iter()
        .filter(|l| matches!(l["status"].as_u64(), Some(401 | 413 | 429)))
        .count();
    assert_eq!(noisy, 100, "a burst of 100 noisy lines, the rest counted");
    // Stopping writes the pending summary: 1 + 300 + 650 noisy refusals in all.
    let mut b = b;
    assert_eq!(b.sigterm(), 0);
    let summary = b.audit().pop().unwrap();
    assert_eq!(summary["status"], 0, "{summary}");
    assert_eq!(summary["who"], "unauthenticated", "{summary}");
    let counted: u64 = summary["suppressed"]
        .as_object()
        .expect("a summary counts per status")
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(counted, 951 - 100, "{summary}");
    common::assert_fields(&summary, &[("reason", "851 more refusals")]);
    let audit = std::fs::read_to_string(b.env.work().join("audit.jsonl")).unwrap();
    assert!(audit.len() < 100_000, "{} bytes", audit.len());
}

/// A subject with line separators and bidi controls reaches the audit log inert.
#[test]
fn audit_fields_from_outside_are_escaped() {
    let b = start(1000);
    let sub = "repo:acme/site\u{2028}{\"allowed\":true}\u{2029}\u{202E}niam/sdaeh\u{2066}x\u{2069}\u{1b}[2J";
    let id = b.id_token(OidcAlg::Rs256, json!({ "sub": sub }));
    assert_eq!(b.ask(&id, "site-deploy\u{202E}").0, 403);
    let raw = std::fs::read_to_string(b.env.work().join("audit.jsonl")).unwrap();
    for c in [
        '\u{2028}', '\u{2029}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{1b}',
    ] {
        assert!(!raw.contains(c), "{c:?} in {raw}");
    }
    let last = b.audit().pop().unwrap();
    common::assert_fields(&last, &[("who", "\\u{2028}"), ("policy", "\\u{202e}")]);
    b.stop();
}

fn broker_config(env: &TestEnv, audit_log: &str) {
    apps::write_key(env);
    env.config(&format!(
        "github:\n  apps:\n    default:\n      app_id: 1\n      installation_id: 2\n      private_key_path: app.pem\n      api_url: {}\n\
         broker:\n  clients: [{{ name: c, token_sha256: \"{}\" }}]\n  policies:\n    - {{ name: p, client: c, repositories: [r], permissions: {{ contents: read }} }}\n  audit_log: {audit_log}\n",
        env.base_url(),
        sha256_hex(CLIENT_SECRET)
    ));
}

/// `broker serve` under umask 000.
fn serve_umask0(env: &TestEnv) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut c = env.std_cmd();
    c.args(["broker", "serve", "--listen", "127.0.0.1:0"]);
    unsafe {
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    c
}

/// The audit log is created 0600 in 0700 directories whatever the umask, and a
/// symlink or a file or directory others may write is refused at start-up.
#[test]
fn the_audit_log_is_private_and_never_written_through_a_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;

    broker_config(&env, "logs/broker/audit.jsonl");
    let mut child = serve_umask0(&env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("Listening"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "the broker did not start");
    assert_eq!(mode(&env.work().join("logs")), 0o700);
    assert_eq!(mode(&env.work().join("logs/broker")), 0o700);
    assert_eq!(mode(&env.work().join("logs/broker/audit.jsonl")), 0o600);

    let target = env.path("elsewhere.txt");
    std::fs::write(&target, "untouched\n").unwrap();
    std::os::unix::fs::symlink(&target, env.work().join("link.jsonl")).unwrap();
    std::fs::write(env.work().join("open.jsonl"), "").unwrap();
    set_mode(&env.work().join("open.jsonl"), 0o666);
    std::fs::create_dir(env.work().join("shared")).unwrap();
    set_mode(&env.work().join("shared"), 0o777);
    for (log, why) in [
        ("link.jsonl", "symbolic link"),
        ("open.jsonl", "writable by group or others"),
        ("shared/audit.jsonl", "writable by group or others"),
    ] {
        broker_config(&env, log);
        let out = serve_umask0(&env).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{log}: {err}");
        assert!(
            err.contains("broker.audit_log") && err.contains(why),
            "{log}: {err}"
        );
        assert!(!err.contains("Listening"), "{err}");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched\n");
    assert!(!env.work().join("shared/audit.jsonl").exists());
}

/// A tiny hostile broker: answers every request with `status` and `body`.
fn fake_broker(status: u16, body: &'static str) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 65536];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// The client refuses a bearer that cannot be a header, says what each status
/// means, and never passes on a token that is not token-shaped.
#[test]
fn the_client_checks_its_bearer_and_the_brokers_answer() {
    let env = TestEnv::new();
    let token = |url: &str, bearer: &str| {
        env.ev_env(
            &[
                "--config",
                "/nonexistent/none.yaml",
                "github",
                "token",
                "--broker",
                url,
                "--policy",
                "p",
                "--id-token-env",
                "EV_BEARER",
            ],
            &[("EV_BEARER", bearer)],
        )
    };
    let ok = fake_broker(
        200,
        r#"{"token":"ghs_testFAKEnotarealtoken0123456789abcdef"}"#,
    );
    let out = token(&ok, "eyJh.eyJi\nx.c2ln");
    out.expect_code(2).stderr_has(&["not visible ASCII"]);
    assert!(!out.stderr.contains("builder error"), "{}", out.stderr);
    assert_eq!(token(&ok, "eyJh.eyJi.c2ln").code, 0);

    for (status, body, says) in [
        (404, "not found", "check the broker URL"),
        (401, r#"{"error":"expired"}"#, "client secret is wrong"),
        (
            403,
            r#"{"error":"no such policy"}"#,
            "check the policy name",
        ),
        (429, r#"{"error":"slow down"}"#, "try again in a minute"),
        (
            502,
            r#"{"error":"GitHub did not mint"}"#,
            "GitHub refused the mint",
        ),
    ] {
        let out = token(&fake_broker(status, body), "eyJh.eyJi.c2ln");
        out.expect_code_for(format_args!("{status}"), 1);
        assert!(out.stderr.contains(says), "{status}: {}", out.stderr);
        if status != 502 {
            assert!(
                !out.stderr.contains("GitHub refused"),
                "{status}: {}",
                out.stderr
            );
        }
    }
    for body in [
        r#"{"token":"ghs_abc;touch /tmp/pwned"}"#,
        r#"{"token":"ghs_abc\n::set-env name=X::1"}"#,
        r#"{"token":"ghs_\u202eabc"}"#,
    ] {
        let out = token(&fake_broker(200, body), "eyJh.eyJi.c2ln");
        out.expect_code_for(format_args!("{body}"), 1);
        assert_eq!(out.stdout, "", "{body}");
        out.stderr_has_for(format_args!("{body}"), &["refused"]);
        assert!(
            !out.stderr.contains("pwned") && !out.stderr.contains("set-env"),
            "{}",
            out.stderr
        );
    }
}
