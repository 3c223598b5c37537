//! The simulator's integration tests, in one binary: one link instead of one per
//! file, and one copy of the shared support (`common`), whose every helper is
//! used by some module (a `mod common;` in each of eight binaries would compile
//! it eight times and warn of what each one leaves unused). Each file stays where
//! it was and is one module here; nextest still runs every test in its own
//! process. Run one file with `cargo nextest run -p evertoken-sim --test it -E
//! 'test(/^faults::/)'` or `cargo test -p evertoken-sim --test it faults::`.

#[path = "../common/mod.rs"]
mod common;

#[path = "../faults.rs"]
mod faults;
#[path = "../flows.rs"]
mod flows;
#[path = "../github.rs"]
mod github;
#[path = "../gitlab_create.rs"]
mod gitlab_create;
#[path = "../new_platforms.rs"]
mod new_platforms;
#[path = "../redirects.rs"]
mod redirects;
#[path = "../social.rs"]
mod social;
#[path = "../writeback.rs"]
mod writeback;
