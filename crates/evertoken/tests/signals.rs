//! Issue 12: interruptions. The real binary is signalled (SIGINT, SIGTERM, SIGHUP,
//! and SIGINT then SIGTERM as GitHub Actions does) at every step of a TikTok
//! rotation — while the provider call is in flight (its answer delayed by the
//! simulator after it rotated the token), right after the answer, during the
//! journal write, during the write-back and between the durable and the other
//! write — on the local credentials file, env-file, GitLab and OpenBao stores.
//!
//! Every case must show: exit 130 (SIGINT first) or 143 (SIGTERM/SIGHUP first),
//! no token lost (the provider's current refresh token is in the store or the
//! journal), no damaged store, the accounts not processed reported `unknown` /
//! `interrupted` in `--json`, and a next run that exits 0 with the store holding
//! the provider's token and no rotated-away token ever presented to the provider.
//!
//! `auth login` is signalled while it waits for the browser (stops at once,
//! nothing stored) and during the code exchange (the exchange finishes and its
//! token is stored before the exit); `github refresh` during its mint (the mint
//! finishes and the token file is written).
//!
//! The steps after the answer are made deterministic with the debug builds'
//! pause hook (`EVERTOKEN_FAILPOINT=pause:NAME:MS`), which announces itself on
//! stderr. `EVERTOKEN_SIGNAL_TRIALS` (default 4) signals then land at random
//! instants per backend (`scripts/reliability` raises it; `EVERTOKEN_RELIABILITY_OUT` names
//! the directory for the figures of docs/RELIABILITY.md). `EVERTOKEN_SIGNAL_BIN`
//! names another build to signal (the release binary), for the provider step.

use crate::common;

use common::child::Spawned;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::bao::{Bao, ROOT_TOKEN};
use common::{TestEnv, days_from, mode};
use evertoken_sim::{Fault, GitLabScope, Route};

const CLIENT_KEY: &str = "test-sig-client-key";
const CLIENT_SECRET: &str = "test-sig-tiktok-client-secret";
const GITLAB_TOKEN: &str = "test-sig-gitlab-token-not-a-real-secret";
/// The HTTP timeout of every rig: the bound on how long an interrupted run may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the simulator holds its answer after rotating (the call in flight).
const ANSWER_DELAY_MS: u64 = 2000;
/// How long the binary pauses at a step.
const PAUSE_MS: u64 = 1500;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    LocalFile,
    EnvFile,
    Gitlab,
    Vault,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::LocalFile => "local file",
            Backend::EnvFile => "env file",
            Backend::Gitlab => "GitLab",
            Backend::Vault => "OpenBao",
        }
    }
}

/// Where in the rotation the signal lands.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    /// The provider rotated the token and has not answered yet.
    ProviderInFlight,
    /// The answer arrived; not journaled yet.
    AfterProvider,
    /// Inside the journal write.
    JournalWrite,
    /// Journaled; the write-back is starting.
    Writeback,
    /// Between the durable write (refresh token) and the access token's.
    MidWriteback,
}

impl Step {
    const ALL: [Step; 5] = [
        Step::ProviderInFlight,
        Step::AfterProvider,
        Step::JournalWrite,
        Step::Writeback,
        Step::MidWriteback,
    ];

    fn pausepoint(self) -> Option<&'static str> {
        match self {
            Step::ProviderInFlight => None,
            Step::AfterProvider => Some("after_provider"),
            Step::JournalWrite => Some("journal_write"),
            Step::Writeback => Some("writeback"),
            Step::MidWriteback => Some("mid_writeback"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Step::ProviderInFlight => "provider call in flight",
            Step::AfterProvider => "answer received, before the journal",
            Step::JournalWrite => "during the journal write",
            Step::Writeback => "during the write-back",
            Step::MidWriteback => "between the durable and the other write",
        }
    }
}

/// The signals a run receives, in order.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Signals {
    Int,
    Term,
    Hup,
    /// GitHub Actions' cancellation: SIGINT, then SIGTERM while still busy.
    IntThenTerm,
}

impl Signals {
    const ALL: [Signals; 4] = [
        Signals::Int,
        Signals::Term,
        Signals::Hup,
        Signals::IntThenTerm,
    ];

