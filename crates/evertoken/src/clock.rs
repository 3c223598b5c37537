//! The clock. Planning and stored metadata take "now" from here, so tests can fix
//! it (`EVERTOKEN_NOW`, honoured in every build, like jj's `JJ_TIMESTAMP`) instead of
//! sleeping to make a token old.
//!
//! It also owns every conversion of an outside number into a time: a lifetime a
//! provider states (`expires_in` and friends) is read leniently into a
//! [`Lifetime`] and checked against a sane range here, once, so no provider answer
//! can overflow the time arithmetic (which would panic a worker) or make a dead
//! token look healthy. Nothing here ever panics on any input.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Deserializer};

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

    /// `now + secs`, saturating at the ends of the representable range.
    pub fn in_secs(&self, secs: i64) -> Timestamp {
        add_secs(self.now(), secs)
    }

    /// The expiry a provider's stated lifetime gives, validated: `Ok(None)` when the
    /// answer has no such field, an error (naming `field`) when the value is not a
    /// whole number of seconds in `0..=`[`MAX_LIFETIME_SECS`].
    pub fn expiry(&self, field: &str, l: &Lifetime) -> Result<Option<Timestamp>, String> {
        l.checked_secs(field).map(|s| s.map(|s| self.in_secs(s)))
    }
}

/// The longest lifetime a provider may state: 100 years. Anything beyond is a
/// provider fault (or an attack), not a token to plan with.
pub const MAX_LIFETIME_SECS: i64 = 100 * 366 * 86_400;

/// `t + secs` seconds, saturating at [`Timestamp::MIN`] / [`Timestamp::MAX`].
pub fn add_secs(t: Timestamp, secs: i64) -> Timestamp {
    match t.checked_add(SignedDuration::from_secs(secs)) {
        Ok(v) => v,
        Err(_) if secs < 0 => Timestamp::MIN,
        Err(_) => Timestamp::MAX,
    }
}

/// `t + days` days, saturating (a config value of any size cannot panic).
pub fn add_days(t: Timestamp, days: i64) -> Timestamp {
    add_secs(t, days.saturating_mul(86_400))
}

/// A lifetime in seconds as a provider stated it. Read leniently (a number, a
/// float, a numeric string, `null`, anything), so an odd value never makes the
/// rest of the answer (a new refresh token) unreadable; checked separately with
/// [`Lifetime::checked_secs`].
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Lifetime {
    /// The field is missing or `null`.
    #[default]
    Absent,
    /// A whole number of seconds (any sign, not yet range-checked).
    Secs(i64),
    /// Present but not a whole number of seconds an `i64` holds; the raw text,
    /// shortened and with control characters escaped.
    Unreadable(String),
}

impl Lifetime {
    /// Validates the lifetime: `Ok(None)` when absent, `Ok(Some(secs))` when in
    /// `0..=MAX_LIFETIME_SECS`, else a message naming `field`.
    pub fn checked_secs(&self, field: &str) -> Result<Option<i64>, String> {
        match self {
            Lifetime::Absent => Ok(None),
            Lifetime::Secs(s) if (0..=MAX_LIFETIME_SECS).contains(s) => Ok(Some(*s)),
            Lifetime::Secs(s) if *s < 0 => Err(format!(
                "`{field}` is negative ({s} seconds): a token cannot expire before it was issued"
            )),
            Lifetime::Secs(s) => Err(format!(
                "`{field}` is {s} seconds, more than 100 years: not a lifetime evertoken can trust"
            )),
            Lifetime::Unreadable(raw) => Err(format!(
                "`{field}` is `{raw}`, not a whole number of seconds"
            )),
        }
    }

    /// Reads a JSON value the way [`Deserialize`] does.
    pub fn from_json(v: &serde_json::Value) -> Lifetime {
        use serde_json::Value;
        match v {
            Value::Null => Lifetime::Absent,
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Lifetime::Secs(i)
                } else if let Some(f) = n.as_f64()
                    && f.is_finite()
                    && f.fract() == 0.0
                    && f.abs() < 9.0e15
                {
                    Lifetime::Secs(f as i64)
                } else {
                    Lifetime::Unreadable(shorten(&n.to_string()))
                }
            }
            // Some providers quote numbers; a numeric string is a number.
            Value::String(s) => match s.trim().parse::<i64>() {
                Ok(i) => Lifetime::Secs(i),
                Err(_) => Lifetime::Unreadable(shorten(s)),
            },
            other => Lifetime::Unreadable(shorten(&other.to_string())),
        }
    }
}

