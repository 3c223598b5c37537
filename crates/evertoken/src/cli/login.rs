//! `evertoken auth login <platform>`: re-authorise an account in the browser
//! (authorization-code flow) and store the new tokens. The browser comes back to
//! a loopback listener, or, with `--redirect-uri https://…`, the user pastes the
//! address it landed on (stdin, or `--callback-url` in a later run).

use clap::Args;

use super::Ctx;
use crate::error::{Error, Result};
use crate::login;
use crate::platform::Platform;

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(value_name = "PLATFORM", help = super::platform_help())]
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
    /// The redirect URI registered with the app, exactly as its console shows it:
    /// https://… (then paste the address the browser lands on) or a loopback
    /// http://127.0.0.1:PORT/… (a local listener)
    #[arg(long, value_name = "URL")]
    pub redirect_uri: Option<String>,
    /// The address the browser landed on, to finish a login started with the same
    /// --redirect-uri (within 10 minutes) instead of pasting it
    #[arg(long, value_name = "URL", requires = "redirect_uri")]
    pub callback_url: Option<String>,
    /// Write the new tokens to this store for this login, whatever `auth.writeback.backend` says
    /// (local, env-file, gitlab, vault, github-actions)
    #[arg(long, value_name = "BACKEND")]
    pub store: Option<String>,
    /// GitLab only: create a missing CI/CD variable (masked, protected and, on GitLab 17.4+, hidden)
    #[arg(long)]
    pub create_variable: bool,
}

/// `--store NAME` as the config spells backends.
fn backend(name: &str) -> Result<crate::store::Backend> {
    use crate::store::Backend;
    let all = [
        Backend::Local,
        Backend::EnvFile,
        Backend::Gitlab,
        Backend::Vault,
        Backend::GithubActions,
    ];
    all.into_iter().find(|b| b.name() == name).ok_or_else(|| {
        Error::usage(format!("unknown store `{name}`"))
            .with_hint("one of: local, env-file, gitlab, vault, github-actions")
    })
}

pub async fn exec(ctx: &Ctx, args: LoginArgs) -> Result<u8> {
    super::arm_signals(ctx);
    let mut cfg = ctx.require_config()?;
    let known = crate::provider::known_names(&cfg);
    if !known.contains(&args.platform.as_str()) {
        return Err(
            Error::usage(format!("unknown platform `{}`", args.platform))
                .with_hint(format!("one of: {}", known.join(", "))),
        );
    }
    if let Some(name) = &args.store {
        cfg.use_backend(backend(name)?)?;
    }
    if args.create_variable && cfg.file.auth.writeback.backend != crate::store::Backend::Gitlab {
        return Err(
            Error::usage("--create-variable works only with the gitlab store")
                .with_hint("add `--store gitlab`, or set `auth.writeback.backend: gitlab`"),
        );
    }
    let opts = login::Options {
        create_variables: args.create_variable,
        platform: args.platform.clone(),
        account: args.account,
        port: args.port,
        scope: args.scope,
        wait: std::time::Duration::from_secs(args.timeout.max(1)),
        redirect_uri: args.redirect_uri,
        callback_url: args.callback_url,
    };
    let pending = login::start(cfg, ctx.clock, &opts).await?;
    let platform = pending.platform();
    if pending.resumed() {
        ctx.shell.status(
            "Finishing",
            &format!(
                "the {} login with the given callback address",
                platform.display_name()
            ),
        );
    } else {
        show_authorize_url(ctx, args.no_browser, platform, &pending);
    }
    // A signal while waiting for the browser stops the login at once; one during
    // the code exchange lets the exchange and the store write finish (the guard in
    // `login::Pending::finish`), then the command exits 130/143.
    let interrupt = crate::interrupt::global();
    let outcome = tokio::select! {
        r = pending.finish() => r?,
        () = interrupt.idle() => return Err(interrupt.stopped("the code exchange")),
    };
    for c in &outcome.created {
        ctx.shell.status("Created", c);
    }
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

/// Opens or prints the authorize URL and says where the browser comes back.
fn show_authorize_url(ctx: &Ctx, no_browser: bool, platform: Platform, pending: &login::Pending) {
    let open = !no_browser && login::can_open_browser();
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
        if pending.is_loopback() {
            errln!("If it does not open, visit this URL on this machine:");
        } else {
            errln!("If it does not open, visit this URL in any browser:");
        }
    } else if pending.is_loopback() {
        errln!("Open this URL in a browser on this machine and allow access:");
    } else {
        errln!("Open this URL in any browser and allow access:");
    }
    // The URL alone on its line, so it can be copied (and read by scripts).
    errln!("{}", pending.url);
    if pending.is_loopback() {
        ctx.shell.status(
            "Waiting",
            &format!("for the redirect to {}", pending.redirect_uri()),
        );
    } else if pending.reads_stdin() {
        errln!(
            "The browser then lands on {} (the page may show an error; that is fine).",
            pending.redirect_uri()
        );
        errln!("Paste that whole address from the address bar here and press Enter:");
    }
}
