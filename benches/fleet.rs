//! What the fleet costs a replica, in process: the request path's parts that change with
//! `[fleet]` (recording an outcome when peers' figures are combined into the published
//! view; admitting a request against the fleet's rate instead of the local token bucket),
//! side by side with their counterparts alone, and one sync round's CPU work at 200
//! endpoints × 10 replicas (this replica's snapshot taken and serialised, nine peers'
//! parsed, merged and installed). The network round trips of a sync are Redis's and are not
//! in these numbers; the end-to-end comparison with a real Redis is `cargo bench --bench
//! overhead` with `OVERHEAD_PARTS=fleet`.
//!
//! `cargo bench --bench fleet`

use std::collections::HashMap;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use switchyard::catalog::Catalog;
use switchyard::config::Config;
use switchyard::fleet::limits::FleetRate;
use switchyard::fleet::merge::{merge, Instant, ReplicaSnapshot};
use switchyard::pricing::PriceSheet;
use switchyard::stats::peers::PeerFigures;
use switchyard::stats::{Stats, Success};

fn catalog(n: usize) -> Catalog {
    let mut sheet = "provider = \"p\"\neffective = \"2026-11-01\"\nsource = \"bench\"\n".to_owned();
    for i in 0..n {
        sheet.push_str(&format!(
            "[models.m{i}]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n"
        ));
    }
    let sheet = PriceSheet::parse(&sheet, Path::new("p.toml")).expect("sheet");
    let config = Config::parse(
        "[server]\n[[providers]]\nname = \"p\"\nbase_url = \"http://p\"\n",
        Path::new("bench.toml"),
    )
    .expect("config");
    Catalog::build(&config, &[sheet], &|_| None).expect("catalog")
}

const OK: Success = Success {
    ttft_ms: Some(180.0),
    total_ms: 950.0,
    prompt_tokens: Some(800),
    output_tokens: Some(250),
    prompt_bytes: Some(3200),
    cost_usd: None,
};

/// A registry with `n` endpoints that each saw `per` answers.
fn learned(catalog: &Catalog, per: u64) -> std::sync::Arc<Stats> {
    let stats = Stats::new(Duration::from_secs(300), Duration::from_secs(60));
    let table = stats.table(catalog);
    for i in 0..table.len() {
        for k in 0..per {
            table.begin(i);
            table.success(i, &OK, (k + 1) * 10_000_000);
        }
    }
    stats
}

fn request_path(c: &mut Criterion) {
    let catalog = catalog(8);
    let mut g = c.benchmark_group("fleet/record_success");
    for (name, peers) in [("alone", false), ("with_peers", true)] {
        let stats = learned(&catalog, 20);
        let table = stats.table(&catalog);
        if peers {
            let peer = learned(&catalog, 20);
            let own = peer.own_figures(200_000_000, |_| 0);
            let at = Instant {
                now_ns: 200_000_000,
                unix_ms: 1_000_000,
            };
            let snapshot = ReplicaSnapshot::of("peer", own, at);
            stats.set_peers(&merge([&snapshot], at, &stats.half_lives()));
        }
        let mut now: u64 = 1_000_000_000;
        g.bench_function(name, |b| {
            b.iter(|| {
                now += 1_000_000;
                table.begin(3);
                table.success(3, black_box(&OK), now);
            })
        });
    }
    g.finish();

    // Admission at a rate that never refuses: the cost of the check itself.
    let mut g = c.benchmark_group("fleet/admit");
    let bucket = governor::RateLimiter::direct(governor::Quota::per_minute(
        NonZeroU32::new(6_000_000).expect("non-zero"),
    ));
    g.bench_function("local_token_bucket", |b| {
        b.iter(|| black_box(bucket.check().is_ok()))
    });
    let rate = std::sync::Mutex::new(FleetRate::new(6_000_000, 6_000_000));
    let origin = std::time::Instant::now();
    g.bench_function("fleet_gcra", |b| {
        b.iter(|| {
            let now = origin.elapsed().as_micros() as u64;
            black_box(rate.lock().expect("lock").admit(now, 1).is_ok())
        })
    });
    g.finish();
}

fn sync_round(c: &mut Criterion) {
    let catalog = catalog(200);
    let at = Instant {
        now_ns: 60_000_000_000,
        unix_ms: 1_000_000_000,
    };
    let mine = learned(&catalog, 5);
    let peers: Vec<Vec<u8>> = (0..9)
        .map(|r| {
            let own = learned(&catalog, 5).own_figures(at.now_ns, |_| 0);
            serde_json::to_vec(&ReplicaSnapshot::of(&format!("r{r}"), own, at)).expect("json")
        })
        .collect();
    println!(
        "one snapshot of 200 endpoints: {} bytes of JSON",
        peers[0].len()
    );
    c.bench_function("fleet/sync_round_200_endpoints_10_replicas", |b| {
        b.iter(|| {
            let own = mine.own_figures(at.now_ns, |_| 0);
            let body = serde_json::to_vec(&ReplicaSnapshot::of("me", own, at)).expect("json");
            let snapshots: Vec<ReplicaSnapshot> = peers
                .iter()
                .map(|p| serde_json::from_slice(p).expect("parses"))
                .collect();
            let merged: HashMap<String, PeerFigures> = merge(&snapshots, at, &mine.half_lives());
            mine.set_peers(&merged);
            black_box(body.len())
        })
    });
}

criterion_group!(benches, request_path, sync_round);
criterion_main!(benches);
