//! GitHub Actions secrets (stub).
use axum::Router;
use crate::state::Sim;

#[derive(Default)]
pub(crate) struct ActionsState {}

/// Where an Actions secret lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ActionsScope {
    Repo { owner: String, repo: String },
    Env { owner: String, repo: String, env: String },
    Org { org: String },
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
}