    fn name(self) -> &'static str {
        match self {
            Signals::Int => "SIGINT",
            Signals::Term => "SIGTERM",
            Signals::Hup => "SIGHUP",
            Signals::IntThenTerm => "SIGINT+SIGTERM",
        }
    }

    fn expected_code(self) -> i32 {
        match self {
            Signals::Int | Signals::IntThenTerm => 130,
            Signals::Term | Signals::Hup => 143,
        }
    }

    fn send(self, child: &Child) {
        let pid = child.id() as libc::pid_t;
        let kill = |sig| {
            // SAFETY: kill(2) on our own child with a valid signal number.
            unsafe {
                libc::kill(pid, sig);
            }
        };
        match self {
            Signals::Int => kill(libc::SIGINT),
            Signals::Term => kill(libc::SIGTERM),
            Signals::Hup => kill(libc::SIGHUP),
            Signals::IntThenTerm => {
                kill(libc::SIGINT);
                std::thread::sleep(Duration::from_millis(300));
                kill(libc::SIGTERM);
            }
        }
    }
}

/// TikTok accounts `a` (and `b`), due for rotation, stored in `backend`.
struct Rig {
    env: TestEnv,
    backend: Backend,
    accounts: Vec<&'static str>,
    bao: Option<Bao>,
}

fn old_rt(account: &str) -> String {
    format!("rft.test-sig-original-{account}-not-a-real-secret")
}

fn var(account: &str) -> String {
    format!("TIKTOK_REFRESH_TOKEN_{}", account.to_uppercase())
}

