//! The log's writer, retention and readers, on a temporary directory with a set clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::read::{export, find, lines_of};
use super::record::{CatalogLine, EndpointPrice};
use super::writer::segments;
use super::*;

const HOUR_MS: u64 = 3_600_000;

fn record(id: &str, at_ms: u64) -> Line {
    Line::Request(Box::new(Record {
        id: id.to_owned(),
        at_ms,
        client: None,
        surface: "chat.completions".into(),
        model: "m".into(),
        stream: true,
        // Hints as a client wrote them: kept as written, read back equal.
        hints: Hints {
            route: Some(RawJson::from(&serde_json::json!({"max_latency_ms": 800}))),
            ..Hints::default()
        },
        prompt_bytes: 120,
        est_prompt_tokens: 30,
        max_tokens: None,
        candidates: 2,
        ranked: vec!["a/m".into(), "b/m".into()],
        attempts: vec![AttemptLine {
            endpoint: "a/m".into(),
            start_ms: 0.1,
            outcome: "answered".into(),
            status: None,
            took_ms: Some(250.0),
            ttft_ms: Some(80.0),
            hedge: false,
        }],
        outcome: Outcome::Answered,
        status: 200,
        ttft_ms: Some(81.0),
        total_ms: Some(251.0),
        prompt_tokens: Some(30),
        output_tokens: Some(40),
        cost_usd: Some(0.0001),
        hedge: None,
    }))
}

fn prices(at_ms: u64) -> Line {
    Line::Catalog(Box::new(CatalogLine {
        at_ms,
        endpoints: vec![EndpointPrice {
            id: "a/m".into(),
            input_per_mtok: 1.0,
            output_per_mtok: 2.0,
            cached_input_per_mtok: None,
            quality: None,
        }],
    }))
}

/// A writer on `dir` whose clock is `clock` (unix ms).
fn start(dir: &std::path::Path, config: LogConfig, clock: &Arc<AtomicU64>) -> LogHandle {
    let config = LogConfig {
        flush_interval: Duration::ZERO,
        ..config
    };
    let c = clock.clone();
    LogHandle::start(dir.to_owned(), &config, move || c.load(Ordering::Relaxed)).expect("starts")
}

/// Writes one line and waits until the writer has written it (one batch each).
fn write_one(log: &LogHandle, line: Line) {
    let before = log.counters.written.load(Ordering::Relaxed);
    let counts = !matches!(line, Line::Catalog(_));
    log.write(line);
    for _ in 0..2_000 {
        if !counts || log.counters.written.load(Ordering::Relaxed) > before {
            // A catalog line is not counted: give the writer a moment.
            if !counts {
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("the writer did not write");
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    segments(dir)
        .expect("segments")
        .iter()
        .map(|(_, p)| std::fs::metadata(p).expect("metadata").len())
        .sum()
}

#[test]
fn lines_are_exported_in_order_with_the_prices_first_and_a_torn_end_is_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(AtomicU64::new(10 * HOUR_MS));
    let log = start(dir.path(), LogConfig::default(), &clock);
    write_one(&log, prices(10 * HOUR_MS));
    for i in 0..5u64 {
        write_one(&log, record(&format!("req_{i}"), 10 * HOUR_MS + i * 1000));
    }
    drop(log);
    std::thread::sleep(Duration::from_millis(50));
    // A torn last line, as a SIGKILL mid-write leaves.
    let (_, last) = segments(dir.path()).expect("segments").pop().expect("one");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .expect("open");
    std::io::Write::write_all(&mut f, b"{\"kind\":\"request\",\"id\":\"req_torn").expect("write");

    let mut out = Vec::new();
    let done = export(dir.path(), None, None, &mut out).expect("export");
    assert_eq!((done.lines, done.skipped), (6, 1));
    let text = String::from_utf8(out).expect("utf-8");
    let lines: Vec<Line> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON lines"))
        .collect();
    assert!(matches!(lines[0], Line::Catalog(_)));
    assert_eq!(lines[1], record("req_0", 10 * HOUR_MS));

    // A window: the prices in force lead it.
    let mut out = Vec::new();
    let since = Some(10 * HOUR_MS + 2000);
    let until = Some(10 * HOUR_MS + 4000);
    export(dir.path(), since, until, &mut out).expect("export");
    let ids: Vec<String> = String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(|l| match serde_json::from_str::<Line>(l).expect("JSON") {
            Line::Request(r) => r.id,
            Line::Catalog(_) => "prices".into(),
        })
        .collect();
    assert_eq!(ids, ["prices", "req_2", "req_3"]);

    assert_eq!(
        find(dir.path(), "req_3").expect("reads"),
        match record("req_3", 10 * HOUR_MS + 3000) {
            Line::Request(r) => Some(*r),
            Line::Catalog(_) => unreachable!(),
        }
    );
    assert_eq!(find(dir.path(), "req_torn").expect("reads"), None);
    assert_eq!(find(dir.path(), "req_9").expect("reads"), None);
    let (read, skipped) = lines_of(&last).expect("reads");
    assert_eq!((read.len(), skipped), (6, 1));
}

#[test]
fn retention_keeps_the_log_within_its_size_and_age() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(AtomicU64::new(100 * HOUR_MS));
    let config = LogConfig {
        segment_bytes: 2_000,
        max_bytes: 6_000,
        max_age: Duration::from_secs(2 * 3600),
        ..LogConfig::default()
    };
    let line_bytes = serde_json::to_vec(&record("req_0000", 0))
        .expect("json")
        .len() as u64;
    let log = start(dir.path(), config.clone(), &clock);
    write_one(&log, prices(100 * HOUR_MS));
    for i in 0..80u64 {
        clock.fetch_add(1, Ordering::Relaxed);
        write_one(
            &log,
            record(&format!("req_{i:04}"), clock.load(Ordering::Relaxed)),
        );
        // Never more than the cap, give or take the segment being written.
        assert!(
            dir_bytes(dir.path()) <= config.max_bytes + config.segment_bytes + line_bytes,
            "{} bytes after {i} lines",
            dir_bytes(dir.path())
        );
    }
    let segs = segments(dir.path()).expect("segments");
    assert!(segs.len() >= 3, "rolled by size: {segs:?}");
    // The newest lines are kept, the oldest gone; every segment starts with the prices.
    assert!(find(dir.path(), "req_0079").expect("reads").is_some());
    assert!(find(dir.path(), "req_0000").expect("reads").is_none());
    for (_, path) in &segs {
        let (lines, _) = lines_of(path).expect("reads");
        assert!(matches!(lines.first(), Some(Line::Catalog(_))), "{path:?}");
    }

    // Three hours on, a new segment starts (by age), and everything older than two hours goes.
    clock.fetch_add(3 * HOUR_MS, Ordering::Relaxed);
    write_one(&log, record("req_late", clock.load(Ordering::Relaxed)));
    let segs = segments(dir.path()).expect("segments");
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert!(find(dir.path(), "req_late").expect("reads").is_some());
}
