//! `thompson`: constrained Thompson sampling with discounting (the default policy).
//!
//! For each candidate, one draw from its posteriors (see [`super::posterior`]):
//! - success: Beta over the decayed success and failure counts;
//! - latency at each target's percentile: a log-normal with a Normal-Inverse-Gamma posterior
//!   over decayed log-latency statistics; the first-token time for this request's estimated
//!   prompt, from the endpoint's regression of log TTFT on prompt size once it has one
//!   ([`crate::stats::prefill`]), so a long prompt is judged by its prefill. For
//!   `latency_metric = total` when the endpoint's
//!   first-token time and decode speed are known, total = TTFT quantile + expected output
//!   tokens / drawn decode speed, so a long answer is judged by its length; else the fit of
//!   observed totals;
//! - decode speed, when a throughput target or `prefer = throughput` needs it.
//!
//! A candidate is feasible in this draw when every latency and throughput target holds, its
//! quality is at least `min_quality` (an unknown quality does not count as meeting it; once
//! clients have scored the endpoint's answers, its quality is a draw from the feedback
//! posterior around the sheet's value, see [`crate::stats::quality`]), the
//! drawn success probability is at least [`MIN_SUCCESS`], and it is not resting after a
//! failure burst. Feasible candidates are ranked by the objective (`prefer`: cost, latency,
//! quality or throughput); then the infeasible by closeness to feasibility, the probability
//! under the draw of meeting the latency and throughput targets times the drawn success
//! (compared as logarithms, so it never underflows to a tie; computed only when fewer than ten
//! candidates are feasible or `provider.order` may move the infeasible forward: otherwise no
//! attempt or record reads their order, and they follow by index);
//! resting ones last. Hard constraints were applied before (see [`super::filter`]).
//!
//! Exploration comes from the posteriors: an endpoint never tried has a weak prior whose
//! quantile at the target percentile sits at half the target, so it is tried soon; an
//! endpoint not observed for a while has its statistics decay, its posterior widen, and is
//! drawn feasible again now and then (re-probing). Failure bursts act faster through the
//! break: after [`BREAK_AFTER`] consecutive failures an endpoint rests for a cooldown that
//! doubles with every further failure (1 s, 2 s, ... up to 30 s), then gets a probe.

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

use super::posterior::{
    draw_log_normal, draw_prefill, draw_quality, draw_success, phi, z, LnProduct, LogNormalDraw,
    PRIOR_SIGMA,
};
use super::{missed, Candidate, Context, Decision, Policy, Score};
use crate::route::{LatencyMetric, Prefer};
use crate::stats::prefill::regressor;
use crate::stats::{EndpointView, LogStats};

/// A candidate whose drawn success probability is below this is not feasible: beyond one
/// failure in five, the fallbacks it causes cost more latency than its price saves.
pub(crate) const MIN_SUCCESS: f64 = 0.8;
/// Consecutive failures that start the break.
pub(crate) const BREAK_AFTER: u32 = 3;
const COOLDOWN_BASE_NS: u64 = 1_000_000_000;
const COOLDOWN_MAX_NS: u64 = 30_000_000_000;
/// Prior medians without a target: typical first-token and whole-answer times, and speed.
const PRIOR_TTFT_MS: f64 = 500.0;
const PRIOR_TOTAL_MS: f64 = 3000.0;
const PRIOR_TOKENS_PER_S: f64 = 80.0;

/// Whether an endpoint is resting: after a failure burst, or because the provider asked
/// for it with `Retry-After`.
pub(crate) fn cooling_down(view: &EndpointView) -> bool {
    if view.retry_after_ns > 0 {
        return true;
    }
    break_ns(view.consecutive_failures)
        .is_some_and(|cooldown| view.since_failure_ns.is_some_and(|since| since < cooldown))
}

/// How long the break after `consecutive_failures` lasts, from the last failure; `None`
/// below the burst that starts one.
fn break_ns(consecutive_failures: u32) -> Option<u64> {
    if consecutive_failures < BREAK_AFTER {
        return None;
    }
    let doublings = (consecutive_failures - BREAK_AFTER).min(16);
    Some((COOLDOWN_BASE_NS << doublings).min(COOLDOWN_MAX_NS))
}

