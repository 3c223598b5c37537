//! Outcome building: what a plan, a provider answer or a failure is reported as.

use jiff::Timestamp;

use super::Engine;
use crate::platform::Account;
use crate::provider::{AccountState, Plan, Provider, ProviderError, Role};
use crate::report::{AccountResult, Action, CredentialReport, Fix, State, utc_date};
use crate::store::StoreError;

impl Engine {
    /// A plan that needs no call, as a result (real run).
    pub(super) fn settled(
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
    pub(super) fn planned(
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

    pub(super) fn reauth(
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

    pub(super) fn provider_error(
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

    pub(super) fn failure(
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
    pub(super) fn interrupted(
        &self,
        p: &dyn Provider,
        a: &Account,
        state: &AccountState,
    ) -> AccountResult {
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
    pub(super) fn panicked(
        &self,
        p: &dyn Provider,
        a: &Account,
        e: tokio::task::JoinError,
    ) -> AccountResult {
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

    pub(super) fn failed_read(
        &self,
        p: &dyn Provider,
        a: &Account,
        e: StoreError,
    ) -> AccountResult {
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
    pub(super) fn result(
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
            minted: None,
            warnings: Vec::new(),
        }
    }
}

/// A grant whose answer was faulty (an impossible lifetime): its tokens were kept,
/// and the credential is reported as failed, saying both.
pub(super) fn with_problem(mut r: AccountResult, problem: Option<String>) -> AccountResult {
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
