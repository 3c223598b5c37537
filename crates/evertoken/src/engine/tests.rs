//! The rotation protocol against an in-memory store and a scripted provider:
//! what is called, journaled and written, and in which order.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use super::{Engine, Options};
use crate::clock::Clock;
use crate::config::Config;
use crate::journal::{Journal, Record};
use crate::platform::Target;
use crate::provider::{
    AccountState, Common, Cx, Grant, NewToken, Plan, Provider, ProviderError, Role, Slot,
};
use crate::report::{AccountResult, Action, State};
use crate::secret::{Secret, Source};
use crate::store::{Entry, Store, StoreError, Stored};

const REFRESH: &str = "TIKTOK_REFRESH_TOKEN";
const ACCESS: &str = "TIKTOK_ACCESS_TOKEN";

fn now() -> Timestamp {
    "2026-11-30T12:00:00Z".parse().unwrap()
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// What the store and the provider saw, in order: `read VAR`, `reread VARS`,
/// `write VAR=VALUE…`, `call refresh=VALUE`.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, s: String) {
        self.0.lock().unwrap().push(s);
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn position(&self, prefix: &str) -> Option<usize> {
        self.all().iter().position(|e| e.starts_with(prefix))
    }
    fn count(&self, prefix: &str) -> usize {
        self.all().iter().filter(|e| e.starts_with(prefix)).count()
    }
}

/// An in-memory store: values in a map, the next `fail_writes` writes refused
/// (permanently, so nothing retries), and at each write the journal records
/// that exist at that moment.
struct FakeStore {
    values: Mutex<BTreeMap<String, (String, Option<Timestamp>)>>,
    fail_writes: AtomicUsize,
    log: Log,
    journal: Journal,
    /// At each write: every (var, value) the journal held just then.
    journaled_at_write: Mutex<Vec<Vec<(String, String)>>>,
    offline: AtomicUsize,
    file: PathBuf,
}

