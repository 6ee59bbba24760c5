//! The router beside nginx, the reference proxy (DESIGN §9; `OVERHEAD_PARTS=nginx,streams`):
//! - `nginx`: plain requests, 1,000 req/s each to the upstream directly, through nginx and
//!   through the router, interleaved (so all three meet the same moments), three rounds;
//!   then each one's closed-loop maximum throughput. Prints the added p50s and their ratio,
//!   and each proxy's throughput as a share of direct and their ratio.
//! - `streams`: 2,000 concurrent streams (100 tokens, 20 ms apart) for 15 s through each
//!   proxy, fresh processes: streams completed, the proxy's CPU time per completed stream,
//!   its peak RSS, and the ratios.
//!
//! Targets (issue "Data plane"): added p50 ≤ 1.5× nginx's, throughput ratio ≥ 0.8× nginx's,
//! CPU per stream ≤ 1.1× nginx's, completed streams ≥ 0.9× nginx's, peak RSS ≤ 64 MiB.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::nginx::{self, cpu_time};
use super::{max_throughput, ms, open_loop_over, peak_rss_kib, spawn, Proc, BODY};

/// A stream of 100 tokens (the fake upstream spaces them by its `--token-interval-ms`).
pub const LONG_STREAM_BODY: &str = r#"{"model": "m", "stream": true, "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 100}"#;

/// The plain-request comparison: `direct`, nginx and the router (`routed`) on one upstream.
pub fn plain(rt: &tokio::runtime::Runtime, upstream_url: &str, routed: &str, secs: u64) {
    let ng = match nginx::start(upstream_url) {
        Ok(n) => n,
        Err(why) => return println!("\nnginx reference: skipped ({why})"),
    };
    let direct = format!("{upstream_url}/chat/completions");
    let via_nginx = format!("{}/chat/completions", ng.url);
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .expect("client");
        let urls = [direct.as_str(), via_nginx.as_str(), routed];
        open_loop_over(&client, &urls, BODY, 500, 1, false, None).await;
        println!("\nbeside nginx (1 worker, keepalive, proxy_buffering off): 1,000 req/s each to direct, nginx and the router, interleaved, {secs} s");
        let mut ratios = Vec::new();
        for _ in 0..3 {
            let runs = open_loop_over(&client, &urls, BODY, 1000, secs, false, None).await;
            let p50 = |i: usize| ms(&runs[i].latency, 0.5);
            let (n, r) = (p50(1) - p50(0), p50(2) - p50(0));
            ratios.push(r / n);
            println!(
                "  direct p50 {:.3} ms; added p50: nginx {n:+.3} ms, router {r:+.3} ms, router/nginx {:.2}× (target ≤ 1.5×); errors {}",
                p50(0),
                r / n,
                runs.iter().map(|x| x.errors).sum::<u64>()
            );
        }
        let d = max_throughput(&client, &direct, 64, secs).await;
        let n = max_throughput(&client, &via_nginx, 64, secs).await;
        let r = max_throughput(&client, routed, 64, secs).await;
        println!(
            "  max throughput (64 connections): direct {d:.0}, nginx {n:.0} ({:.2} of direct), router {r:.0} ({:.2}); router/nginx {:.2}× (target ≥ 0.8×)",
            n / d,
            r / d,
            r / n
        );
    });
    drop(ng);
}

/// What one proxy did with the stream load.
struct StreamRun {
    done: u64,
    errors: u64,
    cpu_per_stream_us: f64,
    peak_rss_mib: f64,
}

/// The stream comparison, on a fake upstream of 100 tokens 20 ms apart.
pub fn streams(rt: &tokio::runtime::Runtime, concurrent: usize, secs: u64) {
    let (_upstream, upstream_url) = spawn(
        &[
            "fake-provider",
            "--tokens",
            "100",
            "--token-interval-ms",
            "20",
        ],
        "fake provider listening on ",
    );
    println!("\n{concurrent} concurrent streams (100 tokens, 20 ms apart) for {secs} s, each proxy fresh:");
    let nginx_run = match nginx::start(&upstream_url) {
        Ok(ng) => {
            let run = stream_load(
                rt,
                &ng.proc,
                &format!("{}/chat/completions", ng.url),
                concurrent,
                secs,
            );
            Some(run)
        }
        Err(why) => {
            println!("  nginx: skipped ({why})");
            None
        }
    };
    // Streams are long: room for all of them at once.
    let (router, router_url, _dir) = super::router_on(
        &upstream_url,
        "state_dir = \"state\"\nmax_concurrent_requests = 10000",
    );
    let router_run = stream_load(
        rt,
        &router,
        &format!("{router_url}/v1/chat/completions"),
        concurrent,
        secs,
    );
    for (who, run) in [("nginx", nginx_run.as_ref()), ("router", Some(&router_run))] {
        if let Some(r) = run {
            println!(
                "  {who:<7} streams done {:>6} ({} errors), CPU per stream {:>7.0} µs, peak RSS {:.1} MiB",
                r.done, r.errors, r.cpu_per_stream_us, r.peak_rss_mib
            );
        }
    }
    if let Some(n) = nginx_run {
        println!(
            "  router/nginx: CPU per stream {:.2}× (target ≤ 1.1×), streams done {:.2}× (target ≥ 0.9×); router peak RSS {:.1} MiB (target ≤ 64)",
            router_run.cpu_per_stream_us / n.cpu_per_stream_us,
            router_run.done as f64 / n.done as f64,
            router_run.peak_rss_mib
        );
    }
}

/// `concurrent` clients streaming back to back through `url` for `secs`.
fn stream_load(
    rt: &tokio::runtime::Runtime,
    proxy: &Proc,
    url: &str,
    concurrent: usize,
    secs: u64,
) -> StreamRun {
    let pid = proxy.0.id();
    let (done, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let cpu_before = cpu_time(pid).unwrap_or_default();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrent + 64)
            .build()
            .expect("client");
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut workers = Vec::with_capacity(concurrent);
        for i in 0..concurrent {
            let (client, url, done, errors) =
                (client.clone(), url.to_owned(), done.clone(), errors.clone());
            workers.push(tokio::spawn(async move {
                // Spread the starts over the first two seconds, as streams arrive.
                tokio::time::sleep(Duration::from_micros(
                    i as u64 * 2_000_000 / concurrent as u64,
                ))
                .await;
                while Instant::now() < deadline {
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(LONG_STREAM_BODY)
                        .send()
                        .await;
                    let ok = match sent {
                        Ok(r) if r.status().is_success() => {
                            r.bytes().await.is_ok_and(|b| b.ends_with(b"[DONE]\n\n"))
                        }
                        _ => false,
                    };
                    // Streams cut off by the end of the run count as neither.
                    if Instant::now() < deadline {
                        let counter = if ok { &done } else { &errors };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for w in workers {
            let _ = w.await;
        }
    });
    let cpu = cpu_time(pid).unwrap_or_default().saturating_sub(cpu_before);
    let done = done.load(Ordering::Relaxed);
    StreamRun {
        done,
        errors: errors.load(Ordering::Relaxed),
        cpu_per_stream_us: cpu.as_secs_f64() * 1e6 / done.max(1) as f64,
        peak_rss_mib: peak_rss_kib(pid).unwrap_or(0) as f64 / 1024.0,
    }
}
