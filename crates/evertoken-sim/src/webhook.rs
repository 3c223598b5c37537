//! Chat webhooks (stub).
use axum::Router;
use crate::state::Sim;

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
}
