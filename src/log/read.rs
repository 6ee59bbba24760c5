//! Reading the log back: every line in a time range, oldest first (what `switchyard log
//! export` writes), and one request by id (what `/v1/decisions/{id}` falls back to). Lines
//! that do not parse — the torn end of a segment the router was killed while writing — are
//! skipped and counted.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use super::record::{Line, Record};
use super::writer::segments;

/// What an export wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    pub lines: u64,
    /// Lines that did not parse.
    pub skipped: u64,
}

/// Writes every line of the log in `dir` dated in `[since, until)` (unix ms) to `out` as
/// JSON lines, oldest first; the prices in force at `since` come first.
pub fn export(
    dir: &Path,
    since: Option<u64>,
    until: Option<u64>,
    out: &mut impl Write,
) -> std::io::Result<Exported> {
    let mut done = Exported::default();
    let mut prices: Option<Line> = None;
    let segs = segments(dir)?;
    for (i, (_, path)) in segs.iter().enumerate() {
        // A whole segment before `since` is read only for its prices.
        let ends_before = segs
            .get(i + 1)
            .is_some_and(|(next, _)| since.is_some_and(|s| *next < s));
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for text in BufReader::new(file).lines() {
            let text = text?;
            if text.trim().is_empty() {
                continue;
            }
            let Ok(line) = serde_json::from_str::<Line>(&text) else {
                done.skipped += 1;
                continue;
            };
            let at = line.at_ms();
            let before = since.is_some_and(|s| at < s);
            if matches!(line, Line::Catalog(_)) && (before || ends_before) {
                prices = Some(line);
                continue;
            }
            if before || ends_before || until.is_some_and(|u| at >= u) {
                continue;
            }
            if let Some(p) = prices.take() {
                write_line(out, &p)?;
                done.lines += 1;
            }
            write_line(out, &line)?;
            done.lines += 1;
        }
    }
    Ok(done)
}

fn write_line(out: &mut impl Write, line: &Line) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

/// The record of request `id`, newest segment first.
pub fn find(dir: &Path, id: &str) -> std::io::Result<Option<Record>> {
    let needle = format!("\"id\":{}", serde_json::Value::String(id.to_owned()));
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    for (_, path) in segments(dir)?.iter().rev() {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if let Some(at) = finder.find(&bytes) {
            let start = memchr::memrchr(b'\n', &bytes[..at]).map_or(0, |i| i + 1);
            let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
            if let Ok(Line::Request(r)) = serde_json::from_slice::<Line>(&bytes[start..end]) {
                return Ok(Some(*r));
            }
        }
    }
    Ok(None)
}

/// Every line of a JSON-lines file (an export), skipping what does not parse.
pub fn lines_of(path: &Path) -> std::io::Result<(Vec<Line>, u64)> {
    let file = std::fs::File::open(path)?;
    let mut lines = Vec::new();
    let mut skipped = 0;
    for text in BufReader::new(file).lines() {
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(&text) {
            Ok(l) => lines.push(l),
            Err(_) => skipped += 1,
        }
    }
    Ok((lines, skipped))
}
