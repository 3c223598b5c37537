//! `evertoken mcp`: a Model Context Protocol server on stdio (the official Rust SDK,
//! `rmcp`) with read-only tools only: agents may look, never touch.
//!
//! - `credential_status`: stored metadata, offline (what `auth status` shows);
//! - `refresh_plan`: what `auth refresh --dry-run` would do (read-only provider
//!   calls such as LinkedIn introspection; never a refresh, rotation or write);
//! - `github_token_status`: the GitHub App token file: presence, age, prefix, expiry.
//!
//! Nothing here refreshes, rotates, mints, logs in or writes, and no result holds
//! a whole secret: tokens appear only as prefixes. stdout carries JSON-RPC only;
//! logs go to stderr. A tool that would change anything does not belong here
//! (the integration test pins the exact tool list).
//!
//! rmcp silently drops a line that is not JSON; JSON-RPC 2.0 asks for a `-32700`
//! parse error with a null id instead (<https://www.jsonrpc.org/specification#error_object>),
//! so stdin goes through [`parse_error_filter`], which answers such lines itself and
//! hands only JSON to rmcp.

use std::path::PathBuf;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{Engine, Options};
use crate::error::{Error, Result};
use crate::platform::Target;

/// The tools this server offers, in order. Adding one here without making sure it
/// is read-only breaks the MCP surface's contract (read-only tools only).
pub const TOOLS: &[&str] = &["credential_status", "refresh_plan", "github_token_status"];

/// Arguments of the credential tools.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetArgs {
    /// `all` (default), a platform (`instagram`, `youtube`, `tiktok`, `linkedin`) or `platform:account`.
    #[serde(default)]
    pub target: Option<String>,
    /// An account name of the platform given as `target` (same as `target: "platform:account"`).
    #[serde(default)]
    pub account: Option<String>,
}

/// Arguments of `github_token_status`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GithubArgs {
    /// The app name under `github.apps` (default: every configured app).
    #[serde(default)]
    pub app: Option<String>,
}

#[derive(Clone)]
pub struct Server {
    config_flag: Option<PathBuf>,
    clock: Clock,
    tool_router: ToolRouter<Self>,
}

/// Serves MCP on stdin/stdout until the client disconnects.
pub async fn serve(config_flag: Option<PathBuf>, clock: Clock) -> Result<()> {
    let server = Server {
        config_flag,
        clock,
        tool_router: Server::tool_router(),
    };
    let (rmcp_in, rmcp_out, writer) = parse_error_filter();
    let running = match server.serve((rmcp_in, rmcp_out)).await {
        Ok(r) => r,
        // The client hung up before initializing: nothing to serve, not an error.
        // Parse errors already queued for lines that were not JSON still go out.
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await;
            return Ok(());
        }
        Err(e) => {
            return Err(Error::failed(format!(
                "the MCP session could not start: {e}"
            )));
        }
    };
    let ended = running
        .waiting()
        .await
        .map_err(|e| Error::failed(format!("the MCP session ended with an error: {e}")));
    // Let the last answers reach stdout before the process exits.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await;
    ended?;
    Ok(())
}

/// The longest request line accepted (a JSON-RPC request is a few hundred bytes).
const MAX_LINE: usize = 1 << 20;

/// The JSON-RPC 2.0 answer to a line that is not JSON.
const PARSE_ERROR: &str = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"Parse error: the line is not JSON\"}}\n";

