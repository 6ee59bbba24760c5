//! The discrete-event engine: one policy, one scenario, in virtual time.
//!
//! Events (arrivals, attempt ends, behaviour changes) are processed in time order from a
//! heap. Each arrival is routed with the real code the gateway runs: the catalog built from
//! the scenario's endpoints, the hard-constraint filter, [`select::rank`] with the policy, and
//! the real [`StatsTable`] fed by every attempt's outcome at the virtual time it happens.
//! Attempts fail over as in the gateway, within `max_attempts`.
//!
//! Common random numbers: the request stream (arrival times, prompt and output lengths, hint)
//! and every attempt's noise (first-token jitter, the error coin) come from generators seeded
//! by the scenario seed, the request and the endpoint, never by the policy; so every policy
//! meets the same requests and the same luck, and a difference in results is the policy's.
//!
//! Capacity: an endpoint serves `capacity` concurrent requests; latency grows with the load
//! (up to twice at full capacity), and beyond it attempts get a 429 after 20 ms.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use rand::{Rng, RngCore, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal as LogNormalDist, StandardNormal};

use super::scenario::{Changes, Hint, Scenario, SimEndpoint, SimPolicy};
use crate::catalog::Catalog;
use crate::config::{Config, ProviderConfig};
use crate::pricing::{ModelPrice, PriceSheet};
use crate::route::hints::{LatencyTarget, DEFAULT_PERCENTILE};
use crate::route::{Constraints, LatencyMetric, RouteRequest};
use crate::select::{self, posterior::z, Candidate, Context, Policy};
use crate::stats::{FailureClass, Stats, StatsTable, Success};

const MS: u64 = 1_000_000;

/// One simulated request, the same for every policy.
#[derive(Debug, Clone, Copy)]
pub struct Req {
    pub at_ns: u64,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    /// Index into the scenario's hints.
    pub hint: usize,
    /// Seeds this request's attempt noise.
    pub seed: u64,
}

/// What happened to one request under one policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Done {
    pub at_ns: u64,
    pub hint: usize,
    /// The endpoint (scenario index) of the first attempt.
    pub first: Option<usize>,
    pub answered_by: Option<usize>,
    pub attempts: u32,
    /// Client-side time to first token and to the end, for answered requests.
    pub ttft_ms: f64,
    pub total_ms: f64,
    pub cost_usd: f64,
}

/// The workload's hints, one per mix entry (or the single `route`).
pub fn hints(s: &Scenario) -> Vec<(f64, Hint)> {
    if s.workload.mix.is_empty() {
        vec![(1.0, s.workload.route.clone().unwrap_or_default())]
    } else {
        s.workload
            .mix
            .iter()
            .map(|m| (m.weight, m.route.clone()))
            .collect()
    }
}

/// The request stream of a scenario: Poisson arrivals, log-normal lengths, a hint each.
pub fn requests(s: &Scenario, seed: u64) -> Vec<Req> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let gap = Exp::new(s.workload.rate_rps).expect("validated rate");
    let len = |ln: super::scenario::LogNormal| {
        LogNormalDist::new(ln.median.ln(), ln.sigma).expect("validated")
    };
    let (prompt, output) = (len(s.workload.prompt_tokens), len(s.workload.output_tokens));
    let weights: Vec<f64> = hints(s).iter().map(|(w, _)| *w).collect();
    let total_w: f64 = weights.iter().sum();
    let end = s.duration.as_nanos() as u64;
    let mut out =
        Vec::with_capacity((s.workload.rate_rps * s.duration.as_secs_f64() * 1.1) as usize);
    let mut t = 0u64;
    loop {
        t += (gap.sample(&mut rng) * 1e9) as u64;
        if t >= end {
            return out;
        }
        let mut pick = rng.random::<f64>() * total_w;
        let hint = weights
            .iter()
            .position(|w| {
                pick -= w;
                pick < 0.0
            })
            .unwrap_or(0);
        out.push(Req {
            at_ns: t,
            prompt_tokens: prompt.sample(&mut rng).round().clamp(1.0, 1e6) as u32,
            output_tokens: output.sample(&mut rng).round().clamp(1.0, 1e5) as u32,
            hint,
            seed: rng.next_u64(),
        });
    }
}

