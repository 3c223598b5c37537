//! `evertoken broker …`: run the token broker. Parses, builds the broker from the
//! config's `broker:` block, serves until SIGTERM / Ctrl-C.

use std::sync::Arc;

use clap::{Args, Subcommand};

use super::Ctx;
use crate::broker::server;
use crate::error::{Error, Result};

#[derive(Debug, Subcommand)]
pub enum BrokerCommand {
    /// Serve `POST /v1/token`, `/healthz` and `/metrics` until SIGTERM
    ///
    /// Callers present an OIDC ID token or a client secret and name a policy; they get
    /// an installation token narrowed to the policy's repositories and permissions.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen here instead of `broker.listen` (e.g. 127.0.0.1:0 for any free port)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

pub async fn exec(ctx: &Ctx, cmd: BrokerCommand) -> Result<u8> {
    match cmd {
        BrokerCommand::Serve(a) => serve(ctx, a).await,
    }
}

async fn serve(ctx: &Ctx, a: ServeArgs) -> Result<u8> {
    let cfg = ctx.require_config()?;
    let (broker, summary) = server::Broker::build(&cfg, ctx.clock)?;
    let b = cfg.file.broker.as_ref().expect("build checked it");
    let listen = a.listen.unwrap_or_else(|| b.listen.clone());
    let tls = match &b.tls {
        Some(t) => Some(server::tls_config(
            &cfg.resolve_path(&t.cert_file),
            &cfg.resolve_path(&t.key_file),
        )?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
        Error::config(format!("cannot listen on {listen}: {e}"))
            .with_hint("set `broker.listen` (or --listen) to a free HOST:PORT")
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::failed(format!("cannot read the listening address: {e}")))?;
    if tls.is_none() && !addr.ip().is_loopback() {
        ctx.shell.warn(&format!(
            "serving plain http on {addr}: put TLS in front (a reverse proxy) or set `broker.tls`"
        ));
    }
    ctx.shell.status(
        "Listening",
        &format!(
            "on {}://{addr} ({} issuers, {} clients, {} policies; audit log {})",
            if tls.is_some() { "https" } else { "http" },
            summary.issuers,
            summary.clients,
            summary.policies,
            summary.audit_log.display()
        ),
    );
    let broker = Arc::new(broker);
    server::serve(
        listener,
        tls,
        server::router(broker.clone()),
        server::shutdown_signal(),
    )
    .await?;
    broker.finish();
    ctx.shell.status("Stopped", "the broker shut down cleanly");
    Ok(0)
}
