//! Replaying your own traffic: a request log (`switchyard log export`) becomes a scenario
//! — the recorded arrivals with their hints and sizes, and each endpoint's behaviour fitted
//! from the attempts the log observed ([`fit`]) — and is run under any policy and hedging
//! setting, reported like a scenario beside what the log itself recorded.
//!
//! What replay cannot know, it says: endpoints the recording policy rarely tried are fitted
//! from the others (extrapolated, listed in the report); capacity and load are not modelled
//! (an endpoint behaves in a window as it was seen to, whatever traffic a policy sends it);
//! a hedge race's cancelled loser is left out of the fit; request bodies' capabilities
//! (tools, images) are not in the log, so every candidate of the requested model is assumed
//! able; the router's `[hedge]` defaults are not in the log (a request's own `route.hedge`
//! is).

mod fit;
mod record;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

pub use fit::{Behaviour, MIN_OBSERVED, MIN_WINDOW};
pub use record::log_of;

use super::engine::{Done, Req};
use super::report::{summarize, Report};
use super::scenario::{Scenario, SimPolicy};
use crate::log::{Line, Outcome, Record};

/// How much of an endpoint's behaviour the log observed.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub endpoint: String,
    /// Attempts that ended on their own (answers and failures).
    pub attempts: u64,
    /// Windows with enough attempts to be fitted on their own, of all windows.
    pub windows_observed: usize,
    pub windows: usize,
    /// Too few attempts: fitted from the observed endpoints pooled.
    pub extrapolated: bool,
}

/// A log made ready to replay.
pub struct Replay {
    pub scenario: Scenario,
    pub reqs: Vec<Req>,
    pub coverage: Vec<Coverage>,
    /// Things the replay changed or could not use, for the report.
    pub notes: Vec<String>,
    /// What the log itself recorded, per request (as the simulator reports a run).
    recorded: Vec<Done>,
}

/// A replay's report: the recorded outcome and each policy's, and the coverage.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub report: Report,
    pub coverage: Vec<Coverage>,
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the log has no prices (a `catalog` line); export it with `switchyard log export`")]
    NoPrices,
    #[error("the log has no requests that reached an endpoint")]
    NoRequests,
    #[error("the replayed scenario is not valid: {0}")]
    Scenario(#[from] super::scenario::ScenarioError),
}

