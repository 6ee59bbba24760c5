//! The detectors on synthetic streams: steps are found quickly, stationary input raises none.

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};

use super::*;
use crate::stats::endpoint::{EndpointStats, HalfLives};
use crate::stats::{FailureClass, Success};

const SEC: u64 = 1_000_000_000;
const RATE: u64 = 25;

fn half_lives() -> HalfLives {
    HalfLives {
        latency: HalfLife::new(Duration::from_secs(300)),
        outcome: HalfLife::new(Duration::from_secs(60)),
        quality: HalfLife::new(std::time::Duration::from_secs(86400)),
    }
}

/// Feeds `seconds` of outcomes at 25/s starting at `from_s`: failures with probability
/// `fail`, TTFT log-normal around `ttft_ms` with σ 0.4.
fn feed(
    e: &mut EndpointStats,
    rng: &mut rand::rngs::SmallRng,
    from_s: u64,
    seconds: u64,
    fail: f64,
    ttft_ms: f64,
) {
    let hl = half_lives();
    let noise = LogNormal::new(0.0, 0.4).expect("valid");
    for k in 0..seconds * RATE {
        let t = from_s * SEC + k * SEC / RATE;
        e.begin();
        if rng.random::<f64>() < fail {
            e.failure(FailureClass::ServerError, t, &hl);
        } else {
            let ttft = ttft_ms * noise.sample(rng);
            let s = Success {
                ttft_ms: Some(ttft),
                total_ms: ttft + 500.0,
                ..Success::default()
            };
            e.success(&s, t, &hl);
        }
    }
}

fn first_change(e: &EndpointStats, stream: Stream, after_ns: u64) -> Option<u64> {
    e.changes
        .newest_first()
        .filter(|c| c.stream == stream && c.at_ns >= after_ns)
        .map(|c| c.at_ns)
        .min()
}

#[test]
fn a_failure_step_is_found_within_five_seconds_in_nearly_every_seed() {
    let mut found = 0;
    for seed in 0..100 {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut e = EndpointStats::default();
        feed(&mut e, &mut rng, 0, 300, 0.005, 200.0);
        feed(&mut e, &mut rng, 300, 10, 0.5, 200.0);
        if first_change(&e, Stream::Failures, 300 * SEC).is_some_and(|t| t <= 305 * SEC) {
            found += 1;
        }
    }
    assert!(found >= 95, "found in {found} of 100 seeds");
}

/// After the alarm the learned failure rate is the new regime's, not the window's mix of old
/// and new (half a second into a step to 50%, when the alarm comes, a 5 s window still reads
/// about 0.05): estimated from the few outcomes since the change, so noisy, but centred on
/// 0.5. And a smaller step (0.5% to 12%, a rate the window alone takes some 15 s to show)
/// is found within 8 s.
#[test]
fn a_failure_step_is_re_based_on_the_new_regime() {
    let (mut rates, mut small) = (Vec::new(), 0);
    for seed in 0..100 {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut e = EndpointStats::default();
        feed(&mut e, &mut rng, 0, 300, 0.005, 200.0);
        feed(&mut e, &mut rng, 300, 1, 0.5, 200.0);
        if first_change(&e, Stream::Failures, 300 * SEC).is_some() {
            let view = e.view(301 * SEC, &half_lives());
            rates.push(view.failures / (view.successes + view.failures));
        }
        let mut e = EndpointStats::default();
        feed(&mut e, &mut rng, 0, 300, 0.005, 200.0);
        feed(&mut e, &mut rng, 300, 8, 0.12, 200.0);
        if first_change(&e, Stream::Failures, 300 * SEC).is_some() {
            small += 1;
        }
    }
    let mean = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    let low = rates.iter().filter(|&&r| r < 0.25).count();
    assert!(
        rates.len() >= 90,
        "found within a second in {} of 100",
        rates.len()
    );
    assert!(
        (0.4..0.6).contains(&mean),
        "re-based rate {mean} on average"
    );
    assert!(low <= 5, "re-based below 0.25 in {low} seeds");
    assert!(
        small >= 90,
        "0.5% to 12% found within 8 s in {small} of 100 seeds"
    );
}

#[test]
fn a_tripled_ttft_is_found_within_ten_seconds() {
    let mut found = 0;
    for seed in 0..100 {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut e = EndpointStats::default();
        feed(&mut e, &mut rng, 0, 300, 0.005, 150.0);
        feed(&mut e, &mut rng, 300, 15, 0.005, 450.0);
        if first_change(&e, Stream::Ttft, 300 * SEC).is_some_and(|t| t <= 310 * SEC) {
            found += 1;
        }
        // Re-based: the learned median is the new one at once.
        let view = e.view(315 * SEC, &half_lives());
        if seed == 0 {
            let median = view.ttft_ms.expect("fit").median();
            assert!((300.0..700.0).contains(&median), "{median}");
        }
    }
    assert!(found >= 95, "found in {found} of 100 seeds");
}

#[test]
fn stationary_input_raises_no_alarm() {
    for seed in 0..10 {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1000 + seed);
        let mut e = EndpointStats::default();
        feed(&mut e, &mut rng, 0, 1200, 0.01, 200.0);
        let alarms: Vec<Change> = e.changes.newest_first().collect();
        assert!(alarms.is_empty(), "seed {seed}: {alarms:?}");
    }
}

#[test]
fn the_glr_statistics_behave() {
    // 0.5% before, half failing in a window of 50: a change.
    let unlocated = (None, None);
    assert!(outcome_shift((25.0, 25.0), (1000.0, 30.0), unlocated).is_some());
    // The same rate: none. Too few observations: none.
    assert!(outcome_shift((49.0, 1.0), (1000.0, 10.0), unlocated).is_none());
    assert!(outcome_shift((1.0, 2.0), (1000.0, 5.0), unlocated).is_none());
    // A window still mostly old (5% failing) after a step to 30%: significant, but below the
    // shift bar on its own; the located regime's rate carries it, and is what is re-based on.
    let (window, long) = ((190.0, 10.0), (2000.0, 20.0));
    assert!(outcome_shift(window, long, unlocated).is_none());
    let (old, new, regime) =
        outcome_shift(window, long, (Some((14.0, 6.0)), None)).expect("a located rise");
    assert!(old < 0.01 && (new - 0.3).abs() < 1e-9 && regime == (14.0, 6.0));
    // A located regime on the wrong side of the old rate is no change.
    assert!(outcome_shift(window, long, (None, Some((20.0, 0.0)))).is_none());
    let summary = |weight: f64, median: f64, var: f64| LogSummary {
        weight,
        mean: f64::ln(median),
        var,
    };
    assert!(latency_shift(summary(20.0, 450.0, 0.1), summary(500.0, 150.0, 0.16)).is_some());
    // A 4% jitter of a near-constant latency is no regime change.
    assert!(latency_shift(summary(100.0, 52.0, 0.0), summary(5000.0, 50.0, 0.0)).is_none());
}
