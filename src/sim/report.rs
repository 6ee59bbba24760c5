//! What a simulation found, per policy: success rate, SLO attainment, cost, quality,
//! latency quantiles, regret against the oracle, traffic share over time, and how long the
//! policy took to move traffic after each event.
//!
//! SLO attainment counts requests that were answered, within the hint's latency target
//! (client-side: failed attempts before the answer included) and at or above its
//! `min_quality`. A negative event (more errors, slower, less capacity) is "moved away from"
//! once at most 10% of the last 20 requests start at that endpoint; a positive one (cheaper,
//! a new entrant) is "adopted" once at least 50% do.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::engine::Done;
use super::scenario::{Scenario, SimPolicy};
use crate::route::LatencyMetric;

#[derive(Debug, Clone, Serialize)]
pub struct Quantiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventMove {
    pub event: String,
    pub endpoint: String,
    /// Seconds from the event until traffic moved; `None` if it never did.
    pub seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    pub policy: String,
    pub requests: usize,
    pub success_rate: f64,
    pub slo_attainment: f64,
    pub cost_usd: f64,
    pub cost_per_1k_usd: f64,
    pub mean_quality: Option<f64>,
    pub mean_attempts: f64,
    pub ttft_ms: Option<Quantiles>,
    pub total_ms: Option<Quantiles>,
    /// Cost above the oracle's, in USD (negative: cheaper, usually by missing the SLO).
    pub cost_regret_usd: Option<f64>,
    /// Oracle's SLO attainment minus this policy's.
    pub slo_shortfall: Option<f64>,
    /// Per minute: share of first attempts per endpoint id.
    pub traffic: Vec<Vec<(String, f64)>>,
    /// Per minute: USD spent on requests arriving in that minute.
    pub cost_by_minute: Vec<f64>,
    pub moves: Vec<EventMove>,
    /// What hedging did, when any request was hedged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hedging: Option<HedgeReport>,
}

/// Hedges started and won, and what the losers cost.
#[derive(Debug, Clone, Serialize)]
pub struct HedgeReport {
    pub started: usize,
    pub won: usize,
    pub extra_usd: f64,
    /// `extra_usd` as a share of the policy's whole cost.
    pub extra_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    pub requests: usize,
    pub policies: Vec<PolicyReport>,
}

fn quantiles(values: impl Iterator<Item = f64>) -> Option<Quantiles> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds");
    for v in values {
        h.saturating_record((v * 1000.0).round().max(1.0) as u64); // microseconds
    }
    (!h.is_empty()).then(|| Quantiles {
        p50: h.value_at_quantile(0.50) as f64 / 1000.0,
        p95: h.value_at_quantile(0.95) as f64 / 1000.0,
        p99: h.value_at_quantile(0.99) as f64 / 1000.0,
    })
}

/// Whether a request met its hint.
fn met(s: &Scenario, d: &Done) -> bool {
    let Some(e) = d.answered_by else { return false };
    let c = &s.hints[d.hint].parsed.request.constraints;
    let measured = match c.metric {
        LatencyMetric::Ttft => d.ttft_ms,
        LatencyMetric::Total => d.total_ms,
    };
    let latency_ok = c.latency.iter().all(|t| measured <= t.max_ms);
    let quality_ok = c
        .min_quality
        .is_none_or(|m| s.endpoints[e].real_quality().is_some_and(|q| q >= m));
    latency_ok && quality_ok
}

/// Events as (label, endpoint index, time, negative?).
fn event_list(s: &Scenario) -> Vec<(String, usize, u64, bool)> {
    let mut out = Vec::new();
    for (i, ev) in s.events.iter().enumerate() {
        let e = s
            .endpoints
            .iter()
            .position(|x| x.id == ev.endpoint)
            .expect("validated");
        let base = &s.endpoints[e];
        let c = &ev.set;
        // Dearer counts as worse: traffic is expected to leave a price rise, not adopt it.
        let worse = c.error_rate.is_some_and(|v| v > base.error_rate)
            || c.input_per_mtok.is_some_and(|v| v > base.input_per_mtok)
            || c.output_per_mtok.is_some_and(|v| v > base.output_per_mtok)
            || c.ttft_median_ms.is_some_and(|v| v > base.ttft.median_ms)
            || c.tokens_per_s.is_some_and(|v| v < base.tokens_per_s)
            || c.capacity
                .is_some_and(|v| base.capacity.is_none_or(|b| v < b));
        out.push((format!("events[{i}]"), e, ev.at.as_nanos() as u64, worse));
        if let Some(until) = ev.until {
            // The end of a negative event is a recovery: adopting the endpoint again.
            out.push((
                format!("events[{i}].until"),
                e,
                until.as_nanos() as u64,
                !worse,
            ));
        }
    }
    for (e, ep) in s.endpoints.iter().enumerate() {
        if let Some(a) = ep.appears_at {
            out.push((format!("{} appears", ep.id), e, a.as_nanos() as u64, false));
        }
    }
    out
}

