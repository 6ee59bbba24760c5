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
//! `OVERHEAD_SECONDS` sets each run's length (default 8). Then 1,000 req/s direct and through
//! the router at the same time, requests interleaved (`interleaved`), the router's memory
//! with 200 endpoints (`memory`) and its start-up with 5,000 (`startup`); `OVERHEAD_PARTS`
//! picks. `SWITCHYARD_BIN` runs another build of the binary (an A/B in one session).
//! `OVERHEAD_ROUTER_CONFIG` is appended to the router's config (e.g.
//! `$'[log]\nenabled = false'` to measure the request log's share). `nginx` and `streams`
//! put the router beside nginx, the reference proxy (see `common/reference.rs`; without
//! nginx installed, `apt-get install nginx`, its column is skipped).

mod common;

use std::time::{Duration, Instant};

use common::{
    max_throughput, ms, open_loop, open_loop_over, peak_rss_kib, spawn, BODY, STREAM_BODY,
};

/// Writes a config and price sheets for `providers` × `models` endpoints, every provider
/// pointing at `upstream`, into `dir`; returns the config's path.
fn write_catalog(
    dir: &std::path::Path,
    upstream: &str,
    providers: usize,
    models: usize,
    routing: &str,
) -> std::path::PathBuf {
    let pricing = dir.join("pricing");
    std::fs::create_dir_all(&pricing).expect("mkdir");
    let mut config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nwatch_pricing = false\nstate_dir = \"state\"\n{routing}\n"
    );
    for p in 0..providers {
        config.push_str(&format!(
            "[[providers]]\nname = \"p{p}\"\nbase_url = \"{upstream}\"\n"
        ));
        let mut sheet =
            format!("provider = \"p{p}\"\neffective = \"2026-11-01\"\nsource = \"bench\"\n");
        for m in 0..models {
            let price = 0.05 + ((p * models + m) % 97) as f64 * 0.01;
            sheet.push_str(&format!(
                "[models.\"model-{m}\"]\ninput_per_mtok = {price:.2}\noutput_per_mtok = {:.2}\ncontext_window = 131072\n",
                price * 3.0
            ));
        }
        std::fs::write(pricing.join(format!("p{p}.toml")), sheet).expect("sheet");
    }
    let path = dir.join("switchyard.toml");
    std::fs::write(&path, config).expect("config");
    path
}