impl Replay {
    /// Reads `lines` (a log export), fitting behaviour per `window`.
    pub fn from_lines(lines: &[Line], window: Duration) -> Result<Replay, ReplayError> {
        let prices = lines
            .iter()
            .rev()
            .find_map(|l| match l {
                Line::Catalog(c) => Some(c),
                Line::Request(_) => None,
            })
            .ok_or(ReplayError::NoPrices)?;
        let mut records: Vec<&Record> = lines
            .iter()
            .filter_map(|l| match l {
                Line::Request(r) if r.outcome != Outcome::Refused && !r.attempts.is_empty() => {
                    Some(&**r)
                }
                _ => None,
            })
            .collect();
        records.sort_by_key(|r| r.at_ms);
        let (first, last) = match (records.first(), records.last()) {
            (Some(f), Some(l)) => (f.at_ms, l.at_ms),
            _ => return Err(ReplayError::NoRequests),
        };
        let window_ms = (window.as_millis() as u64).max(1);
        let windows = ((last - first) / window_ms + 1) as usize;
        let mut notes = Vec::new();

        // Per endpoint: sums overall and per window.
        let ids: Vec<&str> = prices.endpoints.iter().map(|e| e.id.as_str()).collect();
        let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let mut per_window = vec![vec![fit::Sums::default(); windows]; ids.len()];
        let mut unknown_endpoints = 0u64;
        for r in &records {
            let w = ((r.at_ms - first) / window_ms) as usize;
            for a in &r.attempts {
                match index.get(a.endpoint.as_str()) {
                    Some(&e) => per_window[e][w].add(r, a),
                    None => unknown_endpoints += 1,
                }
            }
        }
        if unknown_endpoints > 0 {
            notes.push(format!(
                "{unknown_endpoints} attempts were at endpoints the log's prices do not list (left out)"
            ));
        }
        let totals: Vec<fit::Sums> = per_window
            .iter()
            .map(|ws| {
                ws.iter().fold(fit::Sums::default(), |mut acc, s| {
                    acc.merge(s);
                    acc
                })
            })
            .collect();
        let mut pooled = fit::Sums::default();
        for t in totals.iter().filter(|t| t.attempts() >= MIN_OBSERVED) {
            pooled.merge(t);
        }
        let pooled = pooled.behaviour(&fit::UNKNOWN);

        let mut endpoints = Vec::new();
        let mut events = Vec::new();
        let mut coverage = Vec::new();
        for (e, p) in prices.endpoints.iter().enumerate() {
            let observed = totals[e].attempts() >= MIN_OBSERVED;
            let base = if observed {
                totals[e].behaviour(&pooled)
            } else {
                pooled
            };
            let mut windows_observed = 0;
            for (w, sums) in per_window[e].iter().enumerate() {
                if observed && sums.attempts() >= MIN_WINDOW {
                    windows_observed += 1;
                    let b = sums.behaviour(&base);
                    events.push(json!({
                        "at": format!("{}ms", w as u64 * window_ms),
                        "until": format!("{}ms", (w as u64 + 1) * window_ms),
                        "endpoint": p.id,
                        "set": {"error_rate": b.error_rate, "ttft_median_ms": b.ttft_median_ms,
                            "ttft_sigma": b.ttft_sigma, "tokens_per_s": b.tokens_per_s},
                    }));
                }
            }
            coverage.push(Coverage {
                endpoint: p.id.clone(),
                attempts: totals[e].attempts(),
                windows_observed,
                windows,
                extrapolated: !observed,
            });
            let mut ep = json!({
                "id": p.id, "input_per_mtok": p.input_per_mtok, "output_per_mtok": p.output_per_mtok,
                "ttft": {"median_ms": base.ttft_median_ms, "sigma": base.ttft_sigma},
                "tokens_per_s": base.tokens_per_s, "error_rate": base.error_rate,
            });
            for (k, v) in [
                ("cached_input_per_mtok", p.cached_input_per_mtok),
                ("quality", p.quality),
                ("error_after_ms", base.error_after_ms),
            ] {
                if let Some(v) = v {
                    ep[k] = json!(v);
                }
            }
            if let Some(s) = base.error_status {
                ep["error_status"] = json!(s);
            }
            endpoints.push(ep);
        }

        // The request shapes: model, stream and hints, each once.
        let mut shapes: Vec<(String, Value)> = Vec::new();
        let mut hint_of = Vec::with_capacity(records.len());
        for r in &records {
            let key = serde_json::to_string(&(&r.model, &r.hints)).unwrap_or_default();
            let i = match shapes.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    let h = &r.hints;
                    let mut m = json!({"weight": 1.0, "model": model_of(r, &ids, &mut notes)});
                    for (k, v) in [
                        ("route", &h.route),
                        ("provider", &h.provider),
                        ("models", &h.models),
                    ] {
                        if let Some(v) = v {
                            m[k] = v.value();
                        }
                    }
                    if !h.headers.is_empty() {
                        m["headers"] = json!(h.headers);
                    }
                    shapes.push((key, m));
                    shapes.len() - 1
                }
            };
            hint_of.push(i);
        }
        let streamed = records.iter().filter(|r| r.stream).count();
        let stream = streamed * 2 >= records.len();
        if streamed != 0 && streamed != records.len() {
            notes.push(format!(
                "{streamed} of {} requests streamed: all are replayed as {}",
                records.len(),
                if stream { "streams" } else { "non-streamed" }
            ));
        }
        let known = |f: fn(&Record) -> Option<u64>| -> Vec<u64> {
            let mut v: Vec<u64> = records.iter().filter_map(|r| f(r)).collect();
            v.sort_unstable();
            v
        };
        let outputs = known(|r| r.output_tokens);
        let median_output = outputs
            .get(outputs.len() / 2)
            .copied()
            .unwrap_or(300)
            .max(1);
        let max_attempts = records.iter().map(|r| r.attempts.len()).max().unwrap_or(1);
        let duration_s = (last - first) / 1000 + 60;
        let scenario = json!({
            "name": "replay",
            "duration": format!("{duration_s}s"),
            "max_attempts": max_attempts.clamp(2, 10),
            "workload": {
                "rate_rps": records.len() as f64 / duration_s as f64,
                "prompt_tokens": {"median": 1000.0, "sigma": 0.5},
                "output_tokens": {"median": median_output as f64, "sigma": 0.5},
                "stream": stream,
                "mix": shapes.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>(),
            },
            "endpoints": endpoints,
            "events": events,
        });
        let scenario = Scenario::from_json(scenario)?;

        let reqs: Vec<Req> = records
            .iter()
            .zip(&hint_of)
            .map(|(r, &hint)| Req {
                at_ns: (r.at_ms - first) * 1_000_000,
                prompt_tokens: r
                    .prompt_tokens
                    .unwrap_or(r.est_prompt_tokens)
                    .clamp(1, 10_000_000) as u32,
                output_tokens: r.output_tokens.unwrap_or(median_output).clamp(1, 1_000_000) as u32,
                hint,
                seed: seed_of(&r.id),
                session: u32::MAX,
                previous_prompt: 0,
            })
            .collect();
        let recorded = records
            .iter()
            .zip(&reqs)
            .map(|(r, q)| recorded(r, q, &scenario))
            .collect();
        Ok(Replay {
            scenario,
            reqs,
            coverage,
            notes,
            recorded,
        })
    }

    /// Runs `policies` (and the oracle) on the recorded arrivals, beside what was recorded.
    pub fn run(&self, policies: &[SimPolicy], seed: u64) -> ReplayReport {
        let s = &self.scenario;
        let mut report = super::simulate_requests(s, policies, &self.reqs, seed, |_, _| {});
        let oracle = report
            .policies
            .last()
            .map(|o| (o.cost_usd, o.slo_attainment));
        let mut recorded = summarize(s, SimPolicy::Oracle, &self.recorded, oracle);
        recorded.policy = "recorded".into();
        report.policies.insert(0, recorded);
        // The fitted windows are the scenario's events; "time to move after each" would
        // list every one of them.
        for p in &mut report.policies {
            p.moves.clear();
        }
        ReplayReport {
            report,
            coverage: self.coverage.clone(),
            notes: self.notes.clone(),
        }
    }
}

