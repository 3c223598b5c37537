//! The documentation against the code: the README's size and first commands; the
//! config reference lists exactly the keys the parser accepts (probed from the
//! parser itself); every fenced YAML config example parses and validates; the
//! Actions example equals the generated workflow; and the mdBook builds with no
//! broken internal link (checked offline over the built HTML).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every markdown file of the book and the top-level docs.
fn markdown_files() -> Vec<PathBuf> {
    let mut out = vec![root().join("README.md"), root().join("CONTRIBUTING.md")];
    let mut stack = vec![root().join("docs/src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Fenced blocks of a markdown text: (info string, body).
fn fenced(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, String, usize)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match &mut cur {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let indent = line.len() - trimmed.len();
                    cur = Some((info.trim().to_owned(), String::new(), indent));
                }
            }
            Some((info, body, indent)) => {
                if trimmed.starts_with("```") {
                    out.push((info.clone(), body.clone()));
                    cur = None;
                } else {
                    let l = if line.len() >= *indent {
                        &line[*indent..]
                    } else {
                        line.trim_start()
                    };
                    body.push_str(l);
                    body.push('\n');
                }
            }
        }
    }
    out
}

#[test]
fn readme_is_short_and_starts_with_the_two_commands() {
    let readme = read("README.md");
    let n = readme.lines().count();
    assert!(
        n <= 260,
        "README.md has {n} lines; the rest belongs in the book"
    );
    let head: String = readme.lines().take(20).collect::<Vec<_>>().join("\n");
    common::assert_contains(&head, &["evertoken demo", "./scripts/test"]);
    for link in ["RELIABILITY.md", "SECURITY.md", "BENCHMARKS.md"] {
        assert!(readme.contains(link), "README links {link}");
    }
}

#[test]
fn readme_and_contributing_links_point_at_files_that_exist() {
    for f in ["README.md", "CONTRIBUTING.md"] {
        let text = read(f);
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(j) = rest.find(')') else { break };
            let link = &rest[..j];
            rest = &rest[j..];
            if link.contains("://") || link.starts_with('#') || link.starts_with("mailto:") {
                continue;
            }
            let file = link.split('#').next().unwrap_or("");
            assert!(
                root().join(file).exists(),
                "{f} links {link}, which does not exist"
            );
        }
    }
}

// ---- The config reference against the parser.

/// YAML for `path` (dotted; `<name>` becomes `default`) holding `leaf`.
fn nested(path: &[&str], leaf: &str) -> String {
    let mut y = String::new();
    for (i, seg) in path.iter().enumerate() {
        let name = if seg.starts_with('<') { "default" } else { seg };
        y.push_str(&format!("{}{name}:\n", "  ".repeat(i)));
        // A configured service under `platforms:` says what kind it is.
        if seg.starts_with('<') && i > 0 && path[i - 1] == "platforms" {
            y.push_str(&format!("{}kind: oauth2\n", "  ".repeat(i + 1)));
        }
    }
    y.push_str(&format!("{}{leaf}\n", "  ".repeat(path.len())));
    y
}

/// The keys the parser accepts in the mapping at `path`, or `None` when it is no
/// mapping with fixed keys.
fn accepted_keys(path: &[&str]) -> Option<BTreeSet<String>> {
    let text = nested(path, "zzzzzz_not_a_key: 1");
    let err = evertoken::config::parse(&text, Path::new("probe.yaml")).err()?;
    if !err.message.contains("unknown key") {
        return None;
    }
    let hint = err.hint?;
    let list = hint.strip_prefix("known keys here: ")?;
    Some(list.split(", ").map(str::to_owned).collect())
}

