//! The engine: for each targeted account, read → plan → (lock → re-read → re-plan →
//! call the provider → journal → write back → clear the journal), in exactly that
//! order, so that a rotated token is never lost and never rotated twice.
//!
//! - The journal is written before anything else happens with a new token, and
//!   cleared only after the store holds it; a pending record is finished first.
//! - The host lock (and the store's own cross-host lock, where it has one) is held
//!   from the re-read to the write-back; a runner that finds the credential changed
//!   under the lock skips: another runner just did the work.
//! - A dead grant is reported only after one re-read of the store, in case another
//!   runner rotated the token meanwhile.
//! - Dry-run runs the same planning and never locks, writes, rotates or refreshes.
//!
//! The engine never prints: it returns a [`RunReport`].
//!
//! In parts: this module selects accounts, looks up client secrets, reads an
//! account's state and runs the loops (`auth refresh`, `auth status`, `auth
//! token`); `rotate` is the per-account protocol (lock → re-read → plan → call →
//! journal → write-back); `outcome` turns plans, answers and failures into
//! [`AccountResult`](crate::report::AccountResult)s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::journal::{Journal, Record};
use crate::platform::{Account, Platform, Target};
use crate::provider::{self, AccountState, Cx, Held, Plan, Provider, Role, Slot};
use crate::report::{Action, Fix, RunReport, SecretReport, State};
use crate::secret::{Secret, Source};
use crate::store::{Store, StoreError, Stored};

mod outcome;
mod rotate;
#[cfg(test)]
mod tests;

/// Named steps of a rotation where tests kill the process (debug builds only).
pub mod failpoint {
    pub const AFTER_PROVIDER: &str = "after_provider";
    pub const AFTER_JOURNAL: &str = "after_journal";
    pub const MID_WRITEBACK: &str = "mid_writeback";
    pub const AFTER_WRITEBACK: &str = "after_writeback";
    pub const BEFORE_JOURNAL_CLEANUP: &str = "before_journal_cleanup";
    pub const ALL: &[&str] = &[
        AFTER_PROVIDER,
        AFTER_JOURNAL,
        MID_WRITEBACK,
        AFTER_WRITEBACK,
        BEFORE_JOURNAL_CLEANUP,
    ];

    /// Steps where the signal tests pause a run (`pause:NAME:MS`), besides the above.
    pub const JOURNAL_WRITE: &str = "journal_write";
    pub const WRITEBACK: &str = "writeback";