impl Rig {
    fn new(backend: Backend, accounts: &[&'static str]) -> Option<Rig> {
        let env = TestEnv::new();
        for s in [CLIENT_SECRET, GITLAB_TOKEN, ROOT_TOKEN] {
            env.secret(s);
        }
        let sim = env.sim.sim();
        sim.tiktok_add_client(CLIENT_KEY, CLIENT_SECRET);
        for a in accounts {
            let rt = env.secret(&old_rt(a));
            sim.tiktok_add_refresh_token(CLIENT_KEY, &rt, days_from(jiff::Timestamp::now(), 300));
        }
        let base = env.base_url();
        let mut bao = None;
        // Each account's variable and old refresh token.
        let tokens: Vec<(String, String)> = accounts.iter().map(|a| (var(a), old_rt(a))).collect();
        let token_refs: Vec<(&str, &str)> = tokens
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let writeback = match backend {
            Backend::LocalFile => {
                let mut yaml = format!("TIKTOK_CLIENT_SECRET: {CLIENT_SECRET}\n");
                for a in accounts {
                    yaml.push_str(&format!("{}: \"{}\"\n", var(a), old_rt(a)));
                }
                env.credentials(&yaml);
                "{ backend: local, local: { keychain: off } }".to_owned()
            }
            Backend::EnvFile => {
                let mut text = format!("# tokens\nTIKTOK_CLIENT_SECRET={CLIENT_SECRET}\n");
                for (k, v) in &tokens {
                    text.push_str(&format!("export {k}={v}\n"));
                }
                env.env_file_store(&text)
            }
            Backend::Gitlab => env.gitlab_store(GITLAB_TOKEN, &token_refs),
            Backend::Vault => {
                let b = Bao::start()?;
                b.put_values(&token_refs);
                b.put_values(&[("TIKTOK_CLIENT_SECRET", CLIENT_SECRET)]);
                let w = b.writeback();
                bao = Some(b);
                w
            }
        };
        // concurrency 1: while one account's call is in flight the others wait for
        // the call slot, so a signal then leaves them unprocessed.
        env.config(&format!(
            "platforms:\n  tiktok: {{ client_key: {CLIENT_KEY}, base_url: \"{base}\", accounts: [{}], concurrency: 1 }}\nauth:\n  writeback: {writeback}\nhttp: {{ retries: 1, timeout_seconds: {} }}\n",
            accounts.join(", "),
            HTTP_TIMEOUT.as_secs()
        ));
        Some(Rig {
            env,
            backend,
            accounts: accounts.to_vec(),
            bao,
        })
    }

    fn cmd(&self) -> std::process::Command {
        let mut c = with_binary(self.env.std_cmd());
        match self.backend {
            // GitLab CI puts the variables in the job's environment.
            Backend::Gitlab => {
                c.env("GITLAB_TOKEN", GITLAB_TOKEN)
                    .env("TIKTOK_CLIENT_SECRET", CLIENT_SECRET);
                for a in &self.accounts {
                    c.env(var(a), old_rt(a));
                }
            }
            Backend::Vault => {
                c.env("VAULT_TOKEN", ROOT_TOKEN);
            }
            _ => {}
        }
        c
    }

    fn stored(&self, account: &str) -> Option<String> {
        let var = var(account);
        match self.backend {
            Backend::LocalFile => self.env.stored(&var),
            Backend::EnvFile => {
                let text = std::fs::read_to_string(self.env.work().join("tokens.env")).unwrap();
                text.lines().find_map(|l| {
                    l.trim_start_matches("export ")
                        .strip_prefix(&format!("{var}="))
                        .map(|v| v.trim_matches(|c| c == '\'' || c == '"').to_owned())
                })
            }
            Backend::Gitlab => self
                .env
                .sim
                .sim()
                .gitlab_variable(GitLabScope::Project(4242), &var, "*")
                .map(|v| v.value),
            Backend::Vault => self
                .bao
                .as_ref()
                .unwrap()
                .get(&var)
                .and_then(|(d, _)| d["value"].as_str().map(str::to_owned)),
        }
    }

    /// The store parses and keeps its mode (file stores); remote stores answer.
    fn assert_store_intact(&self, what: &str) {
        match self.backend {
            Backend::LocalFile => self.env.assert_credentials_intact(what),
            Backend::EnvFile => {
                let p = self.env.work().join("tokens.env");
                assert_eq!(mode(&p), 0o600, "{what}");
                let text = std::fs::read_to_string(&p).unwrap();
                assert!(text.starts_with("# tokens\n"), "{what}: {text:?}");
                assert!(text.contains(&format!("TIKTOK_CLIENT_SECRET={CLIENT_SECRET}\n")));
            }
            _ => {}
        }
        for a in &self.accounts {
            assert!(self.stored(a).is_some(), "{what}: {} vanished", var(a));
        }
    }

    /// Every file in the journal directory, concatenated (they hold secrets: never printed).
    fn journal_text(&self) -> String {
        let mut all = String::new();
        if let Ok(d) = std::fs::read_dir(self.env.state_dir().join("journal")) {
            for e in d.filter_map(|e| e.ok()) {
                if let Ok(t) = std::fs::read_to_string(e.path()) {
                    all.push_str(&t);
                }
            }
        }
        all
    }

    fn journal_pending(&self) -> bool {
        self.env.journal_pending()
    }

    /// The provider's live refresh tokens (registered as secrets for the leak scan).
    fn live(&self) -> Vec<String> {
        let live = self.env.sim.sim().tiktok_live_refresh_tokens();
        assert_eq!(live.len(), self.accounts.len(), "{live:?}");
        for t in &live {
            self.env.secret(t);
        }
        live
    }

    /// No token lost: each live token is in the store or the journal.
    fn assert_nothing_lost(&self, what: &str) {
        let journal = self.journal_text();
        let stored: Vec<String> = self
            .accounts
            .iter()
            .filter_map(|a| self.stored(a))
            .collect();
        for t in self.live() {
            assert!(
                stored.contains(&t) || journal.contains(&t),
                "{what}: a live refresh token is neither in the store nor in the journal (lost)"
            );
        }
    }

    /// The next run is healthy: exit 0, the store holds the live tokens, the
    /// journal is empty, no rotated-away token was presented.
    fn assert_next_run_healthy(&self, what: &str) {
        let out = self
            .env
            .run(assert_cmd::Command::from_std(self.cmd()).args(["auth", "refresh", "--json"]));
        assert_eq!(
            out.code, 0,
            "{what}: next run: {}{}",
            out.stdout, out.stderr
        );
        let live = self.live();
        for a in &self.accounts {
            let s = self.stored(a).expect("stored");
            assert!(
                live.contains(&s),
                "{what}: {} is not the live token",
                var(a)
            );
        }
        assert!(!self.journal_pending(), "{what}: journal left behind");
        assert_eq!(
            self.env.sim.sim().stats().reused_rotated_tokens,
            0,
            "{what}: a rotated-away token reached the provider (invalid_grant)"
        );
    }
}

/// `EVERTOKEN_SIGNAL_BIN`: another build of evertoken to signal (scripts/reliability
/// points it at the release binary). Release builds have no pause hook, so only
/// the provider step runs against it.
fn release_binary() -> Option<std::path::PathBuf> {
    std::env::var_os("EVERTOKEN_SIGNAL_BIN").map(std::path::PathBuf::from)
}

/// `c` (the test binary's command, environment prepared) with the program
/// replaced by `EVERTOKEN_SIGNAL_BIN` when that is set.
fn with_binary(c: std::process::Command) -> std::process::Command {
    let Some(bin) = release_binary() else {
        return c;
    };
    let mut n = std::process::Command::new(bin);
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => n.env(k, v),
            None => n.env_remove(k),
        };
    }
    if let Some(d) = c.get_current_dir() {
        n.current_dir(d);
    }
    n
}

