//! Saving what was learned: at start, load and age the last snapshot; while serving, save
//! one every `flush_interval`; at shutdown, save a last one.
//!
//! One [`Saver`] task owns every save: at shutdown it is told to stop, finishes a save it is
//! in, saves a last time and only then returns, so two saves never run at once (a save on
//! the blocking pool cannot be aborted, and two interleaved saves could leave the store's
//! marker ahead of its data). Saves run on the blocking pool (sled flushes to disk), so a
//! slow disk never stalls a request. Wall-clock time is read here, never in the statistics: a snapshot carries the
//! Unix time it was saved, and at load it is aged by the time that passed since.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::meter::nanos_since;
use crate::auth::Clients;
use crate::clock::SharedClock;
use crate::stats::store::{Store, StoreError};
use crate::stats::Stats;

/// Loads the store's snapshot into `stats`, aged by the time since it was saved.
/// Returns how many endpoints were restored.
pub(crate) fn restore(
    store: &Store,
    stats: &Stats,
    epoch: Instant,
    now_unix_ms: u64,
) -> Result<usize, StoreError> {
    let Some((snapshot, saved_at)) = store.load()? else {
        return Ok(0);
    };
    let age = Duration::from_millis(now_unix_ms.saturating_sub(saved_at));
    let n = snapshot.endpoints.len();
    let age_ns = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
    stats.restore(snapshot, age_ns, nanos_since(epoch));
    tracing::info!(endpoints = n, age = ?age, path = %store.path().display(), "restored learned statistics");
    Ok(n)
}

/// The last save that reached the disk, for `/healthz` (and tests that must know what a
/// killed process had saved).
#[derive(Debug, Default)]
pub(crate) struct LastSave {
    pub at_unix_ms: AtomicU64,
    /// Lifetime attempts over all endpoints in that save.
    pub attempts: AtomicU64,
}

/// Saves one snapshot now, on the blocking pool.
async fn save(parts: &SaverParts) {
    let SaverParts {
        store,
        stats,
        epoch,
        last,
        clock,
        ..
    } = parts;
    let snapshot = stats.snapshot(nanos_since(*epoch));
    let attempts: u64 = snapshot.endpoints.values().map(|e| e.totals.attempts).sum();
    let store = store.clone();
    let at = clock.unix_ms();
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
async fn save_spend(store: &Store, clients: &Arc<Clients>) {
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

/// What the saver needs.
pub(crate) struct SaverParts {
    pub store: Store,
    pub stats: Arc<Stats>,
    pub epoch: Instant,
    pub interval: Duration,
    pub last: Arc<LastSave>,
    pub clients: Arc<Clients>,
    pub clock: SharedClock,
}

/// The one task that saves.
pub(crate) struct Saver {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Saver {
    pub(crate) fn start(parts: SaverParts) -> Saver {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(run(parts, stopped));
        Saver { stop, task }
    }

    /// Stops the periodic saves and waits for the last one.
    pub(crate) async fn finish(self) {
        // A send fails only when the task is gone already; waiting on it is then immediate.
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the saver task failed");
        }
    }
}

/// Saves every `interval` until told to stop, then once more.
async fn run(parts: SaverParts, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(parts.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {
                save(&parts).await;
                save_spend(&parts.store, &parts.clients).await;
            }
        }
    }
    save(&parts).await;
    save_spend(&parts.store, &parts.clients).await;
}
