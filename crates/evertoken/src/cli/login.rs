//! `evertoken auth login <platform>`: re-authorise an account in the browser
//! (authorization-code flow, loopback redirect) and store the new tokens.

use clap::Args;

use super::Ctx;
use crate::error::{Error, Result};
use crate::login;
use crate::platform::Platform;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// instagram, youtube, tiktok or linkedin
    #[arg(value_name = "PLATFORM")]
    pub platform: String,
    /// The account to log in, when the platform lists `accounts:`
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Print the authorization URL instead of opening a browser
    #[arg(long)]
    pub no_browser: bool,
    /// Loopback port of the redirect URI http://127.0.0.1:PORT/callback (0: any free port)
    #[arg(long, value_name = "N", default_value_t = login::DEFAULT_PORT)]
    pub port: u16,
    /// Scopes to request instead of the platform's defaults
    #[arg(long, value_name = "SCOPES")]
    pub scope: Option<String>,
    /// Seconds to wait for the browser to come back
    #[arg(long, value_name = "SECS", default_value_t = login::WAIT.as_secs())]
    pub timeout: u64,
}

pub async fn exec(ctx: &Ctx, args: LoginArgs) -> Result<u8> {
    let platform = Platform::parse(&args.platform).ok_or_else(|| {
        Error::usage(format!("unknown platform `{}`", args.platform))
            .with_hint("one of: instagram, youtube, tiktok, linkedin")
    })?;
    super::arm_signals(ctx);
    let cfg = ctx.require_config()?;
    let opts = login::Options {
        platform,
        account: args.account,
        port: args.port,
        scope: args.scope,
        wait: std::time::Duration::from_secs(args.timeout.max(1)),
    };
    let pending = login::start(cfg, ctx.clock, &opts).await?;
    let open = !args.no_browser && login::can_open_browser();
    let opened = if open {
        match login::open_browser(&pending.url) {
            Ok(()) => true,
            Err(e) => {
                ctx.shell.warn(&format!("{e}; open the URL below yourself"));
                false
            }
        }
    } else {
        false
    };
    if opened {
        ctx.shell.status(
            "Opening",
            &format!(
                "the {} consent page in your browser",
                platform.display_name()
            ),
        );
        eprintln!("If it does not open, visit this URL on this machine:");
    } else {
        eprintln!("Open this URL in a browser on this machine and allow access:");
    }
    // The URL alone on its line, so it can be copied (and read by scripts).
    eprintln!("{}", pending.url);
    ctx.shell.status(
        "Waiting",
        &format!("for the redirect to {}", pending.redirect_uri()),
    );
    // A signal while waiting for the browser stops the login at once; one during
    // the code exchange lets the exchange and the store write finish (the guard in
    // `login::Pending::finish`), then the command exits 130/143.
    let interrupt = crate::interrupt::global();
    let outcome = tokio::select! {
        r = pending.finish() => r?,
        () = interrupt.idle() => return Err(interrupt.stopped("the code exchange")),
    };
    for (var, exp) in &outcome.stored {
        let until = exp
            .map(|t| format!(" (expires {})", crate::clock::date(t)))
            .unwrap_or_default();
        ctx.shell
            .status("Stored", &format!("{var}{until} in {}", outcome.store));
    }
    for w in &outcome.warnings {
        ctx.shell.warn(w);
    }
    ctx.shell.status(
        "Logged in",
        &format!(
            "{}: check it with `evertoken auth refresh {}`",
            outcome.account, outcome.account
        ),
    );
    Ok(0)
}
