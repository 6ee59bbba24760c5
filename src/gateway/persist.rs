//! Saving what was learned: at start, load and age the last snapshot; while serving, save
//! one every `flush_interval`; at shutdown, save a last one.
//!
//! Saves run on the blocking pool (sled flushes to disk), so a slow disk never stalls a
//! request. Wall-clock time is read here, never in the statistics: a snapshot carries the
//! Unix time it was saved, and at load it is aged by the time that passed since.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::meter::nanos_since;
use crate::auth::Clients;
use crate::stats::store::{Store, StoreError};
use crate::stats::Stats;

/// Loads the store's snapshot into `stats`, aged by the time since it was saved.
/// Returns how many endpoints were restored.
pub fn restore(store: &Store, stats: &Stats, epoch: Instant) -> Result<usize, StoreError> {
    let Some((snapshot, saved_at)) = store.load()? else {
        return Ok(0);
    };
    let age = Duration::from_millis(super::unix_ms().saturating_sub(saved_at));
    let n = snapshot.endpoints.len();
    let age_ns = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
    stats.restore(snapshot, age_ns, nanos_since(epoch));
    tracing::info!(endpoints = n, age = ?age, path = %store.path().display(), "restored learned statistics");
    Ok(n)
}

/// The last save that reached the disk, for `/healthz` (and tests that must know what a
/// killed process had saved).
#[derive(Debug, Default)]
pub struct LastSave {
    pub at_unix_ms: AtomicU64,
    /// Lifetime attempts over all endpoints in that save.
    pub attempts: AtomicU64,
}

/// Saves one snapshot now, on the blocking pool.
pub async fn save(store: &Store, stats: &Arc<Stats>, epoch: Instant, last: &LastSave) {
    let snapshot = stats.snapshot(nanos_since(epoch));
    let attempts: u64 = snapshot.endpoints.values().map(|e| e.totals.attempts).sum();
    let store = store.clone();
    let at = super::unix_ms();
    let saved = tokio::task::spawn_blocking(move || store.save(&snapshot, at)).await;
    match saved {
        Ok(Ok(())) => {
            last.at_unix_ms.store(at, Ordering::Relaxed);
            last.attempts.store(attempts, Ordering::Relaxed);
        }
        Ok(Err(e)) => tracing::error!(error = %e, "saving statistics failed"),
        Err(e) => tracing::error!(error = %e, "the save task failed"),
    }
}

/// Saves the client keys' spend windows, when there are keys.
pub async fn save_spend(store: &Store, clients: &Arc<Clients>) {
    if !clients.required() {
        return;
    }
    let spend = clients.spend_states();
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.save_spend(&spend)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "saving client spend failed"),
        Err(e) => tracing::error!(error = %e, "the spend save task failed"),
    }
}

/// Saves every `interval` until aborted.
pub async fn run(
    store: Store,
    stats: Arc<Stats>,
    epoch: Instant,
    interval: Duration,
    last: Arc<LastSave>,
    clients: Arc<Clients>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        save(&store, &stats, epoch, &last).await;
        save_spend(&store, &clients).await;
    }
}