impl FakeStore {
    fn new(dir: &std::path::Path, log: Log) -> Arc<FakeStore> {
        Arc::new(FakeStore {
            values: Mutex::default(),
            fail_writes: AtomicUsize::new(0),
            log,
            journal: Journal::new(dir),
            journaled_at_write: Mutex::default(),
            offline: AtomicUsize::new(0),
            file: dir.join("fake-store"),
        })
    }
    fn set(&self, var: &str, value: &str, expires_at: Option<Timestamp>) {
        self.values
            .lock()
            .unwrap()
            .insert(var.to_owned(), (value.to_owned(), expires_at));
    }
    fn get(&self, var: &str) -> Option<String> {
        self.values.lock().unwrap().get(var).map(|v| v.0.clone())
    }
    fn pending(&self) -> Vec<(String, String)> {
        self.journal
            .pending()
            .iter()
            // Another account's record may be cleared between listing and
            // reading (accounts run concurrently): skip what vanished.
            .filter_map(|p| std::fs::read(p).ok())
            .flat_map(|bytes| {
                let rec: Record = serde_json::from_slice(&bytes).unwrap();
                rec.entries
                    .into_iter()
                    .map(|e| (e.var, e.value.expose().to_owned()))
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Store for FakeStore {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn id(&self) -> String {
        "fake:memory".into()
    }
    fn describe(&self) -> String {
        "the fake store".into()
    }
    async fn read(&self, var: &str) -> Result<Option<Stored>, StoreError> {
        self.log.push(format!("read {var}"));
        Ok(self.values.lock().unwrap().get(var).map(|(v, exp)| Stored {
            value: Secret::new(v.clone()),
            expires_at: *exp,
            updated_at: None,
            source: Source::Store("the fake store".into()),
        }))
    }
    async fn write(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let shown: Vec<String> = entries
            .iter()
            .map(|e| format!("{}={}", e.var, e.value.expose()))
            .collect();
        self.log.push(format!("write {}", shown.join(" ")));
        self.journaled_at_write.lock().unwrap().push(self.pending());
        if self
            .fail_writes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::permanent("injected write failure"));
        }
        for e in entries {
            self.set(&e.var, e.value.expose(), e.expires_at);
        }
        Ok(())
    }
    fn reread(&self, vars: &[String]) {
        self.log.push(format!("reread {}", vars.join(" ")));
    }
    fn offline(&self) {
        self.offline.fetch_add(1, Ordering::SeqCst);
    }
    fn local_file(&self) -> Option<PathBuf> {
        Some(self.file.clone())
    }
}

const SLOTS: &[Slot] = &[
    Slot {
        role: Role::Refresh,
        base: REFRESH,
        durable: true,
    },
    Slot {
        role: Role::Access,
        base: ACCESS,
        durable: false,
    },
];

type Answer = Result<Grant, ProviderError>;

/// A rotating platform with TikTok's slots: refreshes when the access token is
/// missing or expires within an hour, answers from a script, counts its calls.
struct FakeProvider {
    /// The real provider of the configured block: its `Common` and login flow.
    inner: Arc<dyn Provider>,
    answers: Mutex<VecDeque<Answer>>,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    log: Log,
    /// Runs during the first call (another runner rotating meanwhile).
    during_call: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl FakeProvider {
    fn new(inner: Arc<dyn Provider>, log: Log, answers: Vec<Answer>) -> Arc<FakeProvider> {
        Arc::new(FakeProvider {
            inner,
            answers: Mutex::new(answers.into()),
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            log,
            during_call: Mutex::new(None),
        })
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Provider for FakeProvider {
    fn common(&self) -> &Common {
        self.inner.common()
    }
    fn login(&self) -> &dyn crate::login::Flow {
        self.inner.login()
    }
    fn slots(&self) -> &[Slot] {
        SLOTS
    }
    fn client_secret_var(&self) -> Option<&'static str> {
        None
    }
    fn rotates(&self, _state: &AccountState) -> bool {
        true
    }
    fn plan(&self, state: &AccountState, now: Timestamp) -> Plan {
        if state.refresh.is_none() {
            return Plan::Reauth {
                message: "no refresh token".into(),
                reauth_by: None,
            };
        }
        let soon = crate::clock::add_secs(now, 3600);
        match state.access.as_ref().and_then(|a| a.expires_at) {
            Some(exp) if exp > soon => Plan::Ok {
                message: "fine".into(),
            },
            _ => Plan::Refresh {
                reason: "access token expiring".into(),
            },
        }
    }
    async fn refresh(&self, _cx: &Cx<'_>, state: &AccountState) -> Answer {
        let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(n, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        let used = state.refresh.as_ref().map(|h| h.value.expose().to_owned());
        self.log
            .push(format!("call refresh={}", used.unwrap_or_default()));
        if let Some(f) = self.during_call.lock().unwrap().take() {
            f();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .expect("the script has an answer for every call")
    }
}

/// A grant rotating to refresh token `refresh` with a fresh access token.
fn rotated(refresh: &str, access: &str) -> Answer {
    Ok(Grant {
        access: Some(NewToken {
            value: Secret::new(access),
            expires_at: Some(at("2026-12-01T12:00:00Z")),
        }),
        refresh: Some(NewToken {
            value: Secret::new(refresh),
            expires_at: Some(at("2027-11-30T12:00:00Z")),
        }),
        ..Grant::default()
    })
}

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
    store: Arc<FakeStore>,
    provider: Arc<FakeProvider>,
    log: Log,
}

/// An engine over the fake store and provider; `accounts` and `concurrency`
/// configure the TikTok block whose `Common` the fake provider uses.
fn fixture_with(accounts: &[&str], concurrency: usize, answers: Vec<Answer>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let yaml = format!(
        "platforms:\n  tiktok:\n    client_key: ck\n    concurrency: {concurrency}\n    accounts: [{}]\nauth:\n  journal_dir: {}\n",
        accounts.join(", "),
        state.display()
    );
    let path = dir.path().join("evertoken.yaml");
    std::fs::write(&path, yaml).unwrap();
    let cfg = Config::load_file(&path).unwrap();
    let inner = crate::provider::build(&cfg).unwrap().remove(0);
    let log = Log::default();
    let store = FakeStore::new(&state, log.clone());
    let provider = FakeProvider::new(inner, log.clone(), answers);
    let engine = Engine::with_parts(
        cfg,
        store.clone(),
        vec![provider.clone()],
        Clock::fixed(now()),
    )
    .unwrap();
    Fixture {
        _dir: dir,
        engine,
        store,
        provider,
        log,
    }
}

/// One default account holding refresh token `r1` and an access token that
/// expired an hour ago (so the plan is a rotation).
fn fixture(answers: Vec<Answer>) -> Fixture {
    let f = fixture_with(&[], 8, answers);
    f.store.set(REFRESH, "r1", Some(at("2027-01-30T00:00:00Z")));
    f.store.set(ACCESS, "a1", Some(at("2026-11-30T11:00:00Z")));
    f
}

impl Fixture {
    async fn refresh(&self, dry_run: bool) -> Vec<AccountResult> {
        let opts = Options {
            target: Target::All,
            dry_run,
        };
        self.engine.refresh(&opts, None).await.unwrap().results
    }
    async fn refresh_one(&self, dry_run: bool) -> AccountResult {
        let mut r = self.refresh(dry_run).await;
        assert_eq!(r.len(), 1);
        r.remove(0)
    }
}

#[tokio::test]
async fn rotation_is_journaled_before_the_write_back_and_cleared_after() {
    let f = fixture(vec![rotated("r2", "a2")]);
    let r = f.refresh_one(false).await;
    assert_eq!((r.state, &r.action), (State::Rotated, &Action::Rotated));
    assert_eq!(f.provider.calls(), 1);
    assert_eq!(f.store.get(REFRESH).as_deref(), Some("r2"));
    assert_eq!(f.store.get(ACCESS).as_deref(), Some("a2"));
    // Every write happened while the journal held the new refresh token.
    let seen = f.store.journaled_at_write.lock().unwrap().clone();
    assert!(!seen.is_empty());
    for journaled in &seen {
        assert!(
            journaled.contains(&(REFRESH.to_owned(), "r2".to_owned())),
            "write without the journal record: {journaled:?}"
        );
    }
    // The durable token is written first, and the call precedes every write.
    let log = f.log.all();
    let call = f.log.position("call").unwrap();
    let first_write = f.log.position("write").unwrap();
    assert!(call < first_write, "{log:?}");
    assert!(
        log[first_write].starts_with(&format!("write {REFRESH}=r2")),
        "{log:?}"
    );
    assert!(f.store.pending().is_empty(), "journal left behind");
}

#[tokio::test]
async fn failed_write_back_keeps_the_journal_and_the_next_run_finishes_it_without_a_call() {
    let f = fixture(vec![rotated("r2", "a2")]);
    f.store.fail_writes.store(1, Ordering::SeqCst);
    let r = f.refresh_one(false).await;
    assert_eq!(r.state, State::Failed);
    assert_eq!(
        r.action,
        Action::WriteBackPending(Box::new(Action::Rotated)),
        "{}",
        r.problem
    );
    assert_eq!(
        f.store.get(REFRESH).as_deref(),
        Some("r1"),
        "nothing stored"
    );
    let pending = f.store.pending();
    assert!(
        pending.contains(&(REFRESH.to_owned(), "r2".to_owned())),
        "{pending:?}"
    );

    // The next run writes the journaled tokens back first and calls nobody: the
    // script has no second answer, so a call would panic the account's task.
    let r = f.refresh_one(false).await;
    assert_eq!(f.provider.calls(), 1);
    assert_eq!(r.action, Action::FinishedWriteBack, "{}", r.problem);
    assert_eq!(r.state, State::Ok);
    assert_eq!(f.store.get(REFRESH).as_deref(), Some("r2"));
    assert_eq!(f.store.get(ACCESS).as_deref(), Some("a2"));
    assert!(f.store.pending().is_empty());
}

#[tokio::test]
async fn dead_grant_is_reported_after_one_reread_of_the_store() {
    let f = fixture(vec![Err(ProviderError::Reauth {
        message: "invalid_grant".into(),
    })]);
    let r = f.refresh_one(false).await;
    assert_eq!(
        (r.state, &r.action),
        (State::ReauthRequired, &Action::Reauthorise)
    );
    assert_eq!(f.provider.calls(), 1);
    // After the call: the store is told to re-read, then read again.
    let log = f.log.all();
    let call = f.log.position("call").unwrap();
    let after = &log[call + 1..];
    assert!(
        after
            .iter()
            .any(|e| e.starts_with("reread") && e.contains(REFRESH)),
        "{log:?}"
    );
    assert!(
        after.iter().any(|e| e == &format!("read {REFRESH}")),
        "{log:?}"
    );
    assert_eq!(f.log.count("write"), 0);
    assert_eq!(f.store.get(REFRESH).as_deref(), Some("r1"));
}

#[tokio::test]
async fn dead_grant_retries_with_a_token_another_runner_just_rotated() {
    let f = fixture(vec![
        Err(ProviderError::Reauth {
            message: "invalid_grant".into(),
        }),
        rotated("r3", "a3"),
    ]);
    let store = f.store.clone();
    *f.provider.during_call.lock().unwrap() = Some(Box::new(move || {
        store.set(REFRESH, "r9", Some(at("2027-06-01T00:00:00Z")));
    }));
    let r = f.refresh_one(false).await;
    assert_eq!(f.provider.calls(), 2);
    assert_eq!(f.log.count("call refresh=r1"), 1);
    assert_eq!(f.log.count("call refresh=r9"), 1);
    assert_eq!(r.state, State::Rotated, "{}", r.problem);
    assert_eq!(f.store.get(REFRESH).as_deref(), Some("r3"));
}

#[tokio::test]
async fn unknown_outcome_of_a_rotating_call_is_reported_as_unknown() {
    let f = fixture(vec![Err(ProviderError::Unknown {
        message: "connection reset after the request was sent".into(),
    })]);
    let r = f.refresh_one(false).await;
    assert_eq!(
        (r.state, &r.action),
        (State::Unknown, &Action::OutcomeUnknown)
    );
    assert!(r.attention);
    assert_eq!(f.log.count("write"), 0);
    assert!(f.store.pending().is_empty());
}

#[tokio::test]
async fn dry_run_calls_nobody_and_writes_nothing() {
    let f = fixture(vec![]);
    let r = f.refresh_one(true).await;
    assert_eq!(r.action, Action::WouldRotate);
    assert_eq!(f.provider.calls(), 0);
    assert_eq!(f.log.count("write"), 0);
    assert_eq!(f.log.count("reread"), 0, "dry-run takes no lock");
}

#[tokio::test]
async fn status_is_offline_and_calls_nobody() {
    let f = fixture(vec![]);
    let report = f.engine.status(&Target::All).await.unwrap();
    assert_eq!(report.results.len(), 1);
    assert_eq!(report.results[0].action, Action::RefreshDue);
    assert_eq!(f.provider.calls(), 0);
    assert_eq!(f.log.count("write"), 0);
    assert_eq!(f.store.offline.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_healthy_plan_makes_no_call() {
    let f = fixture(vec![]);
    f.store.set(ACCESS, "a1", Some(at("2026-12-30T00:00:00Z")));
    let r = f.refresh_one(false).await;
    assert_eq!((r.state, &r.action), (State::Ok, &Action::None));
    assert_eq!(f.provider.calls(), 0);
    assert_eq!(f.log.count("write"), 0);
}

#[tokio::test]
async fn provider_calls_respect_the_platform_concurrency() {
    let names = ["a", "b", "c", "d", "e", "f"];
    let answers = (0..names.len())
        .map(|i| rotated(&format!("new-r{i}"), &format!("new-a{i}")))
        .collect();
    let f = fixture_with(&names, 2, answers);
    for n in names {
        let suffix = n.to_uppercase();
        f.store.set(&format!("{REFRESH}_{suffix}"), "r1", None);
    }
    let results = f.refresh(false).await;
    assert_eq!(results.len(), names.len());
    assert!(
        results.iter().all(|r| r.state == State::Rotated),
        "{:?}",
        results.iter().map(|r| &r.problem).collect::<Vec<_>>()
    );
    assert_eq!(f.provider.calls(), names.len());
    assert_eq!(f.provider.max_in_flight.load(Ordering::SeqCst), 2);
}
