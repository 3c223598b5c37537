//! Issue 15, "a binary that ships": the `Dockerfile` passes hadolint and keeps its
//! promises (multi-stage, a final image of the static binary and the CA
//! certificates only, a non-root user); the release workflow passes actionlint,
//! builds both Linux targets and publishes checksums under the asset names the
//! install page documents. No container engine is needed.

use crate::common;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A tool from `scripts/setup-*` (under target/test-tools) or PATH; under CI=true a
/// missing tool fails the test.
fn tool(name: &str, installed: &str) -> Option<PathBuf> {
    common::test_tool(name, &[installed])
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap()
}

/// The linter `name` (from `installed` or PATH) accepts the repository's file `rel`.
fn lint_passes(name: &str, installed: &str, rel: &str) {
    let Some(linter) = tool(name, installed) else {
        return;
    };
    common::tool_ok(
        std::process::Command::new(linter).arg(root().join(rel)),
        name,
    );
}

#[test]
fn the_dockerfile_passes_hadolint() {
    lint_passes(
        "hadolint",
        "target/test-tools/hadolint-venv/bin/hadolint",
        "Dockerfile",
    );
}

#[test]
fn the_image_holds_the_binary_and_ca_certificates_only_and_runs_unprivileged() {
    let text = read("Dockerfile");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("FROM "))
        .map(|(i, _)| i)
        .collect();
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    let last = &lines[*froms.last().unwrap()..];
    assert_eq!(last[0], "FROM scratch", "a minimal final image");
    let copies: Vec<&str> = last
        .iter()
        .filter(|l| l.starts_with("COPY") || l.starts_with("ADD"))
        .copied()
        .collect();
    let what: Vec<&str> = copies
        .iter()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(
        what,
        [
            "/etc/ssl/certs/ca-certificates.crt",
            "/usr/local/bin/evertoken",
            "/home/evertoken"
        ],
        "binary, CA certificates and an empty home only: {copies:?}"
    );
    let user = last
        .iter()
        .find(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(
        !user.contains("root") && !user.ends_with(" 0") && !user.contains(" 0:"),
        "{user}"
    );
    assert!(
        last.iter()
            .any(|l| l.starts_with("ENTRYPOINT [\"/usr/local/bin/evertoken\"]"))
    );
    // The build is reproducible from the lock file.
    assert!(text.contains("--locked"));
}

#[test]
fn the_release_workflow_passes_actionlint() {
    lint_passes(
        "actionlint",
        "target/test-tools/ops-venv/bin/actionlint",
        ".github/workflows/release.yml",
    );
}

#[test]
fn the_release_builds_both_targets_with_checksums_under_the_documented_names() {
    let wf = read(".github/workflows/release.yml");
    let doc: serde_norway::Value = serde_norway::from_str(&wf).unwrap();
    let matrix = &doc["jobs"]["binaries"]["strategy"]["matrix"]["include"];
    let targets: Vec<&str> = matrix
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"]
    );
    assert!(wf.contains("sha256sum"), "checksums");
    assert!(wf.contains("SHA256SUMS"));
    assert!(wf.contains("--locked"));
    // The install page (which the generated CI schedules follow) names the same assets.
    let install = read("docs/src/reference/install.md");
    for t in &targets {
        let asset = format!("evertoken-{t}.tar.gz");
        assert!(install.contains(&asset), "{asset} documented");
        assert!(
            install.contains(&format!("{asset}.sha256"))
                || install.contains("evertoken-$target.tar.gz.sha256")
        );
    }
    assert!(wf.contains("evertoken-${{ matrix.target }}.tar.gz"));
    assert!(install.contains("releases/latest/download/evertoken-<target>.tar.gz"));
}