impl ReplayReport {
    /// The terminal table: the scenario's, then coverage and notes.
    pub fn table(&self) -> String {
        let mut out = self.report.table();
        out.push_str(
            "\nwhat the log observed of each endpoint (attempts; windows fitted on their own):\n",
        );
        for c in &self.coverage {
            out.push_str(&format!(
                "  {:<40} {:>7} attempts  {:>4}/{:<4} windows{}\n",
                c.endpoint,
                c.attempts,
                c.windows_observed,
                c.windows,
                if c.extrapolated {
                    "  EXTRAPOLATED from the observed endpoints: results that route there are uncertain"
                } else {
                    ""
                }
            ));
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        out
    }
}

/// The model a record asked for, if the replayed catalog knows it; else the model of the
/// endpoint that first took it (noted).
fn model_of(r: &Record, ids: &[&str], notes: &mut Vec<String>) -> String {
    let known = r.model == "auto"
        || ids
            .iter()
            .any(|id| *id == r.model || id.split_once('/').is_some_and(|(_, m)| m == r.model));
    if known {
        return r.model.clone();
    }
    let fallback = r.attempts[0]
        .endpoint
        .split_once('/')
        .map_or(r.attempts[0].endpoint.as_str(), |(_, m)| m)
        .to_owned();
    notes.push(format!(
        "model `{}` (a group or preset) is replayed as `{fallback}`, the model its first attempt went to",
        r.model
    ));
    fallback
}

/// A request's attempt luck, from its id (stable across replays).
fn seed_of(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What the log recorded for one request, as the simulator reports a run.
fn recorded(r: &Record, q: &Req, s: &Scenario) -> Done {
    let index = |id: &str| s.endpoints.iter().position(|e| e.id == id);
    let answered = matches!(r.outcome, Outcome::Answered);
    Done {
        at_ns: q.at_ns,
        hint: q.hint,
        first: r.attempts.first().and_then(|a| index(&a.endpoint)),
        answered_by: if answered {
            r.attempts
                .iter()
                .rev()
                .find(|a| a.outcome == "answered")
                .and_then(|a| index(&a.endpoint))
        } else {
            None
        },
        attempts: r.attempts.iter().filter(|a| !a.hedge).count() as u32,
        ttft_ms: r.ttft_ms.or(r.total_ms).unwrap_or(0.0),
        total_ms: r.total_ms.unwrap_or(0.0),
        cost_usd: r.cost_usd.unwrap_or(0.0),
        hedged: r.hedge.as_ref().is_some_and(|h| h.started),
        hedge_won: r.hedge.as_ref().is_some_and(|h| h.won),
        hedge_wasted_usd: r.hedge.as_ref().map_or(0.0, |h| h.wasted_usd),
    }
}
