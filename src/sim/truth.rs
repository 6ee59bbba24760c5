//! What the simulated endpoints truly do: their behaviour at a time (the base overlaid with
//! the active events), the catalog they make, and how one attempt at one of them goes.
//!
//! An attempt's luck (first-token jitter, the error coin) is seeded by the request and the
//! endpoint, never by the policy, so every policy meets the same luck. Capacity: an endpoint
//! serves `capacity` concurrent requests; latency grows with the load (up to twice at full
//! capacity), and beyond it attempts get a 429 after 20 ms.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use super::scenario::{Changes, Scenario, SimEndpoint};
use super::workload::Req;
use crate::catalog::Catalog;
use crate::config::{Config, ProviderConfig};
use crate::plan::attempts::failover_class;
use crate::plan::Failure;
use crate::pricing::{ModelPrice, PriceSheet};
use crate::stats::FailureClass;

pub(crate) const MS: u64 = 1_000_000;

/// An endpoint's behaviour at some time: the base overlaid with the active events.
#[derive(Debug, Clone)]
pub(crate) struct TrueState {
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
    if let Some(v) = c.error_status {
        ep.error_status = Some(v);
    }
    if let Some(v) = c.error_after_ms {
        ep.error_after_ms = Some(v);
    }
    if let Some(v) = c.prefill_tokens_per_s {
        ep.prefill_tokens_per_s = Some(v);
    }
}

