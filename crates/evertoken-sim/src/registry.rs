//! The provider registry: what a provider module exports, and the one list
//! ([`providers!`], invoked in `lib.rs`) that wires every module in.
//!
//! A provider module holds its handlers, its state and a `PROVIDER` descriptor:
//! its [`Route`]s (fault and counter keys, declared as `Route` constants in the
//! module), which request paths are its own, its axum routes, and its error
//! answers for injected faults ([`Errors`]). The registry line generates the
//! `mod` declaration, the state field ([`crate::state::State`] reaches it as
//! `st.<module>`), the router merge and the route/fault dispatch; nothing else
//! names a provider.

use axum::Router;
use axum::response::Response;
use jiff::Timestamp;

use crate::faults::Route;
use crate::state::Sim;

/// One provider module's descriptor (its `PROVIDER` constant).
pub(crate) struct Provider {
    /// The routes this module answers for, each with the aliases the control
    /// API accepts besides [`Route::name`].
    pub routes: &'static [(Route, &'static [&'static str])],
    /// Which route a (GitHub-prefix-stripped) request path belongs to, if it is
    /// this module's. A module may claim paths for another module's route
    /// (Threads for Instagram's Graph shapes). Asked in registry order.
    pub owns: fn(&str) -> Option<Route>,
    /// Its axum routes (provider paths and its `/_sim/...` control routes).
    pub router: fn() -> Router<Sim>,
    /// Wraps the merged router of every provider (a layer that must see
    /// requests before routing, e.g. Threads sharing Instagram's paths).
    pub wrap: Option<Wrap>,
    /// Its error answers for injected faults.
    pub errors: Errors,
}

impl Provider {
    /// A module with routes only (no fault route, no error shapes).
    pub(crate) const ROUTES_ONLY: Provider = Provider {
        routes: &[],
        owns: |_| None,
        router: Router::new,
        wrap: None,
        errors: Errors::DEFAULT,
    };
}

/// A layer over the merged provider router.
pub(crate) type Wrap = fn(Router<Sim>, Sim) -> Router<Sim>;

/// A throttling answer from (HTTP `status`, provider `code`, `transient`).
pub(crate) type Throttled = fn(&FaultCtx, u16, u32, bool) -> Response;

/// The request a fault answers.
pub(crate) struct FaultCtx<'a> {
    pub route: Route,
    pub path: &'a str,
    pub now: Timestamp,
}

/// A provider's error answers, one function per fault kind. `None` falls back
/// as documented per field; [`Errors::DEFAULT`] are the `any` route's answers.
#[derive(Clone, Copy)]
pub(crate) struct Errors {
    /// The provider's body for an HTTP error status.
    pub status: fn(&FaultCtx, u16) -> Response,
    /// A 429 with the given `Retry-After` seconds (the caller sets the header).
    /// `None`: `status(429)`.
    pub too_many_requests: Option<fn(&FaultCtx, Option<u64>) -> Response>,
    /// Throttling that is not a 429 (`status`, provider `code`, `transient`).
    /// `None`: `status(429)`.
    pub throttled: Option<Throttled>,
    /// The "grant is dead" answer. `None`: `unauthorized`.
    pub invalid_grant: Option<fn(&FaultCtx) -> Response>,
    /// The "client authentication failed" answer. `None`: `unauthorized`.
    pub invalid_client: Option<fn(&FaultCtx) -> Response>,
    /// The 401 for a missing or bad credential.
    pub unauthorized: fn(&FaultCtx) -> Response,
    /// The error envelope carrying `message` (the echo faults).
    pub echo: fn(&FaultCtx, &str) -> Response,
    /// The answer for an unknown path of this provider. `None`: a JSON 404.
    pub not_found: Option<fn(&FaultCtx) -> Response>,
}

impl Errors {
    pub(crate) const DEFAULT: Errors = Errors {
        status: crate::faults::default_status,
        too_many_requests: None,
        throttled: None,
        invalid_grant: None,
        invalid_client: None,
        unauthorized: crate::github::unauthorized_fault,
        // 4xx, so a client shows the body instead of retrying.
        echo: crate::github::echo_fault,
        not_found: None,
    };
}

/// Declares the provider modules, in the order their `owns` is asked (so a
/// catch-all like GitHub's comes last). Generates the `mod` lines, the state
/// struct ([`ProviderStates`], one field per module of its `ProviderState`
/// type) and [`PROVIDERS`].
macro_rules! providers {
    ($($m:ident),* $(,)?) => {
        $(mod $m;)*

        /// Every provider module's descriptor, in registry order.
        pub(crate) static PROVIDERS: &[&crate::registry::Provider] = &[$(&$m::PROVIDER),*];

        /// Every provider module's state, one field per module.
        #[derive(Default)]
        pub(crate) struct ProviderStates {
            $(pub $m: $m::ProviderState,)*
        }
    };
}

/// The provider that declares `route` (`None` for [`Route::Any`]).
pub(crate) fn provider_of(route: Route) -> Option<&'static Provider> {
    crate::PROVIDERS
        .iter()
        .copied()
        .find(|p| p.routes.iter().any(|(r, _)| *r == route))
}

/// The error answers for `route` ([`Errors::DEFAULT`] for [`Route::Any`]).
pub(crate) fn errors_of(route: Route) -> Errors {
    provider_of(route).map_or(Errors::DEFAULT, |p| p.errors)
}

/// Every provider's routes merged, each provider's `wrap` applied.
pub(crate) fn router(sim: &Sim) -> Router<Sim> {
    let merged = crate::PROVIDERS
        .iter()
        .fold(Router::new(), |r, p| r.merge((p.router)()));
    crate::PROVIDERS
        .iter()
        .filter_map(|p| p.wrap)
        .fold(merged, |r, wrap| wrap(r, sim.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names_and_aliases_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for (route, aliases) in crate::PROVIDERS.iter().flat_map(|p| p.routes.iter()) {
            for name in std::iter::once(&route.name()).chain(aliases.iter()) {
                assert!(seen.insert(*name), "`{name}` declared twice");
                assert_eq!(Route::parse(name), Some(*route));
            }
            assert!(provider_of(*route).is_some());
        }
        assert!(!seen.contains("any") && !seen.contains("all"));
        assert_eq!(Route::parse("Any"), Some(Route::Any));
        assert_eq!(Route::parse("linked-in"), None);
    }

    #[test]
    fn paths_go_to_their_provider_in_registry_order() {
        for (path, route) in [
            ("/refresh_access_token", Some(Route::Instagram)),
            ("/v1.0/access_token", Some(Route::Instagram)),
            ("/me", Some(Route::InstagramMe)),
            ("/token", Some(Route::Google)),
            ("/v2/oauth/token/", Some(Route::TikTok)),
            ("/oauth/v2/introspectToken", Some(Route::LinkedInIntrospect)),
            ("/2/oauth2/token", Some(Route::X)),
            ("/v5/oauth/token", Some(Route::Pinterest)),
            ("/api/v4/projects/1/variables", Some(Route::GitLab)),
            ("/webhook/slack/x", Some(Route::Webhook)),
            ("/repos/o/r/actions/secrets/K", Some(Route::GitHubActions)),
            ("/repos/o/r/installation", Some(Route::GitHubApp)),
            ("/", Some(Route::GitHubApp)),
            ("/oidc/jwks", None),
            ("/_sim/faults", None),
        ] {
            assert_eq!(Route::classify(path), route, "{path}");
        }
    }
}
