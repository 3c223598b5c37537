//! Every integration test, in one binary: one link instead of one per file
//! (about 30 s less per rebuild of the library on 2 cores, and 1 GB less disk).
//! Each file stays where it was and is one module here; nextest runs every test
//! in its own process as before. Run one file with `cargo nextest run -p
//! evertoken --test it -E 'test(/^signals::/)'` or `cargo test -p evertoken
//! --test it signals::`.

#[path = "../common/mod.rs"]
mod common;

#[path = "../adversarial.rs"]
mod adversarial;
#[path = "../alerts.rs"]
mod alerts;
#[path = "../auth_refresh.rs"]
mod auth_refresh;
#[path = "../auth_token.rs"]
mod auth_token;
#[path = "../broker.rs"]
mod broker;
#[path = "../cli_reference.rs"]
mod cli_reference;
#[path = "../config_errors.rs"]
mod config_errors;
#[path = "../demo.rs"]
mod demo;
#[path = "../docs.rs"]
mod docs;
#[path = "../doctor.rs"]
mod doctor;
#[path = "../github_app.rs"]
mod github_app;
#[path = "../hard_deadlines.rs"]
mod hard_deadlines;
#[path = "../hostile.rs"]
mod hostile;
#[path = "../instagram_age.rs"]
mod instagram_age;
#[path = "../isolation.rs"]
mod isolation;
#[path = "../json_contract.rs"]
mod json_contract;
#[path = "../keychain.rs"]
mod keychain;
#[path = "../login.rs"]
mod login;
#[path = "../mcp.rs"]
mod mcp;
#[path = "../metrics.rs"]
mod metrics;
#[path = "../new_platforms.rs"]
mod new_platforms;
#[path = "../oauth2.rs"]
mod oauth2;
#[path = "../packaging.rs"]
mod packaging;
#[path = "../persona_ci.rs"]
mod persona_ci;
#[path = "../provider_faults.rs"]
mod provider_faults;
#[path = "../reliability.rs"]
mod reliability;
#[path = "../scale.rs"]
mod scale;
#[path = "../scale_out.rs"]
mod scale_out;
#[path = "../schedule.rs"]
mod schedule;
#[path = "../signals.rs"]
mod signals;
#[path = "../takopi.rs"]
mod takopi;
#[path = "../takopi_migrate.rs"]
mod takopi_migrate;
#[path = "../transit.rs"]
mod transit;
#[path = "../writeback_actions.rs"]
mod writeback_actions;
#[path = "../writeback_env_file.rs"]
mod writeback_env_file;
#[path = "../writeback_gitlab.rs"]
mod writeback_gitlab;
#[path = "../writeback_keeps.rs"]
mod writeback_keeps;
#[path = "../writeback_vault.rs"]
mod writeback_vault;
