//! Statistics hot paths: recording one outcome, reading what the selector reads, and the
//! (rarer, human-facing) report of one endpoint.
//!
//! `cargo bench --bench stats`

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use switchyard::catalog::Catalog;
use switchyard::config::Config;
use switchyard::pricing::PriceSheet;
use switchyard::stats::{FailureClass, Stats, Success};

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

fn bench(c: &mut Criterion) {
    let catalog = catalog(8);
    let stats = Stats::new(Duration::from_secs(300), Duration::from_secs(60));
    let table = stats.table(&catalog);
    let ok = Success {
        ttft_ms: Some(180.0),
        total_ms: 950.0,
        prompt_tokens: Some(800),
        output_tokens: Some(250),
        prompt_bytes: Some(3200),
        cost_usd: None,
    };
    // Time advances 1 ms per outcome, so windows rotate and decay is exercised.
    let mut now: u64 = 0;
    c.bench_function("stats/record_success", |b| {
        b.iter(|| {
            now += 1_000_000;
            table.begin(3);
            table.success(3, black_box(&ok), now);
        })
    });
    c.bench_function("stats/record_failure", |b| {
        b.iter(|| {
            now += 1_000_000;
            table.begin(3);
            // Timed, as the attempt machine records a failure before the first byte.
            let class = black_box(FailureClass::ServerError);
            table.failure_after(3, class, Some(black_box(250.0)), now);
        })
    });
    c.bench_function("stats/view_one_endpoint", |b| {
        b.iter(|| black_box(table.view(black_box(3), now)))
    });
    c.bench_function("stats/report_one_endpoint_all_windows", |b| {
        b.iter(|| {
            let s = table.read(3);
            let hl = table.half_lives();
            black_box(switchyard::admin::endpoints::endpoint_entry(&s, now, &hl))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
