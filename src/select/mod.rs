//! Choosing endpoints: the [`Policy`] trait, its implementations, and what surrounds them
//! (hard-constraint filtering, cost estimates, ranking across fallback models).
//!
//! A policy ranks the candidates of one request: the first is tried first, the rest are the
//! fallback order, each candidate exactly once, with a [`Score`] per candidate kept for
//! explanation. Policies are pure: time comes in as `now_ns` (nanoseconds since the router's
//! epoch), randomness as `&mut dyn RngCore`, statistics as a read-only [`StatsTable`], so the
//! same code runs in the gateway and, deterministically, in tests and the simulator. Nothing
//! here knows about HTTP or tokio.
//!
//! Policies: `thompson` (the default: constrained Thompson sampling, [`thompson`]) and the
//! baselines `cheapest`, `round-robin`, `random`, `lowest-latency`, `p2c-peak-ewma`,
//! `openrouter-price` ([`baselines`]).

pub mod baselines;
mod cheapest;
pub mod estimate;
pub mod filter;
pub mod posterior;
pub mod thompson;

use rand::RngCore;
use serde::Serialize;

use crate::catalog::{Catalog, EndpointIdx};
use crate::config::PolicyName;
use crate::route::RouteRequest;
use crate::stats::StatsTable;

pub use cheapest::Cheapest;
pub use estimate::{Estimate, DEFAULT_EXPECTED_OUTPUT_TOKENS};
pub use filter::{Candidate, Removal};
pub use thompson::Thompson;

/// What a policy may read.
pub struct Context<'a> {
    pub request: &'a RouteRequest,
    pub catalog: &'a Catalog,
    pub stats: &'a StatsTable,
    pub now_ns: u64,
}

/// Which targets a candidate missed in the draw that ranked it (bit flags).
pub mod missed {
    pub(crate) const LATENCY: u8 = 1;
    pub(crate) const THROUGHPUT: u8 = 2;
    pub(crate) const QUALITY: u8 = 4;
    pub const SUCCESS: u8 = 8;
    /// Resting after a burst of failures.
    pub(crate) const COOLDOWN: u8 = 16;

    pub fn names(bits: u8) -> Vec<&'static str> {
        [
            (LATENCY, "latency"),
            (THROUGHPUT, "throughput"),
            (QUALITY, "quality"),
            (SUCCESS, "success_rate"),
            (COOLDOWN, "cooling_down_after_failures"),
        ]
        .into_iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| n)
        .collect()
    }
}

/// Why a candidate got its rank.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Score {
    pub estimate: Estimate,
    /// Sampled latency in ms at the first target's percentile (the median without targets).
    pub latency_ms: Option<f64>,
    /// Sampled success probability.
    pub success: Option<f64>,
    /// Sampled median decode speed, tokens per second.
    pub tokens_per_s: Option<f64>,
    /// The quality the ranking used: the sheet's, or a draw from the endpoint's feedback
    /// posterior once clients have scored it (`thompson`, when the request asks about
    /// quality).
    pub quality: Option<f64>,
    /// Met every target in this draw.
    pub feasible: bool,
    /// [`missed`] flags.
    pub missed: u8,
    /// What the policy sorted by (lower ranks first).
    pub value: f64,
}

/// A ranked choice among candidates, with the scores behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The policy that decided.
    pub policy: &'static str,
    /// Candidates in the order to try them; each appears once.
    pub ranked: Vec<EndpointIdx>,
    /// `scores[i]` explains `ranked[i]`.
    pub scores: Vec<Score>,
}

/// Ranks the candidate endpoints of a request.
pub trait Policy: Send + Sync {
    fn name(&self) -> &'static str;

    /// `candidates` is non-empty and holds each endpoint once.
    fn decide(
        &self,
        ctx: &Context<'_>,
        candidates: &[Candidate],
        rng: &mut dyn RngCore,
    ) -> Decision;
}

/// The policy a config names.
pub fn from_name(name: PolicyName) -> Box<dyn Policy> {
    match name {
        PolicyName::Thompson => Box::new(Thompson),
        PolicyName::Cheapest => Box::new(Cheapest),
        PolicyName::RoundRobin => Box::<baselines::RoundRobin>::default(),
        PolicyName::Random => Box::new(baselines::Random),
        PolicyName::LowestLatency => Box::new(baselines::LowestLatency),
        PolicyName::P2cPeakEwma => Box::new(baselines::P2cPeakEwma),
        PolicyName::OpenrouterPrice => Box::new(baselines::OpenRouterPrice),
    }
}

/// Ranks candidate tiers (the requested model's endpoints, then each fallback model's) and
/// joins them, each endpoint once; then moves the providers of `provider.order` to the
/// front in that order, and endpoints resting on a provider's `Retry-After` to the back.
/// Empty tiers are skipped.
pub fn rank(
    policy: &dyn Policy,
    ctx: &Context<'_>,
    tiers: &[Vec<Candidate>],
    rng: &mut dyn RngCore,
) -> Decision {
    let mut ranked = Vec::new();
    let mut scores = Vec::new();
    for tier in tiers {
        if ranked.is_empty() {
            // The first tier: nothing to leave out, and its decision is taken as it is.
            if !tier.is_empty() {
                Decision { ranked, scores, .. } = policy.decide(ctx, tier, rng);
            }
            continue;
        }
        let fresh: Vec<Candidate> = tier
            .iter()
            .filter(|c| !ranked.contains(&c.idx))
            .copied()
            .collect();
        if fresh.is_empty() {
            continue;
        }
        let d = policy.decide(ctx, &fresh, rng);
        ranked.extend(d.ranked);
        scores.extend(d.scores);
    }
    let order = &ctx.request.constraints.order;
    if !order.is_empty() {
        let key = |idx: EndpointIdx| {
            let provider = &ctx.catalog.provider_of(idx).name;
            order
                .iter()
                .position(|o| o == provider)
                .unwrap_or(order.len())
        };
        let mut paired: Vec<(EndpointIdx, Score)> = ranked.into_iter().zip(scores).collect();
        paired.sort_by_key(|(idx, _)| key(*idx)); // stable: the policy's order within a provider
        (ranked, scores) = paired.into_iter().unzip();
    }
    // A provider that answered 429/503 with `Retry-After` goes last until the time is up,
    // whatever the policy: it asked, and trying it first only costs a wasted attempt.
    if ctx.stats.any_resting(ctx.now_ns) {
        let mut paired: Vec<(EndpointIdx, Score)> = ranked.into_iter().zip(scores).collect();
        paired.sort_by_key(|(idx, _)| ctx.stats.resting(*idx, ctx.now_ns));
        (ranked, scores) = paired.into_iter().unzip();
    }
    Decision {
        policy: policy.name(),
        ranked,
        scores,
    }
}

/// Sorts candidates by `key` (lower first), ties broken by endpoint id, and builds the
/// decision; shared by the baselines.
pub(crate) fn sorted_decision(
    policy: &'static str,
    ctx: &Context<'_>,
    candidates: &[Candidate],
    mut scored: Vec<(Candidate, Score)>,
) -> Decision {
    debug_assert_eq!(scored.len(), candidates.len());
    scored.sort_by(|a, b| {
        a.1.value.total_cmp(&b.1.value).then_with(|| {
            ctx.catalog
                .endpoint(a.0.idx)
                .id
                .cmp(&ctx.catalog.endpoint(b.0.idx).id)
        })
    });
    Decision {
        policy,
        ranked: scored.iter().map(|(c, _)| c.idx).collect(),
        scores: scored.into_iter().map(|(_, s)| s).collect(),
    }
}

#[cfg(test)]
mod tests;
