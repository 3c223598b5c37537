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
use crate::report::RunReport;

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
    scenario_for(evertoken_sim::scenario::DEMO_PLATFORMS)
}

/// The demo's set-up with these platforms (`demo --platform P`), each with its
/// default token.
pub fn scenario_for(platforms: &[&str]) -> Scenario {
    Scenario::wall_clock()
        .label("demo")
        .platforms(platforms)
        .store(Store::local().file("credentials.yaml"))
        .auth_setting("journal_dir: state")
        .http("timeout_seconds: 10")
}

/// The platforms `demo --platform` accepts: every built-in the simulator serves.
pub fn platforms() -> Vec<&'static str> {
    crate::provider::BUILTIN
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| {
            evertoken_sim::scenario::PLATFORMS
                .iter()
                .any(|d| d.key == *k)
        })
        .collect()
}

/// Runs the demo with `only` (empty: the default platforms).
pub async fn run(shell: &Shell, only: &[String]) -> Result<DemoOutcome> {
    let known = platforms();
    let mut chosen: Vec<&str> = Vec::new();
    for p in only {
        let Some(k) = known.iter().find(|k| **k == p.as_str()) else {
            return Err(Error::usage(format!("demo: unknown platform `{p}`"))
                .with_hint(format!("one of: {}", known.join(", "))));
        };
        if !chosen.contains(k) {
            chosen.push(k);
        }
    }
    let fail = |what: &str, e: &dyn std::fmt::Display| Error::failed(format!("demo: {what}: {e}"));
    let server = evertoken_sim::SimServer::start(evertoken_sim::SimOptions::default())
        .await
        .map_err(|e| fail("cannot start the simulator", &e))?;
    let sim = server.sim();
    let base = server.base_url();
    let clock = Clock::system();
    let scenario = if chosen.is_empty() {
        scenario()
    } else {
        scenario_for(&chosen)
    };
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
        "evertoken demo: {} against the built-in simulator at {base}",
        match first.results.len() {
            1 => "one platform".to_owned(),
            4 => "four platforms".to_owned(),
            n => format!("{n} platforms"),
        }
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
        let why = match evertoken_sim::scenario::PLATFORMS
            .iter()
            .find(|d| d.key == r.platform.name())
        {
            Some(d) if d.demo.0 == r.state.as_str() => d.demo.1,
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
    // The second run's calls are the read-only ones: health-checks and
    // introspection of tokens nothing can refresh.
    let _ = writeln!(
        text,
        "\nThe second run made {} provider call(s) (health-checks and introspection only) and rotated nothing.",
        calls(&after) - calls(&before)
    );
    let attention: Vec<&str> = second
        .results
        .iter()
        .filter(|r| r.state.needs_attention())
        .map(|r| r.platform.display_name())
        .collect();
    if attention.is_empty() {
        let _ = writeln!(text, "A real run would exit 0 here: everything is healthy.");
    } else {
        let _ = writeln!(
            text,
            "A real run would exit {} here, because {} needs attention.",
            second.exit_code(),
            attention.join(" and ")
        );
    }
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