/// Every endpoint's true state at `t_ns`.
pub(crate) fn states_at(s: &Scenario, t_ns: u64) -> Vec<TrueState> {
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
pub(crate) fn catalog(states: &[TrueState]) -> (Catalog, Vec<usize>) {
    let mut by_provider: BTreeMap<&str, BTreeMap<String, ModelPrice>> = BTreeMap::new();
    for st in states.iter().filter(|s| s.present) {
        let (provider, model) = st.ep.id.split_once('/').expect("validated id");
        by_provider.entry(provider).or_default().insert(
            model.to_owned(),
            ModelPrice {
                upstream_model: None,
                input_per_mtok: st.ep.input_per_mtok,
                output_per_mtok: st.ep.output_per_mtok,
                cached_input_per_mtok: st.ep.cached_input_per_mtok,
                cache_write_per_mtok: None,
                kind: Default::default(),
                per_request: None,
                context_window: None,
                max_output_tokens: None,
                quality: st.ep.quality,
                supports: st.ep.supports,
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
        fleet: None,
        feedback: Default::default(),
        affinity: Default::default(),
        hedge: Default::default(),
        log: Default::default(),
    };
    let mut sheets = Vec::new();
    for (provider, models) in by_provider {
        config.providers.push(ProviderConfig {
            name: provider.to_owned(),
            base_url: "http://simulated.invalid/v1".into(),
            api_key_env: None,
            protocol: Default::default(),
            anthropic_version: None,
            responses: false,
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

/// What a request costs at an endpoint's current prices (a simulation estimate in f64).
/// What `r` costs at `ep` when `cached` of its prompt tokens come from `ep`'s cache (at its
/// cached-input price; none without one).
pub(crate) fn request_cost_cached(ep: &SimEndpoint, r: &Req, cached: u32) -> f64 {
    let cached = match ep.cached_input_per_mtok {
        Some(_) => cached.min(r.prompt_tokens),
        None => 0,
    };
    let fresh = r.prompt_tokens - cached;
    (f64::from(fresh) * ep.input_per_mtok
        + f64::from(cached) * ep.cached_input_per_mtok.unwrap_or(0.0)
        + f64::from(r.output_tokens) * ep.output_per_mtok)
        / 1e6
}

/// Load slowdown at `in_flight` of `capacity`: 1 when idle, 2 at full capacity.
pub(crate) fn slowdown(in_flight: u32, capacity: Option<u32>) -> f64 {
    match capacity {
        Some(c) => 1.0 / (1.0 - 0.5 * (f64::from(in_flight) / f64::from(c)).min(1.0)),
        None => 1.0,
    }
}

/// The time `ep` takes to prefill `r`'s prompt, ms.
pub(crate) fn prefill_ms(ep: &SimEndpoint, r: &Req) -> f64 {
    ep.prefill_tokens_per_s
        .map_or(0.0, |rate| f64::from(r.prompt_tokens) / rate * 1000.0)
}

/// The score the client of `r` gives the answer of endpoint `e` (scenario index), if it
/// gives one: with probability `feedback_rate`, good (1) with the endpoint's true quality
/// as probability, else bad (0). Drawn from the request's and the endpoint's seed, as the
/// attempt's noise is, so every policy meets the same clients.
pub(crate) fn feedback(s: &Scenario, ep: &SimEndpoint, r: &Req, e: usize) -> Option<f64> {
    let rate = s.workload.feedback_rate;
    if rate <= 0.0 {
        return None;
    }
    let mut luck =
        rand::rngs::SmallRng::seed_from_u64(r.seed ^ 0xfeed_bac0_u64.rotate_left(e as u32 + 7));
    if luck.random::<f64>() >= rate {
        return None;
    }
    let q = ep.real_quality().unwrap_or(0.5);
    Some(f64::from(u8::from(luck.random::<f64>() < q)))
}

/// How one attempt ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ending {
    /// Answered; the first token came at `first_token_ns`.
    Answer { first_token_ns: u64 },
    /// Failed before its first byte, as the gateway would classify it.
    Failed(Failure),
    /// The provider refused the request itself (a 4xx that is not a failover status).
    Rejected,
}

/// An attempt at scenario endpoint `e`, started at `t` with `in_flight` attempts there
/// (this one included): when it ends and how.
pub(crate) fn attempt(
    s: &Scenario,
    st: &TrueState,
    e: usize,
    in_flight: u32,
    r: &Req,
    attempt: usize,
    t: u64,
) -> (u64, Ending) {
    let ep = &st.ep;
    // This request's luck at this endpoint, whatever policy sent it there.
    let mut luck = rand::rngs::SmallRng::seed_from_u64(
        r.seed ^ (e as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (attempt as u64) << 56,
    );
    let z: f64 = StandardNormal.sample(&mut luck);
    let coin: f64 = luck.random();
    let at = |ms: f64| t + (ms * MS as f64) as u64;
    let wait = |status: u16| ep.retry_after.filter(|_| matches!(status, 429 | 503));
    if ep.capacity.is_some_and(|c| in_flight > c) {
        let failure = Failure::status(FailureClass::RateLimited, 429, wait(429));
        return (at(20.0), Ending::Failed(failure));
    }
    let slow = slowdown(in_flight, ep.capacity);
    let mut ttft = ep.ttft.median_ms * (ep.ttft.sigma * z).exp() * slow + prefill_ms(ep, r);
    // Drawn only where a tail is set, so other scenarios keep their luck.
    if ep.ttft.stall_rate > 0.0 && luck.random::<f64>() < ep.ttft.stall_rate {
        let z: f64 = StandardNormal.sample(&mut luck);
        ttft += ep.ttft.stall_ms * (0.5 * z).exp();
    }
    if coin < ep.error_rate {
        let status = ep.error_status.unwrap_or(500);
        let ending = match failover_class(status) {
            Some(class) => Ending::Failed(Failure::status(class, status, wait(status))),
            None => Ending::Rejected,
        };
        let took = ep.error_after_ms.unwrap_or(ttft * 0.5);
        return (at(took.max(1.0)), ending);
    }
    let timeout_ms = s.first_byte_timeout.as_secs_f64() * 1000.0;
    if ttft > timeout_ms {
        return (at(timeout_ms), Ending::Failed(FailureClass::Timeout.into()));
    }
    let decode = f64::from(r.output_tokens) / ep.tokens_per_s * 1000.0 * slow;
    (
        at(ttft + decode),
        Ending::Answer {
            first_token_ns: at(ttft),
        },
    )
}

/// Nanoseconds of a duration, saturating.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
