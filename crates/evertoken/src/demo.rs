//! `evertoken demo`: a full refresh cycle with no account and no config. It starts
//! the simulator in-process on loopback, writes a throw-away config and credentials
//! file, runs `auth refresh all` twice (one rotation, one in-place refresh, one
//! health-check, one re-auth alert; then the same with the persisted tokens), explains
//! what happened, and removes everything it wrote. It never reads the user's
//! environment or config, so it cannot touch a real token.

use std::fmt::Write as _;

use jiff::ToSpan;

use crate::clock::{self, Clock};
use crate::config::Config;
use crate::engine::{Engine, Options};
use crate::error::{Error, Result};
use crate::platform::Target;
use crate::render::{self, Shell};
use crate::report::{RunReport, State};

/// The demo's fake secrets: obviously fake, never real credentials.
const IG_TOKEN: &str = "demo-ig-long-lived-token-not-a-real-secret-000001";
const YT_REFRESH: &str = "demo-yt-refresh-token-not-a-real-secret-000002";
const TT_REFRESH: &str = "rft.demo-tiktok-refresh-not-a-real-secret-000003";
const LI_ACCESS: &str = "demo-li-access-token-not-a-real-secret-000004";

pub struct DemoOutcome {
    pub first: RunReport,
    pub second: RunReport,
    pub text: String,
}

pub async fn run(shell: &Shell) -> Result<DemoOutcome> {
    let fail = |what: &str, e: &dyn std::fmt::Display| Error::failed(format!("demo: {what}: {e}"));
    let server = evertoken_sim::SimServer::start(evertoken_sim::SimOptions::default())
        .await
        .map_err(|e| fail("cannot start the simulator", &e))?;
    let sim = server.sim();
    let base = server.base_url();
    let clock = Clock::system();
    let now = clock.now();
    let days = |d: i64| now.checked_add((d * 24).hours()).expect("in range");

    sim.instagram_add_token(IG_TOKEN, days(-50), days(10));
    sim.google_add_client(
        "demo-client.apps.googleusercontent.com",
        "demo-google-client-secret",
    );
    sim.google_add_refresh_token("demo-client.apps.googleusercontent.com", YT_REFRESH);
    sim.tiktok_add_client("demo-client-key", "demo-tiktok-client-secret");
    sim.tiktok_add_refresh_token("demo-client-key", TT_REFRESH, days(120));
    sim.linkedin_add_client("demo-linkedin-client", "demo-linkedin-client-secret");
    sim.linkedin_add_access_token(LI_ACCESS, days(5));

    let dir = tempfile::Builder::new()
        .prefix("evertoken-demo-")
        .tempdir()
        .map_err(|e| fail("cannot create a temp dir", &e))?;
    let cfg_path = dir.path().join("evertoken.yaml");
    let config = format!(
        r#"# evertoken demo: a throw-away config against the built-in simulator
platforms:
  instagram: {{ enabled: true, base_url: "{base}" }}
  youtube:   {{ enabled: true, base_url: "{base}", client_id: demo-client.apps.googleusercontent.com }}
  tiktok:    {{ enabled: true, base_url: "{base}", client_key: demo-client-key }}
  linkedin:  {{ enabled: true, base_url: "{base}", client_id: demo-linkedin-client, warn_before_days: 14 }}
auth:
  journal_dir: state
  writeback:
    backend: local
    local: {{ keychain: off, file: credentials.yaml }}
http: {{ timeout_seconds: 10 }}
"#
    );
    let creds = format!(
        r#"INSTAGRAM_ACCESS_TOKEN:
  value: "{IG_TOKEN}"
  expires_at: {ig_exp}
  updated_at: {ig_upd}
YOUTUBE_REFRESH_TOKEN: "{YT_REFRESH}"
YOUTUBE_CLIENT_SECRET: demo-google-client-secret
TIKTOK_REFRESH_TOKEN:
  value: "{TT_REFRESH}"
  expires_at: {tt_exp}
TIKTOK_CLIENT_SECRET: demo-tiktok-client-secret
LINKEDIN_ACCESS_TOKEN: "{LI_ACCESS}"
LINKEDIN_CLIENT_SECRET: demo-linkedin-client-secret
"#,
        ig_exp = clock::rfc3339(days(10)),
        ig_upd = clock::rfc3339(days(-50)),
        tt_exp = clock::rfc3339(days(120)),
    );
    std::fs::write(&cfg_path, config).map_err(|e| fail("cannot write the config", &e))?;
    crate::files::write_private_atomic(&dir.path().join("credentials.yaml"), creds.as_bytes())
        .map_err(|e| fail("cannot write the credentials", &e))?;

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
