//! Property tests of the merge: any split of one stream of observations across replicas,
//! merged, equals one router's statistics; re-sending a snapshot changes nothing; order and
//! clock skew do not matter beyond the skew's own decay.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::stats::{EndpointStats, FailureClass, HalfLife, Learned, Success};

const MS: u64 = 1_000_000;

fn half_lives() -> HalfLives {
    HalfLives {
        latency: HalfLife::new(Duration::from_secs(300)),
        outcome: HalfLife::new(Duration::from_secs(60)),
        quality: HalfLife::new(std::time::Duration::from_secs(86400)),
    }
}

/// One observation: the gap since the previous one (ms), endpoint, replica, outcome, TTFT.
type Obs = (u64, usize, usize, bool, f64);

fn observations() -> impl Strategy<Value = Vec<Obs>> {
    prop::collection::vec(
        (
            0u64..3_000,
            0usize..3,
            0usize..4,
            prop::bool::weighted(0.8),
            20.0f64..4_000.0,
        ),
        1..120,
    )
}

fn learn(l: &mut Learned, ok: bool, ttft: f64, now_ns: u64, hl: &HalfLives) {
    if ok {
        let s = Success {
            ttft_ms: Some(ttft),
            total_ms: ttft * 3.0,
            output_tokens: Some(50),
            // Prompt sizes that vary with the latency, for the prompt-size fit.
            prompt_tokens: Some((ttft * 7.0) as u64),
            ..Success::default()
        };
        l.success(&s, now_ns, hl);
        // Some answers are scored by their client.
        if ttft < 500.0 {
            l.quality.add((ttft / 500.0).min(1.0), now_ns, hl.quality);
        }
    } else {
        l.failure(FailureClass::ServerError, Some(ttft * 0.5), now_ns, hl);
    }
}

/// The figures of learned states `per_endpoint`, settled at `now_ns`.
fn figures(per_endpoint: &[(Learned, u64)], now_ns: u64) -> Vec<(String, PeerFigures)> {
    let hl = half_lives();
    per_endpoint
        .iter()
        .enumerate()
        .filter(|(_, (_, attempts))| *attempts > 0)
        .map(|(i, (learned, attempts))| {
            let s = EndpointStats {
                learned: *learned,
                totals: crate::stats::Totals {
                    attempts: *attempts,
                    ..Default::default()
                },
                ..EndpointStats::default()
            };
            (format!("p/m{i}"), PeerFigures::own(&s, now_ns, &hl, 0))
        })
        .collect()
}