/// An endpoint's behaviour at some time: the base overlaid with the active events.
#[derive(Debug, Clone)]
pub struct TrueState {
    pub ep: SimEndpoint,
    pub present: bool,
}

fn apply(ep: &mut SimEndpoint, c: &Changes) {
    if let Some(v) = c.error_rate {
        ep.error_rate = v;
    }
    if let Some(v) = c.ttft_median_ms {
        ep.ttft.median_ms = v;
    }
    if let Some(v) = c.ttft_sigma {
        ep.ttft.sigma = v;
    }
    if let Some(v) = c.tokens_per_s {
        ep.tokens_per_s = v;
    }
    if let Some(v) = c.input_per_mtok {
        ep.input_per_mtok = v;
    }
    if let Some(v) = c.output_per_mtok {
        ep.output_per_mtok = v;
    }
    if let Some(v) = c.capacity {
        ep.capacity = Some(v);
    }
}

/// Every endpoint's true state at `t_ns`.
pub fn states_at(s: &Scenario, t_ns: u64) -> Vec<TrueState> {
    s.endpoints
        .iter()
        .map(|base| {
            let mut ep = base.clone();
            for ev in s.events.iter().filter(|e| e.endpoint == base.id) {
                let from = ev.at.as_nanos() as u64;
                let to = ev.until.map_or(u64::MAX, |u| u.as_nanos() as u64);
                if (from..to).contains(&t_ns) {
                    apply(&mut ep, &ev.set);
                }
            }
            let present = base.appears_at.is_none_or(|a| a.as_nanos() as u64 <= t_ns);
            TrueState { ep, present }
        })
        .collect()
}

/// The catalog of the endpoints present, at their current prices; `map[i]` is catalog
/// endpoint `i`'s scenario index.
fn catalog(states: &[TrueState]) -> (Catalog, Vec<usize>) {
    let mut by_provider: BTreeMap<&str, BTreeMap<String, ModelPrice>> = BTreeMap::new();
    for st in states.iter().filter(|s| s.present) {
        let (provider, model) = st.ep.id.split_once('/').expect("validated id");
        by_provider.entry(provider).or_default().insert(
            model.to_owned(),
            ModelPrice {
                upstream_model: None,
                input_per_mtok: st.ep.input_per_mtok,
                output_per_mtok: st.ep.output_per_mtok,
                cached_input_per_mtok: None,
                per_request: None,
                context_window: None,
                max_output_tokens: None,
                quality: st.ep.quality,
            },
        );
    }
    let mut config = Config {
        server: Default::default(),
        upstream: Default::default(),
        routing: Default::default(),
        stats: Default::default(),
        providers: Vec::new(),
        groups: Default::default(),
        clients: Vec::new(),
    };
    let mut sheets = Vec::new();
    for (provider, models) in by_provider {
        config.providers.push(ProviderConfig {
            name: provider.to_owned(),
            base_url: "http://simulated.invalid/v1".into(),
            api_key_env: None,
        });
        sheets.push(PriceSheet {
            provider: provider.to_owned(),
            effective: "2026-01-01".into(),
            source: "simulation".into(),
            models,
        });
    }
    let cat = Catalog::build(&config, &sheets, &|_| None).expect("simulated sheets are valid");
    let map = cat
        .endpoints()
        .iter()
        .map(|e| {
            states
                .iter()
                .position(|s| s.ep.id == e.id)
                .expect("from the states")
        })
        .collect();
    (cat, map)
}

