//! Simulator throughput: simulated requests per second, per policy, on one core.
//!
//! `cargo bench --bench sim`

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use switchyard::sim::engine;
use switchyard::sim::scenario::{Scenario, SimPolicy};

fn bench(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("simulations/outage.toml");
    let mut s = Scenario::load(&path).expect("scenario");
    // Five simulated minutes with the outage inside them.
    s.duration = Duration::from_secs(300);
    s.events[0].at = Duration::from_secs(100);
    s.events[0].until = Some(Duration::from_secs(200));
    let reqs = engine::requests(&s, 7);
    let mut group = c.benchmark_group("simulate");
    group.throughput(Throughput::Elements(reqs.len() as u64));
    group.sample_size(20);
    for policy in [
        SimPolicy::Thompson,
        SimPolicy::RoundRobin,
        SimPolicy::P2cPeakEwma,
        SimPolicy::Oracle,
    ] {
        group.bench_with_input(
            BenchmarkId::new(policy.name(), reqs.len()),
            &policy,
            |b, &p| b.iter(|| black_box(engine::run(&s, p, &reqs, 7))),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