/// `| `a.b.c` | …` rows of the config reference: documented dotted keys.
fn documented_keys() -> BTreeSet<String> {
    read("docs/src/reference/config.md")
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|k| !k.is_empty() && !k.contains(' '))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_config_reference_lists_exactly_the_keys_the_parser_accepts() {
    let documented = documented_keys();
    let mut missing = Vec::new();
    let mut stale = Vec::new();
    // Walk the parser's mappings from the root, following documented and accepted keys.
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen = BTreeSet::new();
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let segs: Vec<&str> = path.iter().map(String::as_str).collect();
        let Some(keys) = accepted_keys(&segs) else {
            continue;
        };
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{}.", path.join("."))
        };
        for k in &keys {
            let full = format!("{prefix}{k}");
            if !documented.contains(&full) {
                missing.push(full.clone());
            }
            let mut child = path.clone();
            child.push(k.clone());
            todo.push(child.clone());
            // Maps of names (`github.apps.<name>`).
            let named = format!("{full}.<name>");
            if documented.iter().any(|d| d.starts_with(&named)) {
                child.push("<name>".into());
                todo.push(child);
            }
        }
        // Documented keys under this mapping that the parser does not accept.
        let docs_here: BTreeSet<String> = documented
            .iter()
            .filter_map(|d| d.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('.'))
            .map(str::to_owned)
            .collect();
        for d in docs_here.difference(&keys) {
            stale.push(format!("{prefix}{d}"));
        }
    }
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/src/reference/config.md drifted from the parser:\n  accepted but undocumented: {missing:?}\n  documented but not accepted: {stale:?}"
    );
    // The keys users missed before are among them.
    for k in [
        "platforms.instagram.app_id",
        "platforms.tiktok.auth_url",
        "auth.alerts.webhook.url",
        "github.apps.<name>.app_id",
    ] {
        assert!(documented.contains(k), "{k} is not in the config reference");
    }
}

// ---- Every YAML config example parses.

const CONFIG_KEYS: &[&str] = &["platforms", "auth", "github", "http"];

#[test]
fn every_fenced_config_example_parses_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for f in markdown_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        for (info, body) in fenced(&text) {
            if info != "yaml" && info != "yml" {
                continue;
            }
            let Ok(serde_norway::Value::Mapping(m)) =
                serde_norway::from_str::<serde_norway::Value>(&body)
            else {
                continue;
            };
            let top: Vec<String> = m
                .keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect();
            if top.is_empty() || !top.iter().all(|k| CONFIG_KEYS.contains(&k.as_str())) {
                continue;
            }
            let p = dir.path().join("evertoken.yaml");
            std::fs::write(&p, &body).unwrap();
            if let Err(e) = evertoken::config::Config::load_file(&p) {
                panic!(
                    "a config example in {} does not load: {}\n  hint: {}\n---\n{body}",
                    f.display(),
                    e.message,
                    e.hint.unwrap_or_default()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} config examples found");
}

// ---- The Actions example is the generated workflow.

#[test]
fn the_github_actions_guide_shows_the_generated_workflow() {
    let page = read("docs/src/guides/github-actions.md");
    let blocks = fenced(&page);
    let config = &blocks
        .iter()
        .find(|(i, b)| i == "yaml" && b.starts_with("platforms:"))
        .expect("the guide's config example")
        .1;
    let shown = &blocks
        .iter()
        .find(|(i, b)| i == "yaml" && b.contains("name: evertoken"))
        .expect("the guide's workflow")
        .1;
    let env = common::TestEnv::new();
    env.config(config);
    let out = env.ev(&["--config", "evertoken.yaml", "schedule", "github-actions"]);
    out.expect_code(0);
    assert!(
        *shown == out.stdout,
        "docs/src/guides/github-actions.md shows another workflow than `evertoken schedule github-actions` generates for its config; paste this:\n{}",
        out.stdout
    );
}

// ---- The book builds with no broken internal link.

fn mdbook() -> Option<PathBuf> {
    common::test_tool(
        "mdbook",
        &[
            "target/test-tools/docs-venv/bin/mdbook",
            "target/test-tools/bin/mdbook",
        ],
    )
}

fn html_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            html_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "html") {
            out.push(p);
        }
    }
}

