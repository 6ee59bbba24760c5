//! The HTTP service: the axum app, the shared state, serving and graceful shutdown.
//!
//! [`Gateway::build`] turns a config and price sheets into the shared state (catalog, policy,
//! one pooled upstream client); [`app`] builds the axum `Router`; [`serve`] runs it on an
//! already-bound listener, so tests bind port 0. State is immutable after start and shared by
//! `Arc`; nothing on the request path takes a lock.
//!
//! Routes: `POST /v1/chat/completions`, `POST /v1/messages` (and `/count_tokens`),
//! `POST /v1/embeddings`, `POST /v1/completions`, `POST /v1/responses`,
//! `POST /v1/feedback`, `GET /v1/models`, `GET /v1/endpoints`, `GET /metrics`, `GET /healthz`.

mod affinity;
mod answer;
mod attempt;
mod dashboard;
mod decisions;
mod dialects;
mod drive;
mod embeddings;
mod error;
mod feedback;
mod fleet;
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
mod handlers;
mod hedge;
mod inspect;
mod messages;
mod meter;
mod persist;
pub mod prices;
mod refusal;
mod relay;
mod request_log;
mod routing;
pub mod sse;
mod surfaces;
pub mod usage;

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use tokio::net::TcpListener;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::catalog::{Catalog, CatalogError};
use crate::clock::SharedClock;
use crate::config::{Config, UpstreamConfig};
use crate::plan::Planner;
use crate::pricing::PriceSheet;
use crate::stats::store::{Store, StoreError};
use crate::stats::{Stats, StatsTable};

pub use error::ApiError;
pub use relay::{StreamEnd, StreamSummary};

/// Which endpoint answered.
pub(crate) const ENDPOINT_HEADER: http::HeaderName =
    http::HeaderName::from_static("x-switchyard-endpoint");
/// How many upstream attempts the request took.
pub(crate) const ATTEMPTS_HEADER: http::HeaderName =
    http::HeaderName::from_static("x-switchyard-attempts");
/// The router's id for the request.
pub(crate) const REQUEST_ID_HEADER: http::HeaderName =
    http::HeaderName::from_static("x-request-id");
/// `won` or `lost` when a hedge was started (see [`hedge`]).
pub(crate) const HEDGED_HEADER: http::HeaderName =
    http::HeaderName::from_static("x-switchyard-hedged");
/// What a non-streamed answer cost, in USD (streams carry it in `usage.cost`).
pub(crate) const COST_HEADER: http::HeaderName =
    http::HeaderName::from_static("x-switchyard-cost-usd");

/// Points of history the dashboard keeps per endpoint (10 minutes at the default 2 s).
const TIMELINE_POINTS: usize = 300;

/// The service's shared state: a cheap `Clone` handle.
#[derive(Clone)]
pub struct Gateway(Arc<Shared>);

pub(crate) struct Shared {
    /// The catalog and what is derived from it, swapped whole on a price reload.
    live: ArcSwap<Live>,
    /// What a reload rebuilds the catalog from.
    config: Config,
    /// The admin token, read from `server.admin_token_env` at start (kept as a digest).
    admin_token: Option<crate::auth::AdminToken>,
    /// The client keys; none = the router is open.
    clients: Arc<crate::auth::Clients>,
    /// Permits for chat completions served at once (`server.max_concurrent_requests`).
    capacity: Arc<tokio::sync::Semaphore>,
    /// The dashboard's short history.
    timeline: crate::admin::timeline::Timeline,
    /// Recent price versions, for a router without a store.
    price_history: std::sync::Mutex<Vec<serde_json::Value>>,
    /// Recent presets versions, for a router without a store.
    routing_history: std::sync::Mutex<Vec<serde_json::Value>>,
    env: Box<EnvLookup>,
    /// The policy (and the groups' own), and the attempts allowed.
    planner: Planner,
    /// Calendar time: spend windows, timestamps of saves, decisions and price versions.
    clock: SharedClock,
    /// Each request's random draws.
    rng: RequestRng,
    /// Serialises price updates (PUT, reload, SIGHUP, the watcher): one writer at a time,
    /// so an update never builds on a directory another is rewriting.
    price_writer: std::sync::Mutex<()>,
    decisions: decisions::DecisionLog,
    client: crate::upstream::Client,
    upstream: UpstreamConfig,
    max_body_bytes: usize,
    shutdown_grace: Duration,
    /// The router's epoch: policies and statistics get time as nanoseconds since it.
    epoch: tokio::time::Instant,
    stats: Arc<Stats>,
    store: Option<Store>,
    flush_interval: Duration,
    last_save: Arc<persist::LastSave>,
    counters: Counters,
    /// The link to the other replicas (`[fleet]`); `None` alone.
    fleet: Option<Arc<crate::fleet::sync::Fleet>>,
    /// The sheets in force, by provider, as the fleet shares them (read from the pricing
    /// directory when first asked, then kept by every accepted update).
    price_texts: std::sync::Mutex<Option<crate::fleet::sync::Texts>>,
    /// Response ids of the Responses API → the endpoint that holds each.
    response_pins: surfaces::ResponsePins,
    /// Recent answers a client may still score (`POST /v1/feedback`).
    feedback: crate::feedback::Ledger,
    /// Which endpoint each recent conversation stays on.
    affinities: crate::affinity::Affinities,
    /// Hedged attempts: the budget and what hedging did.
    hedging: hedge::Hedging,
    /// The request log's writer (`[log]`); `None` when off or without a state directory.
    log: Option<crate::log::LogHandle>,
}

