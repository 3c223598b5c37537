//! GitHub App installation tokens (SPEC §6).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::Config;
use crate::error::Result;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    #[serde(default)]
    pub apps: BTreeMap<String, serde_norway::Value>,
}

pub(crate) fn validate(_cfg: &Config) -> Result<()> {
    Ok(())
}
