//! GitLab CI/CD variables (stub).
use axum::Router;
use crate::state::Sim;

#[derive(Default)]
pub(crate) struct GitLabState {}

/// Where a CI/CD variable lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GitLabScope {
    Project(u64),
    Group(u64),
}

/// A CI/CD variable as GitLab stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitLabVariable {
    pub key: String,
    pub value: String,
    pub masked: bool,
    pub protected: bool,
    pub hidden: bool,
    pub raw: bool,
    pub environment_scope: String,
    pub variable_type: String,
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
}
