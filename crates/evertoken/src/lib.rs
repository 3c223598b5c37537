//! evertoken keeps the credentials of unattended automation alive: it refreshes or
//! rotates every token it can, writes each new token back where the next run reads
//! it, and raises a loud, dated alarm for every token a human must re-authorise.
//!
//! The binary is a thin layer over this library: [`cli`] parses and renders,
//! [`engine`] runs the rotation path, [`provider`], [`store`] and [`alert`] hold one
//! module per platform, backend and channel.

/// `eprintln!` that never panics: a closed stderr (`evertoken … 2>&1 | grep -q`)
/// must not turn an exit 1 or 2 into a panic's 101.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that never panics (see `errln!`).
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

pub mod alert;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod doctor;
pub mod engine;
pub mod env_vars;
pub mod error;
pub mod files;
pub mod fingerprint;
pub mod github;
pub mod http;
pub mod interrupt;
pub mod journal;
pub mod lock;
pub mod login;
pub mod mcp;
pub mod metrics;
pub mod platform;
pub mod provider;
pub mod render;
pub mod report;
pub mod schedule;
pub mod scrub;
pub mod secret;
pub mod section;
pub mod shard;
pub mod store;
