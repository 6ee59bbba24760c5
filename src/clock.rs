//! The wall clock, injected where the router needs calendar time (spend windows, the time a
//! save or a decision is stamped with), so tests can set it and cross a window boundary on
//! purpose instead of by the hour they happen to run at.
//!
//! Durations and the statistics' time never use this clock: they run on the monotonic one
//! (tokio's `Instant`, which tests pause and advance).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Calendar time as milliseconds since the Unix epoch.
pub trait WallClock: Send + Sync + fmt::Debug {
    fn unix_ms(&self) -> u64;

    fn unix_s(&self) -> u64 {
        self.unix_ms() / 1000
    }
}

/// The system's clock (0 if it is set before 1970).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SystemClock;

impl WallClock for SystemClock {
    fn unix_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that stands still until moved: a cheap `Clone` handle, for tests.
#[derive(Debug, Default, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn at(unix_ms: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(unix_ms)))
    }

    pub fn set(&self, unix_ms: u64) {
        self.0.store(unix_ms, Ordering::Relaxed);
    }

    pub fn advance_ms(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::Relaxed);
    }
}

impl WallClock for ManualClock {
    fn unix_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The clock a component is given.
pub(crate) type SharedClock = Arc<dyn WallClock>;

/// The system clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}
