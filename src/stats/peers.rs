//! What the other replicas of a fleet learned about an endpoint: kept beside the replica's
//! own statistics, never folded into them (nor into its store), so a snapshot received twice
//! or a restart never counts an outcome twice. The selector's view is own + peers, combined
//! when an endpoint's view is published; the fleet replaces the peers' figures at each sync.

use super::decay::{Decayed, LogStats};
use super::endpoint::{EndpointStats, HalfLives};

/// An endpoint's shared figures: the decayed outcomes and latency fits, lifetime attempts and
/// the end of any rest (after `Retry-After` or a failure burst). As the peers' sum, dated in
/// this process's time; as a replica's own part, settled at the time it was taken.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeerFigures {
    pub successes: Decayed,
    pub failed: Decayed,
    pub ttft_ms: LogStats,
    pub total_ms: LogStats,
    pub tokens_per_s: LogStats,
    pub failure_ms: LogStats,
    pub prefill: super::prefill::PrefillStats,
    pub quality: super::quality::QualityStats,
    pub attempts: u64,
    /// No requests before this time (0: no rest).
    pub rest_until_ns: u64,
    /// How many replicas the figures come from.
    pub replicas: u32,
}

impl PeerFigures {
    /// A replica's own figures, settled at `now_ns`; `rest_end_ns` is when its rest (if any)
    /// ends.
    pub(crate) fn own(s: &EndpointStats, now_ns: u64, hl: &HalfLives, rest_end_ns: u64) -> Self {
        let l = &s.learned;
        PeerFigures {
            successes: l.successes.settled(now_ns, hl.outcome),
            failed: l.failed.settled(now_ns, hl.outcome),
            ttft_ms: l.ttft_ms.settled(now_ns, hl.latency),
            total_ms: l.total_ms.settled(now_ns, hl.latency),
            tokens_per_s: l.tokens_per_s.settled(now_ns, hl.latency),
            failure_ms: l.failure_ms.settled(now_ns, super::change::recent_hl()),
            prefill: l.prefill.settled(now_ns, hl.latency),
            quality: l.quality.settled(now_ns, hl.quality),
            attempts: s.totals.attempts,
            rest_until_ns: rest_end_ns,
            replicas: 1,
        }
    }

    /// These figures plus `other`'s: sums of the decayed statistics (each aged to the later
    /// date), the larger rest.
    pub fn plus(&self, other: &PeerFigures, hl: &HalfLives) -> PeerFigures {
        PeerFigures {
            successes: self.successes.plus(&other.successes, hl.outcome),
            failed: self.failed.plus(&other.failed, hl.outcome),
            ttft_ms: self.ttft_ms.plus(&other.ttft_ms, hl.latency),
            total_ms: self.total_ms.plus(&other.total_ms, hl.latency),
            tokens_per_s: self.tokens_per_s.plus(&other.tokens_per_s, hl.latency),
            failure_ms: self
                .failure_ms
                .plus(&other.failure_ms, super::change::recent_hl()),
            prefill: self.prefill.plus(&other.prefill, hl.latency),
            quality: self.quality.plus(&other.quality, hl.quality),
            attempts: self.attempts + other.attempts,
            rest_until_ns: self.rest_until_ns.max(other.rest_until_ns),
            replicas: self.replicas + other.replicas,
        }
    }
}
