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
use crate::lock::FileLock;
use crate::platform::{Account, Platform, Target};
use crate::provider::{
    self, AccountState, Cx, Grant, Held, Plan, Provider, ProviderError, Role, Slot,
};
use crate::report::{
    AccountResult, Action, CredentialReport, Fix, RunReport, SecretReport, State, utc_date,
};
use crate::secret::{Secret, Source};
use crate::store::{self, Entry, Store, StoreError, Stored};

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
    /// path, a `getcwd` per call; issue 15).
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
    stored: BTreeMap<String, Stored>,
    journal: Option<(PathBuf, Record)>,
}

impl Engine {
    pub fn new(cfg: Config, clock: Clock) -> Result<Arc<Engine>> {
        let providers = provider::build(&cfg)?;
        let store = store::open(&cfg)?;
        let state_dir = cfg.journal_dir();
        let journal = Journal::new(&state_dir);
        journal.check()?;
        let http = Http::new(&cfg.file.http);
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
            return Err(match target {
                Target::Platform(p) => {
                    Error::usage(format!("platform `{p}` is not enabled in {file}"))
                        .with_hint(format!("add `platforms.{p}` with `enabled: true`"))
                }
                Target::Account(p, a) => {
                    let known = self
                        .providers
                        .iter()
                        .find(|x| x.platform() == *p)
                        .map(|x| {
                            x.accounts()
                                .iter()
                                .map(|a| a.label().to_owned())
                                .collect::<Vec<_>>()
                                .join(", ")
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
            let found = match self.env(var) {
                Some(v) => Some((v, Source::Env(var.to_owned()))),
                None => self
                    .store
                    .read(var)
                    .await
                    .map_err(Error::from)?
                    .map(|s| (s.value, s.source)),
            };
            reports.push(SecretReport {
                var: var.to_owned(),
                present: found.is_some(),
                source: found.as_ref().map(|f| f.1.clone()),
            });
            match found {
                Some((v, _)) => {
                    values.insert(var, v);
                }
                None if required => {
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
    /// for memory. Issue 15: 16 per call slot (1,024 at concurrency 64) cost ~18 KiB
    /// of peak RSS per account in flight and bought no throughput (GitLab at
    /// concurrency 64 was slower with it).
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
        let own_vars: Vec<String> = vars.iter().map(|(_, v)| v.clone()).collect();
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
            if let Some(s) = from_store {
                stored.insert(var.clone(), s);
            }
            *state.slot_mut(slot.role) = held;
        }
        Ok(Snapshot {
            state,
            stored,
            journal,
        })
    }

    async fn run_account(
        &self,
        p: &dyn Provider,
        a: &Account,
        dry_run: bool,
        secret: Option<&Secret>,
    ) -> AccountResult {
        let snap = match self.snapshot(p, a).await {
            Ok(s) => s,
            Err(e) => return self.failed_read(p, a, e),
        };
        let cx = Cx {
            http: &self.http,
            clock: self.clock,
            client_secret: secret,
        };
        let now = self.clock.now();
        let mut state = snap.state.clone();
        let mut plan = p.plan(&state, now);
        tracing::debug!(account = %a, ?plan, "planned");
        let interrupt = crate::interrupt::global();
        if plan == Plan::Introspect {
            if interrupt.is_interrupted() {
                return self.interrupted(p, a, &state);
            }
            let slot = self.call_slot(p).await;
            let introspected = p.introspect(&cx, &mut state).await;
            drop(slot);
            if let Err(e) = introspected {
                return self.provider_error(p, a, &state, e);
            }
            plan = p.plan(&state, now);
        }
        if dry_run {
            return self.planned(p, a, &state, plan, snap.journal.is_some());
        }
        if !matches!(plan, Plan::Refresh { .. } | Plan::HealthCheck { .. })
            && snap.journal.is_none()
        {
            return self.settled(p, a, &state, plan);
        }
        if interrupt.is_interrupted() {
            return self.interrupted(p, a, &state);
        }
        self.act(p, a, &cx, snap).await
    }

    /// The locked part: re-read, finish any journal, re-plan, call, journal, write.
    async fn act(
        &self,
        p: &dyn Provider,
        a: &Account,
        cx: &Cx<'_>,
        before: Snapshot,
    ) -> AccountResult {
        let key = a.key();
        let lock_path = crate::lock::account_lock_path(self.store.as_ref(), &key);
        // A run stopped by a signal does not wait for another run's lock.
        let acquired = tokio::select! {
            l = FileLock::acquire(lock_path, self.lock_timeout) => l,
            () = crate::interrupt::global().cancelled() => return self.interrupted(p, a, &before.state),
        };
        let _host_lock = match acquired {
            Ok(l) => l,
            Err(e) => {
                return self.failure(
                    p,
                    a,
                    &before.state,
                    State::Failed,
                    format!("cannot take the lock: {e}"),
                    Some("another evertoken run may be stuck; check for it".into()),
                );
            }
        };
        tracing::debug!(account = %a, "host lock taken");
        let remote_lock = match self.store.lock(&key).await {
            Ok(l) => l,
            Err(e) => {
                return self.failure(
                    p,
                    a,
                    &before.state,
                    State::Failed,
                    format!("cannot take the store's lock: {}", e.message),
                    e.hint,
                );
            }
        };
        let result = self.act_locked(p, a, cx, before).await;
        if let Some(l) = remote_lock
            && let Err(e) = l.release().await
        {
            tracing::warn!("releasing the store lock for {a} failed: {}", e.message);
        }
        result
    }

    async fn act_locked(
        &self,
        p: &dyn Provider,
        a: &Account,
        cx: &Cx<'_>,
        before: Snapshot,
    ) -> AccountResult {
        let now = self.clock.now();
        // Under the lock, the durable variables are read from the store itself.
        let durable: Vec<String> = p
            .slots()
            .iter()
            .filter(|s| s.durable)
            .map(|s| a.var(s.base))
            .collect();
        self.store.reread(&durable);
        let mut snap = match self.snapshot(p, a).await {
            Ok(s) => s,
            Err(e) => return self.failed_read(p, a, e),
        };
        let mut warnings = Vec::new();
        // A token left in the journal by an interrupted run goes to the store first.
        if let Some((path, rec)) = snap.journal.take() {
            if let Err(e) = self.write_back(&rec.entries).await {
                return self.failure(
                    p,
                    a,
                    &snap.state,
                    State::Failed,
                    format!(
                        "write-back to {} failed again ({}); the rotated token stays in the journal {}",
                        self.store.describe(),
                        e.message,
                        path.display()
                    ),
                    e.hint.or(Some("fix the store, then re-run `evertoken auth refresh`; the journal is kept until it succeeds".into())),
                );
            }
            // Re-read while the record still exists, so its values win over a stale
            // environment (and over stores that cannot be read back, like Actions).
            snap = match self.snapshot(p, a).await {
                Ok(s) => s,
                Err(e) => return self.failed_read(p, a, e),
            };
            snap.journal = None;
            failpoint::hit(failpoint::BEFORE_JOURNAL_CLEANUP);
            let (id, key) = (self.store.id(), a.key());
            if let Err(e) = self.journal_io(move |j| j.clear(&id, &key)).await {
                tracing::warn!("cannot remove journal record {}: {e}", path.display());
            }
            warnings.push(format!(
                "finished a write-back an earlier run left in the journal ({})",
                path.display()
            ));
        }
        // Another runner may have refreshed while this one waited for the lock.
        let finished_journal = !warnings.is_empty();
        let changed_by_other = !finished_journal
            && p.slots().iter().any(|s| {
                let var = a.var(s.base);
                s.durable && !same_stored(before.stored.get(&var), snap.stored.get(&var))
            });
        let plan = p.plan(&snap.state, now);
        if !matches!(plan, Plan::Refresh { .. } | Plan::HealthCheck { .. }) {
            let mut r = self.settled(p, a, &snap.state, plan);
            if changed_by_other {
                r.action = Action::Skipped;
                r.problem = format!("another evertoken run refreshed it just now; {}", r.problem);
            } else if finished_journal {
                r.action = Action::FinishedWriteBack;
            }
            r.warnings.extend(warnings);
            return r;
        }
        // Pre-flight: the store must be able to take every variable this rotation
        // may write (GitLab: exists, masked, protected) before anything rotates.
        let vars: Vec<(String, bool)> = p
            .slots()
            .iter()
            .map(|s| (a.var(s.base), s.durable))
            .collect();
        if let Err(e) = self.store.preflight(&vars).await {
            let mut r = self.failure(
                p,
                a,
                &snap.state,
                State::Failed,
                format!(
                    "pre-flight check of {} failed, so nothing was rotated: {}",
                    self.store.describe(),
                    e.message
                ),
                e.hint,
            );
            r.action = Action::PreflightFailed;
            return r;
        }
        let mut r = self.call_and_store(p, a, cx, &snap.state, true).await;
        r.warnings.splice(0..0, warnings);
        r
    }

    /// Calls the provider; on success journals and writes back.
    async fn call_and_store(
        &self,
        p: &dyn Provider,
        a: &Account,
        cx: &Cx<'_>,
        state: &AccountState,
        may_reread: bool,
    ) -> AccountResult {
        let rotating = p.rotates(state);
        // After a signal no provider call starts; a rotating call that does start is
        // registered until its new tokens are journaled, so that further signals
        // wait for it (see `crate::interrupt`).
        let interrupt = crate::interrupt::global();
        let slot = tokio::select! {
            s = self.call_slot(p) => s,
            () = interrupt.cancelled() => return self.interrupted(p, a, state),
        };
        let call = if rotating {
            match interrupt.begin_rotating_call() {
                Some(c) => Some(c),
                None => return self.interrupted(p, a, state),
            }
        } else if interrupt.is_interrupted() {
            return self.interrupted(p, a, state);
        } else {
            None
        };
        let refreshed = p.refresh(cx, state).await;
        drop(slot);
        let call = if refreshed.is_ok() { call } else { None };
        match refreshed {
            Ok(grant) => self.store_grant(p, a, state, grant, call).await,
            Err(ProviderError::Reauth { message }) if may_reread => {
                // One re-read, in case another runner rotated the token meanwhile.
                let vars: Vec<String> = p.slots().iter().map(|s| a.var(s.base)).collect();
                self.store.reread(&vars);
                match self.read_account(p, a, true).await {
                    Ok(fresh) if differs(state, &fresh.state, p) => {
                        Box::pin(self.call_and_store(p, a, cx, &fresh.state, false)).await
                    }
                    _ => self.provider_error(p, a, state, ProviderError::Reauth { message }),
                }
            }
            Err(e) => {
                let mut r = self.provider_error(p, a, state, e);
                if rotating && r.state == State::Unknown {
                    r.action = Action::OutcomeUnknown;
                }
                r
            }
        }
    }

    async fn store_grant(
        &self,
        p: &dyn Provider,
        a: &Account,
        state: &AccountState,
        grant: Grant,
        mut call: Option<crate::interrupt::RotatingCall>,
    ) -> AccountResult {
        failpoint::hit(failpoint::AFTER_PROVIDER);
        failpoint::pause(failpoint::AFTER_PROVIDER).await;
        let now = self.clock.now();
        let mut new_state = state.clone();
        let mut entries = Vec::new();
        let mut rotated = false;
        for slot in p.slots() {
            let new = match slot.role {
                Role::Access => grant.access.as_ref(),
                Role::Refresh => grant.refresh.as_ref(),
            };
            let Some(new) = new else { continue };
            let var = a.var(slot.base);
            let old = state.get(slot.role);
            if slot.role == Role::Refresh && old.is_some_and(|o| !o.value.same_as(&new.value)) {
                rotated = true;
            }
            entries.push(Entry {
                var: var.clone(),
                value: new.value.clone(),
                expires_at: new.expires_at,
                updated_at: now,
                durable: slot.durable,
            });
            *new_state.slot_mut(slot.role) = Some(Held {
                var,
                value: new.value.clone(),
                source: self.store.source(),
                expires_at: new.expires_at,
                updated_at: Some(now),
            });
        }
        entries.sort_by_key(|e| !e.durable);
        let (st, action) = if rotated {
            (State::Rotated, Action::Rotated)
        } else if grant.access.is_some() {
            (
                State::Refreshed,
                if p.slots().iter().any(|s| s.role == Role::Refresh) {
                    Action::NewAccessToken
                } else {
                    Action::RefreshedInPlace
                },
            )
        } else {
            (
                State::Ok,
                if grant.note.is_some()
                    && grant.refresh.is_none()
                    && p.slots().iter().all(|s| s.role == Role::Refresh)
                {
                    Action::HealthChecked
                } else {
                    Action::None
                },
            )
        };
        let mut message = grant.note.clone().unwrap_or_else(|| match st {
            State::Rotated => format!("new refresh token persisted to {}", self.store.describe()),
            _ => format!("new token stored in {}", self.store.describe()),
        });
        if entries.is_empty() {
            let r = self.result(p, a, &new_state, st, action, message, None);
            let problem = grant.problem.clone();
            let r = self.hard_deadline(p, a, state, &grant, now, r);
            return with_problem(r, problem);
        }
        let store_id = self.store.id();
        let (id, label, key, rec) = (store_id.clone(), a.to_string(), a.key(), entries.clone());
        let journal_path = match self
            .journal_io(move |j| {
                failpoint::pause_blocking(failpoint::JOURNAL_WRITE);
                j.record(&id, &label, &key, &rec, now)
            })
            .await
        {
            Ok(path) => {
                // The new tokens are safe: a further signal may now exit at once.
                drop(call.take());
                path
            }
            Err(e) => {
                // Nowhere safe to keep it: still try the store directly, loudly.
                tracing::error!(
                    "cannot write the rotation journal in {}: {e}",
                    self.journal.dir().display()
                );
                PathBuf::new()
            }
        };
        tracing::debug!(account = %a, journal = %journal_path.display(), "new tokens journaled");
        failpoint::hit(failpoint::AFTER_JOURNAL);
        if let Err(e) = self.write_back(&entries).await {
            let held = if journal_path.as_os_str().is_empty() {
                "and the journal could not be written either: the new token is lost unless the store took it".to_owned()
            } else {
                format!(
                    "the new token is kept in the journal {} and the next run finishes the write-back",
                    journal_path.display()
                )
            };
            let mut r = self.failure(
                p,
                a,
                &new_state,
                State::Failed,
                format!(
                    "{} but the write-back to {} failed: {}; {held}",
                    action_done(st),
                    self.store.describe(),
                    e.message
                ),
                e.hint.or(Some(
                    "fix the store's access, then re-run `evertoken auth refresh`".into(),
                )),
            );
            r.action = Action::WriteBackPending(Box::new(action));
            return with_problem(r, grant.problem);
        }
        tracing::debug!(account = %a, store = %self.store.describe(), entries = entries.len(), "written back");
        failpoint::hit(failpoint::AFTER_WRITEBACK);
        failpoint::hit(failpoint::BEFORE_JOURNAL_CLEANUP);
        let (id, key) = (store_id.clone(), a.key());
        if let Err(e) = self.journal_io(move |j| j.clear(&id, &key)).await {
            tracing::warn!(
                "cannot remove journal record {}: {e}",
                journal_path.display()
            );
        }
        let mut r = self.result(
            p,
            a,
            &new_state,
            st,
            action,
            std::mem::take(&mut message),
            None,
        );
        r = self.hard_deadline(p, a, state, &grant, now, r);
        if self.store.env_shadows() {
            for e in &entries {
                if self.env(&e.var).is_some_and(|v| !v.same_as(&e.value)) {
                    r.warnings.push(format!(
                        "{} is also set in the environment, which shadows the value just written to {}: the next local run would read the stale value; unset it",
                        e.var,
                        self.store.describe()
                    ));
                }
            }
        }
        with_problem(r, grant.problem)
    }

    /// Refreshing did not move the refresh token's own expiry: a human must log
    /// in again by then (TikTok may not extend it; LinkedIn and Google's
    /// time-limited grants never do). The tokens just stored stay stored.
    fn hard_deadline(
        &self,
        p: &dyn Provider,
        a: &Account,
        old: &AccountState,
        grant: &Grant,
        now: Timestamp,
        mut r: AccountResult,
    ) -> AccountResult {
        if let Some(by) = p.hard_deadline(old, grant, now) {
            r.problem = format!(
                "{}; the refresh token did not extend and {}",
                r.problem,
                crate::provider::expiry_text(now, by),
            );
            r.state = State::ReauthRequired;
            r.attention = State::ReauthRequired.needs_attention();
            r.reauth_by = Some(utc_date(by));
            r.fix = Some(Fix::Run(p.login_command(a)));
        }
        r
    }

    /// Writes entries to the store, durable ones first, retrying transient errors.
    async fn write_back(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let (durable, rest): (Vec<Entry>, Vec<Entry>) =
            entries.iter().cloned().partition(|e| e.durable);
        failpoint::pause(failpoint::WRITEBACK).await;
        if !durable.is_empty() {
            self.write_with_retry(&durable).await?;
            self.fingerprints.record(&durable);
        }
        failpoint::hit(failpoint::MID_WRITEBACK);
        failpoint::pause(failpoint::MID_WRITEBACK).await;
        if !rest.is_empty() {
            self.write_with_retry(&rest).await?;
            self.fingerprints.record(&rest);
        }
        Ok(())
    }

    async fn write_with_retry(&self, entries: &[Entry]) -> Result<(), StoreError> {
        use backon::Retryable;
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .with_max_times(self.cfg.file.http.retries as usize);
        (|| self.store.write(entries))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|e: &StoreError| e.transient)
            .notify(|e, d| {
                tracing::info!(
                    "write-back failed ({}); retrying in {:.1}s",
                    e.message,
                    d.as_secs_f64()
                )
            })
            .await
    }

    /// A plan that needs no call, as a result (real run).
    fn settled(
        &self,
        p: &dyn Provider,
        a: &Account,
        state: &AccountState,
        plan: Plan,
    ) -> AccountResult {
        let now = self.clock.now();
        match plan {
            Plan::Ok { message } => {
                self.result(p, a, state, State::Ok, Action::None, message, None)
            }
            Plan::Expiring { message } => {
                self.result(p, a, state, State::Expiring, Action::None, message, None)
            }
            Plan::Reauth { message, reauth_by } => {
                self.reauth(p, a, state, message, reauth_by.unwrap_or(now))
            }
            Plan::Refresh { reason } | Plan::HealthCheck { reason } => {
                self.result(p, a, state, State::Ok, Action::None, reason, None)
            }
            Plan::Introspect => self.result(
                p,
                a,
                state,
                State::Unknown,
                Action::None,
                "expiry unknown".into(),
                None,
            ),
        }
    }

    /// A plan, as dry-run reports it: the current state and the planned action.
    fn planned(
        &self,
        p: &dyn Provider,
        a: &Account,
        state: &AccountState,
        plan: Plan,
        pending: bool,
    ) -> AccountResult {
        let mut r = match plan {
            Plan::Refresh { reason } => {
                let action = if p.rotates(state) {
                    Action::WouldRotate
                } else if p.slots().iter().any(|s| s.role == Role::Refresh) {
                    Action::WouldRenewAccessToken
                } else {
                    Action::WouldRefreshInPlace
                };
                self.result(p, a, state, State::Ok, action, reason, None)
            }
            Plan::HealthCheck { reason } => self.result(
                p,
                a,
                state,
                State::Ok,
                Action::WouldHealthCheck,
                reason,
                None,
            ),
            other => self.settled(p, a, state, other),
        };
        if pending {
            r.action = Action::FinishPendingThen(Box::new(r.action));
        }
        r
    }

    fn reauth(
        &self,
        p: &dyn Provider,
        a: &Account,
        state: &AccountState,
        message: String,
        by: Timestamp,
    ) -> AccountResult {
        let mut r = self.result(
            p,
            a,
            state,
            State::ReauthRequired,
            Action::Reauthorise,
            message,
            Some(by),
        );
        r.fix = Some(Fix::Run(p.login_command(a)));
        r
    }

    fn provider_error(
        &self,
        p: &dyn Provider,
        a: &Account,
        state: &AccountState,
        e: ProviderError,
    ) -> AccountResult {
        let now = self.clock.now();
        match e {
            ProviderError::Reauth { message } => {
                let causes = p.reauth_causes();
                let message = if causes.is_empty() {
                    message
                } else {
                    format!("{message} (likely: {causes})")
                };
                self.reauth(p, a, state, message, now)
            }
            ProviderError::Failed { message, hint } => {
                self.failure(p, a, state, State::Failed, message, hint)
            }
            ProviderError::Unknown { message } => self.failure(
                p,
                a,
                state,
                State::Unknown,
                message,
                Some(format!(
                    "check the account on {}'s side; if the stored token no longer works, run `{}`",
                    p.platform().display_name(),
                    p.login_command(a)
                )),
            ),
        }
    }

    fn failure(
        &self,
        p: &dyn Provider,
        a: &Account,
        state: &AccountState,
        st: State,
        message: String,
        hint: Option<String>,
    ) -> AccountResult {
        let mut r = self.result(p, a, state, st, Action::None, message, None);
        r.fix = hint.map(Fix::Advice);
        r
    }

    /// An account a signal stopped before its provider call: `unknown` / `interrupted`.
    fn interrupted(&self, p: &dyn Provider, a: &Account, state: &AccountState) -> AccountResult {
        let signal = crate::interrupt::global()
            .signal_name()
            .unwrap_or("a signal");
        let mut r = self.result(
            p,
            a,
            state,
            State::Unknown,
            Action::Interrupted,
            format!("not processed: the run stopped on {signal} before calling the provider for this account"),
            None,
        );
        r.fix = Some(Fix::Advice(
            "nothing was changed; the next `evertoken auth refresh` handles it".into(),
        ));
        r
    }

    /// An account whose task panicked: `failed`, the other accounts unaffected.
    fn panicked(&self, p: &dyn Provider, a: &Account, e: tokio::task::JoinError) -> AccountResult {
        let what = match e.try_into_panic() {
            Ok(payload) => payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into()),
            Err(e) => e.to_string(),
        };
        self.failure(
            p,
            a,
            &AccountState::default(),
            State::Failed,
            format!(
                "internal error while processing this account ({}); the other accounts were not affected",
                what.escape_debug()
            ),
            Some("this is a bug in evertoken: please report it (with `-vv` output); a new token that reached the journal is written back by the next run, which otherwise reports what needs re-authorising".into()),
        )
    }

    fn failed_read(&self, p: &dyn Provider, a: &Account, e: StoreError) -> AccountResult {
        self.failure(
            p,
            a,
            &AccountState::default(),
            State::Failed,
            format!("cannot read from {}: {}", self.store.describe(), e.message),
            e.hint,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn result(
        &self,
        p: &dyn Provider,
        a: &Account,
        state: &AccountState,
        st: State,
        action: Action,
        problem: String,
        reauth_by: Option<Timestamp>,
    ) -> AccountResult {
        let credentials = p
            .slots()
            .iter()
            .map(|s| {
                let var = a.var(s.base);
                match state.get(s.role) {
                    Some(h) => CredentialReport {
                        var,
                        present: true,
                        source: Some(h.source.clone()),
                        prefix: Some(h.value.prefix()),
                        expires_at: h.expires_at,
                        updated_at: h.updated_at,
                    },
                    None => CredentialReport {
                        var,
                        present: false,
                        source: None,
                        prefix: None,
                        expires_at: None,
                        updated_at: None,
                    },
                }
            })
            .collect();
        let has_refresh_slot = p.slots().iter().any(|s| s.role == Role::Refresh);
        let has_access_slot = p.slots().iter().any(|s| s.role == Role::Access);
        AccountResult {
            platform: p.platform(),
            account: a.name.clone(),
            state: st,
            action,
            expires_at: if has_access_slot {
                state.access.as_ref().and_then(|h| h.expires_at)
            } else {
                None
            },
            refresh_expires_at: if has_refresh_slot {
                state.refresh.as_ref().and_then(|h| h.expires_at)
            } else {
                None
            },
            problem,
            reauth_by: reauth_by.map(utc_date),
            fix: None,
            credentials,
            attention: st.needs_attention(),
            warnings: Vec::new(),
        }
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
            return AccessToken::Unavailable {
                message: format!(
                    "{} keeps no access token: evertoken stores and health-checks only its refresh token",
                    p.platform().display_name()
                ),
                fix: Some(Fix::Advice(format!(
                    "a job that needs one exchanges {} itself (a refresh token that does not rotate, so that makes no second rotator)",
                    p.slots().first().map(|s| a.var(s.base)).unwrap_or_default()
                ))),
            };
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
        let r = self.act(p, a, &cx, snap).await;
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
}

/// A grant whose answer was faulty (an impossible lifetime): its tokens were kept,
/// and the credential is reported as failed, saying both.
fn with_problem(mut r: AccountResult, problem: Option<String>) -> AccountResult {
    if let Some(problem) = problem {
        r.problem = format!("{problem}; the tokens it issued were kept ({})", r.problem);
        r.state = State::Failed;
        r.attention = true;
        r.fix.get_or_insert_with(|| {
            Fix::Advice(
                "a provider fault: the stored expiry is unknown, so the next run refreshes again"
                    .into(),
            )
        });
    }
    r
}

fn action_done(st: State) -> &'static str {
    match st {
        State::Rotated => "the provider rotated the token",
        _ => "the provider issued a new token",
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

fn same_stored(a: Option<&Stored>, b: Option<&Stored>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => x.value.same_as(&y.value),
        _ => false,
    }
}

/// Whether the durable credential the provider uses differs between two reads.
fn differs(old: &AccountState, new: &AccountState, p: &dyn Provider) -> bool {
    p.slots()
        .iter()
        .any(|s| match (old.get(s.role), new.get(s.role)) {
            (Some(x), Some(y)) => !x.value.same_as(&y.value),
            (None, Some(_)) => true,
            _ => false,
        })
}
