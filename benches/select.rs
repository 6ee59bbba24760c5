//! One routing decision: filter, estimate and rank N candidates with warm statistics, for the
//! default policy and the baselines.
//!
//! `cargo bench --bench select`

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::SeedableRng;
use switchyard::catalog::Catalog;
use switchyard::config::{Config, PolicyName};
use switchyard::pricing::PriceSheet;
use switchyard::route::hints::LatencyTarget;
use switchyard::route::{Constraints, LatencyMetric, RouteRequest};
use switchyard::select::{self, filter, Context};
use switchyard::stats::{Stats, StatsTable, Success};

/// When the benchmark decides: one minute after the router's epoch.
const NOW: u64 = 60_000_000_000;

/// `n` endpoints over `n / 4` providers, each with fifty recent outcomes (the last second
/// before [`NOW`]); with `failing`, every endpoint also had a failure a moment ago, so no
/// candidate takes the success-draw shortcut.
fn setup(n: usize, failing: bool) -> (Catalog, std::sync::Arc<Stats>) {
    let providers = n.div_ceil(4);
    let mut config = "[server]\n".to_owned();
    let mut sheets = Vec::new();
    for p in 0..providers {
        config.push_str(&format!(
            "[[providers]]\nname = \"p{p}\"\nbase_url = \"http://p{p}\"\n"
        ));
        let mut sheet =
            format!("provider = \"p{p}\"\neffective = \"2026-11-01\"\nsource = \"bench\"\n");
        for m in 0..4.min(n - p * 4) {
            let price = 0.1 + (p * 4 + m) as f64 * 0.05;
            sheet.push_str(&format!(
                "[models.m{m}]\ninput_per_mtok = {price:?}\noutput_per_mtok = {:?}\nquality = 0.8\ncontext_window = 131072\n",
                price * 3.0
            ));
        }
        sheets.push(PriceSheet::parse(&sheet, Path::new(&format!("p{p}.toml"))).expect("sheet"));
    }
    let config = Config::parse(&config, Path::new("bench.toml")).expect("config");
    let catalog = Catalog::build(&config, &sheets, &|_| None).expect("catalog");
    let stats = Stats::new(Duration::from_secs(300), Duration::from_secs(60));
    let table = stats.table(&catalog);
    for i in 0..catalog.endpoints().len() {
        for k in 0..50u64 {
            table.begin(i);
            let ttft = 100.0 + (i * 37 % 900) as f64 + (k % 7) as f64 * 10.0;
            let s = Success {
                ttft_ms: Some(ttft),
                total_ms: ttft + 2000.0,
                prompt_tokens: Some(800),
                output_tokens: Some(250),
                prompt_bytes: Some(3200),
                cost_usd: None,
            };
            table.success(i, &s, NOW - 1_000_000_000 + k * 20_000_000);
        }
        if failing {
            // Timed, as the attempt machine records it: the selector then prices the
            // fallback's late start against the latency target.
            table.begin(i);
            table.failure_after(
                i,
                switchyard::stats::FailureClass::ServerError,
                Some(300.0),
                NOW - 1_000_000,
            );
        }
    }
    (catalog, stats)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision");
    for (n, failing) in [(8usize, false), (200, false), (8, true), (200, true)] {
        let (catalog, stats) = setup(n, failing);
        let table: StatsTable = stats.table(&catalog);
        let request = RouteRequest {
            operation: Default::default(),
            stream: true,
            messages_bytes: 3200,
            max_output_tokens: None,
            constraints: Constraints {
                metric: LatencyMetric::Ttft,
                latency: vec![LatencyTarget {
                    percentile: 95.0,
                    max_ms: 800.0,
                }],
                min_quality: Some(0.7),
                ..Constraints::default()
            },
        };
        let all = catalog.resolve("auto").expect("auto").to_vec();
        for name in [
            PolicyName::Thompson,
            PolicyName::Cheapest,
            PolicyName::P2cPeakEwma,
            PolicyName::OpenrouterPrice,
        ] {
            let policy = select::from_name(name);
            let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
            if failing && name != PolicyName::Thompson {
                continue;
            }
            let mut label =
                format!("{}", serde_json::to_value(name).expect("name")).replace('"', "");
            if failing {
                label.push_str("-all-failing");
            }
            group.bench_with_input(BenchmarkId::new(label, n), &n, |b, _| {
                b.iter(|| {
                    let now = NOW;
                    let (kept, _) = filter::filter(&request, &catalog, &table, &all);
                    let ctx = Context {
                        request: &request,
                        catalog: &catalog,
                        stats: &table,
                        now_ns: now,
                    };
                    black_box(select::rank(
                        &*policy,
                        &ctx,
                        std::slice::from_ref(&kept),
                        &mut rng,
                    ))
                })
            });
        }
    }
    group.finish();
}

/// The parts of one Thompson draw, to see where a decision's time goes.
fn parts(c: &mut Criterion) {
    use switchyard::select::posterior::{draw_log_normal, draw_success, LogNormalDraw};
    use switchyard::stats::LogSummary;
    let (catalog, stats) = setup(8, false);
    let table = stats.table(&catalog);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let data = Some(LogSummary {
        weight: 50.0,
        mean: 5.5,
        var: 0.1,
    });
    let mut group = c.benchmark_group("draw");
    group.bench_function("view", |b| {
        b.iter(|| black_box(table.view(black_box(3), NOW)))
    });
    group.bench_function("success_beta", |b| {
        b.iter(|| black_box(draw_success(black_box(48.0), black_box(2.0), &mut rng)))
    });
    group.bench_function("latency_nig", |b| {
        b.iter(|| black_box(draw_log_normal(black_box(data), 300f64.ln(), &mut rng)))
    });
    let d = LogNormalDraw {
        mu: 5.5,
        sigma: 0.3,
    };
    group.bench_function("ln_cdf", |b| {
        b.iter(|| black_box(black_box(d).ln_cdf(black_box(800.0))))
    });
    // What the filter does per candidate: the cost estimate under the model's lock.
    let request = RouteRequest {
        operation: Default::default(),
        stream: true,
        messages_bytes: 3200,
        max_output_tokens: None,
        constraints: Constraints::default(),
    };
    let ep = catalog.endpoint(3).clone();
    group.bench_function("estimate", |b| {
        b.iter(|| {
            let est = table.with_model(black_box(3), |m| {
                select::estimate::estimate(&request, &ep, m)
            });
            black_box(est)
        })
    });
    group.finish();
}

criterion_group!(benches, bench, parts);
criterion_main!(benches);