/// The values of `attr="…"` in an HTML text.
fn attr_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let pat = format!("{attr}=\"");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&pat) {
        rest = &rest[i + pat.len()..];
        if let Some(j) = rest.find('"') {
            out.push(&rest[..j]);
            rest = &rest[j..];
        }
    }
    out
}

#[test]
fn the_book_builds_and_has_no_broken_internal_link() {
    let Some(mdbook) = mdbook() else { return };
    let out_dir = tempfile::tempdir().unwrap();
    let build = std::process::Command::new(mdbook)
        .arg("build")
        .arg(root().join("docs"))
        .arg("--dest-dir")
        .arg(out_dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&build.stderr);
    assert!(build.status.success(), "mdbook build failed:\n{stderr}");
    assert!(
        !stderr.contains("WARN") && !stderr.contains("ERROR"),
        "mdbook warned:\n{stderr}"
    );
    let mut pages = Vec::new();
    html_files(out_dir.path(), &mut pages);
    let mut ids: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for p in &pages {
        let html = std::fs::read_to_string(p).unwrap();
        ids.insert(
            p.clone(),
            attr_values(&html, "id")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        );
    }
    let mut broken = Vec::new();
    for p in &pages {
        // mdBook's 404 page links from the site root (`<base href="/">`).
        if p.file_name().is_some_and(|n| n == "404.html") {
            continue;
        }
        let html = std::fs::read_to_string(p).unwrap();
        for link in attr_values(&html, "href")
            .into_iter()
            .chain(attr_values(&html, "src"))
        {
            if link.contains("://")
                || link.starts_with("mailto:")
                || link.starts_with("javascript:")
                || link.is_empty()
            {
                continue;
            }
            let (file, frag) = match link.split_once('#') {
                Some((f, fr)) => (f, Some(fr)),
                None => (link, None),
            };
            let file = file.split('?').next().unwrap_or("");
            let target = if file.is_empty() {
                p.clone()
            } else {
                p.parent().unwrap().join(file)
            };
            let target = if target.is_dir() {
                target.join("index.html")
            } else {
                target
            };
            if !target.exists() {
                broken.push(format!(
                    "{}: {link}",
                    p.strip_prefix(out_dir.path()).unwrap().display()
                ));
                continue;
            }
            if let Some(frag) = frag.filter(|f| !f.is_empty())
                && let Some(known) = ids
                    .get(&std::fs::canonicalize(&target).unwrap_or(target.clone()))
                    .or_else(|| ids.get(&target))
                && !known.contains(frag)
            {
                broken.push(format!(
                    "{}: {link} (no such anchor)",
                    p.strip_prefix(out_dir.path()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links in the book:\n{}",
        broken.join("\n")
    );
}

// ---- `--help` and the docs say the same thing.

fn help(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_evertoken"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn login_help_and_the_docs_agree_on_headless_login() {
    let h = help(&["auth", "login"]);
    let tunnel = "ssh -L 8765:127.0.0.1:8765";
    common::assert_contains(&h, &[tunnel]);
    assert!(!h.contains("open it on the same machine"), "{h}");
    let page = read("docs/src/guides/login.md");
    assert!(
        page.contains(tunnel),
        "docs/src/guides/login.md must show {tunnel}"
    );
    common::assert_contains(&h, &["--store", "--create-variable"]);
}

#[test]
fn one_git_credential_helper_line_in_help_and_docs() {
    let line = "git config --global credential.https://github.com.helper '!evertoken github git-credential'";
    let h = help(&["github"]).replace('\n', " ");
    let squeezed = h.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(squeezed.contains(line), "{h}");
    for f in ["README.md", "docs/src/guides/github-app-host.md"] {
        let text = read(f);
        assert!(text.contains(line), "{f} must show exactly: {line}");
        // No other way of configuring it.
        assert_eq!(
            text.matches("credential.helper").count() + text.matches(".helper '").count(),
            text.matches(line).count(),
            "{f} configures the credential helper another way too"
        );
    }
}