/// A spawned run ([`Spawned`]) that must exit soon after its signal: a hung run
/// is killed and fails the test. (exit code, `None` if a signal ended it;
/// stdout; stderr.)
fn finish(run: Spawned, what: &str) -> (Option<i32>, String, String) {
    let (code, stderr, stdout) = run.finish_within(what, HTTP_TIMEOUT * 3);
    (code, stdout, stderr)
}

/// Waits (up to a minute) until stderr shows a line containing `marker`.
fn wait_for_line(run: &mut Spawned, marker: &str) -> bool {
    run.wait_for(Duration::from_secs(60), |l| l.contains(marker))
        .is_some()
}

/// Signals a rotating run at `step`; returns the exit code and the time from the
/// first signal to the exit.
fn signal_at(rig: &Rig, step: Step, signals: Signals) -> (i32, Duration) {
    let what = format!(
        "{} × {} × {}",
        rig.backend.name(),
        step.name(),
        signals.name()
    );
    let sim = rig.env.sim.sim();
    let mut cmd = rig.cmd();
    cmd.args(["auth", "refresh", "--json"]);
    match step.pausepoint() {
        None => sim.push_faults(
            Route::TikTok,
            Fault::HangAfterProcessing(Duration::from_millis(ANSWER_DELAY_MS)),
            1,
        ),
        Some(p) => {
            cmd.env("EVERTOKEN_FAILPOINT", format!("pause:{p}:{PAUSE_MS}"));
        }
    }
    let mut run = Spawned::spawn(&mut cmd);
    match step.pausepoint() {
        None => {
            // The provider has rotated and holds its answer: the call is in flight.
            let deadline = Instant::now() + Duration::from_secs(60);
            while sim.stats().rotations == 0 {
                assert!(Instant::now() < deadline, "{what}: no rotation started");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Some(p) => assert!(
            wait_for_line(&mut run, &format!("pausepoint {p}")),
            "{what}: the run never reached {p}"
        ),
    }
    let t = Instant::now();
    signals.send(&run.child);
    let (code, stdout, stderr) = finish(run, &what);
    let took = t.elapsed();
    rig.env.assert_no_leak(&stdout);
    rig.env.assert_no_leak(&stderr);
    let code = code.unwrap_or_else(|| panic!("{what}: killed by a signal, not exited:\n{stderr}"));
    assert_eq!(code, signals.expected_code(), "{what}:\n{stdout}\n{stderr}");
    rig.assert_store_intact(&what);
    rig.assert_nothing_lost(&what);
    if signals != Signals::IntThenTerm {
        // One signal: the run finished what was in flight and reported the rest.
        let doc: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{what}: no JSON report ({e}):\n{stdout}\n{stderr}"));
        let results = doc["results"].as_array().unwrap();
        assert_eq!(results.len(), rig.accounts.len(), "{what}: {stdout}");
        let states: Vec<(&str, &str)> = results
            .iter()
            .map(|r| (r["state"].as_str().unwrap(), r["action"].as_str().unwrap()))
            .collect();
        assert_eq!(
            states.iter().filter(|s| s.0 == "rotated").count(),
            1,
            "{what}: the call in flight must finish and be written back: {states:?}"
        );
        assert!(
            states
                .iter()
                .all(|s| s.0 == "rotated" || *s == ("unknown", "interrupted")),
            "{what}: accounts not processed must be unknown/interrupted: {states:?}"
        );
        assert!(stderr.contains(signals.name()), "{what}: {stderr}");
    }
    rig.assert_next_run_healthy(&what);
    (code, took)
}

/// Every step × signal kind on one backend (all kinds at the provider step; the
/// kinds rotate over the later steps). Two accounts at the provider step (one
/// rotating, one waiting for the call slot), one at the later steps.
fn every_step(backend: Backend) {
    let mut rows = Vec::new();
    let release = release_binary().is_some();
    for (i, step) in Step::ALL.into_iter().enumerate() {
        if release && step != Step::ProviderInFlight {
            continue;
        }
        let kinds: Vec<Signals> = if step == Step::ProviderInFlight {
            Signals::ALL.to_vec()
        } else {
            vec![Signals::ALL[i % 4], Signals::ALL[(i + 1) % 4]]
        };
        for signals in kinds {
            let accounts: &[&str] = if step == Step::ProviderInFlight {
                &["a", "b"]
            } else {
                &["a"]
            };
            let Some(rig) = Rig::new(backend, accounts) else {
                return;
            };
            let (code, took) = signal_at(&rig, step, signals);
            rows.push(format!(
                "| {} | {} | {} | {code} | {:.1} s | 0 | 0 |",
                backend.name(),
                step.name(),
                signals.name(),
                took.as_secs_f64()
            ));
        }
    }
    if let Some(d) = out_dir() {
        let kind = if release {
            "signals_release"
        } else {
            "signals"
        };
        let file = format!("{kind}_{}.md", backend.name().replace(' ', "_"));
        std::fs::write(d.join(file), rows.join("\n") + "\n").unwrap();
    }
    random_signals(backend);
}

fn out_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("EVERTOKEN_RELIABILITY_OUT")
        .map(std::path::PathBuf::from)
        .inspect(|d| {
            std::fs::create_dir_all(d).unwrap();
        })
}

/// `EVERTOKEN_SIGNAL_TRIALS` signals at random instants of a rotating run (the
/// first answer delayed by a random 0.2–1.2 s, the signal at a random instant up
/// to 0.3 s past that delay), per kind in turn; every one must exit
/// 130/143 (or 0 when the run had finished first), lose nothing and leave the
/// store intact. Figures go to `signals_random_<backend>.json`.
fn random_signals(backend: Backend) {
    let trials: usize = std::env::var("EVERTOKEN_SIGNAL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    if trials == 0 || release_binary().is_some() {
        return;
    }
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15 ^ backend as u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut tally = serde_json::Map::new();
    let mut max_ms = 0u128;
    let (mut interrupted, mut finished, mut before_start) = (0usize, 0usize, 0usize);
    for n in 0..trials {
        let signals = Signals::ALL[n % 4];
        let Some(rig) = Rig::new(backend, &["a", "b"]) else {
            return;
        };
        let what = format!("{} random #{n} {}", backend.name(), signals.name());
        let delay = 200 + next() % 1000;
        rig.env.sim.sim().push_faults(
            Route::TikTok,
            Fault::HangAfterProcessing(Duration::from_millis(delay)),
            1,
        );
        let mut cmd = rig.cmd();
        cmd.args(["auth", "refresh", "--json"]);
        let run = Spawned::spawn(&mut cmd);
        std::thread::sleep(Duration::from_millis(next() % (delay + 300)));
        let t = Instant::now();
        signals.send(&run.child);
        let (code, _stdout, stderr) = finish(run, &what);
        max_ms = max_ms.max(t.elapsed().as_millis());
        rig.env.assert_no_leak(&stderr);
        match code {
            Some(0) => finished += 1,
            Some(c) if c == signals.expected_code() => interrupted += 1,
            // The signal beat the handler's installation at process start: the
            // default action killed it before anything was sent.
            None if rig.env.calls("tiktok") == 0 => before_start += 1,
            other => panic!("{what}: exit {other:?}:\n{stderr}"),
        }
        rig.assert_store_intact(&what);
        rig.assert_nothing_lost(&what);
        rig.assert_next_run_healthy(&what);
    }
    tally.insert("backend".into(), backend.name().into());
    tally.insert("signals".into(), trials.into());
    tally.insert("interrupted".into(), interrupted.into());
    tally.insert("finished_before_signal".into(), finished.into());
    tally.insert("killed_before_start".into(), before_start.into());
    tally.insert("tokens_lost".into(), 0.into());
    tally.insert("damaged_stores".into(), 0.into());
    tally.insert("max_exit_ms".into(), (max_ms as u64).into());
    tally.insert("http_timeout_s".into(), HTTP_TIMEOUT.as_secs().into());
    eprintln!("{}", serde_json::Value::Object(tally.clone()));
    if let Some(d) = out_dir() {
        let file = format!("signals_random_{}.json", backend.name().replace(' ', "_"));
        std::fs::write(d.join(file), serde_json::Value::Object(tally).to_string()).unwrap();
    }
}

#[test]
fn signals_on_the_local_credentials_file() {
    every_step(Backend::LocalFile);
}

#[test]
fn signals_on_the_env_file() {
    every_step(Backend::EnvFile);
}

#[test]
fn signals_on_gitlab() {
    every_step(Backend::Gitlab);
}

#[test]
fn signals_on_openbao() {
    every_step(Backend::Vault);
}

/// A second signal while no rotating call is in flight exits at once (here the
/// new token is journaled and the write-back has not started).
#[test]
fn a_second_signal_with_nothing_in_flight_exits_at_once() {
    let rig = Rig::new(Backend::LocalFile, &["a"]).unwrap();
    let mut cmd = rig.cmd();
    // Journaled, then paused 30 s before the write-back: nothing is in flight.
    // (`finish` fails the test if the run outlives three HTTP timeouts.)
    cmd.args(["auth", "refresh", "--json"])
        .env("EVERTOKEN_FAILPOINT", "pause:writeback:600000");
    let mut run = Spawned::spawn(&mut cmd);
    assert!(wait_for_line(&mut run, "pausepoint writeback"));
    Signals::IntThenTerm.send(&run.child);
    let (code, _stdout, stderr) = finish(run, "second signal");
    assert_eq!(code, Some(130), "{stderr}");
    common::assert_contains(&stderr, &["exiting now"]);
    assert!(
        rig.journal_pending(),
        "the new token must be in the journal"
    );
    rig.assert_nothing_lost("second signal");
    rig.assert_next_run_healthy("second signal");
}

fn get(url: &str) -> (u16, Option<String>) {
    common::http_get(url)
}

const LI_SECRET: &str = "test-sig-li-client-secret-not-a-real-secret";
const LI_OLD_ACCESS: &str = "test-sig-li-old-access-not-a-real-secret";

/// A LinkedIn account due for re-authorisation, for `auth login linkedin`.
fn linkedin_login_env() -> TestEnv {
    let env = TestEnv::new();
    env.secret(LI_SECRET);
    env.secret(LI_OLD_ACCESS);
    env.sim
        .sim()
        .linkedin_add_client("test-sig-li-client", LI_SECRET);
    let base = env.base_url();
    env.config(&format!("platforms:\n  linkedin: {{ enabled: true, client_id: test-sig-li-client, base_url: \"{base}\", auth_url: \"{base}\" }}\nauth: {{ writeback: {{ local: {{ keychain: off }} }} }}\nhttp: {{ timeout_seconds: 10 }}\n"));
    let exp = days_from(jiff::Timestamp::now(), 3);
    env.credentials(&format!("LINKEDIN_ACCESS_TOKEN:\n  value: \"{LI_OLD_ACCESS}\"\n  expires_at: {exp}\nLINKEDIN_CLIENT_SECRET: \"{LI_SECRET}\"\n"));
    env
}

fn login_run(env: &TestEnv) -> (Spawned, String) {
    let mut cmd = env.std_cmd();
    cmd.args(["auth", "login", "linkedin", "--no-browser", "--port", "0"])
        .stdin(Stdio::null());
    let mut run = Spawned::spawn(&mut cmd);
    let prefix = format!("{}/oauth/v2/authorization?", env.base_url());
    let url = run
        .wait_for(Duration::from_secs(60), |l| l.starts_with(&prefix))
        .expect("no authorize URL printed");
    (run, url)
}

/// `auth login`: a signal while waiting for the browser stops the login at once
/// (exit 143), nothing exchanged, nothing stored.
#[test]
fn a_signal_while_login_waits_for_the_browser_stops_it() {
    let env = linkedin_login_env();
    let (run, _url) = login_run(&env);
    Signals::Term.send(&run.child);
    let (code, stdout, stderr) = finish(run, "login waiting");
    env.assert_no_leak(&stdout);
    env.assert_no_leak(&stderr);
    assert_eq!(code, Some(143), "{stderr}");
    common::assert_contains(&stderr, &["SIGTERM"]);
    assert_eq!(
        env.stored("LINKEDIN_ACCESS_TOKEN").as_deref(),
        Some(LI_OLD_ACCESS)
    );
    assert_eq!(
        env.calls("linkedin_token"),
        0,
        "no code exchange after the signal"
    );
}

/// `auth login`: SIGINT then SIGTERM during the code exchange let the exchange
/// finish and its token be stored before the exit (130).
#[test]
fn signals_during_the_login_code_exchange_keep_the_new_token() {
    let env = linkedin_login_env();
    let sim = env.sim.sim();
    // The route's first request is the consent page (answered normally); the
    // second, the code exchange: the provider issues the token, then holds its answer.
    sim.push_faults(
        Route::LinkedInToken,
        Fault::Hang(Duration::from_millis(1)),
        1,
    );
    sim.push_faults(
        Route::LinkedInToken,
        Fault::HangAfterProcessing(Duration::from_millis(ANSWER_DELAY_MS)),
        1,
    );
    let (run, url) = login_run(&env);
    // The browser's part, on a thread: the callback answers after the exchange.
    let browser = std::thread::spawn(move || {
        let (status, location) = get(&url);
        assert_eq!(status, 302);
        let callback = location.expect("a redirect to the loopback callback");
        get(&callback).0
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim
        .stats()
        .requests
        .get("linkedin_token")
        .copied()
        .unwrap_or(0)
        < 2
    {
        assert!(Instant::now() < deadline, "the code exchange never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    Signals::IntThenTerm.send(&run.child);
    let (code, stdout, stderr) = finish(run, "login exchange");
    let _ = browser.join();
    let new = env.stored("LINKEDIN_ACCESS_TOKEN").unwrap();
    env.secret(&new);
    env.assert_no_leak(&stdout);
    env.assert_no_leak(&stderr);
    assert_eq!(code, Some(130), "{stderr}");
    assert_ne!(new, LI_OLD_ACCESS, "the exchanged token must be stored");
    assert!(sim.linkedin_is_valid_access(&new));
    assert_eq!(common::mode(&env.work().join("credentials.yaml")), 0o600);
}

/// `github refresh`: a SIGTERM while the mint is in flight lets it finish and
/// the token file be written, then exits 143.
#[test]
fn a_signal_during_a_github_mint_keeps_the_minted_token() {
    const APP_ID: u64 = 4242;
    let env = TestEnv::new();
    common::apps::installed(&env, APP_ID, 777, &[]);
    let sim = env.sim.sim();
    sim.push_faults(
        Route::GitHubApp,
        Fault::HangAfterProcessing(Duration::from_millis(ANSWER_DELAY_MS)),
        1,
    );
    let mut cmd = env.std_cmd();
    cmd.args(["github", "refresh"]);
    let run = Spawned::spawn(&mut cmd);
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.stats().requests.get("github_app").copied().unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no call to GitHub");
        std::thread::sleep(Duration::from_millis(5));
    }
    Signals::Term.send(&run.child);
    let (code, stdout, stderr) = finish(run, "github mint");
    let file = env.path("config/evertoken/github-token.env");
    let token = common::apps::token_in(&file);
    env.secret(&token);
    env.assert_no_leak(&stdout);
    env.assert_no_leak(&stderr);
    assert_eq!(code, Some(143), "{stderr}");
    assert!(sim.github_is_valid_token(&token));
    assert_eq!(common::mode(&file), 0o600);
}
