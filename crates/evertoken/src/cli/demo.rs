//! `evertoken demo`: a full cycle against the built-in simulator.

use clap::Args;

use super::Ctx;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print the two runs' reports as JSON instead of the explanation
    #[arg(long)]
    pub json: bool,
    /// Show only this built-in platform (repeatable); default: the four-platform tour
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Vec<String>,
}

#[cfg(not(feature = "demo"))]
pub async fn exec(_ctx: &Ctx, _args: DemoArgs) -> Result<u8> {
    Err(crate::error::Error::usage(
        "this evertoken was built without the `demo` feature (no built-in simulator)",
    )
    .with_hint("install a build with the default features: `cargo install --locked evertoken`"))
}

#[cfg(feature = "demo")]
pub async fn exec(ctx: &Ctx, args: DemoArgs) -> Result<u8> {
    use crate::render;
    let out = crate::demo::run(&ctx.shell, &args.platform).await?;
    if args.json {
        let doc = serde_json::json!({ "version": 1, "first": out.first, "second": out.second });
        render::stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).expect("serialisable")
        ));
    } else {
        render::stdout(&out.text);
    }
    // The demo worked as designed; its re-auth alert is part of the show.
    Ok(0)
}