/// stdin/stdout for rmcp, with a filter in between: each stdin line that is not
/// JSON (or longer than [`MAX_LINE`]) is answered with a `-32700` parse error on
/// stdout and not passed on. stdout is written a whole line at a time by one task,
/// so an error answer never interleaves with one of rmcp's.
fn parse_error_filter() -> (
    tokio::io::DuplexStream,
    tokio::io::DuplexStream,
    tokio::task::JoinHandle<()>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let (to_rmcp, rmcp_in) = tokio::io::duplex(64 * 1024);
    let (rmcp_out, from_rmcp) = tokio::io::duplex(64 * 1024);
    let (errors_tx, mut errors_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        let mut to_rmcp = to_rmcp;
        let mut stdin = BufReader::new(tokio::io::stdin());
        let mut line = Vec::new();
        loop {
            line.clear();
            match (&mut stdin)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .await
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if line.len() > MAX_LINE && !line.ends_with(b"\n") {
                // Skip the rest of the oversized line.
                let mut rest = Vec::new();
                let _ = stdin.read_until(b'\n', &mut rest).await;
                let _ = errors_tx.send(());
                continue;
            }
            let body = line.trim_ascii();
            if body.is_empty() {
                continue;
            }
            if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
                if to_rmcp.write_all(&line).await.is_err() {
                    break;
                }
                if !line.ends_with(b"\n") && to_rmcp.write_all(b"\n").await.is_err() {
                    break;
                }
            } else {
                let _ = errors_tx.send(());
            }
        }
        let _ = to_rmcp.shutdown().await;
    });
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        let mut from_rmcp = BufReader::new(from_rmcp);
        let mut line = Vec::new();
        let mut rmcp_open = true;
        loop {
            tokio::select! {
                r = from_rmcp.read_until(b'\n', &mut line), if rmcp_open => {
                    match r {
                        Ok(0) | Err(_) => rmcp_open = false,
                        Ok(_) => {
                            if out.write_all(&line).await.is_err() { break; }
                            let _ = out.flush().await;
                            line.clear();
                        }
                    }
                }
                e = errors_rx.recv() => {
                    match e {
                        Some(()) => {
                            if out.write_all(PARSE_ERROR.as_bytes()).await.is_err() { break; }
                            let _ = out.flush().await;
                        }
                        None if !rmcp_open => break,
                        None => {
                            // stdin is done; drain what rmcp still says.
                            while let Ok(n) = from_rmcp.read_until(b'\n', &mut line).await {
                                if n == 0 { break; }
                                if out.write_all(&line).await.is_err() { break; }
                                let _ = out.flush().await;
                                line.clear();
                            }
                            break;
                        }
                    }
                }
            }
        }
    });
    (rmcp_in, rmcp_out, writer)
}

