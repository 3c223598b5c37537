//! Exit code 2 and the configuration rules: every class of bad configuration and bad input is
//! a clear error naming the file and key, exit 2, with nothing contacted and
//! nothing written.

use crate::common;

use common::TestEnv;

fn assert_config_error(env: &TestEnv, args: &[&str], wants: &[&str]) -> String {
    let out = env.ev(args);
    assert_eq!(
        out.code, 2,
        "expected exit 2 for {args:?}; stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.is_empty(),
        "stdout must stay data-only: {}",
        out.stdout
    );
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    for w in wants {
        assert!(
            out.stderr.contains(w),
            "stderr lacks {w:?}:\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_eq!(
        env.sim.sim().stats().requests.values().sum::<u64>(),
        0,
        "a config error contacted a provider"
    );
    out.stderr
}

fn base_config(env: &TestEnv) -> String {
    format!(
        "platforms:\n  tiktok:\n    enabled: true\n    base_url: \"{}\"\n    client_key: test-key\nauth:\n  writeback:\n    local: {{ keychain: off }}\n",
        env.base_url()
    )
}

#[test]
fn a_misspelt_key_names_its_path_and_the_likely_key() {
    let env = TestEnv::new();
    env.config(&base_config(&env).replace("enabled: true", "enabeld: true"));
    let err = assert_config_error(
        &env,
        &["auth", "refresh"],
        &[
            "evertoken.yaml",
            "line 3",
            "unknown key `platforms.tiktok.enabeld`",
            "hint: did you mean `enabled`?",
        ],
    );
    assert!(
        !err.contains("expected one of"),
        "the raw serde list is replaced by the hint: {err}"
    );
}

#[test]
fn unknown_sections_values_and_types_are_errors() {
    let env = TestEnv::new();
    let base = base_config(&env);
    env.config(&format!("{base}platfroms: {{}}\n"));
    assert_config_error(
        &env,
        &["auth", "status"],
        &["unknown key `platfroms`", "did you mean `platforms`?"],
    );
    env.config(&base.replace("local: { keychain: off }", "backend: locall"));
    assert_config_error(
        &env,
        &["auth", "refresh"],
        &[
            "auth.writeback.backend",
            "unknown value `locall`",
            "did you mean `local`?",
        ],
    );
    env.config(&base.replace("keychain: off", "keychain: sometimes"));
    assert_config_error(
        &env,
        &["auth", "refresh"],
        &["auth.writeback.local.keychain", "auto, off, required"],
    );
    env.config(&base.replace(
        "client_key: test-key",
        "client_key: test-key\n    concurrency: lots",
    ));
    assert_config_error(
        &env,
        &["auth", "refresh"],
        &["platforms.tiktok.concurrency"],
    );
    env.config(&base.replace(
        "client_key: test-key",
        "client_key: test-key\n    concurrency: 0",
    ));
    assert_config_error(
        &env,
        &["auth", "refresh"],
        &["platforms.tiktok.concurrency", "at least 1"],
    );
}

#[test]
fn required_keys_and_urls_are_checked() {
    let env = TestEnv::new();
    let base = base_config(&env);
    env.config(&base.replace("    client_key: test-key\n", ""));
    assert_config_error(
        &env,
        &["auth", "refresh"],
        &["platforms.tiktok.client_key", "is required", "hint:"],
    );
    env.config(&base.replace(&env.base_url(), "not a url"));
    assert_config_error(&env, &["auth", "refresh"], &["platforms.tiktok.base_url"]);
    env.config(&base.replace(&env.base_url(), &format!("{}/proxy/path", env.base_url())));
    assert_config_error(
        &env,
        &["auth", "refresh"],
        &[
            "platforms.tiktok.base_url",
            "replaces only scheme, host and port",
        ],
    );
}

#[test]
fn bad_yaml_is_an_error_with_a_location() {
    let env = TestEnv::new();
    env.config("platforms:\n  tiktok: [unclosed\n");
    assert_config_error(&env, &["auth", "refresh"], &["evertoken.yaml", "line"]);
}

#[test]
fn no_config_anywhere_says_where_it_looked() {
    let env = TestEnv::new();
    assert_config_error(
        &env,
        &["auth", "refresh"],
        &[
            "no configuration file found",
            "evertoken.yaml",
            "hint:",
            "evertoken demo",
        ],
    );
    assert_config_error(
        &env,
        &["--config", "/nonexistent/evertoken.yaml", "auth", "status"],
        &["/nonexistent/evertoken.yaml", "does not exist"],
    );
    let mut c = env.cmd();
    c.env("EVERTOKEN_CONFIG", env.path("nope.yaml"))
        .args(["auth", "status"]);
    env.run(&mut c)
        .expect_code(2)
        .stderr_has(&["EVERTOKEN_CONFIG"]);
}

#[test]
fn config_is_found_in_xdg_config_home() {
    let env = TestEnv::new();
    let dir = env.path("config/evertoken");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.yaml"),
        base_config(&env).replace("tiktok:", "tiktok_typo:"),
    )
    .unwrap();
    assert_config_error(
        &env,
        &["auth", "status"],
        &["config/evertoken/config.yaml", "platforms.tiktok_typo"],
    );
}