/// A hint as the constraints the selector sees.
pub fn constraints(h: &Hint, stream: bool) -> Constraints {
    Constraints {
        prefer: h.prefer.unwrap_or_default(),
        metric: h.latency_metric.unwrap_or(if stream {
            LatencyMetric::Ttft
        } else {
            LatencyMetric::Total
        }),
        latency: h
            .max_latency_ms
            .map(|max_ms| LatencyTarget {
                percentile: h.latency_percentile.unwrap_or(DEFAULT_PERCENTILE),
                max_ms,
            })
            .into_iter()
            .collect(),
        min_quality: h.min_quality,
        max_cost_usd: h.max_cost_usd,
        ..Constraints::default()
    }
}

/// What a request costs at an endpoint's current prices (a simulation estimate in f64).
fn request_cost(ep: &SimEndpoint, r: &Req) -> f64 {
    (f64::from(r.prompt_tokens) * ep.input_per_mtok
        + f64::from(r.output_tokens) * ep.output_per_mtok)
        / 1e6
}

/// Load slowdown at `in_flight` of `capacity`: 1 when idle, 2 at full capacity.
fn slowdown(in_flight: u32, capacity: Option<u32>) -> f64 {
    match capacity {
        Some(c) => 1.0 / (1.0 - 0.5 * (f64::from(in_flight) / f64::from(c)).min(1.0)),
        None => 1.0,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Behaviour changes (events, appearances) come first at equal times.
    Change,
    AttemptEnd {
        req: usize,
        ok: bool,
        class: u8,
        first_token_ns: u64,
    },
    Arrival(usize),
}

struct Pending {
    ranked: Vec<usize>,
    attempt: u32,
    attempt_start: u64,
    max_attempts: u32,
}

/// Runs one policy over the scenario's request stream.
pub fn run(s: &Scenario, policy: SimPolicy, reqs: &[Req], seed: u64) -> Vec<Done> {
    let stats = Stats::new(s.latency_half_life, s.outcome_half_life);
    // One request template per hint, updated in place per request: no clone per arrival.
    let mut templates: Vec<RouteRequest> = hints(s)
        .iter()
        .map(|(_, h)| RouteRequest {
            stream: s.workload.stream,
            messages_bytes: 0,
            max_output_tokens: None,
            constraints: constraints(h, s.workload.stream),
        })
        .collect();
    let live: Option<Box<dyn Policy>> = policy.live().map(select::from_name);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed ^ 0x5eed);

    let mut states = states_at(s, 0);
    let (mut cat, mut map) = catalog(&states);
    let mut table: StatsTable = stats.table(&cat);
    let mut to_cat: Vec<Option<usize>> = vec![None; states.len()];
    for (c, &e) in map.iter().enumerate() {
        to_cat[e] = Some(c);
    }
    let mut in_flight = vec![0u32; states.len()];

    let mut heap: BinaryHeap<Reverse<(u64, Kind, u64)>> =
        BinaryHeap::with_capacity(reqs.len() / 4 + 16);
    let mut seq = 0u64;
    let mut push = |heap: &mut BinaryHeap<Reverse<(u64, Kind, u64)>>, t: u64, k: Kind| {
        seq += 1;
        heap.push(Reverse((t, k, seq)));
    };
    let mut change_times: Vec<u64> = s
        .events
        .iter()
        .flat_map(|e| [Some(e.at), e.until])
        .chain(s.endpoints.iter().map(|e| e.appears_at))
        .flatten()
        .map(|d| d.as_nanos() as u64)
        .collect();
    change_times.sort_unstable();
    change_times.dedup();
    for t in change_times {
        push(&mut heap, t, Kind::Change);
    }
    // Arrivals are fed lazily, in order, so the heap stays small.
    let mut next_arrival = 0usize;
    let mut done: Vec<Done> = reqs
        .iter()
        .map(|r| Done {
            at_ns: r.at_ns,
            hint: r.hint,
            ..Done::default()
        })
        .collect();
    let mut pending: Vec<Option<Pending>> = Vec::new();
    pending.resize_with(reqs.len(), || None);

    loop {
        if next_arrival < reqs.len() {
            let t = reqs[next_arrival].at_ns;
            if heap.peek().is_none_or(|Reverse((top, _, _))| *top > t) {
                push(&mut heap, t, Kind::Arrival(next_arrival));
                next_arrival += 1;
            }
        }
        let Some(Reverse((t, kind, _))) = heap.pop() else {
            break;
        };
        match kind {
            Kind::Change => {
                states = states_at(s, t);
                (cat, map) = catalog(&states);
                table = stats.table(&cat);
                to_cat = vec![None; states.len()];
                for (c, &e) in map.iter().enumerate() {
                    to_cat[e] = Some(c);
                }
            }
            Kind::Arrival(i) => {
                let r = reqs[i];
                let request = &mut templates[r.hint];
                // Four bytes per token: the selector's default ratio recovers the length.
                request.messages_bytes = r.prompt_tokens as usize * 4;
                let request = &*request;
                let all = cat.resolve(&s.workload.model).unwrap_or(&[]);
                let (kept, _) = select::filter::filter(request, &cat, &table, t, all);
                if kept.is_empty() {
                    continue;
                }
                let ranked: Vec<usize> = match &live {
                    Some(p) => {
                        let ctx = Context {
                            request,
                            catalog: &cat,
                            stats: &table,
                            now_ns: t,
                        };
                        select::rank(&**p, &ctx, std::slice::from_ref(&kept), &mut rng)
                            .ranked
                            .iter()
                            .map(|&c| map[c])
                            .collect()
                    }
                    None => oracle(&kept, &map, &states, &in_flight, &r, request),
                };
                done[i].first = ranked.first().copied();
                pending[i] = Some(Pending {
                    ranked,
                    attempt: 0,
                    attempt_start: t,
                    max_attempts: s.max_attempts,
                });
                let e = start(
                    s,
                    &states,
                    &mut in_flight,
                    &table,
                    &to_cat,
                    &mut pending,
                    &reqs[i],
                    i,
                    t,
                );
                push(&mut heap, e.0, e.1);
            }
            Kind::AttemptEnd {
                req,
                ok,
                class,
                first_token_ns,
            } => {
                let p = pending[req]
                    .as_mut()
                    .expect("an attempt of a pending request");
                let e = p.ranked[p.attempt as usize];
                in_flight[e] -= 1;
                let r = reqs[req];
                let start_t = p.attempt_start;
                let cat_idx = to_cat[e];
                if ok {
                    let ep = &states[e].ep;
                    let cost = request_cost(ep, &r);
                    if let Some(c) = cat_idx {
                        let success = Success {
                            ttft_ms: s
                                .workload
                                .stream
                                .then(|| (first_token_ns - start_t) as f64 / MS as f64),
                            total_ms: (t - start_t) as f64 / MS as f64,
                            prompt_tokens: Some(u64::from(r.prompt_tokens)),
                            output_tokens: Some(u64::from(r.output_tokens)),
                            prompt_bytes: Some(u64::from(r.prompt_tokens) * 4),
                            cost_usd: None,
                        };
                        table.success(c, &success, t);
                    }
                    let d = &mut done[req];
                    d.answered_by = Some(e);
                    d.attempts = p.attempt + 1;
                    d.ttft_ms = (first_token_ns - r.at_ns) as f64 / MS as f64;
                    d.total_ms = (t - r.at_ns) as f64 / MS as f64;
                    d.cost_usd = cost;
                    pending[req] = None;
                } else {
                    if let Some(c) = cat_idx {
                        table.failure(c, FailureClass::ALL[class as usize], t);
                    }
                    p.attempt += 1;
                    done[req].attempts = p.attempt;
                    if p.attempt < p.max_attempts && (p.attempt as usize) < p.ranked.len() {
                        p.attempt_start = t;
                        let e = start(
                            s,
                            &states,
                            &mut in_flight,
                            &table,
                            &to_cat,
                            &mut pending,
                            &reqs[req],
                            req,
                            t,
                        );
                        push(&mut heap, e.0, e.1);
                    } else {
                        pending[req] = None;
                    }
                }
            }
        }
    }
    done
}

