//! The oracle, a [`Policy`] that exists only in simulation: it knows each endpoint's true
//! current behaviour and load, and the request's true output length.
//!
//! It ranks the cheapest candidate that truly meets the request's hint first (true latency
//! quantile at the hint's percentile under the current load, and still that share of
//! requests in time once failures and the late start of their fallback are counted — the
//! fallback taken to be as fast as this endpoint —, error rate at most 20%, quality; equal
//! prices go to the truly faster), then the rest by how far they miss. It is
//! greedy, request by request: the cost-optimal choice under the hint for each request, not
//! a plan over the whole run. The engine tells it the truth before each decision; it plans
//! and attempts through the same planner and attempt machine as every other policy.

use std::sync::Mutex;

use rand::RngCore;

use super::truth::{prefill_ms, request_cost_cached, slowdown, TrueState};
use super::workload::Req;
use crate::route::LatencyMetric;
use crate::select::posterior::{phi, z};
use crate::select::{Candidate, Context, Decision, Policy, Score};

/// What the oracle knows at a decision.
#[derive(Debug, Default)]
struct Truth {
    states: Vec<TrueState>,
    /// Catalog index → scenario index, for the catalog in force.
    map: Vec<usize>,
    in_flight: Vec<u32>,
    req: Option<Req>,
    /// Per scenario endpoint, the request's prompt tokens its cache holds.
    cached: Vec<u32>,
}

#[derive(Debug, Default)]
pub(crate) struct Oracle {
    truth: Mutex<Truth>,
}

impl Oracle {
    fn truth(&self) -> std::sync::MutexGuard<'_, Truth> {
        self.truth.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The endpoints' behaviour changed (an event), or the catalog did.
    pub(crate) fn set_states(&self, states: &[TrueState], map: &[usize]) {
        let mut t = self.truth();
        t.states = states.to_vec();
        t.map = map.to_vec();
    }

    /// The request about to be decided, and the load it meets.
    pub(crate) fn set_request(&self, r: &Req, in_flight: &[u32], cached: &[u32]) {
        let mut t = self.truth();
        t.req = Some(*r);
        t.in_flight.clear();
        t.in_flight.extend_from_slice(in_flight);
        t.cached.clear();
        t.cached.extend_from_slice(cached);
    }
}

impl Policy for Oracle {
    fn name(&self) -> &'static str {
        "oracle"
    }

    fn decide(
        &self,
        ctx: &Context<'_>,
        candidates: &[Candidate],
        _rng: &mut dyn RngCore,
    ) -> Decision {
        let truth = self.truth();
        let r = truth
            .req
            .expect("the engine sets the request before deciding");
        let c = &ctx.request.constraints;
        let mut scored: Vec<(bool, f64, f64, usize, Candidate)> = candidates
            .iter()
            .map(|cand| {
                let e = truth.map[cand.idx];
                let ep = &truth.states[e].ep;
                let load = truth.in_flight[e];
                let full = ep.capacity.is_some_and(|cap| load >= cap);
                let slow = slowdown(load + 1, ep.capacity);
                // Prefill is a fixed delay for this request's prompt.
                let prefill = prefill_ms(ep, &r);
                let q = |zp: f64| {
                    let ttft = ep.ttft.median_ms * (ep.ttft.sigma * zp).exp() * slow + prefill;
                    match c.metric {
                        LatencyMetric::Ttft => ttft,
                        LatencyMetric::Total => {
                            ttft + f64::from(r.output_tokens) / ep.tokens_per_s * 1000.0 * slow
                        }
                    }
                };
                let late = c
                    .latency
                    .iter()
                    .map(|t| q(z(t.percentile)) / t.max_ms)
                    .fold(0.0, f64::max);
                // The true share of requests within `max_ms` when a failure (after
                // `fail_ms`) is followed by a fallback as fast as this endpoint.
                let fail_ms = ep
                    .error_after_ms
                    .unwrap_or(0.5 * (ep.ttft.median_ms * slow + prefill));
                let fixed = prefill
                    + match c.metric {
                        LatencyMetric::Ttft => 0.0,
                        LatencyMetric::Total => {
                            f64::from(r.output_tokens) / ep.tokens_per_s * 1000.0 * slow
                        }
                    };
                let within = |max_ms: f64| {
                    let room = max_ms - fixed;
                    if room <= 0.0 {
                        return 0.0;
                    }
                    if ep.ttft.sigma > 0.0 {
                        phi((room / (ep.ttft.median_ms * slow)).ln() / ep.ttft.sigma)
                    } else if room >= ep.ttft.median_ms * slow {
                        1.0
                    } else {
                        0.0
                    }
                };
                let in_time = c.latency.iter().all(|t| {
                    let e = ep.error_rate;
                    (1.0 - e) * within(t.max_ms) + e * within(t.max_ms - fail_ms)
                        >= t.percentile / 100.0
                });
                let quality_ok = c
                    .min_quality
                    .is_none_or(|m| ep.real_quality().is_some_and(|q| q >= m));
                let feasible =
                    late <= 1.0 && in_time && ep.error_rate <= 0.2 && quality_ok && !full;
                let cost = request_cost_cached(ep, &r, truth.cached.get(e).copied().unwrap_or(0));
                // Feasible: cheapest first, equal prices to the truly faster. Others: closest.
                let key = if feasible {
                    cost
                } else {
                    late.max(1.0) + ep.error_rate * 10.0 + if quality_ok { 0.0 } else { 100.0 }
                };
                (!feasible, key, late, e, *cand)
            })
            .collect();
        scored.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.total_cmp(&b.1))
                .then(a.2.total_cmp(&b.2))
                .then(a.3.cmp(&b.3))
        });
        Decision {
            policy: "oracle",
            ranked: scored.iter().map(|s| s.4.idx).collect(),
            scores: scored
                .iter()
                .map(|&(infeasible, key, _, _, cand)| Score {
                    estimate: cand.estimate,
                    feasible: !infeasible,
                    value: key,
                    ..Score::default()
                })
                .collect(),
        }
    }
}
