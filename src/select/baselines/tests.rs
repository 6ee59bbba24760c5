//! Each policy's defining behaviour, one test each, plus the default policy's objectives and
//! targets other than "cheapest under a latency bound".

use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;

use crate::catalog::{Catalog, EndpointIdx};
use crate::config::PolicyName;
use crate::route::hints::{LatencyTarget, ThroughputTarget};
use crate::route::{Constraints, LatencyMetric, Prefer, RouteRequest};
use crate::select::{filter, from_name, rank, Context, Decision};
use crate::stats::{FailureClass, Stats, StatsTable, Success};

const S: u64 = 1_000_000_000;

/// Endpoints `p<i>/m`, one provider each, with `(price per million tokens, quality)`.
fn setup(endpoints: &[(f64, f64)]) -> (Catalog, StatsTable) {
    let names: Vec<String> = (0..endpoints.len()).map(|i| format!("p{i}")).collect();
    let specs: Vec<crate::catalog::testing::Spec<'_>> = endpoints
        .iter()
        .zip(&names)
        .map(|(&(price, quality), p)| (p.as_str(), "m", price, price, Some(quality)))
        .collect();
    let cat = crate::catalog::testing::catalog(&specs, "");
    let stats: Arc<Stats> = Stats::new(Duration::from_secs(300), Duration::from_secs(60));
    let table = stats.table(&cat);
    (cat, table)
}

fn request(constraints: Constraints, stream: bool) -> RouteRequest {
    RouteRequest {
        operation: Default::default(),
        stream,
        messages_bytes: 4000,
        max_output_tokens: Some(100),
        constraints,
    }
}

fn decide(
    name: PolicyName,
    policy: Option<&dyn crate::select::Policy>,
    cat: &Catalog,
    table: &StatsTable,
    req: &RouteRequest,
    now_ns: u64,
    seed: u64,
) -> Decision {
    let all: Vec<EndpointIdx> = cat.resolve("auto").expect("auto").to_vec();
    let (kept, _) = filter::filter(req, cat, table, &all);
    let ctx = Context {
        request: req,
        catalog: cat,
        stats: table,
        now_ns,
    };
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let owned = from_name(name);
    rank(policy.unwrap_or(&*owned), &ctx, &[kept], &mut rng)
}

/// `n` successes at `idx`, each `ttft_ms` to the first token and `speed` tokens/s, ending
/// at `until_ns`.
fn learn(table: &StatsTable, idx: EndpointIdx, n: usize, ttft_ms: f64, speed: f64, until_ns: u64) {
    for k in 0..n {
        let at = until_ns.saturating_sub((n - k) as u64 * 10_000_000);
        table.begin(idx);
        let tokens = 100.0;
        let success = Success {
            ttft_ms: Some(ttft_ms),
            total_ms: ttft_ms + (tokens - 1.0) * 1000.0 / speed,
            prompt_tokens: Some(1000),
            output_tokens: Some(tokens as u64),
            prompt_bytes: Some(4000),
            cost_usd: None,
        };
        table.success(idx, &success, at);
    }
}

fn first_counts(runs: usize, mut first: impl FnMut(u64) -> EndpointIdx, n: usize) -> Vec<usize> {
    let mut counts = vec![0; n];
    for seed in 0..runs as u64 {
        counts[first(seed)] += 1;
    }
    counts
}

#[test]
fn cheapest_ranks_by_estimated_cost() {
    let (cat, table) = setup(&[(3.0, 0.5), (1.0, 0.5), (2.0, 0.5)]);
    let d = decide(
        PolicyName::Cheapest,
        None,
        &cat,
        &table,
        &request(Constraints::default(), false),
        S,
        1,
    );
    assert_eq!(d.ranked, [1, 2, 0]);
}

#[test]
fn round_robin_takes_each_in_turn() {
    let (cat, table) = setup(&[(1.0, 0.5), (1.0, 0.5), (1.0, 0.5)]);
    let policy = crate::select::baselines::RoundRobin::default();
    let req = request(Constraints::default(), false);
    let firsts: Vec<EndpointIdx> = (0..6)
        .map(|_| {
            decide(
                PolicyName::RoundRobin,
                Some(&policy),
                &cat,
                &table,
                &req,
                S,
                1,
            )
            .ranked[0]
        })
        .collect();
    assert_eq!(firsts, [0, 1, 2, 0, 1, 2]);
}

