//! The discrete-event engine: one policy, one scenario, in virtual time.
//!
//! Events (arrivals, attempt ends, behaviour changes) are processed in time order from a
//! heap. Each arrival is planned by the gateway's own [`Planner`] (the workload's hints
//! parsed by the gateway's parser, model and `models` tiers resolved, hard constraints
//! applied, the policy ranking) against the catalog built from the scenario's endpoints, and
//! walked by the gateway's attempt machine ([`Attempts`]): next candidate, failures recorded
//! and classified, provider `Retry-After` rests, `max_attempts`, the deadline. The real
//! [`StatsTable`] learns every attempt's outcome at the virtual time it happens. As live, a
//! request keeps the catalog version it started with to its end.
//!
//! Common random numbers: the request stream (arrival times, prompt and output lengths, hint)
//! and every attempt's noise come from generators seeded by the scenario seed, the request
//! and the endpoint, never by the policy; so every policy meets the same requests and the
//! same luck, and a difference in results is the policy's.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::sync::Arc;

use rand::SeedableRng;

use super::oracle::Oracle;
use super::scenario::{Scenario, SimPolicy};
use super::truth::{self, catalog, nanos, request_cost_cached, states_at, Ending, TrueState, MS};
pub use super::workload::{requests, Req};
use crate::catalog::Catalog;
use crate::plan::hedge::{delay_ms, HedgeBudget, HedgeSettings};
use crate::plan::{Attempts, Planner};
use crate::select::{self, Policy};
use crate::stats::{Stats, StatsTable, Success};

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
    /// What the answer cost, and what a hedge race's loser was estimated to cost (included).
    pub cost_usd: f64,
    /// A hedge was started; it answered first.
    pub hedged: bool,
    pub hedge_won: bool,
    pub hedge_wasted_usd: f64,
}

/// One catalog version: what requests arriving while it is in force plan against.
struct Version {
    catalog: Catalog,
    table: StatsTable,
    /// Catalog index → scenario index.
    map: Vec<usize>,
}

