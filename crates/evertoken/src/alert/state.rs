//! The alert state (`<journal_dir>/alerts.json`, 0600): what was last alerted on,
//! per credential, so that an unchanged problem is re-sent at most every
//! `repeat_hours`, an escalation or a change is sent at once, and a credential
//! that recovers gets one "recovered" line. It holds names, states and dates only,
//! never a token.
//!
//! The decision is a pure function of the state, this run's results and the clock.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{Alert, Item, Level, Recovered};
use crate::report::State;

pub const FILE_NAME: &str = "alerts.json";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// State and deadline: what makes a problem "the same" from run to run.
    pub fingerprint: String,
    pub level: Level,
    pub last_sent: Timestamp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AlertState {
    pub version: u32,
    /// Keyed by `platform` or `platform:account`.
    #[serde(default)]
    pub alerted: BTreeMap<String, Entry>,
}

impl Default for AlertState {
    fn default() -> Self {
        Self {
            version: 1,
            alerted: BTreeMap::new(),
        }
    }
}

/// What this run should send.
#[derive(Debug, Default)]
pub struct Decision {
    pub send: bool,
    pub recovered: Vec<Recovered>,
}

pub fn fingerprint(item: &Item) -> String {
    format!(
        "{}|{}",
        item.state.as_str(),
        item.reauth_by
            .map_or_else(|| "-".to_owned(), |d| d.to_string())
    )
}

impl AlertState {
    /// Reads the state; a missing file is an empty state. An unreadable or corrupt
    /// one is treated as empty too (at worst an alert is repeated), with a notice.
    pub fn load(path: &Path) -> (AlertState, Option<String>) {
        match std::fs::read_to_string(path) {
            Ok(text) => match serde_json::from_str(&text) {
                Ok(s) => (s, None),
                Err(e) => (
                    AlertState::default(),
                    Some(format!(
                        "ignoring the alert state {}: not valid ({e}); it will be rewritten",
                        path.display()
                    )),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (AlertState::default(), None),
            Err(e) => (
                AlertState::default(),
                Some(format!(
                    "cannot read the alert state {}: {e}",
                    path.display()
                )),
            ),
        }
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        text.push('\n');
        crate::files::write_private_atomic(path, text.as_bytes())
    }

    /// Whether to send, and which previously alerted credentials recovered.
    /// `healthy` lists (key, display name, state) of this run's results that need
    /// no attention: only those can recover (a run that did not look at a
    /// credential says nothing about it).
    pub fn decide(
        &self,
        items: &[Item],
        healthy: &[(String, String, State)],
        now: Timestamp,
        repeat: SignedDuration,
    ) -> Decision {
        let recovered: Vec<Recovered> = healthy
            .iter()
            .filter(|(key, _, _)| self.alerted.contains_key(key))
            .map(|(key, who, state)| Recovered {
                key: key.clone(),
                who: who.clone(),
                state: *state,
            })
            .collect();
        let due = items.iter().any(|i| match self.alerted.get(&i.key) {
            None => true,
            Some(e) => {
                e.fingerprint != fingerprint(i)
                    || i.level > e.level
                    || now.duration_since(e.last_sent) >= repeat
            }
        });
        Decision {
            send: due || !recovered.is_empty(),
            recovered,
        }
    }

    /// Records a delivered alert.
    pub fn record_sent(&mut self, alert: &Alert, now: Timestamp) {
        for i in &alert.items {
            self.alerted.insert(
                i.key.clone(),
                Entry {
                    fingerprint: fingerprint(i),
                    level: i.level,
                    last_sent: now,
                },
            );
        }
        for r in &alert.recovered {
            self.alerted.remove(&r.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::AlertKind;
    use super::*;

    fn item(reauth_by: &str, days_left: i64) -> Item {
        Item {
            key: "linkedin".into(),
            platform: "LinkedIn".into(),
            account: None,
            state: State::ReauthRequired,
            problem: "expires soon".into(),
            reauth_by: Some(reauth_by.parse().unwrap()),
            days_left: Some(days_left),
            fix: Some(crate::report::Fix::Run(
                "evertoken auth login linkedin".into(),
            )),
            level: Level::of(State::ReauthRequired, Some(days_left)),
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const DAY: SignedDuration = SignedDuration::from_hours(24);

    #[test]
    fn a_new_problem_is_sent_then_held_back_until_repeat_hours() {
        let mut st = AlertState::default();
        let items = vec![item("2026-12-10", 17)];
        let now = t("2026-11-23T09:00:00Z");
        assert!(st.decide(&items, &[], now, DAY).send);
        st.record_sent(
            &Alert {
                kind: AlertKind::Run,
                items: items.clone(),
                recovered: vec![],
            },
            now,
        );
        assert!(!st.decide(&items, &[], t("2026-11-23T20:00:00Z"), DAY).send);
        assert!(st.decide(&items, &[], t("2026-11-24T09:00:00Z"), DAY).send);
    }

    #[test]
    fn escalation_and_change_are_sent_at_once() {
        let mut st = AlertState::default();
        let now = t("2026-11-23T09:00:00Z");
        let first = vec![item("2026-12-01", 8)];
        st.record_sent(
            &Alert {
                kind: AlertKind::Run,
                items: first,
                recovered: vec![],
            },
            now,
        );
        let later = t("2026-11-24T08:00:00Z");
        assert!(
            st.decide(&[item("2026-12-01", 7)], &[], later, DAY).send,
            "notice → soon"
        );
        assert!(
            st.decide(&[item("2026-12-05", 8)], &[], later, DAY).send,
            "new deadline"
        );
        assert!(!st.decide(&[item("2026-12-01", 8)], &[], later, DAY).send);
    }

    #[test]
    fn a_recovered_credential_is_announced_once() {
        let mut st = AlertState::default();
        let now = t("2026-11-23T09:00:00Z");
        st.record_sent(
            &Alert {
                kind: AlertKind::Run,
                items: vec![item("2026-12-01", 8)],
                recovered: vec![],
            },
            now,
        );
        let healthy = vec![("linkedin".to_owned(), "LinkedIn".to_owned(), State::Ok)];
        let d = st.decide(&[], &healthy, now, DAY);
        assert!(d.send);
        assert_eq!(d.recovered.len(), 1);
        st.record_sent(
            &Alert {
                kind: AlertKind::Run,
                items: vec![],
                recovered: d.recovered,
            },
            now,
        );
        assert!(!st.decide(&[], &healthy, now, DAY).send);
    }
}
