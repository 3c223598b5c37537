//! Interruptions: what SIGINT, SIGTERM and SIGHUP do to a run that may be
//! rotating tokens.
//!
//! CI cancellation, `timeout`, `systemctl stop` and Ctrl-C all send a signal and
//! leave time before any SIGKILL (GitHub Actions: SIGINT, SIGTERM 7.5 s later,
//! then SIGKILL; systemd: SIGTERM, SIGKILL 90 s later). So the first signal only
//! *stops new work*: no new provider call starts, calls already sent finish
//! (bounded by the HTTP timeout) and whatever they returned is journaled and
//! written back as usual. The command then reports every credential it did not
//! process as `unknown` / `interrupted` and the binary exits 130 (SIGINT) or 143
//! (SIGTERM, SIGHUP), by `exit`, never by re-raising the signal.
//!
//! A further signal never aborts a rotating call already sent: the provider may
//! have retired the old refresh token, and its answer holds the only valid one.
//! Once no rotating call is in flight (its answer is in the journal, or it never
//! left), a further signal exits at once; the journal still holds whatever
//! reached it and the next run finishes the write-back.
//!
//! This module owns the process-wide signal state and nothing else: it never
//! cancels a future itself (the engine decides where work may stop), never
//! touches a store and never prints a secret.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

/// Exit status after SIGINT (128 + 2).
pub const EXIT_SIGINT: u8 = 130;
/// Exit status after SIGTERM or SIGHUP (128 + 15; SIGHUP is treated like SIGTERM).
pub const EXIT_SIGTERM: u8 = 143;

/// The process-wide interruption state (signals are process-wide too).
pub fn global() -> &'static Interrupt {
    static GLOBAL: OnceLock<Interrupt> = OnceLock::new();
    GLOBAL.get_or_init(Interrupt::default)
}

/// Whether a signal arrived, and which rotating calls are still in flight.
#[derive(Clone, Default)]
pub struct Interrupt {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    token: CancellationToken,
    /// The exit status the first signal asked for (0: none yet).
    code: AtomicU8,
    /// The name of the first signal, for messages.
    first: OnceLock<&'static str>,
    /// Rotating provider calls sent and not yet safe (journaled or stored).
    in_flight: AtomicUsize,
    /// A further signal arrived while a rotating call was in flight: exit as
    /// soon as the last one is safe.
    escalated: AtomicBool,
    armed: AtomicBool,
    exiting: AtomicBool,
    idle: tokio::sync::Notify,
}

