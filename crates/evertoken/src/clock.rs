//! The clock. Planning and stored metadata take "now" from here, so tests can fix
//! it (`EVERTOKEN_NOW`, honoured in every build, like jj's `JJ_TIMESTAMP`) instead of
//! sleeping to make a token old.

use jiff::{Timestamp, ToSpan};

use crate::env_vars;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    fixed: Option<Timestamp>,
}

impl Clock {
    pub fn system() -> Self {
        Self { fixed: None }
    }

    pub fn fixed(at: Timestamp) -> Self {
        Self { fixed: Some(at) }
    }

    /// The system clock, unless `EVERTOKEN_NOW` holds an RFC 3339 timestamp.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(env_vars::EVERTOKEN_NOW) {
            Ok(v) if !v.is_empty() => v.parse::<Timestamp>().map(Self::fixed).map_err(|e| {
                format!(
                    "{} must be an RFC 3339 timestamp such as 2026-11-23T09:00:00Z: {e}",
                    env_vars::EVERTOKEN_NOW
                )
            }),
            _ => Ok(Self::system()),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.fixed.unwrap_or_else(Timestamp::now)
    }

    pub fn in_secs(&self, secs: i64) -> Timestamp {
        self.now()
            .checked_add(secs.seconds())
            .unwrap_or(Timestamp::MAX)
    }
}

/// `2026-11-23T09:00:00Z`: the one format evertoken writes.
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `2026-11-23`, in UTC: the form of `reauth_by`.
pub fn date(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

/// Whole days from `now` until `t` (negative when past), rounded down.
pub fn days_left(now: Timestamp, t: Timestamp) -> i64 {
    let secs = t.as_second() - now.as_second();
    secs.div_euclid(86_400)
}
