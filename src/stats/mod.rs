//! Per-endpoint live statistics: what the selector learns from and what operators look at.
//!
//! Pure: every call takes `now_ns` (nanoseconds since the router's epoch); nothing here reads
//! a clock, spawns a task or touches the network, so the simulator runs the same code in
//! virtual time. [`Stats`] is the registry, keyed by endpoint id (and model name for output
//! lengths) so what was learned survives a catalog change; [`StatsTable`] is its view aligned
//! to one catalog's endpoint indices, so the request path reaches an endpoint's state with an
//! index, not a lookup. Each endpoint's state sits behind its own short `std` mutex: a record
//! takes it for well under a microsecond and never across an `.await`; contention is per
//! endpoint, not global. Before letting go, a record publishes what the selector's view needs
//! ([`published`]), so a decision reads every candidate without taking a lock. Endpoints of
//! the same model share that model's statistics. [`store`] persists snapshots in sled.

pub mod change;
pub mod decay;
pub mod endpoint;
pub mod model;
pub mod outcome;
pub mod peers;
pub mod prefill;
pub mod published;
pub mod quality;
pub mod store;
pub mod window;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, EndpointIdx};
pub use decay::{HalfLife, LogStats, LogSummary};
pub use endpoint::{EndpointStats, EndpointView, HalfLives, Learned, Totals};
pub use model::ModelStats;
pub use outcome::{FailureClass, Success};
pub use prefill::{PrefillStats, PrefillSummary};
pub use quality::{QualityPosterior, QualityStats};

/// How long client feedback keeps half its weight by default: a model's quality changes
/// rarely (a new version, a quantised deployment), and scores are few, so they are kept long.
pub const DEFAULT_QUALITY_HALF_LIFE: Duration = Duration::from_secs(24 * 3600);
/// How many scores a sheet's declared quality is worth by default: twenty, so a few unhappy
/// users do not move an endpoint, and fifty poor scores outweigh the sheet.
pub const DEFAULT_QUALITY_PRIOR: f64 = 20.0;

/// One endpoint's state, and the copy of it the selector reads without the lock.
#[derive(Debug, Default)]
struct EndpointCell {
    state: Mutex<EndpointStats>,
    published: published::Published,
}

impl EndpointCell {
    /// Changes the state under its lock and publishes the result before letting go.
    fn update<R>(&self, hl: &HalfLives, f: impl FnOnce(&mut EndpointStats) -> R) -> R {
        let mut state = lock(&self.state);
        let r = f(&mut state);
        self.published
            .publish(published::ViewInputs::of(&state, hl));
        r
    }
}