/// Time from starting `switchyard serve` to its "listening" line, `runs` times.
fn startup_ms(config: &std::path::Path, runs: usize) -> Vec<f64> {
    (0..runs)
        .map(|_| {
            let _ = std::fs::remove_dir_all(config.parent().expect("dir").join("state"));
            let started = Instant::now();
            let (router, _) = spawn(
                &["serve", "--config", config.to_str().expect("utf8 path")],
                "switchyard listening on ",
            );
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            drop(router);
            ms
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // Criterion-style flags (`--bench`) are accepted and ignored.
    let secs: u64 = std::env::var("OVERHEAD_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    // `OVERHEAD_PARTS`: any of latency, interleaved, nginx, streams, anthropic, fleet, memory,
    // startup (default: all).
    let parts = std::env::var("OVERHEAD_PARTS").unwrap_or_else(|_| {
        "latency,interleaved,nginx,streams,anthropic,fleet,memory,startup".into()
    });
    let part = |name: &str| parts.split(',').any(|p| p.trim() == name);
    let (_upstream, upstream_url) = spawn(
        &["fake-provider", "--tokens", "16"],
        "fake provider listening on ",
    );
    let (router, router_url, _dir) = common::router_on(&upstream_url, "");
    let direct = format!("{upstream_url}/chat/completions");
    let routed = format!("{router_url}/v1/chat/completions");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    if part("latency") {
        rt.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(512).build().expect("client");
        // Warm both paths (connections, caches, the router's statistics).
        open_loop(&client, &direct, BODY, 500, 1, false, None).await;
        open_loop(&client, &routed, BODY, 500, 1, false, None).await;

        println!("\nswitchyard overhead, {secs} s per run, loopback, 2 cores shared by load generator, upstream and router\n");
        println!("{:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}", "run", "p50 ms", "p99 ms", "p99.9 ms", "errors", "added p50", "added p99");
        for (label, body, rate, first) in [
            ("1,000 req/s", BODY, 1000, false),
            ("5,000 req/s", BODY, 5000, false),
            ("stream TTFT, 500 req/s", STREAM_BODY, 500, true),
            ("stream TTFT, 5,000 req/s", STREAM_BODY, 5000, true),
        ] {
            let d = open_loop(&client, &direct, body, rate, secs, first, None).await;
            let r = open_loop(&client, &routed, body, rate, secs, first, None).await;
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
    if part("interleaved") {
        interleaved(&rt, &direct, &routed, secs);
    }
    if part("nginx") {
        common::reference::plain(&rt, &upstream_url, &routed, secs);
    }
    if part("anthropic") {
        anthropic(&rt, &upstream_url, secs);
    }
    if part("fleet") {
        fleet(&rt, &upstream_url, secs);
    }
    drop(router);
    if part("streams") {
        // `OVERHEAD_STREAMS` concurrent streams (default 2,000), for 15 s.
        let n = std::env::var("OVERHEAD_STREAMS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        common::reference::streams(&rt, n, 15);
    }
    if part("memory") {
        memory(&rt, &upstream_url, secs);
    }
    if part("startup") {
        startup(&upstream_url);
    }
}

/// Anthropic clients, streaming: 500 req/s each, interleaved, to the fake's own Messages API
/// (direct), through a router whose provider speaks it too (Anthropic → Anthropic: relayed
/// byte for byte, metered beside), and through one whose provider speaks OpenAI's
/// (Anthropic → OpenAI: translated both ways). Time to the first chunk.
fn anthropic(rt: &tokio::runtime::Runtime, upstream_url: &str, secs: u64) {
    const MESSAGES: &str = r#"{"model": "m", "max_tokens": 16, "stream": true, "messages": [{"role": "user", "content": "Say something short."}]}"#;
    // A native Anthropic provider, and the same upstream spoken to as OpenAI (translated).
    let routers: Vec<_> = ["protocol = \"anthropic\"\n", ""]
        .into_iter()
        .map(|protocol| common::router_with(upstream_url, "state_dir = \"state\"", protocol))
        .collect();
    let direct = format!("{upstream_url}/messages");
    let native = format!("{}/v1/messages", routers[0].1);
    let translated = format!("{}/v1/messages", routers[1].1);
    rt.block_on(async {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("anthropic-version", reqwest::header::HeaderValue::from_static("2023-06-01"));
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .pool_max_idle_per_host(512)
            .build()
            .expect("client");
        let urls = [direct.as_str(), native.as_str(), translated.as_str()];
        open_loop_over(&client, &urls, MESSAGES, 300, 1, true, None).await;
        println!();
        for _ in 0..3 {
            let runs = open_loop_over(&client, &urls, MESSAGES, 500, secs, true, None).await;
            let q = |run: &common::Run, q: f64| ms(&run.latency, q);
            let (d, n, t) = (&runs[0], &runs[1], &runs[2]);
            println!(
                "Anthropic stream TTFT, 500 req/s each, interleaved, {secs} s: direct p50 {:.3}; Anthropic→Anthropic p50 {:.3} (added {:+.3}, p99 {:+.3}); Anthropic→OpenAI p50 {:.3} (added {:+.3}, p99 {:+.3}) ({} errors)",
                q(d, 0.5),
                q(n, 0.5), q(n, 0.5) - q(d, 0.5), q(n, 0.99) - q(d, 0.99),
                q(t, 0.5), q(t, 0.5) - q(d, 0.5), q(t, 0.99) - q(d, 0.99),
                d.errors + n.errors + t.errors
            );
        }
    });
    drop(routers);
}

/// The request path with and without `[fleet]`, measured at once: 1,000 req/s through the
/// router alone and 1,000 req/s through a replica of a two-replica fleet syncing every
/// 250 ms with a local `redis-server` (started here; the part is skipped without one).
fn fleet(rt: &tokio::runtime::Runtime, upstream_url: &str, secs: u64) {
    let free = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("addr").port()
    };
    let port = free();
    let Ok(redis) = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
    else {
        return println!("\nfleet: skipped (install redis-server: apt-get install redis-server)");
    };
    let redis = common::Proc(redis);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The same catalog three times: alone, and two replicas of a fleet.
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let replicas: Vec<_> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let fleet = if i == 0 {
                String::new()
            } else {
                format!("[fleet]\nredis_url = \"redis://127.0.0.1:{port}/\"\nsync_interval = \"250ms\"\n")
            };
            let config = write_catalog(d.path(), upstream_url, 1, 1, &fleet);
            spawn(
                &["serve", "--config", config.to_str().expect("utf8 path")],
                "switchyard listening on ",
            )
        })
        .collect();
    const M0: &str = r#"{"model": "model-0", "messages": [{"role": "user", "content": "Say something short."}], "max_tokens": 16}"#;
    let url = |i: usize| format!("{}/v1/chat/completions", replicas[i].1);
    let (alone, routed, peer) = (url(0), url(1), url(2));
    let alone = alone.as_str();
    rt.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(512).build().expect("client");
        // The peer gets traffic too, so the measured replica has peers' figures to combine.
        open_loop_over(&client, &[alone, &routed, &peer], M0, 300, 1, false, None).await;
        println!();
        for _ in 0..3 {
            let runs = open_loop_over(&client, &[alone, &routed], M0, 1000, secs, false, None).await;
            let (a, f) = (&runs[0], &runs[1]);
            println!(
                "1,000 req/s each, interleaved, {secs} s: alone p50 {:.3} p99 {:.3}, fleet replica p50 {:.3} p99 {:.3}; fleet minus alone p50 {:+.3} ms, p99 {:+.3} ms ({} errors)",
                ms(&a.latency, 0.5), ms(&a.latency, 0.99), ms(&f.latency, 0.5), ms(&f.latency, 0.99),
                ms(&f.latency, 0.5) - ms(&a.latency, 0.5), ms(&f.latency, 0.99) - ms(&a.latency, 0.99),
                a.errors + f.errors
            );
        }
    });
    drop(replicas);
    drop(redis);
}

/// Added latency at 1,000 req/s with both sides measured at once: 1,000 req/s direct and
/// 1,000 req/s through the router, their requests interleaved, so drift in the machine
/// (the direct baseline moves by more than the router adds between separate runs) hits
/// both sides alike. Three runs of `secs`.
fn interleaved(rt: &tokio::runtime::Runtime, direct: &str, routed: &str, secs: u64) {
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .build()
            .expect("client");
        open_loop_over(&client, &[direct, routed], BODY, 500, 1, false, None).await;
        println!();
        for _ in 0..3 {
            let runs = open_loop_over(&client, &[direct, routed], BODY, 1000, secs, false, None).await;
            let (d, r) = (&runs[0], &runs[1]);
            let q = |run: &common::Run, q: f64| ms(&run.latency, q);
            println!(
                "1,000 req/s each, interleaved, {secs} s: direct p50 {:.3} p99 {:.3}, router p50 {:.3} p99 {:.3}; added p50 {:+.3} ms, p99 {:+.3} ms, p99.9 {:+.3} ms ({} errors)",
                q(d, 0.5),
                q(d, 0.99),
                q(r, 0.5),
                q(r, 0.99),
                q(r, 0.5) - q(d, 0.5),
                q(r, 0.99) - q(d, 0.99),
                q(r, 0.999) - q(d, 0.999),
                d.errors + r.errors
            );
        }
    });
}

