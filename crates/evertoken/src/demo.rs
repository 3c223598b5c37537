//! `evertoken demo`: a full refresh cycle with no account and no config. It starts
//! the simulator in-process on loopback, writes a throw-away config and credentials
//! file, runs `auth refresh all` twice (one rotation, one in-place refresh, one
//! health-check, one re-auth alert; then the same with the persisted tokens), explains
//! what happened, and removes everything it wrote. It never reads the user's
//! environment or config, so it cannot touch a real token.

use std::fmt::Write as _;

use evertoken_sim::scenario::{Scenario, Store};

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{Engine, Options};
use crate::error::{Error, Result};
use crate::platform::Target;
use crate::render::{self, Shell};
use crate::report::{RunReport, State};

pub struct DemoOutcome {
    pub first: RunReport,
    pub second: RunReport,
    pub text: String,
}

/// The demo's set-up: every platform the demo shows with its characteristic
/// token (Instagram inside its refresh window, YouTube healthy, TikTok due for a
/// rotation, LinkedIn 5 days from expiry), obviously fake secrets labelled
/// `demo`, the credentials file, on the real clock.
pub fn scenario() -> Scenario {
    Scenario::wall_clock()
        .label("demo")
        .demo_platforms()
        .store(Store::local().file("credentials.yaml"))
        .auth_setting("journal_dir: state")
        .http("timeout_seconds: 10")
}

pub async fn run(shell: &Shell) -> Result<DemoOutcome> {
    let fail = |what: &str, e: &dyn std::fmt::Display| Error::failed(format!("demo: {what}: {e}"));
    let server = evertoken_sim::SimServer::start(evertoken_sim::SimOptions::default())
        .await
        .map_err(|e| fail("cannot start the simulator", &e))?;
    let sim = server.sim();
    let base = server.base_url();
    let clock = Clock::system();
    let scenario = scenario();
    scenario.seed(&sim);

    let dir = tempfile::Builder::new()
        .prefix("evertoken-demo-")
        .tempdir()
        .map_err(|e| fail("cannot create a temp dir", &e))?;
    let cfg_path = dir.path().join("evertoken.yaml");
    let config = format!(
        "# evertoken demo: a throw-away config against the built-in simulator\n{}",
        scenario.config_yaml(&base)
    );
    std::fs::write(&cfg_path, config).map_err(|e| fail("cannot write the config", &e))?;
    for f in scenario.store_files() {
        crate::files::write_private_atomic(&dir.path().join(&f.path), f.contents.as_bytes())
            .map_err(|e| fail("cannot write the credentials", &e))?;
    }

    let opts = Options {
        target: Target::All,
        dry_run: false,
    };
    let first = Engine::new_isolated(Config::load_file(&cfg_path)?, clock)?
        .refresh(&opts, None)
        .await?;
    let before = sim.stats();
    let second = Engine::new_isolated(Config::load_file(&cfg_path)?, clock)?
        .refresh(&opts, None)
        .await?;
    let after = sim.stats();

    let mut text = String::new();
    let _ = writeln!(
        text,
        "evertoken demo: four platforms against the built-in simulator at {base}"
    );
    let _ = writeln!(
        text,
        "(a throw-away config and credentials file in {}; removed at the end)\n",
        dir.path().display()
    );
    let _ = writeln!(text, "First run: `evertoken auth refresh all`\n");
    text.push_str(&render::table(&first, shell));
    let _ = writeln!(text, "\nWhat happened and why:");
    for r in &first.results {
        let why = match (r.platform.name(), r.state) {
            ("tiktok", State::Rotated) => {
                "TikTok issued a new refresh token and killed the old one; evertoken journaled it, then wrote it to credentials.yaml (mode 0600) before anything else"
            }
            ("instagram", State::Refreshed) => {
                "the Instagram token was inside refresh_before_days (15), so it was refreshed in place for another 60 days"
            }
            ("youtube", State::Ok) => {
                "the YouTube refresh token still works: Google answered the refresh grant"
            }
            ("linkedin", State::ReauthRequired) => {
                "LinkedIn cannot refresh a standard app's token; introspection found the expiry inside warn_before_days, so a human must re-authorise by that date (a real run exits 1 and alerts)"
            }
            _ => "unexpected for the demo: see the message above",
        };
        let _ = writeln!(
            text,
            "  - {}: {} ({why})",
            r.platform.display_name(),
            r.state.as_str()
        );
    }
    let _ = writeln!(
        text,
        "\nSecond run, with the tokens the first run persisted:\n"
    );
    text.push_str(&render::table(&second, shell));
    let calls = |s: &evertoken_sim::Stats| s.requests.values().sum::<u64>();
    let _ = writeln!(
        text,
        "\nThe second run made {} provider call(s) (the YouTube health-check and the LinkedIn introspection) and rotated nothing.",
        calls(&after) - calls(&before)
    );
    let _ = writeln!(
        text,
        "A real run would exit {} here, because LinkedIn needs attention.",
        second.exit_code()
    );
    let _ = writeln!(
        text,
        "\nNext: write ./evertoken.yaml (see docs/src/reference/config.md) and run `evertoken auth status`."
    );
    drop(server);
    dir.close()
        .map_err(|e| fail("cannot remove the temp dir", &e))?;
    Ok(DemoOutcome {
        first,
        second,
        text,
    })
}
