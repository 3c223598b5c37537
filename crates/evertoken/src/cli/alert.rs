//! `evertoken auth test-alert`: sends a sample alert through the configured
//! backend, so the wiring is proven before the first real problem.

use clap::Args;

use super::Ctx;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct TestAlertArgs {}

pub async fn exec(ctx: &Ctx, _args: TestAlertArgs) -> Result<u8> {
    let cfg = ctx.require_config()?;
    let http = crate::http::Http::new(&cfg.file.http);
    let notifier = cfg.alerts.require_notifier(&cfg.ctx(&http))?;
    let alert = crate::alert::sample(ctx.clock.now());
    ctx.shell.status(
        "Sending",
        &format!("a test alert to the {}", notifier.describe()),
    );
    notifier
        .send(&alert)
        .await
        .map_err(|e| crate::alert::delivery_error(notifier.as_ref(), e))?;
    if notifier.last_outcome() == "accepted" {
        ctx.shell.status(
            "Accepted",
            &format!(
                "the test alert by the {} (202: the workflow posts it later; check the channel, and the flow's run history if it does not appear)",
                notifier.describe()
            ),
        );
    } else {
        ctx.shell.status(
            "Delivered",
            &format!("the test alert to the {}", notifier.describe()),
        );
    }
    Ok(0)
}