#[test]
fn bad_targets_and_flags_are_usage_errors() {
    let env = TestEnv::new();
    env.config(&base_config(&env));
    assert_config_error(
        &env,
        &["auth", "refresh", "myspace"],
        &[
            "unknown target `myspace`",
            "instagram, youtube, tiktok, linkedin",
        ],
    );
    assert_config_error(
        &env,
        &["auth", "refresh", "instagram"],
        &["platform `instagram` is not enabled", "hint:"],
    );
    env.ev(&["auth", "refresh", "--bogus"]).expect_code(2);
    env.ev(&["frobnicate"]).expect_code(2);
    let mut c = env.cmd();
    c.env("EVERTOKEN_NOW", "yesterday").args(["auth", "status"]);
    env.run(&mut c)
        .expect_code(2)
        .stderr_has(&["EVERTOKEN_NOW must be an RFC 3339 timestamp"]);
    // With stderr a closed pipe (`… 2>&1 | grep -q`), still exit 2, not a
    // panic's 101.
    let mut c = env.std_cmd();
    c.args(["auth", "status", "tiktok:nosuch"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(2), "closed stderr");
}

#[test]
fn a_credentials_file_others_can_read_is_refused() {
    let env = TestEnv::new();
    env.config(&base_config(&env));
    let p = env.credentials("TIKTOK_REFRESH_TOKEN: rft.test-not-a-real-secret-001\nTIKTOK_CLIENT_SECRET: test-secret-001\n");
    common::set_mode(&p, 0o644);
    assert_config_error(
        &env,
        &["auth", "refresh"],
        &[
            "credentials.yaml",
            "readable by others",
            "mode 0644",
            "chmod 600",
        ],
    );
    assert_eq!(
        common::mode(&p),
        0o644,
        "evertoken must not silently change it"
    );
}

#[test]
fn a_malformed_credentials_file_names_the_entry() {
    let env = TestEnv::new();
    env.config(&base_config(&env));
    env.credentials("TIKTOK_REFRESH_TOKEN:\n  valeu: rft.test-not-a-real-secret-001\n");
    assert_config_error(
        &env,
        &["auth", "status"],
        &[
            "credentials.yaml",
            "`TIKTOK_REFRESH_TOKEN`.valeu",
            "did you mean `value`?",
        ],
    );
    env.credentials("TIKTOK_REFRESH_TOKEN: {value: x, expires_at: next week}\n");
    assert_config_error(
        &env,
        &["auth", "status"],
        &["`TIKTOK_REFRESH_TOKEN`.expires_at", "RFC 3339"],
    );
    env.credentials("- just\n- a list\n");
    assert_config_error(&env, &["auth", "status"], &["must be a map"]);
}

#[test]
fn keychain_required_without_a_keychain_is_a_config_error() {
    let env = TestEnv::new();
    env.config(&base_config(&env).replace("keychain: off", "keychain: required"));
    // This machine (and CI) has no Secret Service: the fallback choice is proven,
    // not assumed.
    assert_config_error(
        &env,
        &["auth", "status"],
        &[
            "auth.writeback.local.keychain",
            "is `required`",
            "no OS keychain",
        ],
    );
}

#[test]
fn help_teaches_and_version_works() {
    let env = TestEnv::new();
    let out = env.ev(&["--help"]);
    out.expect_code(0);
    for w in ["auth", "demo", "--config", "Exit codes"] {
        assert!(out.stdout.contains(w), "{w}: {}", out.stdout);
    }
    env.ev(&["auth", "refresh", "--help"])
        .stdout_has(&["--dry-run", "TikTok"]);
    let out = env.ev(&["--version"]);
    assert!(out.stdout.starts_with("evertoken "), "{}", out.stdout);
}

/// Issue 13, defect 2: absurd numbers are config errors naming the key (exit 2),
/// for `auth status` and `auth refresh` alike, never a panic or a silent wrap.
#[test]
fn out_of_range_numbers_name_their_key() {
    let env = TestEnv::new();
    let base = base_config(&env);
    for (yaml, key) in [
        (
            format!("{base}http: {{ timeout_seconds: 18446744073709551615 }}\n"),
            "http.timeout_seconds",
        ),
        (
            format!("{base}http: {{ timeout_seconds: -1 }}\n"),
            "http.timeout_seconds",
        ),
        (format!("{base}http: {{ retries: 1000 }}\n"), "http.retries"),
        (
            base.replace(
                "client_key: test-key",
                "client_key: test-key\n    refresh_before_days: 100000000",
            ),
            "platforms.tiktok.refresh_before_days",
        ),
        (
            base.replace(
                "client_key: test-key",
                "client_key: test-key\n    refresh_before_days: 9223372036854775807",
            ),
            "platforms.tiktok.refresh_before_days",
        ),
        (
            base.replace(
                "client_key: test-key",
                "client_key: test-key\n    refresh_before_days: -5",
            ),
            "platforms.tiktok.refresh_before_days",
        ),
        (
            base.replace(
                "client_key: test-key",
                "client_key: test-key\n    concurrency: 100000",
            ),
            "platforms.tiktok.concurrency",
        ),
        (
            format!("{base}  alerts: {{ repeat_hours: 18446744073709551615 }}\n"),
            "auth.alerts.repeat_hours",
        ),
    ] {
        env.config(&yaml);
        for args in [&["auth", "status"][..], &["auth", "refresh"][..]] {
            assert_config_error(&env, args, &[&format!("`{key}`"), "is outside", "hint:"]);
        }
    }
}

/// Issue 13, point 9: YAML nested 100,000 levels deep (config and credentials
/// file) is rejected as too deep, not parsed for seconds or overflowing a stack.
#[test]
fn deeply_nested_yaml_is_rejected() {
    let env = TestEnv::new();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    env.config(&format!("platforms: {deep}\n"));
    assert_config_error(&env, &["auth", "status"], &["nesting deeper than 64"]);
    env.config(&base_config(&env));
    env.credentials(&format!("TIKTOK_REFRESH_TOKEN: {deep}\n"));
    let out = env.ev(&["auth", "status"]);
    assert_ne!(out.code, 101, "{}", out.stderr);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("nesting deeper than 64"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
}

/// Issue 13, point 9: a directory or a fifo given as `--config` says what it is.
#[test]
fn a_directory_or_fifo_as_config_says_what_it_is() {
    let env = TestEnv::new();
    let dir = env.path("work/a-dir");
    std::fs::create_dir(&dir).unwrap();
    assert_config_error(
        &env,
        &["--config", dir.to_str().unwrap(), "auth", "status"],
        &["is a directory, not a file"],
    );
    let fifo = env.path("work/a-fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert_config_error(
        &env,
        &["--config", fifo.to_str().unwrap(), "auth", "status"],
        &["is not a regular file"],
    );
}

/// GitHub narrows a token to repository NAMES (at most 500): `owner/name` in
/// `github.apps.<a>.repositories` is refused at config load, naming the key and
/// the fix, before any key is read or GitHub is asked.
#[test]
fn github_repositories_are_names_without_the_owner() {
    let env = TestEnv::new();
    let app = format!(
        "github:\n  apps:\n    default:\n      app_id: 1\n      installation_id: 2\n      private_key_path: app.pem\n      api_url: \"{}\"\n",
        env.base_url()
    );
    env.config(&format!("{app}      repositories: [docs, acme/site]\n"));
    for args in [&["github", "refresh"][..], &["auth", "status"][..]] {
        assert_config_error(
            &env,
            args,
            &[
                "`github.apps.default.repositories[1]`",
                "hint: write `site`, not `acme/site`",
            ],
        );
    }
    let many: Vec<String> = (0..501).map(|i| format!("repo-{i}")).collect();
    env.config(&format!("{app}      repositories: [{}]\n", many.join(", ")));
    assert_config_error(
        &env,
        &["github", "refresh"],
        &["`github.apps.default.repositories`", "at most 500"],
    );
    assert_eq!(env.sim.sim().github_tokens_issued(), 0);
}
