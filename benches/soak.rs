//! Soak: a fixed request rate for a set time against fake providers, the router's memory
//! sampled all along.
//!
//! `cargo bench --bench soak` starts two fake providers (one healthy, one failing 5% of its
//! requests with a noisy first token) and the release router with a client key, then sends
//! `SOAK_RATE` requests/s (default 200; JSON and streams alternating, every one
//! authenticated) for `SOAK_SECONDS` (default 60). Every `SOAK_SAMPLE_SECONDS` (default 5)
//! it prints the router's resident memory and the requests so far; at the end, latency
//! quantiles, errors, and the memory growth between the end of warm-up (the first quarter)
//! and the end. A leak shows as growth that keeps climbing with the run's length.

mod common;

use std::time::Instant;

use common::{ms, open_loop, peak_rss_kib, rss_kib, spawn, BODY, STREAM_BODY};

const KEY: &str = "sy-soak-test-key";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let secs = env_u64("SOAK_SECONDS", 60);
    let rate = env_u64("SOAK_RATE", 200);
    let every = env_u64("SOAK_SAMPLE_SECONDS", 5).max(1);
    let (_healthy, healthy_url) = spawn(
        &[
            "fake-provider",
            "--tokens",
            "16",
            "--ttft-ms",
            "5",
            "--token-interval-ms",
            "1",
        ],
        "fake provider listening on ",
    );
    let (_flaky, flaky_url) = spawn(
        &[
            "fake-provider",
            "--tokens",
            "16",
            "--ttft-ms",
            "2",
            "--error-rate",
            "0.05",
        ],
        "fake provider listening on ",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let pricing = dir.path().join("pricing");
    std::fs::create_dir(&pricing).expect("mkdir");
    for (p, price) in [("healthy", "1.0"), ("flaky", "0.5")] {
        std::fs::write(
            pricing.join(format!("{p}.toml")),
            format!("provider = \"{p}\"\neffective = \"2026-11-01\"\nsource = \"soak\"\n[models.m]\ninput_per_mtok = {price}\noutput_per_mtok = {price}\n"),
        )
        .expect("sheet");
    }
    let digest = switchyard::auth::to_hex(&switchyard::auth::digest(KEY.as_bytes()));
    let config = dir.path().join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nwatch_pricing = false\nstate_dir = \"state\"\n\
             [[clients]]\nname = \"soak\"\nkey_sha256 = \"{digest}\"\n\
             [[providers]]\nname = \"healthy\"\nbase_url = \"{healthy_url}\"\n\
             [[providers]]\nname = \"flaky\"\nbase_url = \"{flaky_url}\"\n"
        ),
    )
    .expect("config");
    let (router, router_url) = spawn(
        &["serve", "--config", config.to_str().expect("utf8 path")],
        "switchyard listening on ",
    );
    let pid = router.0.id();
    let url = format!("{router_url}/v1/chat/completions");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    println!("\nswitchyard soak: {rate} req/s for {secs} s (JSON and streams alternating), RSS every {every} s\n");
    println!(
        "{:>8} {:>10} {:>10} {:>10}",
        "t (s)", "RSS MiB", "requests", "errors"
    );
    let mib = |k: Option<u64>| k.map_or(f64::NAN, |k| k as f64 / 1024.0);
    let started = Instant::now();
    let (mut sent, mut errors) = (0u64, 0u64);
    let mut hist =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let mut samples: Vec<(u64, f64)> = vec![(0, mib(rss_kib(pid)))];
    println!("{:>8} {:>10.1} {:>10} {:>10}", 0, samples[0].1, 0, 0);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .expect("client");
    let slices = secs.div_ceil(every);
    for i in 0..slices {
        let len = every.min(secs - i * every);
        // Half the slice's requests as JSON, half streamed, interleaved by running both.
        let (a, b) = rt.block_on(async {
            tokio::join!(
                open_loop(
                    &client,
                    &url,
                    BODY,
                    (rate / 2).max(1),
                    len,
                    false,
                    Some(KEY)
                ),
                open_loop(
                    &client,
                    &url,
                    STREAM_BODY,
                    (rate / 2).max(1),
                    len,
                    false,
                    Some(KEY)
                ),
            )
        });
        for run in [&a, &b] {
            sent += run.sent;
            errors += run.errors;
            hist.add(&run.latency).expect("same bounds");
        }
        let t = started.elapsed().as_secs();
        let rss = mib(rss_kib(pid));
        samples.push((t, rss));
        println!("{t:>8} {rss:>10.1} {sent:>10} {errors:>10}");
    }
    let warm = samples[samples.len() / 4].1;
    let end = samples.last().expect("samples").1;
    let max = samples.iter().map(|s| s.1).fold(f64::MIN, f64::max);
    println!(
        "\n{sent} requests, {errors} errors ({:.3}%), latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms",
        errors as f64 * 100.0 / sent.max(1) as f64,
        ms(&hist, 0.5),
        ms(&hist, 0.99),
        ms(&hist, 0.999)
    );
    println!(
        "router RSS: {warm:.1} MiB after warm-up, {end:.1} MiB at the end ({:+.1} MiB), max {max:.1} MiB, peak (VmHWM) {:.1} MiB",
        end - warm,
        mib(peak_rss_kib(pid))
    );
}
