//! The HTTP service: the axum app, the shared state, serving and graceful shutdown.
//!
//! [`Gateway::build`] turns a config and price sheets into the shared state (catalog, policy,
//! one pooled upstream client); [`app`] builds the axum `Router`; [`serve`] runs it on an
//! already-bound listener, so tests bind port 0. State is immutable after start and shared by
//! `Arc`; nothing on the request path takes a lock.
//!
//! Routes: `POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/endpoints`,
//! `GET /metrics`, `GET /healthz`.

mod attempt;
mod decisions;
mod error;
mod handlers;
mod meter;
mod persist;
mod plan;
mod relay;
pub mod sse;
pub mod usage;

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use tokio::net::TcpListener;

use crate::catalog::{Catalog, CatalogError};
use crate::config::{Config, UpstreamConfig};
use crate::pricing::PriceSheet;
use crate::select::{self, Policy};
use crate::stats::store::{Store, StoreError};
use crate::stats::{Stats, StatsTable};

pub use attempt::AttemptFailure;
pub use error::ApiError;
pub use relay::{StreamEnd, StreamSummary};

/// Which endpoint answered.
pub const ENDPOINT_HEADER: &str = "x-switchyard-endpoint";
/// How many upstream attempts the request took.
pub const ATTEMPTS_HEADER: &str = "x-switchyard-attempts";
/// The router's id for the request.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The service's shared state: a cheap `Clone` handle.
#[derive(Clone)]
pub struct Gateway(Arc<Shared>);

pub(crate) struct Shared {
    catalog: Arc<Catalog>,
    policy: Box<dyn Policy>,
    /// Policies for requests naming these groups.
    group_policies: Vec<(String, Box<dyn Policy>)>,
    decisions: decisions::DecisionLog,
    client: reqwest::Client,
    upstream: UpstreamConfig,
    max_body_bytes: usize,
    max_attempts: u32,
    shutdown_grace: Duration,
    /// `GET /v1/models`, rendered once: the catalog does not change under a running state.
    models_json: Bytes,
    /// The router's epoch: policies and statistics get time as nanoseconds since it.
    epoch: tokio::time::Instant,
    stats: Arc<Stats>,
    /// `stats` aligned to `catalog`.
    table: Arc<StatsTable>,
    store: Option<Store>,
    flush_interval: Duration,
    last_save: Arc<persist::LastSave>,
    counters: Counters,
}

/// Router-level request counts, by how the request ended.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Answered by an endpoint (including provider-side 4xx relayed as is).
    pub answered: AtomicU64,
    /// Refused by the router itself (400, 404, 413).
    pub refused: AtomicU64,
    /// Every attempt failed (502).
    pub failed: AtomicU64,
}

/// Why the gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot build the upstream HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Gateway {
    /// Builds the state from a validated config and its price sheets; provider keys are read
    /// through `env`. With a `store`, what it holds is loaded (aged by the time since it
    /// was saved) and [`serve`] keeps saving to it.
    pub fn build(
        config: &Config,
        sheets: &[PriceSheet],
        env: impl Fn(&str) -> Option<String>,
        store: Option<Store>,
    ) -> Result<Gateway, BuildError> {
        let catalog = Arc::new(Catalog::build(config, sheets, env)?);
        let client = reqwest::Client::builder()
            .connect_timeout(config.upstream.connect_timeout)
            .pool_max_idle_per_host(config.upstream.pool_max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let models_json = handlers::models_json(&catalog);
        let epoch = tokio::time::Instant::now();
        let stats = Stats::new(
            config.stats.latency_half_life,
            config.stats.outcome_half_life,
        );
        if let Some(store) = &store {
            persist::restore(store, &stats, epoch)?;
        }
        let table = Arc::new(stats.table(&catalog));
        Ok(Gateway(Arc::new(Shared {
            catalog,
            policy: select::from_name(config.routing.policy),
            group_policies: config
                .routing
                .group_policies
                .iter()
                .map(|(group, name)| (group.clone(), select::from_name(*name)))
                .collect(),
            decisions: decisions::DecisionLog::default(),
            client,
            upstream: config.upstream.clone(),
            max_body_bytes: config.server.max_body_bytes,
            max_attempts: config.routing.max_attempts,
            shutdown_grace: config.server.shutdown_grace,
            models_json,
            epoch,
            stats,
            table,
            store,
            flush_interval: config.stats.flush_interval,
            last_save: Arc::default(),
            counters: Counters::default(),
        })))
    }

    pub fn catalog(&self) -> &Catalog {
        &self.0.catalog
    }

    /// The statistics aligned to the catalog.
    pub fn stats(&self) -> &StatsTable {
        &self.0.table
    }

    /// Nanoseconds since the router's epoch: the time the statistics are kept in.
    pub fn now_ns(&self) -> u64 {
        meter::nanos_since(self.0.epoch)
    }
}

/// The axum app.
pub fn app(gateway: Gateway) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(handlers::chat_completions))
        .route("/v1/models", get(handlers::models))
        .route("/v1/endpoints", get(handlers::endpoints))
        .route("/v1/decisions/{id}", get(handlers::decision))
        .route("/metrics", get(handlers::metrics))
        .route("/healthz", get(handlers::healthz))
        .fallback(handlers::no_route)
        .with_state(gateway)
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
/// for at most the configured grace period, and saves the learned state a last time.
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shared = gateway.0.clone();
    let saver = shared.store.clone().map(|store| {
        tokio::spawn(persist::run(
            store,
            shared.stats.clone(),
            shared.epoch,
            shared.flush_interval,
            shared.last_save.clone(),
        ))
    });
    let result = serve_until(listener, gateway, shutdown).await;
    if let Some(saver) = saver {
        saver.abort();
        let store = shared
            .store
            .as_ref()
            .expect("a saver runs only with a store");
        persist::save(store, &shared.stats, shared.epoch, &shared.last_save).await;
        tracing::info!("saved learned statistics");
    }
    result
}

async fn serve_until(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = gateway.0.shutdown_grace;
    let (signalled_tx, mut signalled) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app(gateway)).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = signalled_tx.send(());
    });
    let mut task = tokio::spawn(async move { server.await });
    let joined = tokio::select! {
        joined = &mut task => joined,
        Ok(()) = &mut signalled => {
            tracing::info!(grace = ?grace, "shutting down: no new connections, finishing in-flight requests");
            match tokio::time::timeout(grace, &mut task).await {
                Ok(joined) => joined,
                Err(_) => {
                    tracing::warn!("grace period over; abandoning the requests still running");
                    task.abort();
                    return Ok(());
                }
            }
        }
    };
    joined.map_err(std::io::Error::other)?
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
