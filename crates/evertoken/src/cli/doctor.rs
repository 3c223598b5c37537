//! `evertoken doctor`: check the whole setup, change nothing.

use clap::Args;
use comfy_table::{ContentArrangement, Table, presets};

use super::Ctx;
use crate::doctor::{self, Report, Status};
use crate::error::Result;
use crate::render;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print one JSON document on stdout instead of the table
    #[arg(long)]
    pub json: bool,
}

pub async fn exec(ctx: &Ctx, args: DoctorArgs) -> Result<u8> {
    let report = doctor::run(ctx.config_flag.as_deref(), ctx.clock).await;
    if args.json {
        render::stdout(&serde_json::to_string_pretty(&report).unwrap_or_default());
        render::stdout("\n");
    } else {
        render::stdout(&table(&report, &ctx.shell));
    }
    Ok(report.exit_code())
}

fn table(report: &Report, shell: &render::Shell) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(vec!["CHECK", "STATUS", "DETAIL"]);
    for c in &report.checks {
        let status = if shell.color {
            let code = match c.status {
                Status::Ok => "32",
                Status::Warn => "33",
                Status::Fail => "1;31",
                Status::Skip => "2",
            };
            format!("\x1b[{code}m{}\x1b[0m", c.status.as_str())
        } else {
            c.status.as_str().to_owned()
        };
        let mut detail = c.detail.clone();
        if let Some(h) = &c.hint {
            detail.push_str(&format!("\n  hint: {h}"));
        }
        t.add_row(vec![c.check.clone(), status, detail]);
    }
    // The last column is padded to the widest row; drop that trailing space.
    let mut out: String = t
        .to_string()
        .lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect();
    out.push_str(&format!(
        "\n{} check(s): {} failed, {} warning(s)\n",
        report.checks.len(),
        report.failed,
        report.warnings
    ));
    out
}