/// When the endpoint's rest ends (0: not resting): the later of a provider's `Retry-After`
/// and the break after a failure burst. What a fleet shares, so its replicas rest together.
pub(crate) fn rest_end_ns(s: &crate::stats::EndpointStats) -> u64 {
    let burst = match (break_ns(s.consecutive_failures), s.last_failure) {
        (Some(cooldown), Some((at, _))) => at + cooldown,
        _ => 0,
    };
    s.rest_until_ns.max(burst)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Thompson;

/// Ranked positions whose order is always exact: as many as a request may attempt
/// (`max_attempts` is at most 10) and as a decision record keeps.
const EXACT_POSITIONS: usize = 10;

/// A request's latency targets (normal quantile, bound, share, the bound's logarithm) and
/// throughput targets (quantile of speed, minimum).
struct Targets<'a> {
    latency: &'a [(f64, f64, f64, f64)],
    throughput: &'a [(f64, f64)],
}

/// What an infeasible candidate drew, kept to rank it by closeness to feasibility.
struct Miss {
    position: usize,
    lat: LogNormalDraw,
    decode_ms: f64,
    speed: Option<LogNormalDraw>,
    success: f64,
    quality_ok: bool,
}

impl Miss {
    /// ln P(every target met) under the draw, times the drawn success (a tenth of it for a
    /// quality miss): as logarithms, so hopeless candidates still compare by how far they are.
    fn closeness(&self, t: &Targets<'_>) -> f64 {
        let mut p = LnProduct::default();
        if self.decode_ms == 0.0 {
            for &(.., ln_max) in t.latency {
                p.times_phi(self.lat.standardized_ln(ln_max));
            }
        } else {
            for &(_, max, ..) in t.latency {
                p.times_phi(self.lat.standardized(max - self.decode_ms));
            }
        }
        if let Some(s) = self.speed {
            for &(_, min) in t.throughput {
                p.times_phi(-s.standardized(min));
            }
        }
        p.times(self.success.max(1e-12));
        if !self.quality_ok {
            p.times(0.1);
        }
        p.ln()
    }
}

/// What a candidate is sorted by, packed in one integer so a sort compares plain integers
/// and moves little memory. From the top: the class (2 bits: 0 feasible, 1 infeasible,
/// 2 resting), the primary value (62 bits: its order-preserving image without the lowest
/// two bits, so values within a few ulps tie), the secondary value (32 bits: sign,
/// exponent and 20 mantissa bits, about six significant digits, enough to break a tie),
/// and the position in `drawn` (32 bits), which makes every key distinct.
fn key(class: u8, primary: f64, secondary: f64, position: usize) -> u128 {
    (u128::from(class) << 126)
        | (u128::from(ordered(primary) >> 2) << 64)
        | (u128::from(ordered(secondary) >> 32) << 32)
        | position as u128
}

