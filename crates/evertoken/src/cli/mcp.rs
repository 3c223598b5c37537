//! `evertoken mcp`: the read-only MCP server on stdio.

use clap::Args;

use super::Ctx;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct McpArgs {}

pub async fn exec(ctx: &Ctx, _args: McpArgs) -> Result<u8> {
    // stdout is the JSON-RPC channel from here on; everything else goes to stderr.
    crate::mcp::serve(ctx.config_flag.clone(), ctx.clock).await?;
    Ok(0)
}
