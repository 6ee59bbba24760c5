use super::*;
use crate::select::{Estimate, Score};

const S: u64 = 1_000_000_000;

fn affinities(idle_s: u64, max: usize) -> Affinities {
    Affinities::new(&AffinityConfig {
        idle: Duration::from_secs(idle_s),
        max_keys: max,
    })
}

#[test]
fn keys_are_forgotten_when_idle_and_least_recently_used_first() {
    let a = affinities(300, 2);
    a.set("k1", "p1/m", 0);
    assert_eq!(a.get("k1", 299 * S).as_deref(), Some("p1/m"));
    assert_eq!(a.get("k1", 301 * S), None, "idle past 5 minutes");
    a.set("k1", "p1/m", 400 * S);
    a.set("k2", "p2/m", 401 * S);
    // Used again: k1 is now the most recent, so k2 goes when a third key comes.
    a.set("k1", "p1/m", 402 * S);
    a.set("k3", "p3/m", 403 * S);
    assert_eq!(a.len(), 2);
    assert_eq!(a.get("k2", 404 * S), None);
    assert_eq!(a.get("k1", 404 * S).as_deref(), Some("p1/m"));
    // One key used over and over keeps the queue bounded.
    for k in 0..100 {
        a.set("k3", "p3/m", (500 + k) * S);
    }
    assert!(
        a.lock().order.len() <= 4 * 2 + 2,
        "{}",
        a.lock().order.len()
    );
}

#[test]
fn keys_come_from_the_first_source_and_are_per_client() {
    let k = |s: [Option<&str>; 4], c| key_of(s, c);
    assert_eq!(k([None, None, None, None], Some("a")), None);
    assert_eq!(k([Some(""), None, None, None], None), None);
    let by_cache_key = k([Some("conv-1"), Some("sess"), Some("u"), None], Some("a"));
    assert_eq!(
        by_cache_key,
        k([Some("conv-1"), None, None, None], Some("a"))
    );
    assert_ne!(
        by_cache_key,
        k([Some("conv-1"), None, None, None], Some("b"))
    );
    assert_ne!(
        by_cache_key,
        k([None, Some("conv-1"), None, None], Some("a"))
    );
    assert_eq!(
        k([None, None, Some("u"), None], None),
        k([None, None, None, Some("u")], None),
        "a user is a user in either dialect"
    );
}

fn decision(costs: &[(f64, bool)]) -> Decision {
    Decision {
        policy: "t",
        ranked: (0..costs.len()).collect(),
        scores: costs
            .iter()
            .map(|&(cost, feasible)| Score {
                estimate: Estimate {
                    cost_usd: cost,
                    ..Estimate::default()
                },
                feasible,
                missed: if feasible { 0 } else { missed::SUCCESS },
                ..Score::default()
            })
            .collect(),
    }
}

#[test]
fn the_remembered_endpoint_goes_first_while_feasible_and_not_dearer_than_its_cache_saves() {
    // Equal prices: kept, moved to the front.
    let mut d = decision(&[(1.0, true), (0.5, false), (1.0, true)]);
    assert_eq!(apply(&mut d, Some(2), 0.0), Outcome::Kept);
    assert_eq!(d.ranked, [2, 0, 1]);
    assert_eq!(d.scores[0].estimate.cost_usd, 1.0);
    // Dearer, but the cache saves more than the difference: kept.
    let mut d = decision(&[(1.0, true), (1.3, true)]);
    assert_eq!(apply(&mut d, Some(1), 0.4), Outcome::Kept);
    assert_eq!(d.ranked, [1, 0]);
    // Dearer even with the cache: the policy's choice stands.
    let mut d = decision(&[(1.0, true), (1.3, true)]);
    assert!(matches!(apply(&mut d, Some(1), 0.2), Outcome::Moved(_)));
    assert_eq!(d.ranked, [0, 1]);
    // Infeasible, or no longer ranked: moved, with the reason.
    let mut d = decision(&[(1.0, true), (0.5, false)]);
    assert_eq!(
        apply(&mut d, Some(1), 9.0),
        Outcome::Moved("infeasible: success_rate".into())
    );
    assert_eq!(
        apply(&mut d, Some(7), 0.0),
        Outcome::Moved("no longer a candidate".into())
    );
    assert_eq!(apply(&mut d, None, 0.0), Outcome::None);
}
