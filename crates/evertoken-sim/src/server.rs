//! Starting and stopping the loopback server.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use tokio::sync::oneshot;

use crate::faults::Route;
use crate::state::Sim;

/// How the simulator starts.
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    /// Added before answering every provider request (not `/_sim/`).
    pub latency: Duration,
    /// Accept unknown clients and unknown tokens (then track them).
    pub lenient: bool,
}

/// A running simulator. Dropping it shuts the server down.
pub struct SimServer {
    addr: SocketAddr,
    sim: Sim,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub(crate) fn router(sim: Sim) -> Router {
    crate::registry::router(&sim)
        .merge(crate::control::routes())
        .fallback(fallback)
        .with_state(sim)
}

/// An unknown path, answered in the shape of the provider it belongs to.
async fn fallback(req: Request) -> Response {
    let path = req.uri().path();
    crate::faults::not_found(Route::classify(path), path, jiff::Timestamp::now())
}

fn app(sim: Sim) -> Router {
    // The layer wraps the whole inner router, so it runs before routing and
    // can strip the GitHub Enterprise `/api/v3` prefix.
    Router::new()
        .fallback_service(router(sim.clone()))
        .layer(axum::middleware::from_fn_with_state(
            sim,
            crate::middleware::sim_layer,
        ))
}

async fn serve(listener: tokio::net::TcpListener, sim: Sim, shutdown: oneshot::Receiver<()>) {
    let server = axum::serve(listener, app(sim));
    tokio::select! {
        r = server => {
            if let Err(e) = r {
                tracing::warn!("evertoken-sim server stopped: {e}");
            }
        }
        _ = shutdown => {}
    }
}

impl SimServer {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start(opts: SimOptions) -> anyhow::Result<SimServer> {
        SimServer::start_on_port(opts, 0).await
    }

    /// Binds `127.0.0.1:port` (`0` = any free port) on the current runtime.
    pub async fn start_on_port(opts: SimOptions, port: u16) -> anyhow::Result<SimServer> {
        install_client_crypto();
        let sim = Sim::new(opts.latency, opts.lenient);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel();
        tokio::spawn(serve(listener, sim.clone(), rx));
        Ok(SimServer {
            addr,
            sim,
            shutdown: Some(tx),
            thread: None,
        })
    }

    /// Starts the server on its own thread with its own multi-thread runtime,
    /// for synchronous tests.
    pub fn start_background(opts: SimOptions) -> anyhow::Result<SimServer> {
        install_client_crypto();
        let sim = Sim::new(opts.latency, opts.lenient);
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("evertoken-sim")
            .build()?;
        let (tx, rx) = oneshot::channel();
        let sim2 = sim.clone();
        let thread = std::thread::Builder::new()
            .name("evertoken-sim".into())
            .spawn(move || {
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => serve(l, sim2, rx).await,
                        Err(e) => tracing::warn!("evertoken-sim: cannot listen: {e}"),
                    }
                });
                rt.shutdown_background();
            })?;
        Ok(SimServer {
            addr,
            sim,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle on the simulator's state.
    pub fn sim(&self) -> Sim {
        self.sim.clone()
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The simulator serves plain HTTP, but the reqwest clients its callers build in
/// the same process need a rustls crypto provider (the workspace's reqwest has no
/// built-in one: SECURITY.md, "Cryptography backend"). Starting a server calls
/// this; a test that builds a client without starting one in-process calls it
/// first. `Err` only when one is already installed.
pub fn install_client_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
