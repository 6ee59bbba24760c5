//! The offline routing simulator: "what would this routing setting have cost, and how often
//! would it have missed the latency target?", answered before anything changes.
//!
//! A [`scenario`] describes simulated endpoints ([`truth`]), a [`workload`] and timed
//! events; the [`engine`] runs each policy on the same request stream in virtual time through
//! the gateway's own request parser, planner, attempt machine, selector and statistics
//! ([`crate::plan`]; never a copy); the [`report`] compares them with the oracle, itself a
//! policy that only the simulator has. Same seed,
//! same result, byte for byte: no wall clock, no hash-ordered output, seeded generators only.

pub mod engine;
pub mod fleet;
mod oracle;
pub mod plot;
pub mod replay;
pub mod report;
pub mod scenario;
pub mod truth;
pub mod workload;

use report::{summarize, Report};
use scenario::{Scenario, SimPolicy};

/// Runs `policies` (the scenario's when empty; the oracle always, for regret) on one stream.
pub fn simulate(s: &Scenario, policies: &[SimPolicy], seed: u64) -> Report {
    simulate_with_progress(s, policies, seed, |_, _| {})
}

/// [`simulate`], calling `progress(policy, runs left)` after each policy's run.
pub fn simulate_with_progress(
    s: &Scenario,
    policies: &[SimPolicy],
    seed: u64,
    progress: impl FnMut(&str, usize),
) -> Report {
    simulate_requests(s, policies, &engine::requests(s, seed), seed, progress)
}

/// [`simulate_with_progress`] on a given request stream (a replayed log's).
pub fn simulate_requests(
    s: &Scenario,
    policies: &[SimPolicy],
    reqs: &[engine::Req],
    seed: u64,
    mut progress: impl FnMut(&str, usize),
) -> Report {
    let mut chosen: Vec<SimPolicy> = if policies.is_empty() {
        s.policies.clone()
    } else {
        policies.to_vec()
    };
    if chosen.is_empty() {
        chosen = vec![
            SimPolicy::Thompson,
            SimPolicy::RoundRobin,
            SimPolicy::Cheapest,
        ];
    }
    chosen.retain(|p| *p != SimPolicy::Oracle);
    let oracle_done = engine::run(s, SimPolicy::Oracle, reqs, seed);
    let oracle = summarize(s, SimPolicy::Oracle, &oracle_done, None);
    progress("oracle", chosen.len());
    let reference = Some((oracle.cost_usd, oracle.slo_attainment));
    let mut reports: Vec<_> = chosen
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let r = summarize(s, p, &engine::run(s, p, reqs, seed), reference);
            progress(p.name(), chosen.len() - i - 1);
            r
        })
        .collect();
    reports.push(oracle);
    Report {
        scenario: s.name.clone(),
        seed,
        requests: reqs.len(),
        policies: reports,
    }
}

/// "N replicas sharing ≈ one router?": runs `policy` as one router, as `replicas` routers
/// each learning alone, and as `replicas` routers sharing at the scenario's sync interval
/// (with its store outages), round robin, on the same stream; the oracle is the reference.
pub fn compare_fleets(s: &Scenario, policy: SimPolicy, replicas: u32, seed: u64) -> Report {
    let reqs = engine::requests(s, seed);
    let oracle = summarize(
        s,
        SimPolicy::Oracle,
        &engine::run(s, SimPolicy::Oracle, &reqs, seed),
        None,
    );
    let reference = Some((oracle.cost_usd, oracle.slo_attainment));
    let variants = [
        (1, true, format!("{} ×1", policy.name())),
        (
            replicas,
            false,
            format!("{} ×{replicas} alone", policy.name()),
        ),
        (
            replicas,
            true,
            format!("{} ×{replicas} shared", policy.name()),
        ),
    ];
    let mut reports: Vec<_> = variants
        .into_iter()
        .map(|(n, share, label)| {
            let mut v = s.clone();
            v.fleet.replicas = n;
            v.fleet.share = share;
            let mut r = summarize(&v, policy, &engine::run(&v, policy, &reqs, seed), reference);
            r.policy = label;
            r
        })
        .collect();
    reports.push(oracle);
    Report {
        scenario: s.name.clone(),
        seed,
        requests: reqs.len(),
        policies: reports,
    }
}