fn moves(s: &Scenario, done: &[Done]) -> Vec<EventMove> {
    const WINDOW: usize = 20;
    event_list(s)
        .into_iter()
        .map(|(event, e, at, negative)| {
            let after: Vec<&Done> = done.iter().filter(|d| d.at_ns >= at).collect();
            let mut seconds = None;
            for end in WINDOW..=after.len() {
                let window = &after[end - WINDOW..end];
                let share =
                    window.iter().filter(|d| d.first == Some(e)).count() as f64 / WINDOW as f64;
                if (negative && share <= 0.1) || (!negative && share >= 0.5) {
                    seconds = Some((window[WINDOW - 1].at_ns - at) as f64 / 1e9);
                    break;
                }
            }
            EventMove {
                event,
                endpoint: s.endpoints[e].id.clone(),
                seconds,
            }
        })
        .collect()
}

fn cost_by_minute(s: &Scenario, done: &[Done]) -> Vec<f64> {
    let minutes = (s.duration.as_secs() as usize).div_ceil(60).max(1);
    let mut cost = vec![0.0; minutes];
    for d in done {
        cost[((d.at_ns / 60_000_000_000) as usize).min(minutes - 1)] += d.cost_usd;
    }
    cost
}

fn traffic(s: &Scenario, done: &[Done]) -> Vec<Vec<(String, f64)>> {
    let minutes = (s.duration.as_secs() as usize).div_ceil(60).max(1);
    let mut counts = vec![vec![0usize; s.endpoints.len()]; minutes];
    for d in done {
        if let Some(e) = d.first {
            let m = ((d.at_ns / 60_000_000_000) as usize).min(minutes - 1);
            counts[m][e] += 1;
        }
    }
    counts
        .into_iter()
        .map(|row| {
            let n: usize = row.iter().sum();
            s.endpoints
                .iter()
                .zip(row)
                .filter(|(_, c)| *c > 0)
                .map(|(ep, c)| (ep.id.clone(), c as f64 / n.max(1) as f64))
                .collect()
        })
        .collect()
}

/// Summarises one policy's run; `oracle` is the oracle's (cost, attainment) when it ran.
pub(crate) fn summarize(
    s: &Scenario,
    policy: SimPolicy,
    done: &[Done],
    oracle: Option<(f64, f64)>,
) -> PolicyReport {
    let n = done.len().max(1) as f64;
    let answered: Vec<&Done> = done.iter().filter(|d| d.answered_by.is_some()).collect();
    let cost: f64 = answered.iter().map(|d| d.cost_usd).sum();
    let attained = done.iter().filter(|d| met(s, d)).count() as f64 / n;
    let qualities: Vec<f64> = answered
        .iter()
        .filter_map(|d| s.endpoints[d.answered_by.expect("answered")].real_quality())
        .collect();
    PolicyReport {
        policy: policy.name().to_owned(),
        requests: done.len(),
        success_rate: answered.len() as f64 / n,
        slo_attainment: attained,
        cost_usd: cost,
        cost_per_1k_usd: cost / n * 1000.0,
        mean_quality: (!qualities.is_empty())
            .then(|| qualities.iter().sum::<f64>() / qualities.len() as f64),
        mean_attempts: done.iter().map(|d| f64::from(d.attempts)).sum::<f64>() / n,
        ttft_ms: quantiles(answered.iter().map(|d| d.ttft_ms)),
        total_ms: quantiles(answered.iter().map(|d| d.total_ms)),
        cost_regret_usd: oracle.map(|(c, _)| cost - c),
        slo_shortfall: oracle.map(|(_, a)| a - attained),
        traffic: traffic(s, done),
        cost_by_minute: cost_by_minute(s, done),
        moves: moves(s, done),
        hedging: hedging(done, cost),
    }
}

