//! How the fleet is doing, as the request path, `/healthz` and `/metrics` read it: plain
//! atomics the sync task writes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{json, Value};

use super::OnRedisDown;

/// The fleet link's state on this replica.
#[derive(Debug)]
pub struct Status {
    pub replica: String,
    pub mode: OnRedisDown,
    connected: AtomicBool,
    /// Replicas seen at the last sync, this one included (1 before any).
    replicas: AtomicU64,
    syncs: AtomicU64,
    sync_failures: AtomicU64,
    last_sync_unix_ms: AtomicU64,
}

impl Status {
    pub fn new(replica: String, mode: OnRedisDown) -> Status {
        Status {
            replica,
            mode,
            connected: AtomicBool::new(false),
            replicas: AtomicU64::new(1),
            syncs: AtomicU64::new(0),
            sync_failures: AtomicU64::new(0),
            last_sync_unix_ms: AtomicU64::new(0),
        }
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn replicas(&self) -> u64 {
        self.replicas.load(Ordering::Relaxed).max(1)
    }

    pub fn sync_failures(&self) -> u64 {
        self.sync_failures.load(Ordering::Relaxed)
    }

    /// How many replicas split a rate limit now: 1 while connected (the fleet's count
    /// decides), the last known number while down in `share` mode.
    pub fn rate_share(&self) -> u64 {
        match (self.connected(), self.mode) {
            (true, _) | (false, OnRedisDown::Local) => 1,
            (false, OnRedisDown::Share) => self.replicas(),
        }
    }

    pub(crate) fn synced(&self, replicas: u64, unix_ms: u64) {
        self.replicas.store(replicas.max(1), Ordering::Relaxed);
        self.last_sync_unix_ms.store(unix_ms, Ordering::Relaxed);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.connected.store(true, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self) {
        self.sync_failures.fetch_add(1, Ordering::Relaxed);
        self.connected.store(false, Ordering::Relaxed);
    }

    /// The `fleet` object of `/healthz`.
    pub fn report(&self) -> Value {
        let last = self.last_sync_unix_ms.load(Ordering::Relaxed);
        json!({
            "replica": self.replica,
            "connected": self.connected(),
            "replicas": self.replicas(),
            "syncs": self.syncs.load(Ordering::Relaxed),
            "sync_failures": self.sync_failures(),
            "last_sync_unix_ms": (last > 0).then_some(last),
            "on_redis_down": self.mode,
        })
    }
}
