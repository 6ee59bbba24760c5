//! The request log: every request leaves a compact record ([`record`]) in an append-only
//! log in the state directory, written off the request path in batches ([`writer`]), kept
//! within `[log]` retention, and read back by `switchyard log export`, by
//! `GET /v1/decisions/{id}` once the in-memory ring has moved on, and by
//! `switchyard simulate --replay` ([`read`]).

pub mod read;
pub mod record;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

pub use record::{
    AttemptLine, CatalogLine, EndpointPrice, HedgeLine, Hints, Line, Outcome, RawJson, Record,
};
pub use writer::LogCounters;

/// `[log]`: the request log's place and retention.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Keep a request log (in `<state_dir>/log`).
    pub enabled: bool,
    /// Records older than this are removed (a segment at a time).
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// The log's largest size; the oldest segments go first.
    pub max_bytes: u64,
    /// A segment's size and age before the next one starts.
    pub segment_bytes: u64,
    #[serde(with = "humantime_serde")]
    pub segment_age: Duration,
    /// How long the writer rests after each batch: lines queue meanwhile and go out in one
    /// write. A router killed loses at most this much of the log; a request never wakes the
    /// writer while it rests.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Lines written at once, at most.
    pub batch: usize,
    /// Lines waiting to be written, at most; more are dropped (and counted).
    pub queue: usize,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            enabled: true,
            max_age: Duration::from_secs(7 * 86_400),
            max_bytes: 1 << 30,
            segment_bytes: 64 << 20,
            segment_age: Duration::from_secs(3_600),
            flush_interval: Duration::from_millis(200),
            batch: 4_096,
            queue: 16_384,
        }
    }
}

impl LogConfig {
    /// Checks the values a file may get wrong: the field at fault and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, m: &str| Err((format!("log.{f}"), m.to_owned()));
        if self.max_age.is_zero() {
            return bad("max_age", "must be above zero");
        }
        if self.segment_age.is_zero() {
            return bad("segment_age", "must be above zero");
        }
        if self.segment_bytes == 0 || self.max_bytes < self.segment_bytes {
            return bad(
                "segment_bytes",
                "must be above zero and at most log.max_bytes",
            );
        }
        if self.flush_interval > Duration::from_secs(60) {
            return bad("flush_interval", "must be at most a minute");
        }
        if self.batch == 0 || self.queue == 0 {
            return bad("queue", "batch and queue must be above zero");
        }
        Ok(())
    }
}

/// The log directory of a state directory.
pub fn dir_of(state_dir: &Path) -> PathBuf {
    state_dir.join("log")
}

/// Where requests hand their lines to the writer.
#[derive(Clone)]
pub struct LogHandle {
    /// Lines, and `None` to write what is queued and stop.
    tx: SyncSender<Option<Line>>,
    writer: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
    pub counters: Arc<LogCounters>,
    pub dir: PathBuf,
}

impl LogHandle {
    /// Starts the writer thread for `dir` (created if missing); `clock` gives unix ms.
    pub fn start(
        dir: PathBuf,
        config: &LogConfig,
        clock: impl Fn() -> u64 + Send + 'static,
    ) -> std::io::Result<LogHandle> {
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = sync_channel(config.queue);
        let counters = Arc::new(LogCounters::default());
        let writer = writer::Writer {
            dir: dir.clone(),
            config: config.clone(),
            counters: counters.clone(),
            clock: Box::new(clock),
        };
        let thread = std::thread::Builder::new()
            .name("request-log".into())
            .spawn(move || writer.run(rx))?;
        Ok(LogHandle {
            tx,
            writer: Arc::new(std::sync::Mutex::new(Some(thread))),
            counters,
            dir,
        })
    }

    /// Writes what is queued and stops the writer (a graceful shutdown); lines written
    /// after are dropped. Blocks until it is done.
    pub fn close(&self) {
        let thread = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = self.tx.send(None);
            thread.thread().unpark();
            let _ = thread.join();
        }
    }

    /// Queues a line without waiting; a full queue drops it (counted).
    pub fn write(&self, line: Line) {
        match self.tx.try_send(Some(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests;
