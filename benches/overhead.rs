//! End-to-end overhead: what the router adds to every call, measured side by side.
//!
//! `cargo bench --bench overhead` starts a fast fake upstream and the release router as
//! separate processes on loopback, then drives, in one run and alternately direct to the
//! upstream and through the router:
//! - open-loop fixed-rate load at 1,000 and 5,000 requests/s (each request timed from its
//!   scheduled start, so a stall shows in the latencies instead of slowing the load);
//! - a max-throughput run (closed loop, 64 concurrent connections);
//! - streaming runs at 500 and 5,000 requests/s timing the first chunk (time to first token).
//!
//! It prints the added p50/p99/p99.9 latency, the throughput ratio and the router's peak
//! resident memory. Everything shares the same 2-core machine: the load generator, the
//! upstream and the router compete for CPU, as the targets in DESIGN §9 assume.
//! `OVERHEAD_SECONDS` sets each run's length (default 8).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a process and reads the URL it prints first.
fn spawn(args: &[&str], prefix: &str) -> (Proc, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
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

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

const BODY: &str = r#"{"model": "m", "messages": [{"role": "user", "content": "Say something short."}], "max_tokens": 16}"#;
const STREAM_BODY: &str = r#"{"model": "m", "stream": true, "messages": [{"role": "user", "content": "Say something short."}], "max_tokens": 16}"#;

struct Run {
    latency: Histogram<u64>,
    errors: u64,
    sent: u64,
    seconds: f64,
}

/// Open loop: one request every 1/rate s for `secs`; latency from the scheduled start to the
/// end of the body (or to the first chunk, for `first_chunk`).
async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    body: &'static str,
    rate: u64,
    secs: u64,
    first_chunk: bool,
) -> Run {
    let hist = Arc::new(std::sync::Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds"),
    ));
    let errors = Arc::new(AtomicU64::new(0));
    let start = tokio::time::Instant::now();
    let total = rate * secs;
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let at = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        tokio::time::sleep_until(at).await;
        let (client, url, hist, errors) =
            (client.clone(), url.to_owned(), hist.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let sent = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
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
    for t in tasks {
        let _ = t.await;
    }
    let latency = hist.lock().expect("histogram").clone();
    Run {
        latency,
        errors: errors.load(Ordering::Relaxed),
        sent: total,
        seconds: secs as f64,
    }
}

/// Closed loop: `conns` workers back to back for `secs`; completed requests per second.
async fn max_throughput(client: &reqwest::Client, url: &str, conns: usize, secs: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut workers = Vec::new();
    for _ in 0..conns {
        let (client, url, done) = (client.clone(), url.to_owned(), done.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
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

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn main() {
    // Criterion-style flags (`--bench`) are accepted and ignored.
    let secs: u64 = std::env::var("OVERHEAD_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let (_upstream, upstream_url) = spawn(
        &["fake-provider", "--tokens", "16"],
        "fake provider listening on ",
    );
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
            "[server]\nlisten = \"127.0.0.1:0\"\nwatch_pricing = false\n[[providers]]\nname = \"up\"\nbase_url = \"{upstream_url}\"\n"
        ),
    )
    .expect("config");
    let (router, router_url) = spawn(
        &["serve", "--config", config.to_str().expect("utf8 path")],
        "switchyard listening on ",
    );
    let direct = format!("{upstream_url}/chat/completions");
    let routed = format!("{router_url}/v1/chat/completions");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(512).build().expect("client");
        // Warm both paths (connections, caches, the router's statistics).
        open_loop(&client, &direct, BODY, 500, 1, false).await;
        open_loop(&client, &routed, BODY, 500, 1, false).await;

        println!("\nswitchyard overhead, {secs} s per run, loopback, 2 cores shared by load generator, upstream and router\n");
        println!("{:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}", "run", "p50 ms", "p99 ms", "p99.9 ms", "errors", "added p50", "added p99");
        for (label, body, rate, first) in [
            ("1,000 req/s", BODY, 1000, false),
            ("5,000 req/s", BODY, 5000, false),
            ("stream TTFT, 500 req/s", STREAM_BODY, 500, true),
            ("stream TTFT, 5,000 req/s", STREAM_BODY, 5000, true),
        ] {
            let d = open_loop(&client, &direct, body, rate, secs, first).await;
            let r = open_loop(&client, &routed, body, rate, secs, first).await;
            for (who, run) in [("direct", &d), ("router", &r)] {
                let added = |q: f64| if who == "router" { format!("{:+.3}", ms(&r.latency, q) - ms(&d.latency, q)) } else { String::new() };
                println!(
                    "{:<28} {:>9.3} {:>9.3} {:>9.3} {:>9} {:>9} {:>9}",
                    format!("{label} {who}"),
                    ms(&run.latency, 0.5),
                    ms(&run.latency, 0.99),
                    ms(&run.latency, 0.999),
                    format!("{}/{}", run.errors, run.sent),
                    added(0.5),
                    added(0.99),
                );
                let _ = run.seconds;
            }
        }
        let d = max_throughput(&client, &direct, 64, secs).await;
        let r = max_throughput(&client, &routed, 64, secs).await;
        println!("\nmax throughput (64 connections): direct {d:.0} req/s, router {r:.0} req/s, ratio {:.2}", r / d);
    });
    let rss = peak_rss_kib(router.0.id());
    println!(
        "router peak RSS: {}",
        rss.map_or("unknown".into(), |k| format!(
            "{:.1} MiB",
            k as f64 / 1024.0
        ))
    );
}
