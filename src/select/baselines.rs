//! The baseline policies switchyard's default is measured against, each a [`Policy`], so
//! they run in the gateway and, on the same request stream, in the simulator.
//!
//! - `round-robin`: the candidates in turn.
//! - `random`: a uniform shuffle.
//! - `lowest-latency`: LiteLLM's latency-based routing: the lowest mean of the last ten
//!   latencies (first-token time for streams, total otherwise); an endpoint without samples
//!   counts as zero, so it is tried first.
//! - `p2c-peak-ewma`: power of two choices over peak-EWMA latency times (in-flight + 1), as
//!   in Finagle, tower and Linkerd (Mitzenmacher's "power of two choices"): two candidates at
//!   random, the lower cost first; the rest follow by cost.
//! - `openrouter-price`: OpenRouter's default load balancing: weights proportional to
//!   1/price² over providers without a failure in the last 30 s, a weighted draw without
//!   replacement; recently failed providers go last.

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::seq::SliceRandom;
use rand::{Rng, RngCore};

use super::{sorted_decision, Candidate, Context, Decision, Policy, Score};

type Scored = (Candidate, Score);

fn base_score(c: &Candidate) -> Score {
    Score {
        estimate: c.estimate,
        feasible: true,
        ..Score::default()
    }
}

fn in_order(policy: &'static str, order: Vec<(Candidate, Score)>) -> Decision {
    Decision {
        policy,
        ranked: order.iter().map(|(c, _)| c.idx).collect(),
        scores: order.into_iter().map(|(_, s)| s).collect(),
    }
}

#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl Policy for RoundRobin {
    fn name(&self) -> &'static str {
        "round-robin"
    }

    fn decide(
        &self,
        ctx: &Context<'_>,
        candidates: &[Candidate],
        _rng: &mut dyn RngCore,
    ) -> Decision {
        let mut sorted: Vec<Candidate> = candidates.to_vec();
        sorted.sort_by(|a, b| {
            ctx.catalog
                .endpoint(a.idx)
                .id
                .cmp(&ctx.catalog.endpoint(b.idx).id)
        });
        let start = self.next.fetch_add(1, Ordering::Relaxed) % sorted.len().max(1);
        sorted.rotate_left(start);
        in_order(
            self.name(),
            sorted.iter().map(|c| (*c, base_score(c))).collect(),
        )
    }
}

#[derive(Debug, Default)]
pub(crate) struct Random;

impl Policy for Random {
    fn name(&self) -> &'static str {
        "random"
    }

    fn decide(
        &self,
        _ctx: &Context<'_>,
        candidates: &[Candidate],
        rng: &mut dyn RngCore,
    ) -> Decision {
        let mut order: Vec<Candidate> = candidates.to_vec();
        order.shuffle(rng);
        in_order(
            self.name(),
            order.iter().map(|c| (*c, base_score(c))).collect(),
        )
    }
}

#[derive(Debug, Default)]
pub(crate) struct LowestLatency;

impl Policy for LowestLatency {
    fn name(&self) -> &'static str {
        "lowest-latency"
    }

    fn decide(
        &self,
        ctx: &Context<'_>,
        candidates: &[Candidate],
        _rng: &mut dyn RngCore,
    ) -> Decision {
        let stream = ctx.request.stream;
        let scored = candidates
            .iter()
            .map(|c| {
                let mean = ctx.stats.with(c.idx, |s| {
                    if stream {
                        s.recent_ttft_ms.mean()
                    } else {
                        s.recent_total_ms.mean()
                    }
                });
                let mut score = base_score(c);
                score.latency_ms = mean;
                score.value = mean.unwrap_or(0.0);
                (*c, score)
            })
            .collect();
        sorted_decision(self.name(), ctx, candidates, scored)
    }
}

/// Latency assumed for an endpoint without observations. Not small: a tiny default would
/// make the balancer flood every new endpoint.
const DEFAULT_RTT_MS: f64 = 1000.0;

#[derive(Debug, Default)]
pub struct P2cPeakEwma;

impl Policy for P2cPeakEwma {
    fn name(&self) -> &'static str {
        "p2c-peak-ewma"
    }

    fn decide(
        &self,
        ctx: &Context<'_>,
        candidates: &[Candidate],
        rng: &mut dyn RngCore,
    ) -> Decision {
        let mut scored: Vec<(Candidate, Score)> = candidates
            .iter()
            .map(|c| {
                let (ewma, in_flight) = ctx.stats.with(c.idx, |s| {
                    (
                        s.peak_ewma.at(ctx.now_ns).unwrap_or(DEFAULT_RTT_MS),
                        s.in_flight,
                    )
                });
                let mut score = base_score(c);
                score.latency_ms = Some(ewma);
                score.value = ewma * f64::from(in_flight + 1);
                (*c, score)
            })
            .collect();
        if scored.len() >= 2 {
            // The two random choices go first, the better of them first.
            let a = rng.random_range(0..scored.len());
            let mut b = rng.random_range(0..scored.len() - 1);
            if b >= a {
                b += 1;
            }
            let (first, second) = if scored[a].1.value <= scored[b].1.value {
                (a, b)
            } else {
                (b, a)
            };
            let mut rest: Vec<(Candidate, Score)> = Vec::with_capacity(scored.len());
            let (pf, ps) = (scored[first], scored[second]);
            for (i, s) in scored.drain(..).enumerate() {
                if i != first && i != second {
                    rest.push(s);
                }
            }
            rest.sort_by(|x, y| x.1.value.total_cmp(&y.1.value));
            let mut order = vec![pf, ps];
            order.extend(rest);
            return in_order(self.name(), order);
        }
        in_order(self.name(), scored)
    }
}

/// How long a failure keeps a provider out of OpenRouter's stable set.
const RECENT_FAILURE_NS: u64 = 30_000_000_000;

#[derive(Debug, Default)]
pub(crate) struct OpenRouterPrice;

impl Policy for OpenRouterPrice {
    fn name(&self) -> &'static str {
        "openrouter-price"
    }

    fn decide(
        &self,
        ctx: &Context<'_>,
        candidates: &[Candidate],
        rng: &mut dyn RngCore,
    ) -> Decision {
        let (mut stable, mut failed): (Vec<Scored>, Vec<Scored>) = candidates
            .iter()
            .map(|c| {
                let mut score = base_score(c);
                // A free endpoint would get an infinite weight; floor the price.
                score.value = 1.0 / c.estimate.cost_usd.max(1e-12).powi(2);
                (*c, score)
            })
            .partition(|(c, _)| {
                let since = ctx.stats.view(c.idx, ctx.now_ns).since_failure_ns;
                since.is_none_or(|s| s >= RECENT_FAILURE_NS)
            });
        let mut order = weighted_order(&mut stable, rng);
        order.extend(weighted_order(&mut failed, rng));
        in_order(self.name(), order)
    }
}

/// A weighted draw without replacement, weights in `Score::value`.
fn weighted_order(
    pool: &mut Vec<(Candidate, Score)>,
    rng: &mut dyn RngCore,
) -> Vec<(Candidate, Score)> {
    let mut out = Vec::with_capacity(pool.len());
    while !pool.is_empty() {
        let total: f64 = pool.iter().map(|(_, s)| s.value).sum();
        let mut pick = rng.random::<f64>() * total;
        let mut chosen = pool.len() - 1;
        for (i, (_, s)) in pool.iter().enumerate() {
            if pick < s.value {
                chosen = i;
                break;
            }
            pick -= s.value;
        }
        out.push(pool.swap_remove(chosen));
    }
    out
}

#[cfg(test)]
mod tests;