fn memory(rt: &tokio::runtime::Runtime, upstream_url: &str, secs: u64) {
    // Memory with 200 endpoints all in use: round-robin over a group of all of them, so
    // every endpoint keeps statistics and latency windows (Thompson would concentrate).
    let many = tempfile::tempdir().expect("tempdir");
    let mut routing = "[routing]\npolicy = \"round-robin\"\n[groups]\nall = [".to_owned();
    let ids: Vec<String> = (0..50)
        .flat_map(|p| (0..4).map(move |m| format!("\"p{p}/model-{m}\"")))
        .collect();
    routing.push_str(&ids.join(", "));
    routing.push_str("]\n");
    let config = write_catalog(many.path(), upstream_url, 50, 4, &routing);
    let (router, router_url) = spawn(
        &["serve", "--config", config.to_str().expect("utf8 path")],
        "switchyard listening on ",
    );
    const ALL_BODY: &str = r#"{"model": "all", "messages": [{"role": "user", "content": "Say something short."}], "max_tokens": 16}"#;
    let routed = format!("{router_url}/v1/chat/completions");
    let run = rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .build()
            .expect("client");
        open_loop(&client, &routed, ALL_BODY, 2000, secs, false, None).await
    });
    println!(
        "\n200 endpoints, round-robin, 2,000 req/s for {secs} s: {} errors of {}, p50 {:.3} ms, p99 {:.3} ms, router peak RSS {}",
        run.errors,
        run.sent,
        ms(&run.latency, 0.5),
        ms(&run.latency, 0.99),
        peak_rss_kib(router.0.id()).map_or("unknown".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    );
    drop(router);
}

fn startup(upstream_url: &str) {
    // Start-up with 5,000 priced endpoints: 10 providers of 500 models each.
    let big = tempfile::tempdir().expect("tempdir");
    let config = write_catalog(big.path(), upstream_url, 10, 500, "");
    let times = startup_ms(&config, 7);
    println!(
        "start-up to listening with 5,000 priced endpoints (7 starts): median {:.0} ms, min {:.0} ms, max {:.0} ms",
        median(times.clone()),
        times.iter().copied().fold(f64::MAX, f64::min),
        times.iter().copied().fold(f64::MIN, f64::max)
    );
}