/// Starts the current attempt of request `i` at `t`; returns when and how it ends.
#[allow(clippy::too_many_arguments)]
fn start(
    s: &Scenario,
    states: &[TrueState],
    in_flight: &mut [u32],
    table: &StatsTable,
    to_cat: &[Option<usize>],
    pending: &mut [Option<Pending>],
    r: &Req,
    i: usize,
    t: u64,
) -> (u64, Kind) {
    let p = pending[i].as_ref().expect("pending");
    let e = p.ranked[p.attempt as usize];
    let ep = &states[e].ep;
    in_flight[e] += 1;
    if let Some(c) = to_cat[e] {
        table.begin(c);
    }
    // This request's luck at this endpoint, whatever policy sent it there.
    let mut luck = rand::rngs::SmallRng::seed_from_u64(
        r.seed ^ (e as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(p.attempt) << 56,
    );
    let z: f64 = StandardNormal.sample(&mut luck);
    let coin: f64 = luck.random();
    let end = |after_ms: f64, ok: bool, class: FailureClass, first_ms: f64| {
        let first_token_ns = t + (first_ms * MS as f64) as u64;
        (
            t + (after_ms * MS as f64) as u64,
            Kind::AttemptEnd {
                req: i,
                ok,
                class: class.index() as u8,
                first_token_ns,
            },
        )
    };
    if ep.capacity.is_some_and(|c| in_flight[e] > c) {
        return end(20.0, false, FailureClass::RateLimited, 0.0);
    }
    let slow = slowdown(in_flight[e], ep.capacity);
    let ttft = ep.ttft.median_ms * (ep.ttft.sigma * z).exp() * slow;
    if coin < ep.error_rate {
        return end((ttft * 0.5).max(1.0), false, FailureClass::ServerError, 0.0);
    }
    let timeout_ms = s.first_byte_timeout.as_secs_f64() * 1000.0;
    if ttft > timeout_ms {
        return end(timeout_ms, false, FailureClass::Timeout, 0.0);
    }
    let decode = f64::from(r.output_tokens) / ep.tokens_per_s * 1000.0 * slow;
    end(ttft + decode, true, FailureClass::Timeout, ttft)
}

/// The oracle: knows each endpoint's true current behaviour; ranks the cheapest that truly
/// meets the request's hint first (true latency quantile at the hint's percentile under the
/// current load, error rate at most 20%, quality; equal prices go to the truly faster), then
/// the rest by how far they miss. It is greedy, request by request: the cost-optimal choice
/// under the hint for each request, not a plan over the whole run.
fn oracle(
    kept: &[Candidate],
    map: &[usize],
    states: &[TrueState],
    in_flight: &[u32],
    r: &Req,
    req: &RouteRequest,
) -> Vec<usize> {
    let c = &req.constraints;
    let mut scored: Vec<(bool, f64, f64, usize)> = kept
        .iter()
        .map(|cand| {
            let e = map[cand.idx];
            let ep = &states[e].ep;
            let full = ep.capacity.is_some_and(|cap| in_flight[e] >= cap);
            let slow = slowdown(in_flight[e] + 1, ep.capacity);
            let q = |zp: f64| {
                let ttft = ep.ttft.median_ms * (ep.ttft.sigma * zp).exp() * slow;
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
            let quality_ok = c
                .min_quality
                .is_none_or(|m| ep.quality.is_some_and(|q| q >= m));
            let feasible = late <= 1.0 && ep.error_rate <= 0.2 && quality_ok && !full;
            let cost = request_cost(ep, r);
            // Feasible: cheapest first, equal prices to the truly faster. Others: the closest.
            let key = if feasible {
                cost
            } else {
                late.max(1.0) + ep.error_rate * 10.0 + if quality_ok { 0.0 } else { 100.0 }
            };
            (!feasible, key, late, e)
        })
        .collect();
    scored.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.total_cmp(&b.1))
            .then(a.2.total_cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    scored.into_iter().map(|(_, _, _, e)| e).collect()
}
