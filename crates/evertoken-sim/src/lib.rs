//! `evertoken-sim`: a faithful, stateful HTTP simulator of the remote APIs that
//! `evertoken` talks to (Instagram, Google, TikTok, LinkedIn, GitHub Apps,
//! GitLab CI/CD variables, GitHub Actions secrets, chat webhooks).
//!
//! One loopback server serves every provider on the provider's own paths, so a
//! client only swaps scheme, host and port (`base_url`). Each provider module
//! cites the documentation its shapes come from.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use evertoken_sim::{SimOptions, SimServer};
//! let server = SimServer::start(SimOptions::default()).await?;
//! let sim = server.sim();
//! sim.tiktok_add_client("sim-client-key", "sim-client-secret");
//! println!("{}", server.base_url());
//! # Ok(()) }
//! ```

// Handlers return `Result<_, Response>` where the error is the provider-shaped
// HTTP answer itself; it is built once on the error path, so boxing gains nothing.
#![allow(clippy::result_large_err)]

mod control;
mod faults;
mod middleware;
mod oauth;
#[macro_use]
mod registry;
pub mod rs256;
pub mod scenario;
mod server;
mod state;
mod util;

// The provider modules, in the order they are asked which request paths are
// theirs (GitHub's catch-all last). Adding a provider: its module (handlers,
// state, `Route` constants, `PROVIDER` descriptor) and its name here.
providers!(
    instagram, google, tiktok, linkedin, x, threads, pinterest, gitlab, webhook, actions, github,
    oidc,
);

pub use actions::ActionsScope;
pub use faults::{Fault, Route};
pub use github::{test_rsa_keypair, test_rsa_private_pkcs8};
pub use gitlab::{GitLabScope, GitLabVariable, gitlab_maskable};
pub use oidc::OidcAlg;
pub use server::{SimOptions, SimServer, install_client_crypto};
pub use state::{RecordedRequest, Sim, Stats};