impl Version {
    fn new(states: &[TrueState], stats: &Arc<Stats>) -> Rc<Version> {
        let (catalog, map) = catalog(states);
        let table = stats.table(&catalog);
        Rc::new(Version {
            catalog,
            table,
            map,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Behaviour changes (events, appearances) come first at equal times.
    Change,
    /// The replicas of a simulated fleet share what they learned.
    Sync,
    /// Request `i`'s attempt number `n` ends (or, in a hedge race, gets its first byte).
    AttemptEnd(u32, u32),
    FirstByte(u32, u32),
    /// Request `i`'s attempt `n` is due a hedge.
    Hedge(u32, u32),
    Arrival(u32),
}

/// A request between its arrival and its end.
struct Pending {
    version: Rc<Version>,
    attempts: Attempts,
    /// The running attempts: one, or two in a hedge race.
    runs: Vec<Run>,
    /// How it is hedged, if it is; whether an attempt has won (it then only runs out).
    hedge: Option<HedgeSettings>,
    decided: bool,
}

/// One request's attempts as the request log records them (see [`run_traced`]).
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub tried: Vec<crate::plan::Tried>,
    /// The answering attempt's first token and end (virtual ns), and its endpoint.
    pub answer: Option<(usize, u64, u64)>,
    /// Catalog index → scenario index, for `tried`.
    pub map: Vec<usize>,
}

/// Runs one policy over the scenario's request stream (through the scenario's fleet of
/// replicas, round robin, when it has one).
pub fn run(s: &Scenario, policy: SimPolicy, reqs: &[Req], seed: u64) -> Vec<Done> {
    run_inner(s, policy, reqs, seed, None)
}

/// [`run`], also keeping every request's attempts (what a request log would hold).
pub fn run_traced(
    s: &Scenario,
    policy: SimPolicy,
    reqs: &[Req],
    seed: u64,
) -> (Vec<Done>, Vec<Trace>) {
    let mut traces = vec![Trace::default(); reqs.len()];
    let done = run_inner(s, policy, reqs, seed, Some(&mut traces));
    (done, traces)
}

fn run_inner(
    s: &Scenario,
    policy: SimPolicy,
    reqs: &[Req],
    seed: u64,
    mut traces: Option<&mut Vec<Trace>>,
) -> Vec<Done> {
    let replicas = s.fleet.replicas.max(1) as usize;
    let stats: Vec<Arc<Stats>> = (0..replicas)
        .map(|_| {
            Stats::with_quality(
                s.latency_half_life,
                s.outcome_half_life,
                s.quality_half_life,
                s.quality_prior_strength,
            )
        })
        .collect();
    let mut store = super::fleet::Store::new(replicas);
    let sync_ns = nanos(s.fleet.sync_interval).max(1);
    // The parsed request shapes, updated in place per request: no clone per arrival.
    let mut templates: Vec<_> = s.hints.iter().map(|h| h.parsed.clone()).collect();
    let oracle = (policy == SimPolicy::Oracle).then(|| Arc::new(Oracle::default()));
    let chosen: Arc<dyn Policy> = match (&oracle, policy.live()) {
        (Some(o), _) => o.clone(),
        (None, Some(name)) => select::from_name(name).into(),
        (None, None) => unreachable!("only the oracle has no live policy"),
    };
    let planner = Planner::new(chosen, Vec::new(), s.max_attempts);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed ^ 0x5eed);
    let total_timeout_ns = nanos(s.total_timeout);

    let mut states = states_at(s, 0);
    let versions = |states: &[TrueState]| -> Vec<Rc<Version>> {
        stats.iter().map(|st| Version::new(states, st)).collect()
    };
    let mut version = versions(&states);
    if let Some(o) = &oracle {
        o.set_states(&states, &version[0].map);
    }
    let mut in_flight = vec![0u32; states.len()];
    // Conversations: each endpoint's prompt cache (the last prompt it served per
    // conversation) and, unless switched off, the router's affinity map.
    let mut caches: std::collections::HashMap<(usize, u32), u32> = Default::default();
    // (The oracle knows every cache: it needs no memory of where a conversation went.)
    let affinities = s
        .workload
        .sessions
        .filter(|x| x.affinity && policy != SimPolicy::Oracle)
        .map(|_| crate::affinity::Affinities::new(&Default::default()));
    let session_key = |r: &Req| format!("s{}", r.session);
    let mut cached_now = vec![0u32; states.len()];
    // How each request shape is hedged, and the budget hedging keeps to.
    let hedges: Vec<Option<HedgeSettings>> = s
        .hints
        .iter()
        .map(|h| {
            s.hedge
                .settings(h.parsed.request.constraints.hedge, &h.parsed.model)
        })
        .collect();
    let mut budget = HedgeBudget::new(&s.hedge);
    // Finished requests' run lists, reused: no allocation per request.
    let mut pool: Vec<Vec<Run>> = Vec::new();

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
        .map(nanos)
        .collect();
    change_times.sort_unstable();
    change_times.dedup();
    for t in change_times {
        push(&mut heap, t, Kind::Change);
    }
    if s.fleet.syncs() {
        push(&mut heap, sync_ns, Kind::Sync);
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
                push(&mut heap, t, Kind::Arrival(next_arrival as u32));
                next_arrival += 1;
            }
        }
        let Some(Reverse((t, kind, _))) = heap.pop() else {
            break;
        };
        let next = match kind {
            Kind::Change => {
                states = states_at(s, t);
                version = versions(&states);
                if let Some(o) = &oracle {
                    o.set_states(&states, &version[0].map);
                }
                None
            }
            Kind::Sync => {
                store.sync(&s.fleet, &stats, t);
                // The next one, while anything is left to happen.
                if next_arrival < reqs.len() || !heap.is_empty() {
                    push(&mut heap, t + sync_ns, Kind::Sync);
                }
                None
            }
            Kind::Arrival(i) => {
                let i = i as usize;
                let r = &reqs[i];
                let parsed = &mut templates[r.hint];
                // Four bytes per token: the selector's default ratio recovers the length.
                parsed.request.messages_bytes = r.prompt_tokens as usize * 4;
                if let Some(o) = &oracle {
                    if r.session != u32::MAX {
                        for (e, c) in cached_now.iter_mut().enumerate() {
                            *c = caches
                                .get(&(e, r.session))
                                .map_or(0, |&p| p.min(r.prompt_tokens));
                        }
                    }
                    o.set_request(r, &in_flight, &cached_now);
                }
                let v = &version[i % replicas];
                match planner.plan(&v.catalog, &v.table, parsed, t, &mut rng) {
                    // Nothing can serve it: unanswered, as the gateway's 4xx would leave it.
                    Err(_) => None,
                    Ok(mut plan) => {
                        if let Some(a) = affinities.as_ref().filter(|_| r.session != u32::MAX) {
                            crate::affinity::apply_remembered(
                                a,
                                &v.catalog,
                                &v.table,
                                Some(&session_key(r)),
                                &mut plan.decision,
                                t,
                            );
                        }
                        done[i].first = plan.decision.ranked.first().map(|&c| v.map[c]);
                        let mut attempts = Attempts::new(
                            plan.decision.ranked,
                            plan.max_attempts,
                            t.saturating_add(total_timeout_ns),
                            s.max_retry_after,
                        );
                        if traces.is_some() {
                            attempts = attempts.traced();
                        }
                        Some((i, v.clone(), attempts, pool.pop().unwrap_or_default()))
                    }
                }
            }
            Kind::Hedge(i, n) => {
                let i = i as usize;
                let due = pending[i].as_ref().is_some_and(|p| {
                    !p.decided
                        && p.runs.len() == 1
                        && p.runs[0].n == n
                        && p.runs[0].first_byte_ns(s.workload.stream) > t
                });
                if due {
                    let p = pending[i].as_mut().expect("checked");
                    let settings = p.hedge.expect("a hedge is due only when hedging");
                    let r = &reqs[i];
                    let allowed = p
                        .attempts
                        .hedge_candidate(settings.max_hedges)
                        .filter(|&c| {
                            let ep = &states[p.version.map[c]].ep;
                            truth::request_cost_cached(ep, r, 0) <= settings.max_extra_cost_usd
                                && budget.allows(t)
                        });
                    if allowed.is_some() {
                        let hedge = p.attempts.hedge(&p.version.table, settings.max_hedges, t);
                        if let Some(current) = hedge {
                            done[i].hedged = true;
                            let run = start_run(s, &states, &mut in_flight, p, current, r, t);
                            schedule(&mut heap, &mut push, i, &run, s.workload.stream);
                            p.runs.push(run);
                        }
                    }
                }
                None
            }
            Kind::FirstByte(i, n) => {
                let i = i as usize;
                // In a hedge race, the first attempt with a first token wins.
                if let Some(p) = pending[i].as_mut().filter(|p| !p.decided) {
                    let mut race = Race {
                        states: &states,
                        in_flight: &mut in_flight,
                        budget: &mut budget,
                    };
                    race.settle(p, n, &reqs[i], &mut done[i], t);
                }
                None
            }
            Kind::AttemptEnd(i, n) => {
                let i = i as usize;
                let Some(p) = pending[i].as_mut() else {
                    continue;
                };
                let Some(at) = p.runs.iter().position(|x| x.n == n) else {
                    continue;
                };
                if matches!(p.runs[at].ending, Ending::Answer { .. }) && !p.decided {
                    // The first to end wins (a non-streamed answer's first byte is its end).
                    let mut race = Race {
                        states: &states,
                        in_flight: &mut in_flight,
                        budget: &mut budget,
                    };
                    race.settle(p, n, &reqs[i], &mut done[i], t);
                }
                let at = p
                    .runs
                    .iter()
                    .position(|x| x.n == n)
                    .expect("the winner runs on");
                let Run {
                    current,
                    started_ns,
                    ending,
                    ..
                } = p.runs.swap_remove(at);
                let v = p.version.clone();
                let e = v.map[current];
                in_flight[e] -= 1;
                let r = &reqs[i];
                match ending {
                    Ending::Answer { first_token_ns } => {
                        let p = pending[i].take().expect("pending");
                        let success = Success {
                            ttft_ms: s
                                .workload
                                .stream
                                .then(|| (first_token_ns - started_ns) as f64 / MS as f64),
                            total_ms: (t - started_ns) as f64 / MS as f64,
                            prompt_tokens: Some(u64::from(r.prompt_tokens)),
                            output_tokens: Some(u64::from(r.output_tokens)),
                            prompt_bytes: Some(u64::from(r.prompt_tokens) * 4),
                            cost_usd: None,
                        };
                        let cached = match r.session {
                            u32::MAX => None,
                            session => Some(
                                caches
                                    .get(&(e, session))
                                    .map_or(0, |&p| p.min(r.prompt_tokens)),
                            ),
                        };
                        match cached {
                            Some(c) => v.table.success_cached(current, &success, u64::from(c), t),
                            None => v.table.success(current, &success, t),
                        }
                        if let Some(score) = truth::feedback(s, &states[e].ep, r, e) {
                            v.table.feedback(current, score, t);
                        }
                        let d = &mut done[i];
                        d.answered_by = Some(e);
                        d.attempts = (p.attempts.started() - usize::from(d.hedged)) as u32;
                        d.ttft_ms = (first_token_ns - r.at_ns) as f64 / MS as f64;
                        d.total_ms = (t - r.at_ns) as f64 / MS as f64;
                        let cost = request_cost_cached(&states[e].ep, r, cached.unwrap_or(0));
                        budget.spent(cost, t);
                        d.cost_usd = cost + d.hedge_wasted_usd;
                        if cached.is_some() {
                            caches.insert((e, r.session), r.prompt_tokens);
                            if let Some(a) = &affinities {
                                a.set(&session_key(r), &v.catalog.endpoint(current).id, t);
                            }
                        }
                        if let Some(tr) = traces.as_deref_mut() {
                            tr[i] = Trace {
                                tried: p.attempts.trace().to_vec(),
                                answer: Some((e, first_token_ns, t)),
                                map: v.map.clone(),
                            };
                        }
                        pool.push(p.runs);
                        None
                    }
                    Ending::Rejected => {
                        let mut p = pending[i].take().expect("pending");
                        for loser in p.attempts.rejected(&v.table, current, t) {
                            in_flight[v.map[loser]] -= 1;
                        }
                        done[i].attempts = p.attempts.started() as u32;
                        if let Some(tr) = traces.as_deref_mut() {
                            tr[i].tried = p.attempts.trace().to_vec();
                            tr[i].map = v.map.clone();
                        }
                        p.runs.clear();
                        pool.push(p.runs);
                        None
                    }
                    Ending::Failed(failure) => {
                        p.attempts.failed(&v.table, current, failure, t);
                        done[i].attempts = p.attempts.started() as u32;
                        if !p.runs.is_empty() {
                            // The other attempt of a hedge race runs on.
                            continue;
                        }
                        let p = pending[i].take().expect("pending");
                        Some((i, p.version, p.attempts, p.runs))
                    }
                }
            }
        };
        // Start the next attempt of a request that has one.
        if let Some((i, v, mut attempts, runs)) = next {
            if let Some(current) = attempts.next(&v.table, t) {
                let hedge = hedges[reqs[i].hint];
                let mut p = Pending {
                    version: v,
                    attempts,
                    runs,
                    hedge,
                    decided: false,
                };
                let r = &reqs[i];
                let run = start_run(s, &states, &mut in_flight, &p, current, r, t);
                schedule(
                    &mut heap,
                    &mut push,
                    i,
                    &run,
                    hedge.is_some() && s.workload.stream,
                );
                if let Some(h) =
                    hedge.filter(|h| p.attempts.hedge_candidate(h.max_hedges).is_some())
                {
                    let view = p.version.table.view(current, t);
                    let tokens = f64::from(r.prompt_tokens);
                    if let Some(ms) = delay_ms(h.after, &view, s.workload.stream, tokens) {
                        push(
                            &mut heap,
                            t + (ms * MS as f64) as u64,
                            Kind::Hedge(i as u32, run.n),
                        );
                    }
                }
                p.runs.push(run);
                pending[i] = Some(p);
            } else {
                pool.push(runs);
                if let Some(tr) = traces.as_deref_mut() {
                    tr[i].tried = attempts.trace().to_vec();
                    tr[i].map = v.map.clone();
                }
            }
        }
    }
    done
}

mod race;
use race::{schedule, start_run, Race, Run};