#[test]
fn random_puts_each_first_about_equally() {
    let (cat, table) = setup(&[(1.0, 0.5), (5.0, 0.5), (9.0, 0.5)]);
    let req = request(Constraints::default(), false);
    let counts = first_counts(
        3000,
        |seed| decide(PolicyName::Random, None, &cat, &table, &req, S, seed).ranked[0],
        3,
    );
    assert!(
        counts.iter().all(|&c| (850..=1150).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn lowest_latency_uses_the_last_ten_samples() {
    let (cat, table) = setup(&[(1.0, 0.5), (1.0, 0.5)]);
    let req = request(Constraints::default(), true);
    learn(&table, 0, 10, 100.0, 100.0, 10 * S);
    learn(&table, 1, 10, 200.0, 100.0, 10 * S);
    let d = decide(
        PolicyName::LowestLatency,
        None,
        &cat,
        &table,
        &req,
        10 * S,
        1,
    );
    assert_eq!(d.ranked[0], 0);
    // Ten slower samples push the fast ones out of its window: only the last ten count.
    learn(&table, 0, 10, 300.0, 100.0, 20 * S);
    let d = decide(
        PolicyName::LowestLatency,
        None,
        &cat,
        &table,
        &req,
        20 * S,
        1,
    );
    assert_eq!(d.ranked[0], 1);
}

#[test]
fn p2c_peak_ewma_counts_failures_as_slow_and_forgets_while_idle() {
    let (cat, table) = setup(&[(1.0, 0.5), (1.0, 0.5)]);
    let req = request(Constraints::default(), true);
    learn(&table, 0, 5, 50.0, 100.0, 10 * S);
    learn(&table, 1, 5, 50.0, 100.0, 10 * S);
    // Fast failures at endpoint 1: they must not make it look fast.
    for k in 0..3 {
        table.begin(1);
        table.failure(1, FailureClass::ServerError, 10 * S + k);
    }
    let d = decide(
        PolicyName::P2cPeakEwma,
        None,
        &cat,
        &table,
        &req,
        10 * S + 10,
        1,
    );
    assert_eq!(d.ranked, [0, 1], "the failing endpoint goes second");
    let at = |now| table.read(1).peak_ewma.at(now).expect("observed");
    assert!(at(10 * S + 10) > 9_000.0);
    // Idle for a minute (six time constants), its estimate has decayed below 30 ms.
    assert!(at(70 * S) < 30.0, "{}", at(70 * S));
    assert!(at(70 * S) < table.read(0).peak_ewma.at(10 * S).expect("observed"));
}

#[test]
fn openrouter_price_weights_by_inverse_square_price_and_puts_recent_failures_last() {
    let (cat, table) = setup(&[(1.0, 0.5), (2.0, 0.5)]);
    let req = request(Constraints::default(), false);
    // Weights 1/1² : 1/2² = 4 : 1, so the cheaper goes first four times in five.
    let counts = first_counts(
        4000,
        |seed| {
            decide(
                PolicyName::OpenrouterPrice,
                None,
                &cat,
                &table,
                &req,
                S,
                seed,
            )
            .ranked[0]
        },
        2,
    );
    assert!((3050..=3350).contains(&counts[0]), "{counts:?}");
    table.begin(0);
    table.failure(0, FailureClass::ServerError, 2 * S);
    for seed in 0..50 {
        let d = decide(
            PolicyName::OpenrouterPrice,
            None,
            &cat,
            &table,
            &req,
            3 * S,
            seed,
        );
        assert_eq!(d.ranked, [1, 0], "failed 1 s ago: last");
    }
    let d = decide(
        PolicyName::OpenrouterPrice,
        None,
        &cat,
        &table,
        &req,
        40 * S,
        3,
    );
    assert_eq!(d.ranked.len(), 2);
}

fn thompson_firsts(cat: &Catalog, table: &StatsTable, req: &RouteRequest, now: u64) -> Vec<usize> {
    first_counts(
        200,
        |seed| decide(PolicyName::Thompson, None, cat, table, req, now, seed).ranked[0],
        cat.endpoints().len(),
    )
}

#[test]
fn thompson_honours_min_quality() {
    // The cheap endpoint's quality is below the minimum: the dearer one wins.
    let (cat, table) = setup(&[(0.1, 0.4), (1.0, 0.9)]);
    learn(&table, 0, 50, 100.0, 100.0, 10 * S);
    learn(&table, 1, 50, 100.0, 100.0, 10 * S);
    let c = Constraints {
        min_quality: Some(0.7),
        ..Constraints::default()
    };
    let counts = thompson_firsts(&cat, &table, &request(c, true), 10 * S);
    assert_eq!(counts, [0, 200]);
    let counts = thompson_firsts(&cat, &table, &request(Constraints::default(), true), 10 * S);
    assert_eq!(counts, [200, 0], "without the minimum the cheap one wins");
}

#[test]
fn thompson_honours_a_throughput_target() {
    // The cheap endpoint decodes at 20 tokens/s, the dear one at 200: "90% of requests at
    // 100 tokens/s or more" leaves only the dear one.
    let (cat, table) = setup(&[(0.1, 0.5), (1.0, 0.5)]);
    learn(&table, 0, 60, 100.0, 20.0, 10 * S);
    learn(&table, 1, 60, 100.0, 200.0, 10 * S);
    let c = Constraints {
        throughput: vec![ThroughputTarget {
            percentile: 90.0,
            min_tokens_per_s: 100.0,
        }],
        ..Constraints::default()
    };
    let counts = thompson_firsts(&cat, &table, &request(c, true), 10 * S);
    assert!(counts[1] >= 190, "{counts:?}");
}

#[test]
fn thompson_prefers_latency_quality_or_throughput_when_asked() {
    // p0: cheapest, slow and low quality; p1: fastest first token; p2: best quality, fastest
    // decoding, dearest.
    let (cat, table) = setup(&[(0.1, 0.5), (1.0, 0.6), (5.0, 0.95)]);
    learn(&table, 0, 60, 900.0, 30.0, 10 * S);
    learn(&table, 1, 60, 80.0, 60.0, 10 * S);
    learn(&table, 2, 60, 400.0, 300.0, 10 * S);
    let with = |prefer| Constraints {
        prefer,
        metric: LatencyMetric::Ttft,
        latency: vec![LatencyTarget {
            percentile: 95.0,
            max_ms: 2000.0,
        }],
        ..Constraints::default()
    };
    for (prefer, winner) in [
        (Prefer::Cost, 0),
        (Prefer::Latency, 1),
        (Prefer::Quality, 2),
        (Prefer::Throughput, 2),
    ] {
        let counts = thompson_firsts(&cat, &table, &request(with(prefer), true), 10 * S);
        assert!(counts[winner] >= 190, "{prefer:?}: {counts:?}");
    }
}

/// A cheap endpoint whose sheet declares `cheap_quality` and a dear one declared 0.8, both
/// warm and alike, and a request asking for quality 0.7.
fn cheap_and_dear_asked_for_quality(cheap_quality: f64) -> (Catalog, StatsTable, RouteRequest) {
    let (cat, table) = setup(&[(0.1, cheap_quality), (1.0, 0.8)]);
    learn(&table, 0, 50, 100.0, 100.0, 10 * S);
    learn(&table, 1, 50, 100.0, 100.0, 10 * S);
    let c = Constraints {
        min_quality: Some(0.7),
        ..Constraints::default()
    };
    (cat, table, request(c, true))
}

#[test]
fn poor_feedback_moves_min_quality_traffic_off_an_overstated_endpoint() {
    // The sheet says the cheap endpoint is 0.9; clients score its answers poorly.
    let (cat, table, req) = cheap_and_dear_asked_for_quality(0.9);
    assert_eq!(thompson_firsts(&cat, &table, &req, 10 * S), [200, 0]);
    // A few bad scores against a prior worth twenty do not move it much...
    for _ in 0..3 {
        table.feedback(0, 0.0, 10 * S);
    }
    let counts = thompson_firsts(&cat, &table, &req, 10 * S);
    assert!(counts[0] >= 150, "{counts:?}");
    // ...fifty do: the learned quality is about (0.9·20 + 0.1·50) / 70 = 0.33.
    for _ in 0..50 {
        table.feedback(0, 0.1, 10 * S);
    }
    let counts = thompson_firsts(&cat, &table, &req, 10 * S);
    assert!(counts[1] >= 195, "{counts:?}");
    // Good scores for the dear one keep it where its sheet put it; `prefer = quality` reads
    // the learned value too.
    for _ in 0..50 {
        table.feedback(1, 1.0, 10 * S);
    }
    let quality = Constraints {
        prefer: Prefer::Quality,
        ..Constraints::default()
    };
    let counts = thompson_firsts(&cat, &table, &request(quality, true), 10 * S);
    assert_eq!(counts, [0, 200]);
}

#[test]
fn good_feedback_lifts_an_understated_endpoint_over_the_bar() {
    // The sheet says 0.6 (below the 0.7 asked for); clients find its answers good.
    let (cat, table, req) = cheap_and_dear_asked_for_quality(0.6);
    assert_eq!(thompson_firsts(&cat, &table, &req, 10 * S), [0, 200]);
    for _ in 0..80 {
        table.feedback(0, 0.95, 10 * S);
    }
    let counts = thompson_firsts(&cat, &table, &req, 10 * S);
    assert!(counts[0] >= 190, "{counts:?}");
    // Forgotten with time (the quality half-life is a day by default): the sheet again.
    let counts = thompson_firsts(&cat, &table, &req, 10 * S + 30 * 86_400 * S);
    assert!(counts[1] >= 190, "{counts:?}");
}
