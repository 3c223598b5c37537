//! All human output goes through here: the [`Shell`] for status lines, warnings
//! and errors on stderr, and the renderers that turn a [`RunReport`] into a table
//! or a JSON document on stdout. stdout carries data only.
//!
//! Every piece of text that may carry something from outside (messages, fixes,
//! warnings, account names) goes through [`crate::scrub`] here, so no known secret
//! and no raw control character reaches the terminal or the JSON document. The
//! words of a result (its action, its deadline) are made here from its typed
//! fields, or by their `Display`/`Serialize` in [`crate::report`].

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use crate::clock;
use crate::error::Error;
use crate::report::{RunReport, State};
use crate::scrub;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Where human messages go (stderr), with colour and verbosity decided once.
#[derive(Clone, Debug)]
pub struct Shell {
    pub color: bool,
    pub quiet: bool,
    pub verbose: u8,
}

impl Shell {
    pub fn new(choice: ColorChoice, quiet: bool, verbose: u8) -> Self {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        };
        Self {
            color,
            quiet,
            verbose,
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// `   Refreshing 4 credentials` (cargo-style status verb), unless quiet.
    pub fn status(&self, verb: &str, msg: &str) {
        if !self.quiet {
            errln!(
                "{} {}",
                self.paint("1;32", &format!("{verb:>12}")),
                scrub::shown(msg)
            );
        }
    }

    pub fn note(&self, msg: &str) {
        if !self.quiet {
            errln!("{} {}", self.paint("1;36", "note:"), scrub::shown(msg));
        }
    }

    pub fn warn(&self, msg: &str) {
        errln!("{} {}", self.paint("1;33", "warning:"), scrub::shown(msg));
    }

    pub fn error(&self, e: &Error) {
        errln!(
            "{} {}",
            self.paint("1;31", "error:"),
            scrub::shown(&e.message)
        );
        if let Some(h) = &e.hint {
            errln!("  {} {}", self.paint("1;36", "hint:"), scrub::shown(h));
        }
    }

    pub fn state(&self, s: State) -> String {
        self.state_cell(s).into_owned()
    }

    /// [`Shell::state`], borrowed when there is no colour to add.
    fn state_cell(&self, s: State) -> Cow<'static, str> {
        if !self.color {
            return Cow::Borrowed(s.as_str());
        }
        let code = match s {
            State::Ok => "32",
            State::Refreshed | State::Rotated => "1;32",
            State::Expiring => "33",
            State::ReauthRequired | State::Failed | State::Unknown => "1;31",
        };
        Cow::Owned(self.paint(code, s.as_str()))
    }
}

/// The table: a row per credential, then details and a summary line.
///
/// Built without a `String` per cell where a cell is already text (platform,
/// account, state): `auth status` over 10,000 accounts renders 60,000 cells.
pub fn table(report: &RunReport, shell: &Shell) -> String {
    use std::fmt::Write as _;
    let now = report.generated_at;
    let mut rows: Vec<[Cow<'_, str>; 6]> = Vec::with_capacity(report.results.len() + 1);
    rows.push(["PLATFORM", "ACCOUNT", "STATE", "EXPIRES", "DAYS", "ACTION"].map(Cow::Borrowed));
    for r in &report.results {
        let exp = r
            .credentials
            .iter()
            .find(|c| c.present && c.expires_at.is_some())
            .and_then(|c| c.expires_at)
            .or(r.expires_at)
            .or(r.refresh_expires_at);
        rows.push([
            Cow::Borrowed(r.platform.name()),
            scrub::external(r.account_name()),
            shell.state_cell(r.state),
            exp.map_or(Cow::Borrowed("-"), |e| Cow::Owned(clock::date(e))),
            exp.map_or(Cow::Borrowed("-"), |e| {
                Cow::Owned(clock::days_left(now, e).to_string())
            }),
            Cow::Owned(r.action.to_string()),
        ]);
    }
    let mut out = columns(&rows);
    drop(rows);
    out.push('\n');
    for r in &report.results {
        let _ = writeln!(
            out,
            "{}: {}",
            scrub::external(&r.account_label()),
            scrub::external(&r.message())
        );
        if let Some(fix) = &r.fix {
            let _ = writeln!(out, "  fix: {}", scrub::external(&fix.to_string()));
        }
        for w in &r.warnings {
            let _ = writeln!(out, "  warning: {}", scrub::external(w));
        }
    }
    out.push('\n');
    out.push_str(&summary(report));
    out.push('\n');
    out
}

/// Left-aligned columns, one space of padding on each side of every cell, trailing
/// blanks trimmed: what comfy-table's `NOTHING` preset prints (tested below), in a
/// fraction of the time and memory for 10,000-row reports (issue 15).
fn columns<const N: usize, S: AsRef<str>>(rows: &[[S; N]]) -> String {
    use unicode_width::UnicodeWidthStr;
    let mut widths = [0usize; N];
    let cell_width = |cell: &str| {
        // Printable ASCII is one column a byte; anything else (escape
        // sequences, wide characters) is measured.
        if cell.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            cell.len()
        } else {
            cell.width()
        }
    };
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell_width(cell.as_ref()));
        }
    }
    let mut out = String::with_capacity(rows.len() * (widths.iter().sum::<usize>() + 2 * N + 1));
    for row in rows {
        let start = out.len();
        for (w, cell) in widths.iter().zip(row) {
            let cell = cell.as_ref();
            out.push(' ');
            out.push_str(cell);
            out.extend(std::iter::repeat_n(' ', w - cell_width(cell) + 1));
        }
        let end = out[start..].trim_end().len() + start;
        out.truncate(end);
        out.push('\n');
    }
    out
}