/// Reads an environment variable (injected, so tests need not touch the real environment).
pub(crate) type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// One version of the price-dependent state. A request takes the current one at its start
/// and keeps it to its end: it sees the old table or the new one, never a mix, and is
/// charged at the prices in force when it started.
pub struct Live {
    pub catalog: Arc<Catalog>,
    /// The statistics aligned to `catalog`.
    pub table: Arc<StatsTable>,
    /// `GET /v1/models`, rendered once per version.
    pub models_json: Bytes,
    /// Counts price reloads since start (0 = the sheets loaded at start).
    pub version: u64,
    /// The presets (`@preset/NAME`), with their own version.
    pub presets: Arc<crate::presets::Presets>,
}

impl Live {
    fn new(
        catalog: Arc<Catalog>,
        stats: &Arc<Stats>,
        version: u64,
        presets: Arc<crate::presets::Presets>,
    ) -> Live {
        let models_json = inspect::models_json(&catalog, &presets);
        let table = Arc::new(stats.table(&catalog));
        Live {
            catalog,
            table,
            models_json,
            version,
            presets,
        }
    }
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
    /// No valid client key (401).
    pub unauthorized: AtomicU64,
    /// Refused by a client's rate or spend limit (429).
    pub limited: AtomicU64,
    /// Shed because the router was at its concurrency cap (503).
    pub shed: AtomicU64,
    /// Scores taken by `POST /v1/feedback`, and refused (unknown, foreign or repeated id).
    pub feedback: AtomicU64,
    pub feedback_refused: AtomicU64,
    /// Per client surface ([`SURFACES`]): answered, refused, failed.
    pub by_surface: [[AtomicU64; 3]; SURFACES.len()],
}

/// The client surfaces, as `/metrics` labels them.
pub(crate) const SURFACES: [&str; 5] = [
    "chat.completions",
    "messages",
    "responses",
    "completions",
    "embeddings",
];

impl Shared {
    /// The request counters, hedging's and the request log's included (without the
    /// per-client reports).
    pub(crate) fn request_counts(&self) -> crate::admin::metrics::RequestCounts {
        let n = |a: &AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let h = &self.hedging;
        crate::admin::metrics::RequestCounts {
            hedges: crate::admin::metrics::HedgeCounts {
                started: n(&h.started),
                won: n(&h.won),
                paused: n(&h.paused),
                wasted_usd: n(&h.wasted_micro_usd) as f64 / 1e6,
            },
            log: self.log.as_ref().map(|l| {
                let c = &l.counters;
                [n(&c.written), n(&c.dropped), n(&c.failed)]
            }),
            ..self.counters.load()
        }
    }
}

impl Counters {
    /// The counts as of now (without the per-client reports).
    pub fn load(&self) -> crate::admin::metrics::RequestCounts {
        let n = |a: &AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        crate::admin::metrics::RequestCounts {
            answered: n(&self.answered),
            refused: n(&self.refused),
            failed: n(&self.failed),
            unauthorized: n(&self.unauthorized),
            limited: n(&self.limited),
            shed: n(&self.shed),
            feedback: [n(&self.feedback), n(&self.feedback_refused)],
            clients: Vec::new(),
            fleet: None,
            cost_disagreements: 0,
            hedges: Default::default(),
            log: None,
            by_surface: SURFACES
                .iter()
                .zip(&self.by_surface)
                .map(|(name, c)| (*name, [n(&c[0]), n(&c[1]), n(&c[2])]))
                .collect(),
        }
    }
}

