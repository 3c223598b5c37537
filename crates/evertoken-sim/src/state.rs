//! Shared simulator state: one `std::sync::Mutex`, locked briefly and never
//! across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::faults::{Fault, Route};

/// How many requests [`Stats::requests_log`] keeps (the most recent ones).
pub(crate) const LOG_LIMIT: usize = 1000;

/// One request as the simulator received it. Credential-bearing header values
/// (`Authorization`, `PRIVATE-TOKEN`, `Cookie`) are replaced by `<redacted>`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Counters and the request log.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Requests per route name (see [`Route::name`]).
    pub requests: BTreeMap<String, u64>,
    /// Successful rotating refreshes (a new refresh token replaced the old one).
    pub rotations: u64,
    /// Requests that presented a refresh token that had already been rotated
    /// away (a "double rotation" attempt). They fail with `invalid_grant`.
    pub reused_rotated_tokens: u64,
    /// The last [`LOG_LIMIT`] provider requests, oldest first.
    pub requests_log: Vec<RecordedRequest>,
}

pub(crate) struct State {
    pub now: Option<Timestamp>,
    pub latency: Duration,
    pub lenient: bool,
    pub fault_queues: HashMap<Route, VecDeque<Fault>>,
    pub persistent: HashMap<Route, Fault>,
    pub requests: BTreeMap<String, u64>,
    pub rotations: u64,
    pub reused_rotated_tokens: u64,
    pub log: VecDeque<RecordedRequest>,
    pub oauth: crate::oauth::OAuthState,
    /// Every provider module's state; `st.<module>` reaches it through `Deref`.
    pub providers: crate::ProviderStates,
}

impl std::ops::Deref for State {
    type Target = crate::ProviderStates;
    fn deref(&self) -> &crate::ProviderStates {
        &self.providers
    }
}

impl std::ops::DerefMut for State {
    fn deref_mut(&mut self) -> &mut crate::ProviderStates {
        &mut self.providers
    }
}

impl State {
    pub(crate) fn new(latency: Duration, lenient: bool) -> State {
        State {
            now: None,
            latency,
            lenient,
            fault_queues: HashMap::new(),
            persistent: HashMap::new(),
            requests: BTreeMap::new(),
            rotations: 0,
            reused_rotated_tokens: 0,
            log: VecDeque::new(),
            oauth: Default::default(),
            providers: Default::default(),
        }
    }

    /// The simulator's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.now.unwrap_or_else(Timestamp::now)
    }

    /// Takes the fault to apply to one request on `route`: the route's queue
    /// first, then the `Any` queue, then the persistent faults.
    pub(crate) fn take_fault(&mut self, route: Route) -> Option<Fault> {
        if let Some(f) = self
            .fault_queues
            .get_mut(&route)
            .and_then(|q| q.pop_front())
        {
            return Some(f);
        }
        if let Some(f) = self
            .fault_queues
            .get_mut(&Route::Any)
            .and_then(|q| q.pop_front())
        {
            return Some(f);
        }
        self.persistent
            .get(&route)
            .or_else(|| self.persistent.get(&Route::Any))
            .cloned()
    }

    pub(crate) fn record(&mut self, route: Route, req: RecordedRequest) {
        *self.requests.entry(route.name().to_string()).or_insert(0) += 1;
        if self.log.len() >= LOG_LIMIT {
            self.log.pop_front();
        }
        self.log.push_back(req);
    }
}

/// A cheap, cloneable handle on the simulator's state. Every method locks the
/// state briefly; none of them blocks on I/O.
#[derive(Clone)]
pub struct Sim {
    pub(crate) inner: Arc<Mutex<State>>,
}

impl Sim {
    pub(crate) fn new(latency: Duration, lenient: bool) -> Sim {
        Sim {
            inner: Arc::new(Mutex::new(State::new(latency, lenient))),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pins the simulator's clock (`None` = real time). All token ages and
    /// expiries use this clock.
    pub fn set_now(&self, now: Option<Timestamp>) {
        self.lock().now = now;
    }

    /// The simulator's current time.
    pub fn now(&self) -> Timestamp {
        self.lock().now()
    }

    /// Latency added before answering every provider request (not `/_sim/`).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Lenient mode: unknown clients are accepted, and unknown tokens are
    /// accepted on first use as fresh, old-enough, valid tokens (then tracked).
    pub fn set_lenient(&self, lenient: bool) {
        self.lock().lenient = lenient;
    }

    pub fn is_lenient(&self) -> bool {
        self.lock().lenient
    }

    /// Queues `fault` for the NEXT request on `route` (FIFO, consumed once).
    pub fn push_fault(&self, route: Route, fault: Fault) {
        self.push_faults(route, fault, 1);
    }

    /// Queues `fault` for the next `n` requests on `route`.
    pub fn push_faults(&self, route: Route, fault: Fault, n: usize) {
        let mut st = self.lock();
        let q = st.fault_queues.entry(route).or_default();
        for _ in 0..n {
            q.push_back(fault.clone());
        }
    }

    /// Applies `fault` to every request on `route` until cleared with `None`.
    pub fn set_persistent_fault(&self, route: Route, fault: Option<Fault>) {
        let mut st = self.lock();
        match fault {
            Some(f) => {
                st.persistent.insert(route, f);
            }
            None => {
                st.persistent.remove(&route);
            }
        }
    }

    /// Drops every queued and persistent fault.
    pub fn clear_faults(&self) {
        let mut st = self.lock();
        st.fault_queues.clear();
        st.persistent.clear();
    }

    /// A snapshot of the counters and the request log.
    pub fn stats(&self) -> Stats {
        let st = self.lock();
        Stats {
            requests: st.requests.clone(),
            rotations: st.rotations,
            reused_rotated_tokens: st.reused_rotated_tokens,
            requests_log: st.log.iter().cloned().collect(),
        }
    }

    /// Requests seen on one route so far.
    pub fn request_count(&self, route: Route) -> u64 {
        self.lock().requests.get(route.name()).copied().unwrap_or(0)
    }

    /// Every JSON body received on `/webhook/...`, with its path.
    pub fn webhook_received(&self) -> Vec<(String, serde_json::Value)> {
        self.lock().webhook.clone()
    }
}