/// Runs the stream through one router and through `replicas` replicas (each observation on
/// the replica it names, modulo `replicas`); returns one router's figures and the replicas'
/// snapshots, all taken at the end of the stream (wall time = 1e12 ms + stream time).
fn run(stream: &[Obs], replicas: usize) -> (Vec<(String, PeerFigures)>, Vec<ReplicaSnapshot>) {
    let hl = half_lives();
    let mut one = vec![(Learned::default(), 0u64); 3];
    let mut each = vec![vec![(Learned::default(), 0u64); 3]; replicas];
    let mut now = 0u64;
    for &(gap, e, r, ok, ttft) in stream {
        now += gap * MS;
        learn(&mut one[e].0, ok, ttft, now, &hl);
        one[e].1 += 1;
        let mine = &mut each[r % replicas][e];
        learn(&mut mine.0, ok, ttft, now, &hl);
        mine.1 += 1;
    }
    let at = Instant {
        now_ns: now,
        unix_ms: 1_000_000_000_000 + now / MS,
    };
    let snapshots = each
        .iter()
        .enumerate()
        .map(|(i, per)| ReplicaSnapshot::of(&format!("r{i}"), figures(per, now), at))
        .collect();
    (figures(&one, now), snapshots)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

fn same(a: &PeerFigures, b: &PeerFigures) -> bool {
    let fit = |x: &LogStats, y: &LogStats| {
        let (p, q) = (x.parts(), y.parts());
        close(p.0, q.0) && close(p.1, q.1) && close(p.2, q.2)
    };
    close(a.successes.raw().0, b.successes.raw().0)
        && close(a.failed.raw().0, b.failed.raw().0)
        && fit(&a.ttft_ms, &b.ttft_ms)
        && fit(&a.total_ms, &b.total_ms)
        && fit(&a.tokens_per_s, &b.tokens_per_s)
        && fit(&a.failure_ms, &b.failure_ms)
        && a.prefill
            .parts()
            .iter()
            .zip(b.prefill.parts())
            .all(|(x, y)| close(*x, y))
        && close(a.quality.parts().0, b.quality.parts().0)
        && close(a.quality.parts().1, b.quality.parts().1)
        && a.attempts == b.attempts
}

/// The merge of every replica's snapshot, read at the snapshots' own time.
fn merged(snapshots: &[ReplicaSnapshot], later_ms: u64) -> HashMap<String, PeerFigures> {
    let at = Instant {
        now_ns: 7 * MS,
        unix_ms: snapshots[0].at_unix_ms + later_ms,
    };
    merge(snapshots, at, &half_lives())
}

proptest! {
    #[test]
    fn any_split_merged_equals_one_router(stream in observations(), replicas in 1usize..5) {
        let (one, snapshots) = run(&stream, replicas);
        let sum = merged(&snapshots, 0);
        prop_assert_eq!(sum.len(), one.len());
        for (id, expected) in &one {
            let got = sum.get(id).expect("every endpoint seen");
            prop_assert!(same(got, expected), "{id}: {got:?} vs {expected:?}");
        }
    }

    #[test]
    fn reading_later_ages_like_one_router(stream in observations(), later_ms in 0u64..600_000) {
        let (one, snapshots) = run(&stream, 3);
        let hl = half_lives();
        let sum = merged(&snapshots, later_ms);
        for (id, p) in &one {
            let expected = p.successes.get(p.successes.raw().1 + later_ms * MS, hl.outcome);
            prop_assert!(close(sum[id].successes.raw().0, expected));
        }
    }

    #[test]
    fn resending_or_reordering_changes_nothing(stream in observations(), seed in any::<u64>()) {
        let (_, mut snapshots) = run(&stream, 3);
        let at = Instant { now_ns: 0, unix_ms: snapshots[0].at_unix_ms };
        let hl = half_lives();
        let base = merge(&snapshots, at, &hl);
        // A replica that learned nothing new re-sends its state 7 s later (settled then,
        // dated then); read 20 s after the first, it says what the first said.
        let later = |s: u64| Instant { now_ns: s * 1_000 * MS, unix_ms: at.unix_ms + s * 1_000 };
        let mut resent = snapshots.clone();
        let own: Vec<(String, PeerFigures)> = merge([&snapshots[0]], later(7), &hl).into_iter().collect();
        resent[0] = ReplicaSnapshot::of(&snapshots[0].replica, own, later(7));
        let (once, again) = (merge(&snapshots, later(20), &hl), merge(&resent, later(20), &hl));
        prop_assert_eq!(once.len(), again.len());
        for (id, p) in &once {
            prop_assert!(same(&again[id], p), "{id}: {:?} vs {p:?}", again[id]);
        }
        // Another order.
        let k = (seed % 3) as usize;
        snapshots.rotate_left(k);
        snapshots.swap(0, (seed as usize / 3) % 3);
        let reordered = merge(&snapshots, at, &hl);
        for (id, p) in &base {
            prop_assert!(same(&reordered[id], p));
        }
    }

    #[test]
    fn clock_skew_costs_only_its_own_decay(stream in observations(), skew_ms in 0u64..5_000) {
        // One peer's clock runs `skew_ms` fast or slow: its figures are read as that much
        // younger or older, never double counted, never negative.
        let (_, mut snapshots) = run(&stream, 2);
        let at = Instant { now_ns: 0, unix_ms: snapshots[0].at_unix_ms };
        let hl = half_lives();
        let base = merge(&snapshots, at, &hl);
        snapshots[1].at_unix_ms -= skew_ms;
        let older = merge(&snapshots, at, &hl);
        snapshots[1].at_unix_ms += 2 * skew_ms;
        let younger = merge(&snapshots, at, &hl);
        let bound = 1.0 / hl.outcome.factor(skew_ms * MS);
        for (id, p) in &base {
            let b = p.successes.raw().0;
            for q in [&older[id], &younger[id]] {
                let v = q.successes.raw().0;
                prop_assert!(v >= 0.0 && v <= b * bound + 1e-9 && v * bound + 1e-9 >= b);
            }
        }
    }
}

#[test]
fn rests_take_the_latest_end_and_convert_between_clocks() {
    let hl = half_lives();
    let at = Instant {
        now_ns: 50 * MS,
        unix_ms: 1_000_000,
    };
    let own = PeerFigures {
        rest_until_ns: 2_050 * MS,
        ..PeerFigures::default()
    };
    let a = ReplicaSnapshot::of("a", vec![("p/m".into(), own)], at);
    assert_eq!(a.endpoints["p/m"].rest, 1_002_000);
    let mut b = a.clone();
    b.replica = "b".into();
    b.endpoints.get_mut("p/m").unwrap().rest = 1_005_000;
    // Read by a third replica whose epoch differs.
    let reader = Instant {
        now_ns: 9 * MS,
        unix_ms: 1_000_500,
    };
    let sum = merge([&a, &b], reader, &hl);
    assert_eq!(sum["p/m"].rest_until_ns, (9 + 4_500) * MS);
    assert_eq!(sum["p/m"].replicas, 2);
}
