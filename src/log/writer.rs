//! The log's writer: one thread that appends batches of lines to segment files and keeps
//! the directory within its retention.
//!
//! Requests hand their line over a bounded channel without waiting (a full queue drops the
//! line and counts it); the thread writes whatever has queued up, up to `batch` lines, with
//! one `write` per batch, then rests `flush_interval`, so a busy router wakes it a few times
//! a second rather than once per request. A killed router loses what was queued and at most
//! the batch being written (a torn last line, which readers skip). A segment is `requests-<unix ms of its first line>.jsonl`;
//! a new one starts at each start, when the current one passes `segment_bytes`, and after
//! `segment_age`; each begins with the prices in force, so retention never strands a record
//! from its prices. Retention removes the oldest segments while the directory holds more
//! than `max_bytes`, and every segment whose lines are all older than `max_age`.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use super::record::Line;
use super::LogConfig;

/// Counters the writer keeps (shown in `/metrics`).
#[derive(Debug, Default)]
pub struct LogCounters {
    pub written: AtomicU64,
    /// Dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Failed to write (disk full, permissions).
    pub failed: AtomicU64,
}

/// The segment files of `dir`, oldest first, with the unix ms each starts at.
pub fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let start = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("requests-")?.strip_suffix(".jsonl"))
            .and_then(|ms| ms.parse::<u64>().ok());
        if let Some(start) = start {
            found.push((start, path));
        }
    }
    found.sort();
    Ok(found)
}

struct Segment {
    file: File,
    started_ms: u64,
    bytes: u64,
}

pub(super) struct Writer {
    pub dir: PathBuf,
    pub config: LogConfig,
    pub counters: Arc<LogCounters>,
    /// Unix ms now.
    pub clock: Box<dyn Fn() -> u64 + Send>,
}

impl Writer {
    /// Runs until told to stop (`None`) or every sender is gone, then writes what is left.
    pub fn run(self, lines: Receiver<Option<Line>>) {
        let mut segment: Option<Segment> = None;
        let mut prices: Option<Line> = None;
        let mut batch: Vec<Line> = Vec::with_capacity(self.config.batch);
        let mut buf: Vec<u8> = Vec::new();
        self.retain();
        let mut stopping = false;
        while !stopping {
            match lines.recv_timeout(Duration::from_secs(60)) {
                Ok(Some(line)) => batch.push(line),
                Ok(None) | Err(RecvTimeoutError::Disconnected) => stopping = true,
                Err(RecvTimeoutError::Timeout) => {
                    self.retain();
                    continue;
                }
            }
            while batch.len() < self.config.batch {
                match lines.try_recv() {
                    Ok(Some(line)) => batch.push(line),
                    Ok(None) => stopping = true,
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                continue;
            }
            let now = (self.clock)();
            let rolled = match &segment {
                None => true,
                Some(s) => {
                    s.bytes >= self.config.segment_bytes
                        || now.saturating_sub(s.started_ms)
                            >= self.config.segment_age.as_millis() as u64
                }
            };
            buf.clear();
            if rolled {
                segment = self.open(now);
                if segment.is_some() {
                    self.retain();
                    if let Some(p) = &prices {
                        push_line(&mut buf, p);
                    }
                }
            }
            let mut requests = 0;
            for line in batch.drain(..) {
                push_line(&mut buf, &line);
                if matches!(line, Line::Catalog(_)) {
                    prices = Some(line);
                } else {
                    requests += 1;
                }
            }
            match segment.as_mut().map(|s| (s.file.write_all(&buf), s)) {
                Some((Ok(()), s)) => {
                    s.bytes += buf.len() as u64;
                    self.counters.written.fetch_add(requests, Ordering::Relaxed);
                }
                Some((Err(e), _)) => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "cannot write the request log");
                    segment = None;
                }
                None => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Rest while lines queue (a stop unparks it early).
            if !stopping && !self.config.flush_interval.is_zero() {
                std::thread::park_timeout(self.config.flush_interval);
            }
        }
        if let Some(s) = segment {
            let _ = s.file.sync_all();
        }
    }

    fn open(&self, now_ms: u64) -> Option<Segment> {
        // A name already taken (two starts in one millisecond) gets the next millisecond.
        let mut start = now_ms;
        let opened = loop {
            let path = self.dir.join(format!("requests-{start:013}.jsonl"));
            match fs::OpenOptions::new()
                .append(true)
                .create_new(true)
                .open(&path)
            {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => start += 1,
                other => break other,
            }
        };
        match opened {
            Ok(file) => Some(Segment {
                file,
                started_ms: now_ms,
                bytes: 0,
            }),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot open a request log segment");
                None
            }
        }
    }

    /// Removes what retention no longer keeps (never the newest segment).
    fn retain(&self) {
        let Ok(mut segs) = segments(&self.dir) else {
            return;
        };
        let Some(newest) = segs.pop() else { return };
        let now = (self.clock)();
        let oldest_kept = now.saturating_sub(self.config.max_age.as_millis() as u64);
        let sizes: Vec<u64> = segs
            .iter()
            .map(|(_, p)| fs::metadata(p).map_or(0, |m| m.len()))
            .collect();
        let newest_size = fs::metadata(&newest.1).map_or(0, |m| m.len());
        let mut total: u64 = sizes.iter().sum::<u64>() + newest_size;
        for (i, (_, path)) in segs.iter().enumerate() {
            // Every line of segment i is older than the start of segment i + 1, and dated at
            // most as its last line says.
            let next_start = segs.get(i + 1).map_or(newest.0, |(s, _)| *s);
            let newest_line = last_line_at(path).unwrap_or(next_start).min(next_start);
            if total > self.config.max_bytes || newest_line < oldest_kept {
                if fs::remove_file(path).is_ok() {
                    total -= sizes[i];
                }
            } else {
                break;
            }
        }
    }
}

/// The date of the last whole line of a segment, read from its tail.
fn last_line_at(path: &Path) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 64 * 1024;
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    tail.split(|&b| b == b'\n')
        .rev()
        .find_map(|l| serde_json::from_slice::<Line>(l).ok())
        .map(|l| l.at_ms())
}

fn push_line(buf: &mut Vec<u8>, line: &Line) {
    if serde_json::to_writer(&mut *buf, line).is_ok() {
        buf.push(b'\n');
    }
}
