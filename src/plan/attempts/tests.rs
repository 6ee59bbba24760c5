//! The attempt machine: order, stops, rests, rejections, what is recorded.

use std::time::Duration;

use super::*;
use crate::stats::{Stats, StatsTable};

const S: u64 = 1_000_000_000;

fn table(n: usize) -> StatsTable {
    let cat = crate::catalog::testing::numbered(&vec![(1.0, 1.0); n], None);
    Stats::new(Duration::from_secs(300), Duration::from_secs(60)).table(&cat)
}

#[test]
fn candidates_in_order_until_max_attempts() {
    let t = table(3);
    let mut a = Attempts::new(vec![2, 0, 1], 2, 100 * S, Duration::from_secs(60));
    assert_eq!(a.next(&t, S), Some(2));
    assert_eq!(t.read(2).in_flight, 1);
    a.failed(&t, 2, FailureClass::ServerError.into(), S);
    assert_eq!(t.read(2).in_flight, 0);
    assert_eq!(
        t.read(2).totals.failures[FailureClass::ServerError.index()],
        1
    );
    assert_eq!(a.next(&t, S), Some(0));
    a.failed(&t, 0, FailureClass::Connect.into(), S);
    assert_eq!(a.next(&t, S), None, "two attempts allowed");
    assert_eq!(a.started(), 2);
    let e = a.exhausted(S);
    assert!(!e.deadline_hit);
    assert_eq!(e.failures.len(), 2);
    assert_eq!(t.read(1).totals.attempts, 0);
}

#[test]
fn the_deadline_stops_the_attempts() {
    let t = table(2);
    let mut a = Attempts::new(vec![0, 1], 3, 10 * S, Duration::from_secs(60));
    assert_eq!(a.next(&t, S), Some(0));
    a.failed(&t, 0, FailureClass::Timeout.into(), 10 * S);
    assert_eq!(a.next(&t, 10 * S), None);
    assert!(a.exhausted(10 * S).deadline_hit);
}

#[test]
fn retry_after_rests_the_endpoint_capped_and_the_shortest_goes_back() {
    let t = table(3);
    let mut a = Attempts::new(vec![0, 1, 2], 3, 1000 * S, Duration::from_secs(30));
    assert_eq!(a.next(&t, S), Some(0));
    let asked = Some(Duration::from_secs(120));
    a.failed(
        &t,
        0,
        Failure::status(FailureClass::RateLimited, 429, asked),
        S,
    );
    assert!(t.resting(0, 30 * S), "capped at 30 s");
    assert!(!t.resting(0, 31 * S + 1));
    assert_eq!(a.next(&t, S), Some(1));
    let asked = Some(Duration::from_secs(5));
    a.failed(
        &t,
        1,
        Failure::status(FailureClass::ServerError, 503, asked),
        S,
    );
    assert!(t.resting(1, 5 * S) && !t.resting(1, 6 * S + 1));
    assert_eq!(a.next(&t, S), Some(2));
    // A 500 carries no wait worth honouring, whatever the header said.
    let ignored = Some(Duration::from_secs(1));
    a.failed(
        &t,
        2,
        Failure::status(FailureClass::ServerError, 500, ignored),
        S,
    );
    assert!(!t.resting(2, S + 1));
    assert_eq!(a.exhausted(S).retry_after, Some(Duration::from_secs(5)));
}

#[test]
fn a_rejection_ends_the_attempts_and_blames_no_one() {
    let t = table(2);
    let mut a = Attempts::new(vec![0, 1], 3, 100 * S, Duration::from_secs(60));
    assert_eq!(a.next(&t, S), Some(0));
    assert!(a.rejected(&t, 0, S).is_empty());
    let e = t.read(0);
    assert_eq!(
        (e.totals.rejected, e.totals.cancelled, e.in_flight),
        (1, 0, 0)
    );
    assert_eq!(e.totals.failures.iter().sum::<u64>(), 0);
    assert_eq!(a.next(&t, S), None);
    assert_eq!(failover_class(400), None);
    assert_eq!(failover_class(422), None);
    assert_eq!(failover_class(429), Some(FailureClass::RateLimited));
}

