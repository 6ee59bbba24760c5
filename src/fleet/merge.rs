//! The shared learned state: each replica's own absolute snapshot, and the sum of its peers'.
//!
//! A replica publishes only what it learned itself, settled at a wall-clock time, as one
//! absolute snapshot under its own key. A reader re-ages each peer's snapshot to its own now
//! (a snapshot dated in the future — clock skew — is read as of its date) and sums them. An
//! absolute snapshot sent twice, read twice or re-sent after a Redis flush changes nothing,
//! which increments cannot promise. Pure: the Redis side is [`super::sync`].

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::stats::decay::{Decayed, LogStats};
use crate::stats::peers::PeerFigures;
use crate::stats::prefill::PrefillStats;
use crate::stats::quality::QualityStats;
use crate::stats::HalfLives;

/// One replica's own figures, as stored in Redis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaSnapshot {
    pub replica: String,
    /// Wall-clock time the figures are settled at.
    pub at_unix_ms: u64,
    pub endpoints: BTreeMap<String, Figures>,
}

/// One endpoint's figures in a snapshot, settled at the snapshot's time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Decayed successes and failures.
    pub s: f64,
    pub f: f64,
    /// Decayed sufficient statistics (weight, sum, sum of squares of the log) of TTFT,
    /// total time and speed.
    pub ttft: (f64, f64, f64),
    pub total: (f64, f64, f64),
    pub speed: (f64, f64, f64),
    /// The same of the time failed attempts took to fail (change detection's half-life).
    #[serde(default, skip_serializing_if = "no_fit")]
    pub fail: (f64, f64, f64),
    /// The prompt-size TTFT regression's weight and sums (latency half-life).
    #[serde(default, skip_serializing_if = "no_regression")]
    pub prefill: [f64; 6],
    /// Client feedback: decayed sums of scores and of their complements (quality half-life).
    #[serde(default, skip_serializing_if = "no_feedback")]
    pub q: (f64, f64),
    /// Lifetime attempts.
    pub n: u64,
    /// End of a rest, Unix milliseconds (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rest: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn no_fit(v: &(f64, f64, f64)) -> bool {
    v.0 == 0.0
}

fn no_feedback(v: &(f64, f64)) -> bool {
    v.0 == 0.0 && v.1 == 0.0
}

fn no_regression(v: &[f64; 6]) -> bool {
    v[0] == 0.0
}

/// Converts between this process's statistics time (ns since its epoch) and wall-clock
/// milliseconds, at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Instant {
    pub now_ns: u64,
    pub unix_ms: u64,
}

impl Instant {
    fn to_unix_ms(self, ns: u64) -> u64 {
        if ns == 0 {
            return 0;
        }
        let ahead = ns.saturating_sub(self.now_ns) / 1_000_000;
        let behind = self.now_ns.saturating_sub(ns) / 1_000_000;
        (self.unix_ms + ahead).saturating_sub(behind)
    }

    fn to_ns(self, unix_ms: u64) -> u64 {
        if unix_ms <= self.unix_ms {
            return 0;
        }
        self.now_ns + (unix_ms - self.unix_ms) * 1_000_000
    }
}

impl ReplicaSnapshot {
    /// The snapshot of `own` figures (settled at `at.now_ns`).
    pub fn of(replica: &str, own: Vec<(String, PeerFigures)>, at: Instant) -> ReplicaSnapshot {
        let endpoints = own
            .into_iter()
            .map(|(id, p)| {
                let figures = Figures {
                    s: p.successes.raw().0,
                    f: p.failed.raw().0,
                    ttft: p.ttft_ms.parts(),
                    total: p.total_ms.parts(),
                    speed: p.tokens_per_s.parts(),
                    fail: p.failure_ms.parts(),
                    prefill: p.prefill.parts(),
                    q: p.quality.parts(),
                    n: p.attempts,
                    rest: at.to_unix_ms(p.rest_until_ns),
                };
                (id, figures)
            })
            .collect();
        ReplicaSnapshot {
            replica: replica.to_owned(),
            at_unix_ms: at.unix_ms,
            endpoints,
        }
    }

    /// Each endpoint's figures as statistics dated `at.now_ns`, aged from the snapshot's time.
    fn figures(&self, at: Instant, hl: &HalfLives) -> impl Iterator<Item = (&str, PeerFigures)> {
        let age_ns = at.unix_ms.saturating_sub(self.at_unix_ms) * 1_000_000;
        let outcome = hl.outcome.factor(age_ns);
        let latency = hl.latency.factor(age_ns);
        let failing = crate::stats::change::recent_hl().factor(age_ns);
        let scores = hl.quality.factor(age_ns);
        let fit = move |(w, s, q): (f64, f64, f64)| {
            LogStats::from_parts((w * latency, s * latency, q * latency), at.now_ns)
        };
        self.endpoints.iter().map(move |(id, f)| {
            let p = PeerFigures {
                successes: Decayed::at(f.s * outcome, at.now_ns),
                failed: Decayed::at(f.f * outcome, at.now_ns),
                ttft_ms: fit(f.ttft),
                total_ms: fit(f.total),
                tokens_per_s: fit(f.speed),
                failure_ms: LogStats::from_parts(
                    (f.fail.0 * failing, f.fail.1 * failing, f.fail.2 * failing),
                    at.now_ns,
                ),
                prefill: PrefillStats::from_parts(f.prefill, 0).scaled(latency, at.now_ns),
                quality: QualityStats::from_parts((f.q.0 * scores, f.q.1 * scores), at.now_ns),
                attempts: f.n,
                rest_until_ns: at.to_ns(f.rest),
                replicas: 1,
            };
            (id.as_str(), p)
        })
    }
}

/// The sum of `snapshots` (the peers', not this replica's own), per endpoint, as of `at`.
pub fn merge<'a>(
    snapshots: impl IntoIterator<Item = &'a ReplicaSnapshot>,
    at: Instant,
    hl: &HalfLives,
) -> HashMap<String, PeerFigures> {
    let mut sum: HashMap<String, PeerFigures> = HashMap::new();
    for snapshot in snapshots {
        for (id, p) in snapshot.figures(at, hl) {
            sum.entry(id.to_owned())
                .and_modify(|acc| *acc = acc.plus(&p, hl))
                .or_insert(p);
        }
    }
    sum
}

#[cfg(test)]
mod tests;