/// Maps an f64 to a u64 with the same order (IEEE total order).
fn ordered(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Whether a latency target still holds once failures are priced: a request sent here
/// fails with probability `1 − success` after `failure_ms` (the mean of the endpoint's
/// failure-time fit: a mean, not a median, so a mix of fast errors and slow timeouts counts
/// the slow ones), and its fallback then starts that much later — taken to be as fast as this
/// endpoint, having no better guess before the ranking is known. The share of requests
/// within `max_ms` is then `s·P(L ≤ max) + (1 − s)·P(L ≤ max − failure_ms)`, which must reach
/// the target's `share` (its percentile / 100). Called after the plain quantile check passed
/// (`at_ms`, the quantile at the target's percentile, is at most `max_ms`); an endpoint whose
/// failures were never timed is judged as before.
#[inline]
fn meets_with_fallbacks(
    lat: &LogNormalDraw,
    success: f64,
    (failure_ms, share): (&LogStats, f64),
    max_ms: f64,
    at_ms: f64,
) -> bool {
    let Some(fail_ms) = failure_ms.mean_value() else {
        return true;
    };
    // Usual case, without a Φ: even started late the quantile is in time, so both terms
    // are at least `share`.
    if at_ms + fail_ms <= max_ms {
        return true;
    }
    let on_time = phi(lat.standardized(max_ms));
    // Even a fallback that always arrives in time cannot lift the share above this.
    if success * on_time + (1.0 - success) < share {
        return false;
    }
    let late_start = if max_ms > fail_ms {
        phi(lat.standardized(max_ms - fail_ms))
    } else {
        0.0
    };
    success * on_time + (1.0 - success) * late_start >= share
}

impl Policy for Thompson {
    fn name(&self) -> &'static str {
        "thompson"
    }

    fn decide(
        &self,
        ctx: &Context<'_>,
        candidates: &[Candidate],
        rng: &mut dyn RngCore,
    ) -> Decision {
        let c = &ctx.request.constraints;
        // Each latency target as (its normal quantile, its bound, the share it asks for, the
        // bound's logarithm: the same for every candidate, taken once).
        let lat_targets: Vec<(f64, f64, f64, f64)> = c
            .latency
            .iter()
            .map(|t| {
                (
                    z(t.percentile),
                    t.max_ms,
                    t.percentile / 100.0,
                    t.max_ms.ln(),
                )
            })
            .collect();
        // "p% of requests at least this fast" is the (100 - p)th percentile of speed.
        let thr_targets: Vec<(f64, f64)> = c
            .throughput
            .iter()
            .map(|t| (z(100.0 - t.percentile), t.min_tokens_per_s))
            .collect();
        let (ttft_prior, total_prior) = match lat_targets.first() {
            // Optimistic: the prior's quantile at the target's percentile is half the target.
            Some(&(zp, max, ..)) => {
                let m = 0.5 * max / (PRIOR_SIGMA * zp).exp();
                (m, m)
            }
            None => (PRIOR_TTFT_MS, PRIOR_TOTAL_MS),
        };
        let speed_prior = thr_targets
            .iter()
            .map(|&(_, min)| 2.0 * min)
            .fold(PRIOR_TOKENS_PER_S, f64::max);
        let needs_speed = !thr_targets.is_empty() || c.prefer == Prefer::Throughput;
        // Logarithms that are the same for every candidate, taken once.
        let (ttft_mu0, total_mu0, speed_mu0) =
            (ttft_prior.ln(), total_prior.ln(), speed_prior.ln());

        // A generator of its own, seeded from the caller's: the draws below take about eight
        // random numbers per candidate, and through `dyn RngCore` each would be an indirect
        // call the samplers cannot be inlined around. Still deterministic for a seeded caller.
        let rng = &mut SmallRng::seed_from_u64(rng.next_u64());
        // Quality is drawn only when the request asks about it.
        let wants_quality = c.min_quality.is_some() || c.prefer == Prefer::Quality;
        let (quality_prior, quality_hl) =
            (ctx.stats.quality_prior(), ctx.stats.half_lives().quality);
        let mut drawn: Vec<(Candidate, Score)> = Vec::with_capacity(candidates.len());
        // The infeasible are ranked by closeness to feasibility only where that order can be
        // read: an attempt list or a decision record reads at most the first
        // [`EXACT_POSITIONS`], and `provider.order` may move infeasible endpoints forward.
        // With enough candidates, closeness waits until the feasible are counted.
        let defer = candidates.len() > EXACT_POSITIONS && c.order.is_empty();
        let mut misses: Vec<Miss> = Vec::new();
        let targets = Targets {
            latency: &lat_targets,
            throughput: &thr_targets,
        };
        let mut keys: Vec<u128> = Vec::with_capacity(candidates.len());
        // Candidates of one model share a prompt estimate: its regressor taken once.
        let mut last_prompt = (f64::NAN, 0.0);
        for &cand in candidates {
            let view = ctx.stats.view(cand.idx, ctx.now_ns);
            let ep = ctx.catalog.endpoint(cand.idx);
            let success = draw_success(view.successes, view.failures, rng);
            let composed = c.metric == LatencyMetric::Total
                && view.ttft_ms.is_some()
                && view.tokens_per_s.is_some();
            let lat: LogNormalDraw = match (c.metric, composed) {
                (LatencyMetric::Ttft, _) | (LatencyMetric::Total, true) => match view.prefill {
                    // This request's first token, for its prompt size.
                    Some(fit) => {
                        let tokens = cand.estimate.prompt_tokens;
                        if tokens != last_prompt.0 {
                            last_prompt = (tokens, regressor(tokens));
                        }
                        draw_prefill(fit, ttft_mu0, last_prompt.1, rng)
                    }
                    None => draw_log_normal(view.ttft_ms, ttft_mu0, rng),
                },
                (LatencyMetric::Total, false) => draw_log_normal(view.total_ms, total_mu0, rng),
            };
            let speed = (needs_speed || composed)
                .then(|| draw_log_normal(view.tokens_per_s, speed_mu0, rng));
            let decode_ms = match (composed, speed) {
                (true, Some(s)) => cand.estimate.output_tokens / s.quantile(0.0) * 1000.0,
                _ => 0.0,
            };
            let latency_at = |zp: f64| lat.quantile(zp) + decode_ms;
            // At the first target's percentile (the median without targets): what the score
            // shows and `prefer = latency` sorts by; the first target checks against it.
            let first_z = lat_targets.first().map_or(0.0, |t| t.0);
            let latency_ms = latency_at(first_z);

            let mut miss = 0u8;
            for (i, &(zp, max, share, _)) in lat_targets.iter().enumerate() {
                let at = if i == 0 { latency_ms } else { latency_at(zp) };
                let failing = (&view.failure_ms, share);
                if at > max
                    || !meets_with_fallbacks(
                        &lat,
                        success,
                        failing,
                        max - decode_ms,
                        at - decode_ms,
                    )
                {
                    miss |= missed::LATENCY;
                }
            }
            for &(zp, min) in &thr_targets {
                let s = speed.expect("drawn when there are throughput targets");
                if s.quantile(zp) < min {
                    miss |= missed::THROUGHPUT;
                }
            }
            // The sheet's quality, or a draw from the feedback posterior once there is some.
            let quality = if wants_quality {
                view.quality
                    .posterior(ep.price.quality, quality_prior, ctx.now_ns, quality_hl)
                    .map_or(ep.price.quality, |p| Some(draw_quality(p, rng)))
            } else {
                ep.price.quality
            };
            let quality_ok = c
                .min_quality
                .is_none_or(|m| quality.is_some_and(|q| q >= m));
            if !quality_ok {
                miss |= missed::QUALITY;
            }
            if success < MIN_SUCCESS {
                miss |= missed::SUCCESS;
            }
            let resting = cooling_down(&view);
            if resting {
                miss |= missed::COOLDOWN;
            }
            let mut closeness = 0.0;
            if miss != 0 {
                let m = Miss {
                    position: drawn.len(),
                    lat,
                    decode_ms,
                    speed,
                    success,
                    quality_ok,
                };
                // With few candidates its order is always read: ranked by closeness now.
                // With many, only if fewer than [`EXACT_POSITIONS`] turn out feasible (below).
                if defer {
                    misses.push(m);
                } else {
                    closeness = m.closeness(&targets);
                }
            }
            let tokens_per_s = speed.map(|s| s.quantile(0.0));
            let value = match c.prefer {
                Prefer::Cost => cand.estimate.cost_usd,
                Prefer::Latency => latency_ms,
                Prefer::Quality => -quality.unwrap_or(0.0),
                Prefer::Throughput => -tokens_per_s.unwrap_or(0.0),
            };
            let class = if miss == 0 {
                0
            } else if resting {
                2
            } else {
                1
            };
            // Feasible: the objective, then the faster draw. Others: by closeness (below).
            keys.push(if miss == 0 {
                key(class, value, latency_ms, drawn.len())
            } else {
                key(class, -closeness, cand.idx as f64, drawn.len())
            });
            drawn.push((
                cand,
                Score {
                    estimate: cand.estimate,
                    latency_ms: Some(latency_ms),
                    success: Some(success),
                    tokens_per_s,
                    quality,
                    feasible: miss == 0,
                    missed: miss,
                    value,
                },
            ));
        }
        let feasible = drawn.len() - misses.len();
        if defer && feasible < EXACT_POSITIONS {
            for m in &misses {
                let k = keys[m.position];
                let class = (k >> 126) as u8;
                let idx = drawn[m.position].0.idx as f64;
                keys[m.position] = key(class, -m.closeness(&targets), idx, m.position);
            }
        }
        // Feasible first, then the infeasible, resting ones last.
        keys.sort_unstable();
        let at = |k: &u128| &drawn[(*k as u32) as usize];
        Decision {
            policy: self.name(),
            ranked: keys.iter().map(|k| at(k).0.idx).collect(),
            scores: keys.iter().map(|k| at(k).1).collect(),
        }
    }
}
