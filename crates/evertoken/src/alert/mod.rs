//! Alerts: one out-of-band message per run listing every credential that needs a
//! human, through one [`Notifier`] per channel. The exit code is always on; a
//! notifier only adds to it.

use serde::Deserialize;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    #[serde(default)]
    pub backend: Backend,
    /// Re-send an unchanged problem at most this often.
    #[serde(default = "default_repeat_hours")]
    pub repeat_hours: u64,
    #[serde(default)]
    pub webhook: Option<serde_norway::Value>,
    #[serde(default)]
    pub email: Option<serde_norway::Value>,
}

fn default_repeat_hours() -> u64 {
    24
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    None,
    Webhook,
    Email,
}

/// Sends the run's alert (if the backend is not `none`, the run is not a dry-run,
/// and something needs attention or recovered), and records the delivery in
/// `report.alert`. Never fails the run by itself: a failed delivery is reported
/// in `report.alert` (which makes the exit code 1).
pub async fn dispatch(_cfg: &Config, _report: &mut crate::report::RunReport, _clock: crate::clock::Clock) {}

pub(crate) fn validate(cfg: &Config) -> Result<()> {
    let a = &cfg.file.auth.alerts;
    if a.backend != Backend::None {
        return Err(cfg
            .error_at("auth.alerts.backend", "webhook and email alerts are not available in this build")
            .with_hint("use `backend: none`: a failing run still exits 1"));
    }
    Ok(())
}
