//! `evertoken demo`: a full cycle against the built-in simulator.

use clap::Args;

use super::Ctx;
use crate::error::Result;
use crate::render;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print the two runs' reports as JSON instead of the explanation
    #[arg(long)]
    pub json: bool,
}

pub async fn exec(ctx: &Ctx, args: DemoArgs) -> Result<u8> {
    let out = crate::demo::run(&ctx.shell).await?;
    if args.json {
        let doc = serde_json::json!({ "version": 1, "first": out.first, "second": out.second });
        render::stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).expect("serialisable")
        ));
    } else {
        render::stdout(&out.text);
    }
    // The demo worked as designed; its LinkedIn alert is part of the show.
    Ok(0)
}