#[tool_router(router = tool_router)]
impl Server {
    /// Each credential's state from stored metadata, offline: platform, account,
    /// state, expiries, re-auth date, where each token came from and its prefix.
    #[tool(
        name = "credential_status",
        annotations(
            title = "Credential status (offline)",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn credential_status(&self, Parameters(args): Parameters<TargetArgs>) -> CallToolResult {
        respond(self.status(args).await)
    }

    /// What `evertoken auth refresh --dry-run` would do for each credential, with
    /// expiries, re-auth deadlines and the exit code the real run would give.
    /// Changes nothing: no refresh, no rotation, no write, no alert.
    #[tool(
        name = "refresh_plan",
        annotations(
            title = "Refresh plan (dry-run)",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn refresh_plan(&self, Parameters(args): Parameters<TargetArgs>) -> CallToolResult {
        respond(self.plan(args).await)
    }

    /// GitHub App installation token status: token file present or missing, age,
    /// stale or not, token prefix, expiry. Never mints.
    #[tool(
        name = "github_token_status",
        annotations(
            title = "GitHub App token status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn github_token_status(
        &self,
        Parameters(args): Parameters<GithubArgs>,
    ) -> CallToolResult {
        respond(self.github(args).await)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("evertoken", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Read-only view of evertoken's credentials: `credential_status` (offline), `refresh_plan` \
                 (what a refresh would do), `github_token_status`. Refreshing writes tokens and is not \
                 exposed here: run `evertoken auth refresh` from a shell or a schedule.",
            )
    }
}

impl Server {
    fn config(&self) -> Result<Config> {
        match Config::locate(self.config_flag.as_deref())? {
            Some(path) => Config::load_file(&path),
            None => Err(Error::config(format!(
                "no configuration file found (looked at: {})",
                Config::search_order()
            ))
            .with_hint("start the server with `evertoken --config PATH mcp`")),
        }
    }

    async fn status(&self, args: TargetArgs) -> Result<Value> {
        let target = target(&args)?;
        let engine = Engine::new(self.config()?, self.clock)?;
        let report = engine.status(&target).await?;
        let code = report.exit_code();
        Ok(with_exit(
            serde_json::to_value(&report).unwrap_or(Value::Null),
            code,
        ))
    }

    async fn plan(&self, args: TargetArgs) -> Result<Value> {
        let target = target(&args)?;
        let engine = Engine::new(self.config()?, self.clock)?;
        let report = engine
            .refresh(
                &Options {
                    target,
                    dry_run: true,
                },
                None,
            )
            .await?;
        let code = report.exit_code();
        Ok(with_exit(
            serde_json::to_value(&report).unwrap_or(Value::Null),
            code,
        ))
    }

    async fn github(&self, args: GithubArgs) -> Result<Value> {
        let cfg = self.config()?;
        let names = match args.app {
            Some(n) => vec![n],
            None => crate::doctor::github_app_names(&cfg),
        };
        let mut apps = Vec::new();
        for n in names {
            let app = crate::github::app::resolve(&cfg, &n, &crate::github::Overrides::default())?;
            let st = crate::github::status::status(&app, &self.clock).await?;
            apps.push(serde_json::to_value(&st).unwrap_or(Value::Null));
        }
        Ok(json!({ "version": 1, "apps": apps }))
    }
}

fn target(args: &TargetArgs) -> Result<Target> {
    let raw = match (&args.target, &args.account) {
        (Some(t), Some(a)) if !t.contains(':') && t != "all" => format!("{t}:{a}"),
        (Some(_), Some(_)) | (None, Some(_)) => {
            return Err(
                Error::usage("`account` needs `target` to name its platform")
                    .with_hint("for example {\"target\": \"tiktok\", \"account\": \"brand-a\"}"),
            );
        }
        (Some(t), None) => t.clone(),
        (None, None) => "all".to_owned(),
    };
    Target::parse(&raw)
        .map_err(|m| Error::usage(m).with_hint("for example `tiktok` or `tiktok:brand-a`"))
}

fn with_exit(mut v: Value, code: u8) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("exit_code".into(), json!(code));
    }
    v
}

/// A tool's answer: structured content, or a structured error with a hint. Every
/// string in it is scrubbed of known secrets and control characters: messages may
/// quote a provider's answer.
fn respond(r: Result<Value>) -> CallToolResult {
    match r {
        Ok(v) => CallToolResult::structured(scrub_value(v)),
        Err(e) => CallToolResult::structured_error(scrub_value(json!({
            "error": e.message,
            "hint": e.hint,
            "exit_code": e.exit_code(),
        }))),
    }
}

fn scrub_value(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(crate::scrub::external(&s).into_owned()),
        Value::Array(a) => Value::Array(a.into_iter().map(scrub_value).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, scrub_value(v))).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_router_serves_exactly_the_declared_read_only_tools() {
        let router = Server::tool_router();
        let mut names: Vec<String> = router
            .list_all()
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        names.sort();
        let mut declared: Vec<&str> = TOOLS.to_vec();
        declared.sort();
        assert_eq!(names, declared);
        for t in router.list_all() {
            let a = t.annotations.as_ref().expect("annotations");
            assert_eq!(a.read_only_hint, Some(true), "{}", t.name);
            assert_eq!(a.destructive_hint, Some(false), "{}", t.name);
        }
    }

    #[test]
    fn account_needs_a_platform_target() {
        let t = |t: Option<&str>, a: Option<&str>| {
            target(&TargetArgs {
                target: t.map(str::to_owned),
                account: a.map(str::to_owned),
            })
        };
        assert_eq!(t(None, None).unwrap(), Target::All);
        assert!(
            matches!(t(Some("tiktok"), Some("brand-a")).unwrap(), Target::Account(_, a) if a == "brand-a")
        );
        assert_eq!(t(None, Some("brand-a")).unwrap_err().exit_code(), 2);
        assert_eq!(t(Some("all"), Some("brand-a")).unwrap_err().exit_code(), 2);
    }
}