/// Why the gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("[[clients]]: {0}")]
    Clients(#[from] crate::auth::ClientError),
    #[error(transparent)]
    Presets(#[from] crate::presets::PresetErrors),
    #[error(transparent)]
    Fleet(#[from] crate::fleet::sync::FleetError),
    #[error("cannot start the request log: {0}")]
    Log(std::io::Error),
}

/// What tests (and reproducible runs) may fix instead of taking it from the system.
#[derive(Debug, Clone)]
pub struct Hooks {
    /// Calendar time (spend windows and timestamps).
    pub clock: SharedClock,
    /// Seeds every request's random draws (`routing.seed`); `None`: from the OS.
    pub seed: Option<u64>,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            clock: crate::clock::system(),
            seed: None,
        }
    }
}

/// Hands each request its own small generator: seeded from one router-wide seed and the
/// request's sequence number, so no lock is shared between requests, and a fixed seed makes
/// a run's draws repeatable for the same sequence of requests.
struct RequestRng {
    seed: u64,
    sequence: AtomicU64,
}

impl RequestRng {
    fn new(seed: Option<u64>) -> RequestRng {
        RequestRng {
            seed: seed.unwrap_or_else(rand::random::<u64>),
            sequence: AtomicU64::new(0),
        }
    }

    fn for_request(&self) -> SmallRng {
        let n = self
            .sequence
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SmallRng::seed_from_u64(self.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
}

impl Gateway {
    /// Builds the state from a validated config and its price sheets; provider keys are read
    /// through `env`. With a `store`, what it holds is loaded (aged by the time since it
    /// was saved) and [`serve`] keeps saving to it.
    pub fn build(
        config: &Config,
        sheets: &[PriceSheet],
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
        store: Option<Store>,
    ) -> Result<Gateway, BuildError> {
        let hooks = Hooks {
            seed: config.routing.seed,
            ..Hooks::default()
        };
        Gateway::build_with(config, sheets, env, store, hooks)
    }

    /// [`Gateway::build`] with the clock and the random seed given.
    pub fn build_with(
        config: &Config,
        sheets: &[PriceSheet],
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
        store: Option<Store>,
        hooks: Hooks,
    ) -> Result<Gateway, BuildError> {
        let catalog = Catalog::build(config, sheets, &env)?;
        let client = crate::upstream::Client::new(
            crate::upstream::Settings {
                connect_timeout: config.upstream.connect_timeout,
                max_idle_per_origin: config.upstream.pool_max_idle_per_host,
                idle_timeout: Duration::from_secs(90),
            },
            concat!("switchyard/", env!("CARGO_PKG_VERSION")),
        );
        let epoch = tokio::time::Instant::now();
        let stats = Stats::with_quality(
            config.stats.latency_half_life,
            config.stats.outcome_half_life,
            config.feedback.quality_half_life,
            config.feedback.prior_strength,
        );
        if let Some(store) = &store {
            persist::restore(store, &stats, epoch, hooks.clock.unix_ms())?;
        }
        let clients = crate::auth::Clients::build(&config.clients, &env, hooks.clock.clone())?;
        if let Some(store) = &store {
            clients.restore(&store.load_spend()?);
        }
        let fleet = match &config.fleet {
            Some(f) => {
                let replica = crate::fleet::config::replica_id(f, &config.server.state_dir);
                let fleet = crate::fleet::sync::Fleet::new(f, replica, &env)?;
                clients.join_fleet(&fleet.status);
                Some(Arc::new(fleet))
            }
            None => None,
        };
        let presets =
            crate::presets::Presets::new(crate::presets::load_dir(&config.server.routing_dir)?, 0);
        presets.check(&catalog, &config.server.routing_dir)?;
        let live = Live::new(Arc::new(catalog), &stats, 0, Arc::new(presets));
        // The request log lives beside the store (a router without one keeps none).
        let log = match (&store, config.log.enabled) {
            (Some(_), true) => {
                let clock = hooks.clock.clone();
                let dir = crate::log::dir_of(&config.server.state_dir);
                let log = crate::log::LogHandle::start(dir, &config.log, move || clock.unix_ms())
                    .map_err(BuildError::Log)?;
                log.write(crate::log::Line::Catalog(Box::new(
                    crate::log::CatalogLine::of(&live.catalog, hooks.clock.unix_ms()),
                )));
                Some(log)
            }
            _ => None,
        };
        Ok(Gateway(Arc::new(Shared {
            live: ArcSwap::from_pointee(live),
            admin_token: env(&config.server.admin_token_env)
                .filter(|t| !t.trim().is_empty())
                .map(|t| crate::auth::AdminToken::new(t.trim())),
            clients: Arc::new(clients),
            capacity: Arc::new(tokio::sync::Semaphore::new(
                config.server.max_concurrent_requests,
            )),
            timeline: crate::admin::timeline::Timeline::new(TIMELINE_POINTS),
            price_history: std::sync::Mutex::new(Vec::new()),
            routing_history: std::sync::Mutex::new(Vec::new()),
            config: config.clone(),
            env: Box::new(env),
            planner: Planner::from_config(&config.routing),
            clock: hooks.clock,
            rng: RequestRng::new(hooks.seed),
            price_writer: std::sync::Mutex::new(()),
            decisions: decisions::DecisionLog::default(),
            client,
            upstream: config.upstream.clone(),
            max_body_bytes: config.server.max_body_bytes,
            shutdown_grace: config.server.shutdown_grace,
            epoch,
            stats,
            store,
            flush_interval: config.stats.flush_interval,
            last_save: Arc::default(),
            counters: Counters::default(),
            fleet,
            price_texts: std::sync::Mutex::new(None),
            response_pins: Default::default(),
            feedback: crate::feedback::Ledger::new(&config.feedback),
            affinities: crate::affinity::Affinities::new(&config.affinity),
            hedging: hedge::Hedging::new(&config.hedge),
            log,
        })))
    }

    /// The current catalog and its statistics.
    pub fn live(&self) -> Arc<Live> {
        self.0.live.load_full()
    }

    /// Rebuilds the catalog from `sheets` and swaps it in whole, or changes nothing and
    /// says why. Requests already running keep the version they started with.
    pub fn reload(&self, sheets: &[PriceSheet]) -> Result<u64, CatalogError> {
        let shared = &*self.0;
        let catalog = Arc::new(Catalog::build(&shared.config, sheets, &shared.env)?);
        // Versions are assigned under the swap so two reloads never share a number.
        let mut version = 0;
        let old = shared.live.rcu(|old| {
            version = old.version + 1;
            Live::new(catalog.clone(), &shared.stats, version, old.presets.clone())
        });
        // A preset naming a model the new sheets dropped answers 404 for it; say so now.
        if let Err(e) = old
            .presets
            .check(&catalog, &shared.config.server.routing_dir)
        {
            tracing::warn!(error = %e, "presets name what the new prices no longer have");
        }
        tracing::info!(
            version,
            endpoints = catalog.endpoints().len(),
            "price sheets reloaded"
        );
        Ok(version)
    }

    /// Milliseconds since the Unix epoch, from the gateway's clock.
    pub(crate) fn unix_ms(&self) -> u64 {
        self.0.clock.unix_ms()
    }

    /// Nanoseconds since the router's epoch: the time the statistics are kept in.
    pub fn now_ns(&self) -> u64 {
        meter::nanos_since(self.0.epoch)
    }
}

/// The axum app.
pub fn app(gateway: Gateway) -> Router {
    use axum::middleware::from_fn_with_state;
    let chat = Router::new()
        .route("/v1/chat/completions", post(handlers::chat_completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/completions", post(surfaces::completions))
        .route("/v1/responses", post(surfaces::responses))
        .route_layer(from_fn_with_state(gateway.clone(), guard::chat_limits));
    let v1 = Router::new()
        .route("/v1/models", get(inspect::models))
        .route("/v1/endpoints", get(inspect::endpoints))
        .route("/v1/decisions/{id}", get(inspect::decision))
        .merge(chat)
        .route_layer(from_fn_with_state(gateway.clone(), guard::client_auth));
    // Anthropic's Messages API: the same guard, errors in Anthropic's shape.
    let anthropic = Router::new()
        .route("/v1/messages", post(messages::messages))
        .route_layer(from_fn_with_state(gateway.clone(), guard::chat_limits))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route_layer(from_fn_with_state(gateway.clone(), guard::client_auth))
        .route_layer(axum::middleware::from_fn(messages::anthropic_errors));
    Router::new()
        .merge(v1)
        .merge(anthropic)
        .route("/admin/clients", get(prices::clients))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/app.js", get(dashboard::script))
        .route("/dashboard/style.css", get(dashboard::style))
        .route("/dashboard/console.js", get(dashboard::console_script))
        .route("/dashboard/data", get(dashboard::data))
        .route("/admin/pricing/reload", post(prices::reload))
        .route("/admin/pricing/history", get(prices::history))
        .route("/admin/pricing/{provider}", axum::routing::put(prices::put))
        .route("/admin/routing", get(routing::list))
        .route("/admin/routing/reload", post(routing::reload))
        .route("/admin/routing/history", get(routing::history))
        .route("/admin/routing/{name}/preview", post(routing::preview))
        .route(
            "/admin/routing/{name}",
            axum::routing::put(routing::put).delete(routing::delete),
        )
        .route("/v1/feedback", post(feedback::feedback))
        .route("/metrics", get(inspect::metrics))
        .route("/healthz", get(inspect::healthz))
        .fallback(inspect::no_route)
        .method_not_allowed_fallback(inspect::wrong_method)
        .with_state(gateway)
}

/// Where the router accepts connections.
pub enum Listeners {
    /// One listener, served on the calling runtime.
    One(TcpListener),
    /// One listener per serving thread on the same address ([`crate::http::cores`]).
    PerCore(Vec<std::net::TcpListener>),
}

impl Listeners {
    /// One listener per serving thread on `addr`: `threads` of them, or one per core when 0.
    pub fn per_core(addr: std::net::SocketAddr, threads: usize) -> std::io::Result<Listeners> {
        let n = crate::http::cores::threads(threads);
        crate::http::cores::bind(addr, n).map(Listeners::PerCore)
    }

    /// The address listened on.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match self {
            Listeners::One(l) => l.local_addr(),
            Listeners::PerCore(ls) => ls[0].local_addr(),
        }
    }

    /// How many threads serve.
    pub fn threads(&self) -> usize {
        match self {
            Listeners::One(_) => 1,
            Listeners::PerCore(ls) => ls.len(),
        }
    }
}

impl From<TcpListener> for Listeners {
    fn from(listener: TcpListener) -> Listeners {
        Listeners::One(listener)
    }
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
/// for at most the configured grace period, and saves the learned state a last time.
pub async fn serve(
    listener: impl Into<Listeners>,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shared = gateway.0.clone();
    let saver = shared.store.clone().map(|store| {
        persist::Saver::start(persist::SaverParts {
            store,
            stats: shared.stats.clone(),
            epoch: shared.epoch,
            interval: shared.flush_interval,
            last: shared.last_save.clone(),
            clients: shared.clients.clone(),
            clock: shared.clock.clone(),
        })
    });
    let sighup = tokio::spawn(prices::reload_on_sighup(gateway.clone()));
    let sampler = tokio::spawn(dashboard::sample(
        gateway.clone(),
        shared.config.stats.sample_interval,
    ));
    let watcher = shared
        .config
        .server
        .watch_pricing
        .then(|| tokio::spawn(prices::watch_dir(gateway.clone())));
    let routing_watcher = shared
        .config
        .server
        .watch_pricing
        .then(|| tokio::spawn(routing::watch_dir(gateway.clone())));
    let fleet = shared.fleet.clone().map(|fleet| {
        let host: Arc<dyn crate::fleet::sync::Host> = Arc::new(gateway.clone());
        tokio::spawn(fleet.run(host))
    });
    let log = shared.log.clone();
    let result = serve_until(listener.into(), gateway, shutdown).await;
    if let Some(log) = log {
        // What the last requests logged is written before the router exits.
        let _ = tokio::task::spawn_blocking(move || log.close()).await;
    }
    if let Some(fleet) = fleet {
        fleet.abort();
    }
    sighup.abort();
    sampler.abort();
    for w in [watcher, routing_watcher].into_iter().flatten() {
        w.abort();
    }
    if let Some(saver) = saver {
        // The saver finishes a save it is in, then saves a last time: never two at once.
        saver.finish().await;
        tracing::info!("saved learned statistics");
    }
    result
}

async fn serve_until(
    listeners: Listeners,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = crate::http::ServeOptions {
        header_read_timeout: gateway.0.config.server.header_read_timeout,
        grace: gateway.0.shutdown_grace,
    };
    match listeners {
        Listeners::One(listener) => {
            crate::http::serve(
                listener,
                app(gateway),
                options,
                shutdown,
                crate::http::Accept::Serve,
            )
            .await;
            Ok(())
        }
        Listeners::PerCore(listeners) => {
            crate::http::cores::serve(listeners, app(gateway), options, shutdown).await
        }
    }
}

/// Resolves on SIGINT or SIGTERM. The SIGTERM handler is installed when this is called, not
/// when the future is first polled: a SIGTERM that arrives between the two (the serving loop
/// may not poll it before its first connection) is still a graceful shutdown rather than the
/// default, immediate termination without a last save. Call it from within the runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let term = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
    }
}