impl Interrupt {
    /// Starts listening for SIGINT, SIGTERM and SIGHUP (once per process; later
    /// calls do nothing). Needs a running tokio runtime. Until this is called the
    /// signals keep their default action (the process dies at once), which is
    /// right for commands that never rotate anything.
    pub fn arm(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        if self.inner.armed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let (name, code) = tokio::select! {
                    Some(()) = int.recv() => ("SIGINT", EXIT_SIGINT),
                    Some(()) = term.recv() => ("SIGTERM", EXIT_SIGTERM),
                    Some(()) = hup.recv() => ("SIGHUP", EXIT_SIGTERM),
                    else => return,
                };
                this.signal(name, code);
            }
        });
        Ok(())
    }

    /// What a signal does (separate from [`Interrupt::arm`] so tests can drive it).
    fn signal(&self, name: &'static str, code: u8) {
        let inner = &self.inner;
        if inner
            .code
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            let _ = inner.first.set(name);
            inner.token.cancel();
            let n = inner.in_flight.load(Ordering::SeqCst);
            if n > 0 {
                tracing::warn!(
                    "{name} received: starting no new provider call; waiting for {n} rotating call(s) already sent to return and be saved"
                );
            } else {
                tracing::warn!("{name} received: starting no new provider call");
            }
            return;
        }
        // A further signal: exit at once unless a rotating call is in flight.
        inner.escalated.store(true, Ordering::SeqCst);
        let n = inner.in_flight.load(Ordering::SeqCst);
        if n == 0 {
            self.exit_now(name);
        } else {
            tracing::warn!(
                "{name} received again: {n} rotating call(s) already sent; exiting as soon as their new tokens are journaled (only SIGKILL stops it sooner, and may lose them)"
            );
        }
    }

    fn exit_now(&self, name: &str) -> ! {
        let inner = &self.inner;
        if inner.exiting.swap(true, Ordering::SeqCst) {
            // Another thread is already exiting; wait for it.
            loop {
                std::thread::park();
            }
        }
        tracing::warn!(
            "{name} received again with no rotating call in flight: exiting now; any new token not yet written back is in the journal and the next run finishes it"
        );
        std::process::exit(i32::from(self.code().unwrap_or(EXIT_SIGTERM)));
    }

    /// Whether a signal arrived.
    pub fn is_interrupted(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// The exit status the first signal asks for, once one arrived.
    pub fn code(&self) -> Option<u8> {
        match self.inner.code.load(Ordering::SeqCst) {
            0 => None,
            c => Some(c),
        }
    }

    /// The first signal's name (`SIGINT`, …), once one arrived.
    pub fn signal_name(&self) -> Option<&'static str> {
        self.inner.first.get().copied()
    }

    /// Resolves when the first signal arrives.
    pub async fn cancelled(&self) {
        self.inner.token.cancelled().await
    }

    /// Resolves once a signal arrived and no rotating call is in flight.
    pub async fn idle(&self) {
        self.cancelled().await;
        loop {
            let notified = self.inner.idle.notified();
            if self.inner.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// `Err` (exit 130/143 at the edge) once a signal arrived: for a command about to
    /// start a step that contacts a provider.
    pub fn check(&self, step: &str) -> crate::error::Result<()> {
        if self.is_interrupted() {
            return Err(self.stopped(step));
        }
        Ok(())
    }

    /// The error for a step a signal kept from starting.
    pub fn stopped(&self, step: &str) -> crate::error::Error {
        let sig = self.signal_name().unwrap_or("a signal");
        crate::error::Error::failed(format!("{sig} received: {step} not started"))
            .with_hint("nothing was changed by this step; run the command again")
    }

    /// Declares a rotating provider call about to be sent. `None` when a signal
    /// already arrived: the call must not start. Keep the guard until the call's
    /// new tokens are safe (journaled, or written to the store).
    pub fn begin_rotating_call(&self) -> Option<RotatingCall> {
        let inner = &self.inner;
        inner.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = RotatingCall {
            interrupt: self.clone(),
        };
        if self.is_interrupted() {
            // Dropping the guard also exits if a further signal is waiting on it.
            drop(guard);
            return None;
        }
        Some(guard)
    }
}

/// A rotating provider call in flight (see [`Interrupt::begin_rotating_call`]).
pub struct RotatingCall {
    interrupt: Interrupt,
}

impl Drop for RotatingCall {
    fn drop(&mut self) {
        let inner = &self.interrupt.inner;
        if inner.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            inner.idle.notify_waiters();
            if inner.escalated.load(Ordering::SeqCst) {
                let name = self.interrupt.signal_name().unwrap_or("signal");
                self.interrupt.exit_now(name);
            }
        }
    }
}

impl std::fmt::Debug for RotatingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RotatingCall")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_signal_stops_new_calls_and_keeps_its_code() {
        let i = Interrupt::default();
        assert!(i.begin_rotating_call().is_some());
        i.signal("SIGINT", EXIT_SIGINT);
        assert!(i.is_interrupted());
        assert_eq!(i.code(), Some(EXIT_SIGINT));
        assert!(i.begin_rotating_call().is_none());
        assert_eq!(i.inner.in_flight.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_further_signal_during_a_rotating_call_waits_for_it() {
        let i = Interrupt::default();
        i.signal("SIGINT", EXIT_SIGINT);
        // Simulate a call sent before the signal.
        i.inner.in_flight.fetch_add(1, Ordering::SeqCst);
        i.signal("SIGTERM", EXIT_SIGTERM);
        // Still alive: the call is in flight; the first signal's code stands.
        assert_eq!(i.code(), Some(EXIT_SIGINT));
        assert!(i.inner.escalated.load(Ordering::SeqCst));
        assert_eq!(i.signal_name(), Some("SIGINT"));
    }

    #[tokio::test]
    async fn idle_waits_for_the_last_rotating_call() {
        let i = Interrupt::default();
        let call = i.begin_rotating_call().unwrap();
        i.signal("SIGTERM", EXIT_SIGTERM);
        let waiter = tokio::spawn({
            let i = i.clone();
            async move { i.idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(call);
        waiter.await.unwrap();
    }
}