type Cell = Arc<EndpointCell>;
type ModelCell = Arc<Mutex<ModelStats>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a stats lock cannot leave the numbers unusable (every update
    // is a few arithmetic steps); keep serving with them.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The registry of every endpoint's and model's statistics.
#[derive(Debug)]
pub struct Stats {
    half_lives: HalfLives,
    /// How many scores the sheet's declared quality is worth (see [`quality`]).
    quality_prior: f64,
    endpoints: Mutex<HashMap<String, Cell>>,
    models: Mutex<HashMap<String, ModelCell>>,
    /// The latest end of any provider-requested rest: while `now` is past it, no endpoint
    /// is resting and the selector skips looking.
    rest_horizon_ns: std::sync::atomic::AtomicU64,
}

/// Saved state: lifetime totals and learned statistics, settled to the time of saving.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub endpoints: BTreeMap<String, EndpointSnapshot>,
    /// Model name → completion lengths and prompt bytes per token.
    pub models: BTreeMap<String, ModelStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointSnapshot {
    pub totals: Totals,
    pub learned: Learned,
}

impl Stats {
    /// A registry with the default quality settings ([`DEFAULT_QUALITY_HALF_LIFE`],
    /// [`DEFAULT_QUALITY_PRIOR`]).
    pub fn new(latency_half_life: Duration, outcome_half_life: Duration) -> Arc<Stats> {
        Stats::new_with(
            HalfLives {
                latency: HalfLife::new(latency_half_life),
                outcome: HalfLife::new(outcome_half_life),
                quality: HalfLife::new(DEFAULT_QUALITY_HALF_LIFE),
            },
            DEFAULT_QUALITY_PRIOR,
        )
    }

    /// A registry whose quality feedback fades with `quality_half_life` and whose declared
    /// qualities are worth `quality_prior` scores.
    pub fn with_quality(
        latency_half_life: Duration,
        outcome_half_life: Duration,
        quality_half_life: Duration,
        quality_prior: f64,
    ) -> Arc<Stats> {
        Stats::new_with(
            HalfLives {
                latency: HalfLife::new(latency_half_life),
                outcome: HalfLife::new(outcome_half_life),
                quality: HalfLife::new(quality_half_life),
            },
            quality_prior,
        )
    }

    pub(crate) fn new_with(half_lives: HalfLives, quality_prior: f64) -> Arc<Stats> {
        Arc::new(Stats {
            half_lives,
            quality_prior,
            endpoints: Mutex::new(HashMap::new()),
            models: Mutex::new(HashMap::new()),
            rest_horizon_ns: Default::default(),
        })
    }

    pub fn half_lives(&self) -> HalfLives {
        self.half_lives
    }

    /// How many scores a declared quality is worth.
    pub fn quality_prior(&self) -> f64 {
        self.quality_prior
    }

    /// A client's score of an answer the endpoint `id` gave; `false` when the registry has
    /// never seen that endpoint.
    pub fn feedback(&self, id: &str, score: f64, now_ns: u64) -> bool {
        let Some(cell) = lock(&self.endpoints).get(id).cloned() else {
            return false;
        };
        let hl = self.half_lives;
        cell.update(&hl, |e| e.learned.quality.add(score, now_ns, hl.quality));
        true
    }

    fn cell(&self, id: &str) -> Cell {
        lock(&self.endpoints)
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    fn model_cell(&self, model: &str) -> ModelCell {
        lock(&self.models)
            .entry(model.to_owned())
            .or_default()
            .clone()
    }

    /// The view of this registry aligned to `catalog`'s endpoint indices.
    pub fn table(self: &Arc<Self>, catalog: &Catalog) -> StatsTable {
        let endpoints = catalog.endpoints();
        let mut slots: HashMap<&str, u32> = HashMap::new();
        let mut models = Vec::new();
        let model_of = endpoints
            .iter()
            .map(|e| {
                *slots.entry(e.model.as_str()).or_insert_with(|| {
                    models.push(self.model_cell(&e.model));
                    (models.len() - 1) as u32
                })
            })
            .collect();
        StatsTable {
            stats: self.clone(),
            cells: endpoints.iter().map(|e| self.cell(&e.id)).collect(),
            models,
            model_of,
        }
    }

    /// Everything learned, settled to `now_ns`.
    pub fn snapshot(&self, now_ns: u64) -> Snapshot {
        let hl = self.half_lives;
        let cells: Vec<(String, Cell)> = lock(&self.endpoints)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let endpoints = cells
            .into_iter()
            .map(|(id, cell)| {
                let s = lock(&cell.state);
                let snap = EndpointSnapshot {
                    totals: s.totals,
                    learned: s.settled(now_ns, &hl),
                };
                (id, snap)
            })
            .collect();
        let models: Vec<(String, ModelCell)> = lock(&self.models)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let models = models
            .into_iter()
            .map(|(m, cell)| (m, lock(&cell).settled(now_ns, hl.latency)))
            .collect();
        Snapshot { endpoints, models }
    }

    /// Every endpoint's own figures settled at `now_ns`, for the fleet to share; `rest_end`
    /// says when an endpoint's rest (a `Retry-After` or a failure burst) ends.
    pub fn own_figures(
        &self,
        now_ns: u64,
        rest_end: impl Fn(&EndpointStats) -> u64,
    ) -> Vec<(String, peers::PeerFigures)> {
        let hl = self.half_lives;
        let cells: Vec<(String, Cell)> = lock(&self.endpoints)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        cells
            .into_iter()
            .filter_map(|(id, cell)| {
                let s = lock(&cell.state);
                (s.totals.attempts > 0)
                    .then(|| (id, peers::PeerFigures::own(&s, now_ns, &hl, rest_end(&s))))
            })
            .collect()
    }

    /// Replaces what the fleet's other replicas learned (endpoints absent from `peers` have
    /// none) and republishes every endpoint's view.
    pub fn set_peers(&self, peers: &HashMap<String, peers::PeerFigures>) {
        let hl = self.half_lives;
        for id in peers.keys() {
            self.cell(id);
        }
        let cells: Vec<(String, Cell)> = lock(&self.endpoints)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, cell) in cells {
            let p = peers.get(&id).copied();
            if let Some(p) = p {
                self.rest_horizon_ns
                    .fetch_max(p.rest_until_ns, std::sync::atomic::Ordering::Relaxed);
            }
            cell.update(&hl, |s| s.peers = p);
        }
    }

    /// A copy of one endpoint's state by id, if it has any.
    pub fn read(&self, id: &str) -> Option<EndpointStats> {
        let cell = lock(&self.endpoints).get(id).cloned()?;
        let copy = lock(&cell.state).clone();
        Some(copy)
    }

    /// Loads a saved state that is `age_ns` old; its decayed statistics are aged by that
    /// much. Endpoints not in the current catalog are kept, so they are saved again and a
    /// later catalog that has them finds what was learned.
    pub(crate) fn restore(&self, snapshot: Snapshot, age_ns: u64, now_ns: u64) {
        let hl = self.half_lives;
        for (id, e) in snapshot.endpoints {
            self.cell(&id)
                .update(&hl, |s| s.restore(e.totals, e.learned, age_ns, now_ns, &hl));
        }
        for (model, mut s) in snapshot.models {
            s.rebase(age_ns, now_ns, hl.latency);
            *lock(&self.model_cell(&model)) = s;
        }
    }
}

/// A [`Stats`] registry aligned to one catalog: index `i` is the catalog's endpoint `i`.
#[derive(Debug, Clone)]
pub struct StatsTable {
    stats: Arc<Stats>,
    cells: Vec<Cell>,
    /// One cell per model of the catalog...
    models: Vec<ModelCell>,
    /// ...and, per endpoint, the index of its model's cell.
    model_of: Vec<u32>,
}

impl StatsTable {
    /// An attempt starts: counted, and in flight until it ends.
    pub fn begin(&self, idx: EndpointIdx) {
        self.cells[idx].update(&self.stats.half_lives, EndpointStats::begin);
    }

    pub fn success(&self, idx: EndpointIdx, s: &Success, now_ns: u64) {
        self.record_success(idx, s, None, now_ns);
    }

    pub fn failure(&self, idx: EndpointIdx, class: FailureClass, now_ns: u64) {
        self.failure_after(idx, class, None, now_ns);
    }

    /// A failure that took `took_ms` to happen, before the first byte (a fallback follows
    /// it); `None` when that is not known or not wanted (mid-stream).
    pub fn failure_after(
        &self,
        idx: EndpointIdx,
        class: FailureClass,
        took_ms: Option<f64>,
        now_ns: u64,
    ) {
        let hl = self.stats.half_lives;
        self.cells[idx].update(&hl, |e| e.failure_after(class, took_ms, now_ns, &hl));
    }

    /// The provider asked not to be sent requests before `until_ns` (`Retry-After`).
    pub(crate) fn rest_until(&self, idx: EndpointIdx, until_ns: u64) {
        self.cells[idx].update(&self.stats.half_lives, |e| {
            e.rest_until_ns = e.rest_until_ns.max(until_ns)
        });
        self.stats
            .rest_horizon_ns
            .fetch_max(until_ns, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether any endpoint may be resting at `now_ns` (one atomic load).
    pub(crate) fn any_resting(&self, now_ns: u64) -> bool {
        self.stats
            .rest_horizon_ns
            .load(std::sync::atomic::Ordering::Relaxed)
            > now_ns
    }

    /// Whether the provider asked this endpoint to be left alone at `now_ns` (through this
    /// replica or, in a fleet, another).
    pub(crate) fn resting(&self, idx: EndpointIdx, now_ns: u64) -> bool {
        let s = lock(&self.cells[idx].state);
        let peers = s.peers.map_or(0, |p| p.rest_until_ns);
        s.rest_until_ns.max(peers) > now_ns
    }

    /// A client's score in [0, 1] of an answer this endpoint gave.
    pub fn feedback(&self, idx: EndpointIdx, score: f64, now_ns: u64) {
        let hl = self.stats.half_lives;
        self.cells[idx].update(&hl, |e| e.learned.quality.add(score, now_ns, hl.quality));
    }

    /// How many scores a declared quality is worth.
    pub fn quality_prior(&self) -> f64 {
        self.stats.quality_prior
    }

    /// [`Self::success`] whose usage report says `cached_tokens` of its prompt came from the
    /// provider's prompt cache, learned in the same update (one lock, one publish).
    pub(crate) fn success_cached(
        &self,
        idx: EndpointIdx,
        s: &Success,
        cached_tokens: u64,
        now_ns: u64,
    ) {
        self.record_success(idx, s, Some(cached_tokens), now_ns);
    }

    fn record_success(&self, idx: EndpointIdx, s: &Success, cached: Option<u64>, now_ns: u64) {
        let hl = self.stats.half_lives;
        self.cells[idx].update(&hl, |e| {
            e.success(s, now_ns, &hl);
            if let (Some(cached), Some(prompt)) = (cached, s.prompt_tokens.filter(|&p| p > 0)) {
                let l = &mut e.learned;
                l.cached_tokens
                    .add(cached.min(prompt) as f64, now_ns, hl.latency);
                l.prompt_tokens.add(prompt as f64, now_ns, hl.latency);
            }
        });
        lock(self.model_cell(idx)).record(s, now_ns, hl.latency);
    }

    /// The client went away before the attempt ended: neither a success nor a failure of
    /// the endpoint.
    pub fn cancelled(&self, idx: EndpointIdx) {
        self.cells[idx].update(&self.stats.half_lives, EndpointStats::cancelled);
    }

    /// The provider said the request uses a parameter the model does not support: counted
    /// under its own class, not against the endpoint's health.
    pub(crate) fn unsupported(&self, idx: EndpointIdx, now_ns: u64) {
        let hl = self.stats.half_lives;
        self.cells[idx].update(&hl, |e| e.unsupported(now_ns, &hl));
    }

    /// The provider refused the request itself (a 4xx that is the client's to fix): the
    /// endpoint is neither credited nor blamed.
    pub(crate) fn rejected(&self, idx: EndpointIdx) {
        self.cells[idx].update(&self.stats.half_lives, EndpointStats::rejected);
    }

    /// What the selector reads.
    pub fn view(&self, idx: EndpointIdx, now_ns: u64) -> EndpointView {
        let cell = &self.cells[idx];
        let hl = &self.stats.half_lives;
        match cell.published.read() {
            Some(inputs) => inputs.view(now_ns, hl),
            None => lock(&cell.state).view(now_ns, hl),
        }
    }

    /// Runs `f` on the endpoint's model statistics under their lock, without copying them.
    pub fn with_model<R>(&self, idx: EndpointIdx, f: impl FnOnce(&ModelStats) -> R) -> R {
        f(&lock(self.model_cell(idx)))
    }

    /// Which of the catalog's models the endpoint serves, as a small index: endpoints with
    /// the same slot share their model statistics.
    pub(crate) fn model_slot(&self, idx: EndpointIdx) -> usize {
        self.model_of[idx] as usize
    }

    fn model_cell(&self, idx: EndpointIdx) -> &ModelCell {
        &self.models[self.model_of[idx] as usize]
    }

    /// A copy of the endpoint's whole state, for reports.
    pub fn read(&self, idx: EndpointIdx) -> EndpointStats {
        lock(&self.cells[idx].state).clone()
    }

    /// Runs `f` on the endpoint's state under its lock (for reports that need little of it).
    pub fn with<R>(&self, idx: EndpointIdx, f: impl FnOnce(&EndpointStats) -> R) -> R {
        f(&lock(&self.cells[idx].state))
    }

    pub fn half_lives(&self) -> HalfLives {
        self.stats.half_lives
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

#[cfg(test)]
mod tests;
