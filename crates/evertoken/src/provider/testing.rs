//! Fixtures for the table tests of the platforms' pure `plan()`.

use std::sync::Arc;

use jiff::Timestamp;

use super::{AccountState, Held, Plan, Provider};
use crate::secret::{Secret, Source};

pub fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// The provider of `platforms: { <block> }` (YAML, one platform).
pub fn provider(block: &str) -> Arc<dyn Provider> {
    let cfg = crate::config::Config::from_text(&format!("platforms:\n  {block}\n")).unwrap();
    super::build(&cfg).unwrap().remove(0)
}

/// An account holding these tokens.
pub fn with(access: Option<Held>, refresh: Option<Held>) -> AccountState {
    AccountState { access, refresh }
}

/// A stored token with this expiry and last update (RFC 3339, `None`: unknown).
pub fn held(exp: Option<&str>, updated: Option<&str>) -> Held {
    Held {
        var: "TOKEN".into(),
        value: Secret::new("v"),
        source: Source::Env("TOKEN".into()),
        expires_at: exp.map(t),
        updated_at: updated.map(t),
    }
}

/// An account with an access and a refresh token: `None` not stored,
/// `Some(None)` stored with an unknown expiry, `Some(Some(t))` expiring at `t`.
pub fn state(access: Option<Option<&str>>, refresh: Option<Option<&str>>) -> AccountState {
    AccountState {
        access: access.map(|e| held(e, None)),
        refresh: refresh.map(|e| held(e, None)),
    }
}

/// The kind of a plan, as the tables spell it.
pub fn kind(p: &Plan) -> &'static str {
    match p {
        Plan::Ok { .. } => "ok",
        Plan::Expiring { .. } => "expiring",
        Plan::Refresh { .. } => "refresh",
        Plan::HealthCheck { .. } => "health-check",
        Plan::Introspect => "introspect",
        Plan::Reauth {
            reauth_by: None, ..
        } => "reauth",
        Plan::Reauth {
            reauth_by: Some(_), ..
        } => "reauth-dated",
    }
}

/// (access expiry, refresh expiry, expected plan kind).
pub type Case<'a> = (Option<Option<&'a str>>, Option<Option<&'a str>>, &'a str);

/// Checks every case of a table against `plan`.
pub fn check_table(cases: &[Case<'_>], plan: impl Fn(&AccountState) -> Plan) {
    for (access, refresh, want) in cases {
        let got = kind(&plan(&state(*access, *refresh)));
        assert_eq!(got, *want, "access {access:?} refresh {refresh:?}");
    }
}
