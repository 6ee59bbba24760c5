//! What the overhead and soak harnesses share: the router and fake upstreams as child
//! processes, and an open-loop load generator timing each request from its scheduled start.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

pub mod nginx;
pub mod reference;

pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// The binary the bench runs: this build's, or `SWITCHYARD_BIN` (another build of it, for an
/// A/B comparison in one session).
pub fn bin() -> String {
    std::env::var("SWITCHYARD_BIN").unwrap_or_else(|_| BIN.to_owned())
}

pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a process and reads the URL it prints first.
pub fn spawn(args: &[&str], prefix: &str) -> (Proc, String) {
    let mut child = Command::new(bin())
        .args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the switchyard binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("a first line");
    let url = line
        .trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected: {line:?}"))
        .to_owned();
    (Proc(child), url)
}

/// A router in a fresh directory serving model `m` of one provider `up` at `upstream_url`,
/// with `extra` in its `[server]` section and `OVERHEAD_ROUTER_CONFIG` appended to its
/// config: the process, its URL, and the directory (kept while it runs).
pub fn router_on(upstream_url: &str, extra: &str) -> (Proc, String, tempfile::TempDir) {
    router_with(upstream_url, extra, "")
}

/// [`router_on`] with `provider` added to the provider's entry (e.g. its protocol).
pub fn router_with(
    upstream_url: &str,
    extra: &str,
    provider: &str,
) -> (Proc, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("pricing")).expect("mkdir");
    std::fs::write(
        dir.path().join("pricing/up.toml"),
        "provider = \"up\"\neffective = \"2026-11-01\"\nsource = \"bench\"\n[models.m]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n",
    )
    .expect("sheet");
    let config = dir.path().join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nwatch_pricing = false\n{extra}\n[[providers]]\nname = \"up\"\nbase_url = \"{upstream_url}\"\n{provider}{}\n",
            std::env::var("OVERHEAD_ROUTER_CONFIG").unwrap_or_default()
        ),
    )
    .expect("config");
    let (router, url) = spawn(
        &["serve", "--config", config.to_str().expect("utf8 path")],
        "switchyard listening on ",
    );
    (router, url, dir)
}

/// Peak resident memory of a process, KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// Current resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

pub const BODY: &str = r#"{"model": "m", "messages": [{"role": "user", "content": "Say something short."}], "max_tokens": 16}"#;
pub const STREAM_BODY: &str = r#"{"model": "m", "stream": true, "messages": [{"role": "user", "content": "Say something short."}], "max_tokens": 16}"#;

pub struct Run {
    pub latency: Histogram<u64>,
    pub errors: u64,
    pub sent: u64,
    pub seconds: f64,
}

/// Open loop: one request every 1/rate s for `secs`; latency from the scheduled start to the
/// end of the body (or to the first chunk, for `first_chunk`).
pub async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    body: &'static str,
    rate: u64,
    secs: u64,
    first_chunk: bool,
    bearer: Option<&'static str>,
) -> Run {
    let mut runs = open_loop_over(client, &[url], body, rate, secs, first_chunk, bearer).await;
    runs.pop().expect("one run per url")
}

/// [`open_loop`] at `rate` requests/s to each of `urls`, their requests interleaved (the
/// k-th tick goes to `urls[k % n]`), so every url is measured under the same conditions at
/// the same moments; one [`Run`] per url.
pub async fn open_loop_over(
    client: &reqwest::Client,
    urls: &[&str],
    body: &'static str,
    rate: u64,
    secs: u64,
    first_chunk: bool,
    bearer: Option<&'static str>,
) -> Vec<Run> {
    let n = urls.len() as u64;
    let hists: Vec<_> = urls
        .iter()
        .map(|_| {
            Arc::new(std::sync::Mutex::new(
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds"),
            ))
        })
        .collect();
    let errors: Vec<_> = urls.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
    // The schedule is kept by a thread of its own with `std::thread::sleep` (a high-resolution
    // timer, about 50 µs of slack), not tokio's timer: tokio's has a 1 ms granularity, so a
    // request scheduled between two milliseconds left up to 1 ms late, by an amount that
    // depended on the run's phase against the timer wheel. That lag counted in the latency
    // (measured from the scheduled start) and moved the baseline at 1,000 req/s by up to
    // 1 ms from run to run, and between interleaved urls.
    let handle = tokio::runtime::Handle::current();
    let (client, body_urls): (reqwest::Client, Vec<String>) = (
        client.clone(),
        urls.iter().map(|u| (*u).to_owned()).collect(),
    );
    let (hists_d, errors_d) = (hists.clone(), errors.clone());
    let tasks = tokio::task::spawn_blocking(move || {
        let start = std::time::Instant::now();
        let total = rate * secs * n;
        let mut tasks = Vec::with_capacity(total as usize);
        for i in 0..total {
            let at = start + Duration::from_nanos(i * 1_000_000_000 / (rate * n));
            if let Some(wait) = at.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
            let k = (i % n) as usize;
            let (client, url, hist, errors) = (
                client.clone(),
                body_urls[k].clone(),
                hists_d[k].clone(),
                errors_d[k].clone(),
            );
            tasks.push(handle.spawn(async move {
                let mut request = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body);
                if let Some(key) = bearer {
                    request = request.bearer_auth(key);
                }
                let sent = request.send().await;
                let ok = match sent {
                    Ok(mut r) if r.status().is_success() => {
                        if first_chunk {
                            r.chunk().await.is_ok()
                        } else {
                            r.bytes().await.is_ok()
                        }
                    }
                    _ => false,
                };
                if ok {
                    let us = at.elapsed().as_micros() as u64;
                    hist.lock().expect("histogram").saturating_record(us.max(1));
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        tasks
    })
    .await
    .expect("scheduler thread");
    for t in tasks {
        let _ = t.await;
    }
    hists
        .iter()
        .zip(&errors)
        .map(|(hist, errors)| Run {
            latency: hist.lock().expect("histogram").clone(),
            errors: errors.load(Ordering::Relaxed),
            sent: rate * secs,
            seconds: secs as f64,
        })
        .collect()
}

pub fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Closed loop: `conns` workers back to back for `secs`; completed requests per second.
pub async fn max_throughput(client: &reqwest::Client, url: &str, conns: usize, secs: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    let mut workers = Vec::new();
    for _ in 0..conns {
        let (client, url, done) = (client.clone(), url.to_owned(), done.clone());
        workers.push(tokio::spawn(async move {
            while std::time::Instant::now() < deadline {
                if let Ok(r) = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(BODY)
                    .send()
                    .await
                {
                    if r.status().is_success() && r.bytes().await.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    done.load(Ordering::Relaxed) as f64 / secs as f64
}