pub fn summary(report: &RunReport) -> String {
    let mut counts: std::collections::BTreeMap<State, usize> = Default::default();
    for r in &report.results {
        *counts.entry(r.state).or_default() += 1;
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    let n = report.results.len();
    let what = if report.dry_run {
        " (dry run: nothing was changed)"
    } else {
        ""
    };
    let tail = match report.attention {
        0 => "nothing needs attention".to_owned(),
        1 => "1 needs attention".to_owned(),
        k => format!("{k} need attention"),
    };
    format!(
        "{n} credential{}: {}; {tail}{what}",
        if n == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

/// The `--json` document (`version`, `results`, `attention`, …; see [`crate::report`]).
/// JSON escapes control characters itself; known secrets are replaced here.
pub fn json(report: &RunReport) -> String {
    match serde_json::to_string_pretty(report) {
        Ok(s) => scrub::json_inert(&scrub::secrets(&s)).into_owned(),
        Err(e) => format!("{{\"error\": \"the report could not be serialised: {e}\"}}"),
    }
}

/// Writes to stdout, ignoring a closed pipe (`evertoken … | head`).
pub fn stdout(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

/// A progress bar on stderr, only on a terminal and outside CI.
pub struct Bar(indicatif::ProgressBar);

impl Bar {
    pub fn new_if_interactive(shell: &Shell) -> Option<Bar> {
        let ci =
            std::env::var_os(crate::env_vars::CI).is_some_and(|v| !v.is_empty() && v != "false");
        if shell.quiet || ci || !std::io::stderr().is_terminal() {
            return None;
        }
        let pb = indicatif::ProgressBar::hidden();
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} credentials [{bar:30}] {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Some(Bar(pb))
    }
}

impl crate::engine::Progress for Bar {
    fn start(&self, total: u64) {
        // Small runs finish before a bar would help.
        if total >= 20 {
            self.0
                .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        self.0.set_length(total);
    }
    fn tick(&self) {
        self.0.inc(1);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

#[cfg(test)]
mod columns_tests {
    use comfy_table::{ContentArrangement, Table, presets};

    #[test]
    fn columns_print_what_comfy_table_prints() {
        let rows: Vec<[String; 4]> = [
            ["PLATFORM", "ACCOUNT", "STATE", "DAYS"],
            ["tiktok", "brand-ä", "\x1b[32mok\x1b[0m", "361"],
            ["instagram", "默认", "reauth_required", "-"],
            ["x", "", "ok", ""],
        ]
        .iter()
        .map(|r| r.map(String::from))
        .collect();
        let mut t = Table::new();
        t.load_preset(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled);
        t.set_header(rows[0].to_vec());
        for r in &rows[1..] {
            t.add_row(r.to_vec());
        }
        let mut want = String::new();
        for line in t.to_string().lines() {
            want.push_str(line.trim_end());
            want.push('\n');
        }
        assert_eq!(super::columns(&rows), want);
    }
}