    /// In debug builds, SIGKILLs this process when `EVERTOKEN_FAILPOINT` names `name`:
    /// no destructor, no flush, exactly like a power cut from the process's view.
    pub fn hit(name: &str) {
        if cfg!(debug_assertions)
            && std::env::var(crate::env_vars::EVERTOKEN_FAILPOINT).is_ok_and(|v| v == name)
        {
            // SAFETY: kill(2) on our own pid with a valid signal number.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }

    /// In debug builds, how long to pause at `name` (`EVERTOKEN_FAILPOINT=pause:NAME:MS`),
    /// so a test can signal the process while it is exactly there. Says so on stderr.
    fn pause_for(name: &str) -> Option<std::time::Duration> {
        if !cfg!(debug_assertions) {
            return None;
        }
        let v = std::env::var(crate::env_vars::EVERTOKEN_FAILPOINT).ok()?;
        let (n, ms) = v.strip_prefix("pause:")?.rsplit_once(':')?;
        let ms: u64 = ms.parse().ok().filter(|_| n == name)?;
        tracing::warn!("pausepoint {name}: pausing {ms} ms");
        Some(std::time::Duration::from_millis(ms.min(600_000)))
    }

    /// [`pause_for`] on an async task.
    pub async fn pause(name: &str) {
        if let Some(d) = pause_for(name) {
            tokio::time::sleep(d).await;
        }
    }

    /// [`pause_for`] on a blocking thread.
    pub fn pause_blocking(name: &str) {
        if let Some(d) = pause_for(name) {
            std::thread::sleep(d);
        }
    }
}

/// Receives progress over a long run (a progress bar on a terminal).
pub trait Progress: Send + Sync {
    fn start(&self, total: u64);
    fn tick(&self);
    fn finish(&self);
}

#[derive(Clone, Debug)]
pub struct Options {
    pub target: Target,
    pub dry_run: bool,
}

/// The platforms and accounts a target selects.
pub type Selection = Vec<(Arc<dyn Provider>, Vec<Account>)>;

pub struct Engine {
    pub cfg: Config,
    providers: Vec<Arc<dyn Provider>>,
    store: Arc<dyn Store>,
    /// `store.id()`, once (for the local store it resolves the file's absolute
    /// path, a `getcwd` per call).
    store_id: String,
    journal: Journal,
    http: Http,
    clock: Clock,
    lock_timeout: Duration,
    /// Whether the process environment is a secret source (off for the demo,
    /// which must not pick up a user's real tokens).
    use_env: bool,
    /// Per platform, at most `concurrency` provider calls at a time (issue 9: the
    /// limit covers the calls only, so one account's journal and write-back
    /// overlap the next accounts' calls instead of holding a call slot).
    gates: BTreeMap<Platform, Arc<tokio::sync::Semaphore>>,
    /// What this host last wrote to the store, to spot a second rotator.
    fingerprints: crate::fingerprint::Fingerprints,
    /// `auth refresh --shard K/N`: only the accounts of this shard are selected.
    shard: std::sync::OnceLock<crate::shard::Shard>,
}

/// What was read for one account.
struct Snapshot {
    state: AccountState,
    /// The store's own values (not env, not journal), to detect another runner.
    /// (A map, not a list: measured, a two-element `Vec` here left `auth refresh
    /// all` over 10,000 accounts at concurrency 64 with ~6 MiB more peak RSS under
    /// glibc's allocator.)
    stored: BTreeMap<String, Stored>,
    journal: Option<(PathBuf, Record)>,
}

impl Snapshot {
    /// The store's own value of `var`, when it has one.
    fn stored(&self, var: &str) -> Option<&Stored> {
        self.stored.get(var)
    }
}

impl Engine {
    pub fn new(cfg: Config, clock: Clock) -> Result<Arc<Engine>> {
        let providers = provider::build(&cfg)?;
        // The process's one HTTP client: providers, the store and alerts share it.
        let http = Http::new(&cfg.file.http);
        let store = cfg.open_store(&http)?;
        Self::assemble(cfg, http, store, providers, clock)
    }

    /// An engine over given parts (the unit tests' in-memory store and scripted
    /// providers), ignoring the process environment.
    #[cfg(test)]
    pub(crate) fn with_parts(
        cfg: Config,
        store: Arc<dyn Store>,
        providers: Vec<Arc<dyn Provider>>,
        clock: Clock,
    ) -> Result<Arc<Engine>> {
        let http = Http::new(&cfg.file.http);
        let mut e = Self::assemble(cfg, http, store, providers, clock)?;
        if let Some(inner) = Arc::get_mut(&mut e) {
            inner.use_env = false;
        }
        Ok(e)
    }

    fn assemble(
        cfg: Config,
        http: Http,
        store: Arc<dyn Store>,
        providers: Vec<Arc<dyn Provider>>,
        clock: Clock,
    ) -> Result<Arc<Engine>> {
        let state_dir = cfg.journal_dir();
        let journal = Journal::new(&state_dir);
        journal.check()?;
        let gates = providers
            .iter()
            .map(|p| {
                let n = p.common().concurrency.max(1);
                (p.platform(), Arc::new(tokio::sync::Semaphore::new(n)))
            })
            .collect();
        Ok(Arc::new(Engine {
            fingerprints: crate::fingerprint::Fingerprints::new(&state_dir, &store.id()),
            store_id: store.id(),
            gates,
            providers,
            store,
            journal,
            http,
            clock,
            cfg,
            lock_timeout: Duration::from_secs(300),
            use_env: true,
            shard: std::sync::OnceLock::new(),
        }))
    }

    /// An engine that ignores the process environment as a secret source.
    pub fn new_isolated(cfg: Config, clock: Clock) -> Result<Arc<Engine>> {
        let mut e = Self::new(cfg, clock)?;
        if let Some(inner) = Arc::get_mut(&mut e) {
            inner.use_env = false;
        }
        Ok(e)
    }

    /// Waits for a provider-call slot of `p`'s platform (see `gates`).
    async fn call_slot(&self, p: &dyn Provider) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let gate = self.gates.get(&p.platform())?.clone();
        gate.acquire_owned().await.ok()
    }

    /// Journal I/O (fsynced files) runs on a blocking thread, off the async workers.
    async fn journal_io<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Journal) -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        let journal = self.journal.clone();
        tokio::task::spawn_blocking(move || f(&journal))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(format!("journal task failed: {e}"))))
    }

    fn env(&self, var: &str) -> Option<Secret> {
        if self.use_env { env_value(var) } else { None }
    }

    /// The HTTP client the engine's providers and store use (alerts too).
    pub fn http(&self) -> &Http {
        &self.http
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn providers(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Restricts every later selection to one shard (set once, before the run).
    pub fn set_shard(&self, shard: crate::shard::Shard) {
        let _ = self.shard.set(shard);
    }

    /// The accounts a target names (within the shard, if one is set); a target
    /// naming nothing configured is a usage error (exit 2, nothing contacted), an
    /// empty shard is not.
    pub fn select(&self, target: &Target) -> Result<Selection> {
        let file = self.cfg.display_path();
        if self.providers.is_empty() {
            return Err(Error::config(format!("{file}: no platform is enabled"))
                .with_hint("add a block under `platforms:` (see the README), or run `evertoken demo` to see one"));
        }
        let mut out = Vec::new();
        let mut targeted = false;
        for p in &self.providers {
            let accounts: Vec<Account> = p
                .accounts()
                .into_iter()
                .filter(|a| target.includes(a))
                .collect();
            targeted |= !accounts.is_empty();
            let accounts: Vec<Account> = match self.shard.get() {
                Some(s) => accounts
                    .into_iter()
                    .filter(|a| s.contains(a.platform.name(), a.label()))
                    .collect(),
                None => accounts,
            };
            if !accounts.is_empty() {
                out.push((p.clone(), accounts));
            }
        }
        if !targeted {
            if let Some(p) = target.platform() {
                let known = crate::provider::known_names(&self.cfg);
                if !known.contains(&p) {
                    let shown = match target {
                        Target::Account(p, a) => format!("{p}:{a}"),
                        _ => p.to_owned(),
                    };
                    return Err(Error::usage(format!(
                        "unknown target `{shown}`: expected `all`, a platform ({}) or `platform:account`",
                        known.join(", ")
                    ))
                    .with_hint("a service that is not built in is added with `kind: oauth2` under `platforms:`"));
                }
            }
            return Err(match target {
                Target::Platform(p) => {
                    Error::usage(format!("platform `{p}` is not enabled in {file}"))
                        .with_hint(format!("add `platforms.{p}` with `enabled: true`"))
                }
                Target::Account(p, a) => {
                    let known = self
                        .providers
                        .iter()
                        .find(|x| x.platform().name() == p)
                        .map(|x| {
                            // A few names, not 10,000 of them on one line.
                            const SHOWN: usize = 10;
                            let accounts = x.accounts();
                            let mut names = accounts
                                .iter()
                                .take(SHOWN)
                                .map(|a| a.label().to_owned())
                                .collect::<Vec<_>>()
                                .join(", ");
                            if accounts.len() > SHOWN {
                                names.push_str(&format!(
                                    " and {} more (`evertoken auth status {p}` lists them)",
                                    accounts.len() - SHOWN
                                ));
                            }
                            names
                        })
                        .unwrap_or_default();
                    Error::usage(format!(
                        "account `{a}` of `{p}` is not configured in {file}"
                    ))
                    .with_hint(if known.is_empty() {
                        format!("add `platforms.{p}.accounts: [{a}]`")
                    } else {
                        format!("configured accounts: {known}")
                    })
                }
                Target::All => Error::config(format!("{file}: no platform is enabled")),
            });
        }
        Ok(out)
    }

    /// A client secret: the environment first, then the store. The one lookup
    /// for refresh and login alike.
    pub async fn lookup_secret(&self, var: &str) -> Result<Option<(Secret, Source)>> {
        Ok(match self.env(var) {
            Some(v) => Some((v, Source::Env(var.to_owned()))),
            None => self
                .store
                .read(var)
                .await
                .map_err(Error::from)?
                .map(|s| (s.value, s.source)),
        })
    }

    /// Resolves the client secrets the selected platforms need. For a run that
    /// contacts providers, a missing one is a configuration error (exit 2).
    pub async fn client_secrets(
        &self,
        selected: &Selection,
        required: bool,
    ) -> Result<(BTreeMap<&'static str, Secret>, Vec<SecretReport>)> {
        let mut values = BTreeMap::new();
        let mut reports = Vec::new();
        for (p, _) in selected {
            let Some(var) = p.client_secret_var() else {
                continue;
            };
            if values.contains_key(var) || reports.iter().any(|r: &SecretReport| r.var == var) {
                continue;
            }
            let found = self.lookup_secret(var).await?;
            reports.push(SecretReport {
                var: var.to_owned(),
                present: found.is_some(),
                source: found.as_ref().map(|f| f.1.clone()),
            });
            match found {
                Some((v, _)) => {
                    values.insert(var, v);
                }
                None if required && !p.client_secret_optional() => {
                    return Err(Error::config(format!(
                        "{var} is not set (looked in the environment, then {})",
                        self.store.describe()
                    ))
                    .with_hint(format!(
                        "export {var}=… or add it to the credentials file; {} needs it to refresh",
                        p.platform().display_name()
                    )));
                }
                None => {}
            }
        }
        Ok((values, reports))
    }

    /// `auth refresh`: plans every targeted account and, unless dry-run, acts.
    pub async fn refresh(
        self: &Arc<Self>,
        opts: &Options,
        progress: Option<Arc<dyn Progress>>,
    ) -> Result<RunReport> {
        let selected = self.select(&opts.target)?;
        let (secrets, secret_reports) = self.client_secrets(&selected, true).await?;
        let secrets = Arc::new(secrets);
        let total: usize = selected.iter().map(|(_, a)| a.len()).sum();
        if let Some(p) = &progress {
            p.start(total as u64);
        }
        // Every account is its own task, so a panic in one (a bug, or an answer no
        // check anticipated) is contained: that account is reported `failed` and the
        // others finish, journal and write back. Provider calls are bounded per
        // platform by `gates` alone; store round trips (read, re-read, write-back)
        // hold no call slot, and the window below only bounds memory.
        let interrupt = crate::interrupt::global();
        let window = self.window();
        let mut queue = RoundRobin::new(selected);
        let mut tasks = tokio::task::JoinSet::new();
        let mut running: std::collections::HashMap<tokio::task::Id, (Arc<dyn Provider>, Account)> =
            std::collections::HashMap::new();
        let mut results = Vec::with_capacity(total);
        loop {
            while tasks.len() < window && !interrupt.is_interrupted() {
                let Some((p, a)) = queue.next() else { break };
                let (engine, secrets, dry_run) = (self.clone(), secrets.clone(), opts.dry_run);
                let (tp, ta) = (p.clone(), a.clone());
                let handle = tasks.spawn(async move {
                    let secret = tp.client_secret_var().and_then(|v| secrets.get(v));
                    engine.run_account(tp.as_ref(), &ta, dry_run, secret).await
                });
                running.insert(handle.id(), (p, a));
            }
            let Some(done) = tasks.join_next_with_id().await else {
                break;
            };
            let r = match done {
                Ok((id, r)) => {
                    running.remove(&id);
                    r
                }
                Err(e) => match running.remove(&e.id()) {
                    Some((p, a)) => self.panicked(p.as_ref(), &a, e),
                    None => continue,
                },
            };
            results.push(r);
            if let Some(p) = &progress {
                p.tick();
            }
        }
        // Accounts a signal stopped before they started.
        for (p, a) in queue {
            results.push(self.interrupted(p.as_ref(), &a, &AccountState::default()));
            if let Some(p) = &progress {
                p.tick();
            }
        }
        if let Some(p) = &progress {
            p.finish();
        }
        self.fingerprints.annotate(&mut results);
        let mut report = RunReport::new(opts.dry_run, results, self.clock.now());
        report.secrets = secret_reports;
        report.notices = self.store.notices();
        Ok(report)
    }

    /// How many accounts may be in progress at once: enough that store round trips
    /// never starve the provider calls (at least 4 per call slot, and 256), bounded
    /// for memory: 16 per call slot (1,024 at concurrency 64) cost ~18 KiB of peak
    /// RSS per account in flight and bought no throughput.
    fn window(&self) -> usize {
        let calls: usize = self
            .providers
            .iter()
            .map(|p| p.common().concurrency.max(1))
            .sum();
        calls.saturating_mul(4).max(256)
    }

    /// `auth status`: stored metadata only, no network, no lock, no write.
    pub async fn status(&self, target: &Target) -> Result<RunReport> {
        self.store.offline();
        let selected = self.select(target)?;
        let (_, secret_reports) = self.client_secrets(&selected, false).await?;
        let now = self.clock.now();
        // Read-only and a point-in-time view: list the journal once rather than
        // try to open a record for every account.
        let journal = self.journal.listed();
        let mut results = Vec::with_capacity(selected.iter().map(|(_, a)| a.len()).sum());
        for (p, accounts) in &selected {
            for a in accounts {
                let snap = match self.read_account_in(&journal, p.as_ref(), a, false).await {
                    Ok(s) => s,
                    Err(e) => {
                        results.push(self.failed_read(p.as_ref(), a, e));
                        continue;
                    }
                };
                let plan = p.plan(&snap.state, now);
                let (state, action, message, reauth_by) = match plan {
                    Plan::Ok { message } => (State::Ok, Action::None, message, None),
                    Plan::Expiring { message } => (State::Expiring, Action::None, message, None),
                    Plan::Refresh { reason } => (State::Expiring, Action::RefreshDue, reason, None),
                    Plan::HealthCheck { .. } => (
                        State::Ok,
                        Action::HealthCheckOnRefresh,
                        "refresh token stored; `auth refresh` checks that it still works".to_owned(),
                        None,
                    ),
                    Plan::Introspect => (
                        State::Unknown,
                        Action::IntrospectOnRefresh,
                        "expiry unknown offline; `auth refresh` (or --dry-run) reads it from the provider".to_owned(),
                        None,
                    ),
                    Plan::Reauth { message, reauth_by } => {
                        (State::ReauthRequired, Action::Reauthorise, message, Some(reauth_by.unwrap_or(now)))
                    }
                };
                let mut r = self.result(
                    p.as_ref(),
                    a,
                    &snap.state,
                    state,
                    action,
                    message,
                    reauth_by,
                );
                if let Some((path, _)) = &snap.journal {
                    r.warnings.push(format!(
                        "a rotated token is pending write-back in the journal {}; the next `auth refresh` finishes it",
                        path.display()
                    ));
                }
                // Offline, a due refresh is not yet a problem: the next refresh fixes it.
                r.attention = matches!(r.state, State::ReauthRequired | State::Failed)
                    || r.state == State::Expiring && r.action == Action::None;
                results.push(r);
            }
        }
        self.fingerprints.annotate(&mut results);
        let mut report = RunReport::new(false, results, now);
        report.secrets = secret_reports;
        report.notices = self.store.notices();
        Ok(report)
    }

    fn vars(&self, p: &dyn Provider, a: &Account) -> Vec<(Slot, String)> {
        p.slots().iter().map(|s| (*s, a.var(s.base))).collect()
    }

    /// Reads an account: journal → environment → store, per variable.
    async fn snapshot(&self, p: &dyn Provider, a: &Account) -> Result<Snapshot, StoreError> {
        self.read_account(p, a, false).await
    }

    /// `prefer_store`: skip the environment (after a dead grant, the environment
    /// may hold a value another runner already rotated away).
    async fn read_account(
        &self,
        p: &dyn Provider,
        a: &Account,
        prefer_store: bool,
    ) -> Result<Snapshot, StoreError> {
        self.read_account_in(&self.journal, p, a, prefer_store)
            .await
    }

    /// [`Engine::read_account`] with the records of `journal` (for `auth status`:
    /// [`Journal::listed`]).
    async fn read_account_in(
        &self,
        journal: &Journal,
        p: &dyn Provider,
        a: &Account,
        prefer_store: bool,
    ) -> Result<Snapshot, StoreError> {
        let store_id = &self.store_id;
        let key = a.key();
        // A plain read (usually one failed open): cheaper inline than on a
        // blocking thread, which matters for `auth status` over 10,000 accounts.
        let vars = self.vars(p, a);
        let own_vars: Vec<&str> = vars.iter().map(|(_, v)| v.as_str()).collect();
        let journal = match journal.read_for(store_id, &key, &own_vars) {
            Ok(Some(rec)) => Some((journal.path_for(store_id, &key), rec)),
            Ok(None) => None,
            Err(e) => return Err(StoreError::permanent(e.to_string()).with_hint(
                "inspect or move the damaged journal record; it may hold the only copy of a token",
            )),
        };
        let mut state = AccountState::default();
        let mut stored = BTreeMap::new();
        for (slot, var) in vars {
            let from_store = self.store.read(&var).await?;
            if let Some(s) = &from_store {
                self.fingerprints.check(&var, &s.value);
            }
            // The store wins over the environment after a dead grant (`prefer_store`),
            // and always for stores that fill the environment themselves (GitLab CI
            // variables, Actions secrets): there the environment is a copy taken when
            // the job started, and may hold a token another job already rotated away.
            let store_first = prefer_store || !self.store.env_shadows();
            let env = if store_first && from_store.is_some() {
                None
            } else {
                self.env(&var)
            };
            let mut held = held_from(&var, journal.as_ref(), env, from_store.as_ref());
            // Stores that keep no metadata (GitLab, Actions): the expiry evertoken
            // recorded when it wrote this very value.
            if let Some(h) = held.as_mut().filter(|h| h.expires_at.is_none()) {
                h.expires_at = self.fingerprints.expiry_of(&var, &h.value);
            }
            *state.slot_mut(slot.role) = held;
            if let Some(s) = from_store {
                stored.insert(var, s);
            }
        }
        Ok(Snapshot {
            state,
            stored,
            journal,
        })
    }
}

/// The selected accounts, alternating between platforms so that every platform's
/// calls start early (each platform has its own call limit).
struct RoundRobin {
    queues: Vec<(Arc<dyn Provider>, std::collections::VecDeque<Account>)>,
    next: usize,
}

impl RoundRobin {
    fn new(selected: Selection) -> RoundRobin {
        RoundRobin {
            queues: selected
                .into_iter()
                .map(|(p, a)| (p, a.into_iter().collect()))
                .collect(),
            next: 0,
        }
    }
}

impl Iterator for RoundRobin {
    type Item = (Arc<dyn Provider>, Account);

    fn next(&mut self) -> Option<Self::Item> {
        for _ in 0..self.queues.len() {
            let i = self.next % self.queues.len();
            self.next = self.next.wrapping_add(1);
            let (p, q) = &mut self.queues[i];
            if let Some(a) = q.pop_front() {
                return Some((p.clone(), a));
            }
        }
        None
    }
}

/// What `auth token` / `auth env` get for one account.
#[derive(Debug)]
pub enum AccessToken {
    /// A token valid for at least the asked margin (or of unknown expiry where the
    /// platform has nothing to refresh it with).
    Valid(Held),
    /// None can be had; why, and what a human does.
    Unavailable { message: String, fix: Option<Fix> },
}

impl Engine {
    /// `auth token` and `auth env`: the account's access token, refreshed or
    /// rotated first (through the same locked path, journal and write-back as
    /// `auth refresh`) when it is missing, expired, of unknown expiry on a platform
    /// with a refresh token, or expires within `margin`.
    pub async fn access_token(
        &self,
        p: &dyn Provider,
        a: &Account,
        margin: std::time::Duration,
        secret: Option<&Secret>,
    ) -> AccessToken {
        // Below, what this run writes wins over a store that cannot be read back.
        self.fingerprints.keep_written();
        let has_refresh_slot = p.slots().iter().any(|s| s.role == Role::Refresh);
        if !p.slots().iter().any(|s| s.role == Role::Access) {
            return self.minted_access_token(p, a, secret).await;
        }
        let valid = |st: &AccountState| -> Option<Held> {
            let h = st.access.as_ref()?;
            let until = self
                .clock
                .now()
                .checked_add(jiff::SignedDuration::try_from(margin).unwrap_or_default())
                .unwrap_or(Timestamp::MAX);
            match h.expires_at {
                Some(exp) if exp > until => Some(h.clone()),
                Some(_) => None,
                None if has_refresh_slot => None,
                None => Some(h.clone()),
            }
        };
        let snap = match self.snapshot(p, a).await {
            Ok(s) => s,
            Err(e) => {
                let r = self.failed_read(p, a, e);
                return AccessToken::Unavailable {
                    message: r.message(),
                    fix: r.fix,
                };
            }
        };
        if snap.journal.is_none()
            && let Some(h) = valid(&snap.state)
        {
            return AccessToken::Valid(h);
        }
        let cx = Cx {
            http: &self.http,
            clock: self.clock,
            client_secret: secret,
        };
        let r = self.act(p, a, &cx, snap, false).await;
        // What this run just wrote wins: some stores cannot be read back (hidden
        // GitLab variables, Actions secrets), and the environment is an old copy.
        let written = p
            .slots()
            .iter()
            .find(|s| s.role == Role::Access)
            .and_then(|s| self.fingerprints.written(&a.var(s.base)))
            .map(|e| AccountState {
                access: Some(Held {
                    var: e.var.clone(),
                    value: e.value.clone(),
                    source: self.store.source(),
                    expires_at: e.expires_at,
                    updated_at: Some(e.updated_at),
                }),
                refresh: None,
            });
        if let Some(h) = written.as_ref().and_then(&valid) {
            return AccessToken::Valid(h);
        }
        match self.snapshot(p, a).await {
            Ok(after) => match valid(&after.state) {
                Some(h) => AccessToken::Valid(h),
                None => AccessToken::Unavailable {
                    message: if r.state.needs_attention() {
                        r.message()
                    } else {
                        format!(
                            "no access token valid for {}s more after a refresh ({})",
                            margin.as_secs(),
                            r.message()
                        )
                    },
                    fix: r.fix.or_else(|| {
                        Some(Fix::Advice(format!(
                            "run `evertoken auth refresh {a}` and read its report"
                        )))
                    }),
                },
            },
            Err(e) => {
                let r = self.failed_read(p, a, e);
                AccessToken::Unavailable {
                    message: r.message(),
                    fix: r.fix,
                }
            }
        }
    }

    /// `auth token` for a platform whose durable credential is a refresh token and
    /// which keeps no access token (YouTube): a refresh under the account's lock
    /// mints one, which is handed over and not stored. A platform whose refresh
    /// would rotate is refused: minting must never make a second rotator.
    async fn minted_access_token(
        &self,
        p: &dyn Provider,
        a: &Account,
        secret: Option<&Secret>,
    ) -> AccessToken {
        let snap = match self.snapshot(p, a).await {
            Ok(s) => s,
            Err(e) => {
                let r = self.failed_read(p, a, e);
                return AccessToken::Unavailable {
                    message: r.message(),
                    fix: r.fix,
                };
            }
        };
        if p.rotates(&snap.state) {
            return AccessToken::Unavailable {
                message: format!(
                    "{} keeps no access token and its refresh rotates",
                    p.platform().display_name()
                ),
                fix: Some(Fix::Advice(
                    "read the access token from the store after `evertoken auth refresh`".into(),
                )),
            };
        }
        let cx = Cx {
            http: &self.http,
            clock: self.clock,
            client_secret: secret,
        };
        let r = self.act(p, a, &cx, snap, true).await;
        match r.minted {
            Some(t) => AccessToken::Valid(Held {
                var: a.var(&format!(
                    "{}_ACCESS_TOKEN",
                    crate::platform::upper_snake(p.platform().name())
                )),
                value: t.value,
                source: Source::Store(format!(
                    "{} token endpoint, not stored",
                    p.platform().display_name()
                )),
                expires_at: t.expires_at,
                updated_at: Some(self.clock.now()),
            }),
            None => AccessToken::Unavailable {
                message: r.message(),
                fix: r.fix.or_else(|| {
                    Some(Fix::Advice(format!(
                        "run `evertoken auth refresh {a}` and read its report"
                    )))
                }),
            },
        }
    }
}

fn env_value(var: &str) -> Option<Secret> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| Secret::from_outside(v, &format!("${var}")))
}

/// One variable's effective value: journal → environment → store.
fn held_from(
    var: &str,
    journal: Option<&(PathBuf, Record)>,
    env: Option<Secret>,
    stored: Option<&Stored>,
) -> Option<Held> {
    if let Some((path, rec)) = journal
        && let Some(e) = rec.entries.iter().find(|e| e.var == var)
    {
        return Some(Held {
            var: var.to_owned(),
            value: e.value.clone(),
            source: Source::Journal(path.display().to_string()),
            expires_at: e.expires_at,
            updated_at: Some(e.updated_at),
        });
    }
    if let Some(v) = env {
        // The store's metadata applies only if it describes the same value.
        let meta = stored.filter(|s| s.value.same_as(&v));
        return Some(Held {
            var: var.to_owned(),
            value: v,
            source: Source::Env(var.to_owned()),
            expires_at: meta.and_then(|s| s.expires_at),
            updated_at: meta.and_then(|s| s.updated_at),
        });
    }
    stored.map(|s| Held {
        var: var.to_owned(),
        value: s.value.clone(),
        source: s.source.clone(),
        expires_at: s.expires_at,
        updated_at: s.updated_at,
    })
}
