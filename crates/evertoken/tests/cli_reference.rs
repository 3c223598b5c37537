//! The CLI reference (docs/src/reference/cli.md) and the man pages (docs/man/*.1)
//! are generated from the clap definitions, so they cannot drift from `--help`:
//! this test regenerates both in memory (the reference from what the binary's
//! `--help` prints, the man pages with `clap_mangen`) and fails when the committed
//! files differ.
//!
//! After changing a command's help, regenerate with
//! `cargo test -p evertoken --test it cli_reference::regenerate -- --ignored`.

use std::path::PathBuf;

use clap::CommandFactory;

/// Help is rendered at this width (the width clap uses when stdout is no terminal).
const WIDTH: usize = 100;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn command() -> clap::Command {
    let mut c = evertoken::cli::Cli::command().term_width(WIDTH);
    c.build();
    c
}

/// Every command, depth first, with its path (`["auth", "refresh"]`).
fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
    out.push((path.clone(), cmd.clone()));
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let mut p = path.clone();
        p.push(sub.get_name().to_owned());
        walk(sub, p, out);
    }
}

fn commands() -> Vec<(Vec<String>, clap::Command)> {
    let mut out = Vec::new();
    walk(&command(), Vec::new(), &mut out);
    out
}

fn title(path: &[String]) -> String {
    std::iter::once("evertoken")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What `evertoken PATH --help` prints (the binary itself, so the reference is
/// exactly what users see).
fn long_help(path: &[String]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_evertoken"))
        .args(path)
        .arg("--help")
        .env_remove("COLUMNS")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{} --help failed", title(path));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_owned()
}

fn markdown() -> String {
    let mut md = String::from(
        "# Command-line reference\n\n\
         <!-- Generated from the clap definitions by crates/evertoken/tests/cli_reference.rs; \
         do not edit. Regenerate with \
         `cargo test -p evertoken --test it cli_reference::regenerate -- --ignored`. -->\n\n\
         Every command's `--help`, exactly as the binary prints it. The same text is in \
         the man pages (`docs/man/`, `man ./docs/man/evertoken.1`).\n\n",
    );
    for (path, _) in commands() {
        md.push_str(&format!(
            "## `{}`\n\n```text\n{}\n```\n\n",
            title(&path),
            long_help(&path)
        ));
    }
    md.trim_end().to_owned() + "\n"
}

fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (path, cmd) in commands() {
        let name = title(&path).replace(' ', "-");
        // clap takes `&'static str` names without its `string` feature; a test may leak.
        let static_name: &'static str = Box::leak(name.clone().into_boxed_str());
        let cmd = cmd.name(static_name).bin_name(title(&path));
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut buf).unwrap();
        out.push((format!("{name}.1"), buf));
    }
    out
}

#[test]
fn committed_cli_reference_and_man_pages_match_the_code() {
    let md_path = root().join("docs/src/reference/cli.md");
    let committed = std::fs::read_to_string(&md_path).unwrap_or_default();
    assert!(
        committed == markdown(),
        "{} is out of date with the clap definitions; regenerate it with `cargo test -p evertoken --test it cli_reference::regenerate -- --ignored`",
        md_path.display()
    );
    let man_dir = root().join("docs/man");
    let pages = man_pages();
    for (name, bytes) in &pages {
        let committed = std::fs::read(man_dir.join(name)).unwrap_or_default();
        assert!(
            &committed == bytes,
            "docs/man/{name} is out of date; regenerate it (see this file's header)"
        );
    }
    // No stale page of a removed command.
    let names: Vec<&String> = pages.iter().map(|(n, _)| n).collect();
    for f in std::fs::read_dir(&man_dir).unwrap() {
        let n = f.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            names.iter().any(|x| **x == n),
            "docs/man/{n} documents no command"
        );
    }
}

#[test]
fn every_command_has_a_man_page_and_a_reference_section() {
    let md = markdown();
    for (path, _) in commands() {
        assert!(md.contains(&format!("## `{}`", title(&path))));
    }
    assert_eq!(man_pages().len(), commands().len());
}

#[test]
#[ignore = "writes the generated files; run on purpose"]
fn regenerate() {
    std::fs::write(root().join("docs/src/reference/cli.md"), markdown()).unwrap();
    let man_dir = root().join("docs/man");
    std::fs::create_dir_all(&man_dir).unwrap();
    for f in std::fs::read_dir(&man_dir).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    for (name, bytes) in man_pages() {
        std::fs::write(man_dir.join(name), bytes).unwrap();
    }
}