#[test]
fn an_answer_ends_the_attempts() {
    let t = table(2);
    let mut a = Attempts::new(vec![1, 0], 3, 100 * S, Duration::from_secs(60));
    assert_eq!(a.next(&t, S), Some(1));
    assert!(a.answered(&t, 1, S).is_empty());
    assert_eq!(a.next(&t, S), None);
    assert_eq!(a.started(), 1);
}

#[test]
fn a_failure_is_recorded_with_the_time_it_took() {
    let t = table(2);
    let mut a = Attempts::new(vec![0, 1], 2, 100 * S, Duration::from_secs(60));
    assert_eq!(a.next(&t, S), Some(0));
    a.failed(&t, 0, FailureClass::Timeout.into(), S + 700_000_000);
    let mean = t.view(0, 2 * S).failure_ms.mean_value();
    assert!(mean.is_some_and(|m| (m - 700.0).abs() < 1e-6), "{mean:?}");
    // A failure after the first byte (recorded by the relay, not the machine) has no time.
    t.begin(1);
    t.failure(1, FailureClass::MidStream, 2 * S);
    assert_eq!(t.view(1, 2 * S).failure_ms.mean_value(), None);
}

#[test]
fn a_hedge_starts_the_next_candidate_beside_the_running_one_and_the_loser_is_cancelled() {
    let t = table(3);
    let mut a = Attempts::new(vec![2, 0, 1], 3, 100 * S, Duration::from_secs(60)).traced();
    assert_eq!(a.hedge(&t, 1, S), None, "nothing runs yet");
    assert_eq!(a.next(&t, S), Some(2));
    assert_eq!(a.next(&t, S), None, "one runs: only a hedge may start");
    assert_eq!(a.hedge_candidate(1), Some(0));
    assert_eq!(a.hedge(&t, 1, 2 * S), Some(0));
    assert_eq!((a.running(), a.hedges(), a.started()), (2, 1, 2));
    assert_eq!(a.hedge_candidate(1), None, "at most one hedge");
    assert_eq!(a.hedge(&t, 1, 2 * S), None);
    // The hedge answers first: the first attempt is cancelled, blamed for nothing.
    assert_eq!(a.answered(&t, 0, 3 * S), vec![2]);
    let first = t.read(2);
    assert_eq!(
        (
            first.totals.cancelled,
            first.in_flight,
            first.totals.failures.iter().sum::<u64>()
        ),
        (1, 0, 0)
    );
    assert_eq!(
        t.read(0).in_flight,
        1,
        "the winner's driver records its end"
    );
    assert_eq!(a.next(&t, 3 * S), None);
    let trace = a.trace();
    assert_eq!(
        trace
            .iter()
            .map(|t| (t.endpoint, t.end, t.hedge))
            .collect::<Vec<_>>(),
        vec![(2, End::Cancelled, false), (0, End::Answered, true)]
    );
    assert_eq!((trace[0].started_ns, trace[0].ended_ns), (S, 3 * S));
}

#[test]
fn a_failure_during_a_hedge_leaves_the_other_running_then_the_walk_goes_on() {
    let t = table(3);
    let mut a = Attempts::new(vec![0, 1, 2], 3, 100 * S, Duration::from_secs(60));
    assert_eq!(a.next(&t, S), Some(0));
    assert_eq!(a.hedge(&t, 1, 2 * S), Some(1));
    a.failed(&t, 0, FailureClass::ServerError.into(), 3 * S);
    assert_eq!(a.running(), 1);
    assert_eq!(a.next(&t, 3 * S), None, "the hedge still runs");
    a.failed(&t, 1, FailureClass::Timeout.into(), 4 * S);
    assert_eq!(
        a.next(&t, 4 * S),
        Some(2),
        "then the next candidate, as without a hedge"
    );
    assert_eq!(a.failures().len(), 2);
    // A rejection cancels a hedge still running.
    let mut b = Attempts::new(vec![0, 1], 2, 100 * S, Duration::from_secs(60));
    b.next(&t, S);
    b.hedge(&t, 1, S);
    assert_eq!(b.rejected(&t, 1, 2 * S), vec![0]);
    assert_eq!(b.running(), 0);
}