fn hedging(done: &[Done], cost: f64) -> Option<HedgeReport> {
    let started = done.iter().filter(|d| d.hedged).count();
    let extra: f64 = done.iter().map(|d| d.hedge_wasted_usd).sum();
    (started > 0).then(|| HedgeReport {
        started,
        won: done.iter().filter(|d| d.hedge_won).count(),
        extra_usd: extra,
        extra_share: if cost > 0.0 { extra / cost } else { 0.0 },
    })
}

impl Report {
    /// The terminal table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "scenario {} (seed {}, {} requests)\n\n{:<17} {:>8} {:>8} {:>10} {:>8} {:>9} {:>9} {:>9} {:>10} {:>9}\n",
            self.scenario, self.seed, self.requests,
            "policy", "success", "SLO", "$/1k req", "quality", "ttft p50", "ttft p95", "ttft p99", "regret $", "shortfall"
        );
        let ms = |q: &Option<Quantiles>, f: fn(&Quantiles) -> f64| {
            q.as_ref().map_or("-".into(), |q| format!("{:.0}", f(q)))
        };
        for p in &self.policies {
            out.push_str(&format!(
                "{:<17} {:>7.1}% {:>7.1}% {:>10.4} {:>8} {:>9} {:>9} {:>9} {:>10} {:>9}\n",
                p.policy,
                p.success_rate * 100.0,
                p.slo_attainment * 100.0,
                p.cost_per_1k_usd,
                p.mean_quality.map_or("-".into(), |q| format!("{q:.3}")),
                ms(&p.ttft_ms, |q| q.p50),
                ms(&p.ttft_ms, |q| q.p95),
                ms(&p.ttft_ms, |q| q.p99),
                p.cost_regret_usd.map_or("-".into(), |r| format!("{r:+.3}")),
                p.slo_shortfall
                    .map_or("-".into(), |r| format!("{:+.1}%", r * 100.0)),
            ));
        }
        let hedged: Vec<(&str, &HedgeReport)> = self
            .policies
            .iter()
            .filter_map(|p| Some((p.policy.as_str(), p.hedging.as_ref()?)))
            .collect();
        if !hedged.is_empty() {
            out.push_str(&format!(
                "\nhedging:\n{:<17} {:>9} {:>9} {:>11} {:>8}\n",
                "policy", "started", "won", "extra $", "of cost"
            ));
            for (policy, h) in hedged {
                out.push_str(&format!(
                    "{:<17} {:>9} {:>9} {:>11.4} {:>7.2}%\n",
                    policy,
                    h.started,
                    h.won,
                    h.extra_usd,
                    h.extra_share * 100.0
                ));
            }
        }
        let with_moves: Vec<&PolicyReport> = self
            .policies
            .iter()
            .filter(|p| !p.moves.is_empty())
            .collect();
        if let Some(first) = with_moves.first() {
            out.push_str("\ntime to move traffic after each event (s):\n");
            out.push_str(&format!("{:<17}", "policy"));
            for m in &first.moves {
                out.push_str(&format!(
                    " {:>22}",
                    format!("{} {}", m.event, m.endpoint.split('/').next().unwrap_or(""))
                ));
            }
            out.push('\n');
            for p in with_moves {
                out.push_str(&format!("{:<17}", p.policy));
                for m in &p.moves {
                    out.push_str(&format!(
                        " {:>22}",
                        m.seconds.map_or("never".into(), |s| format!("{s:.1}"))
                    ));
                }
                out.push('\n');
            }
        }
        out
    }
}

/// Traffic share per policy, minute and endpoint, as CSV.
pub fn traffic_csv(r: &Report) -> String {
    let mut out = String::from("policy,minute,endpoint,share\n");
    for p in &r.policies {
        for (minute, row) in p.traffic.iter().enumerate() {
            for (endpoint, share) in row {
                out.push_str(&format!("{},{minute},{endpoint},{share:.4}\n", p.policy));
            }
        }
    }
    out
}
