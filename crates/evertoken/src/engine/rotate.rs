//! The rotation protocol for one account: plan → lock → re-read → finish a
//! pending journal → re-plan → call → journal → write back → clear the journal.

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;

use super::outcome::with_problem;
use super::{Engine, Snapshot, failpoint};
use crate::lock::FileLock;
use crate::platform::Account;
use crate::provider::{AccountState, Cx, Grant, Held, Plan, Provider, ProviderError, Role};
use crate::report::{AccountResult, Action, Fix, State, utc_date};
use crate::secret::Secret;
use crate::store::{Entry, StoreError, Stored};

impl Engine {
    pub(super) async fn run_account(
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
        self.act(p, a, &cx, snap, false).await
    }

    /// The locked part: re-read, finish any journal, re-plan, call, journal, write.
    /// `mint`: call the provider even when the plan says the account is fine
    /// (`auth token` for a platform that keeps no access token).
    pub(super) async fn act(
        &self,
        p: &dyn Provider,
        a: &Account,
        cx: &Cx<'_>,
        before: Snapshot,
        mint: bool,
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
        let result = self.act_locked(p, a, cx, before, mint).await;
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
        mint: bool,
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
            let (id, key) = (self.store_id.clone(), a.key());
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
                s.durable && !same_stored(before.stored(&var), snap.stored(&var))
            });
        let plan = match p.plan(&snap.state, now) {
            Plan::Ok { .. } | Plan::Expiring { .. } if mint => Plan::HealthCheck {
                reason: "an access token was asked for".into(),
            },
            plan => plan,
        };
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

    /// Journals and writes back what a grant issued. An access token no slot
    /// keeps (YouTube's) is not stored: it goes back in the result, for `auth token`.
    async fn store_grant(
        &self,
        p: &dyn Provider,
        a: &Account,
        state: &AccountState,
        mut grant: Grant,
        call: Option<crate::interrupt::RotatingCall>,
    ) -> AccountResult {
        let minted = if p.slots().iter().all(|s| s.role != Role::Access) {
            grant.access.take()
        } else {
            None
        };
        let mut r = self.store_grant_inner(p, a, state, grant, call).await;
        if !r.state.needs_attention() {
            r.minted = minted;
        }
        r
    }

    async fn store_grant_inner(
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
        let store_id = self.store_id.clone();
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
}

fn action_done(st: State) -> &'static str {
    match st {
        State::Rotated => "the provider rotated the token",
        _ => "the provider issued a new token",
    }
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
