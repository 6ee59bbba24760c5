use std::time::Duration;

use super::*;

const S: u64 = 1_000_000_000;

fn ledger(window_s: u64, max: usize) -> Ledger {
    Ledger::new(&FeedbackConfig {
        window: Duration::from_secs(window_s),
        max_pending: max,
        ..FeedbackConfig::default()
    })
}

const A: &str = "req_00000000000000a1";
const B: &str = "req_00000000000000b2";

#[test]
fn only_the_requests_own_client_or_the_admin_scores_it_once() {
    let l = ledger(60, 10);
    l.answered(A, Some("team-a"), "p1/m", S);
    l.answered(B, Some("team-b"), "p2/m", S);
    // Another client's request reads as unknown, and is still there for its own client.
    assert_eq!(
        l.score(A, Scorer::Client(Some("team-b")), 2 * S),
        Err(FeedbackError::Unknown(A.into()))
    );
    assert_eq!(
        l.score(A, Scorer::Client(None), 2 * S),
        Err(FeedbackError::Unknown(A.into()))
    );
    let credit = l.score(A, Scorer::Client(Some("team-a")), 2 * S);
    assert_eq!(credit.map(|c| c.endpoint), Ok(Arc::from("p1/m")));
    assert_eq!(
        l.score(A, Scorer::Client(Some("team-a")), 2 * S),
        Err(FeedbackError::AlreadyScored(A.into()))
    );
    assert!(l.score(B, Scorer::Admin, 2 * S).is_ok());
    for bad in ["", "req_", "req_xyz", "req_00000000000000c3", "chatcmpl-1"] {
        assert!(matches!(
            l.score(bad, Scorer::Admin, 2 * S),
            Err(FeedbackError::Unknown(_))
        ));
    }
}

#[test]
fn answers_are_forgotten_past_the_window_and_the_bound() {
    let l = ledger(60, 2);
    l.answered(A, None, "p1/m", 0);
    assert!(matches!(
        l.score(A, Scorer::Client(None), 61 * S),
        Err(FeedbackError::Unknown(_))
    ));
    assert!(l.is_empty(), "expired entries are dropped");
    for (i, at) in [(1u64, 0), (2, 1), (3, 2)] {
        l.answered(&format!("req_{i:016x}"), None, "p1/m", at);
    }
    assert_eq!(l.len(), 2, "bounded");
    let first = l.score("req_0000000000000001", Scorer::Client(None), 3);
    assert!(
        matches!(first, Err(FeedbackError::Unknown(_))),
        "oldest gone"
    );
    assert!(l
        .score("req_0000000000000003", Scorer::Client(None), 3)
        .is_ok());
}

#[test]
fn settings_out_of_range_name_their_field() {
    let c = FeedbackConfig {
        prior_strength: 0.0,
        ..FeedbackConfig::default()
    };
    assert_eq!(
        c.validate().map_err(|e| e.0),
        Err("feedback.prior_strength".into())
    );
    let c = FeedbackConfig {
        window: Duration::ZERO,
        ..FeedbackConfig::default()
    };
    assert_eq!(c.validate().map_err(|e| e.0), Err("feedback.window".into()));
}