fn shorten(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    let cut = crate::scrub::escape_controls(&cut);
    if s.chars().count() > 40 {
        format!("{cut}…")
    } else {
        cut.into_owned()
    }
}

impl From<Option<i64>> for Lifetime {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Lifetime::Absent, Lifetime::Secs)
    }
}

impl From<&Lifetime> for Lifetime {
    fn from(v: &Lifetime) -> Self {
        v.clone()
    }
}

impl<'de> Deserialize<'de> for Lifetime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Ok(Lifetime::from_json(&v))
    }
}

/// Collects the lifetime problems of one provider answer, so a provider can keep
/// every token it was given and still report the answer as faulty.
#[derive(Debug, Default)]
pub struct LifetimeCheck {
    problems: Vec<String>,
}

impl LifetimeCheck {
    /// The expiry for `l` (`None` when absent or invalid); an invalid value is
    /// remembered as a problem.
    pub fn at(&mut self, clock: Clock, field: &str, l: &Lifetime) -> Option<Timestamp> {
        match clock.expiry(field, l) {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(e);
                None
            }
        }
    }

    /// An absolute expiry (seconds since the epoch or RFC 3339) checked to lie
    /// after `now` and within 100 years of it.
    pub fn absolute(
        &mut self,
        now: Timestamp,
        field: &str,
        t: Option<Timestamp>,
    ) -> Option<Timestamp> {
        let t = t?;
        if t <= now {
            self.problems
                .push(format!("`{field}` is {}, already in the past", rfc3339(t)));
            None
        } else if t > add_secs(now, MAX_LIFETIME_SECS) {
            self.problems.push(format!(
                "`{field}` is {}, more than 100 years away",
                rfc3339(t)
            ));
            None
        } else {
            Some(t)
        }
    }

    /// One sentence naming every problem, prefixed with `who`, or `None`.
    pub fn problem(self, who: &str) -> Option<String> {
        if self.problems.is_empty() {
            None
        } else {
            Some(format!(
                "{who} stated an impossible token lifetime: {}",
                self.problems.join("; ")
            ))
        }
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
    let secs = t.as_second().saturating_sub(now.as_second());
    secs.div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn lifetimes_outside_the_sane_range_are_errors() {
        let c = Clock::fixed("2026-11-23T09:00:00Z".parse().unwrap());
        for bad in [
            serde_json::json!(i64::MAX),
            serde_json::json!(i64::MIN),
            serde_json::json!(-1),
            serde_json::json!(631_107_417_601_i64),
            serde_json::json!(1e20),
            serde_json::json!(1.5),
            serde_json::json!("soon"),
            serde_json::json!(u64::MAX),
            serde_json::json!([1]),
        ] {
            let l = Lifetime::from_json(&bad);
            assert!(c.expiry("expires_in", &l).is_err(), "{bad} accepted");
        }
        let ok = Lifetime::from_json(&serde_json::json!("86400"));
        assert_eq!(
            c.expiry("expires_in", &ok).unwrap().map(rfc3339).as_deref(),
            Some("2026-11-24T09:00:00Z")
        );
        assert_eq!(c.expiry("x", &Lifetime::Absent), Ok(None));
    }

    proptest! {
        /// No number, of any size or sign, panics the time arithmetic.
        #[test]
        fn time_arithmetic_saturates(secs in any::<i64>(), days in any::<i64>(), f in any::<f64>()) {
            let c = Clock::system();
            let _ = c.in_secs(secs);
            let _ = add_days(c.now(), days);
            let _ = days_left(Timestamp::MIN, Timestamp::MAX);
            let _ = days_left(Timestamp::MAX, Timestamp::MIN);
            let _ = c.expiry("f", &Lifetime::from_json(&serde_json::json!(f)));
            let _ = c.expiry("s", &Lifetime::Secs(secs));
        }
    }
}
