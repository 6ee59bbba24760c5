//! A simulated run written as a request log: the lines a router would have logged for the
//! same requests, attempts and answers (what `simulate --replay` is checked against, and
//! a way to try replay without live traffic).

use crate::log::{AttemptLine, CatalogLine, EndpointPrice, Hints, Line, Outcome, RawJson, Record};
use crate::plan::End;
use crate::sim::engine::{Done, Req, Trace};
use crate::sim::scenario::Scenario;

/// Unix ms the simulated run is dated from.
const EPOCH_MS: u64 = 1_764_000_000_000;

/// The log lines of one simulated run (`traces` from [`crate::sim::engine::run_traced`]).
pub fn log_of(s: &Scenario, reqs: &[Req], done: &[Done], traces: &[Trace]) -> Vec<Line> {
    let mut lines = vec![Line::Catalog(Box::new(CatalogLine {
        at_ms: EPOCH_MS,
        endpoints: s
            .endpoints
            .iter()
            .map(|e| EndpointPrice {
                id: e.id.clone(),
                input_per_mtok: e.input_per_mtok,
                output_per_mtok: e.output_per_mtok,
                cached_input_per_mtok: e.cached_input_per_mtok,
                quality: e.quality,
            })
            .collect(),
    }))];
    let shapes: Vec<(String, Hints)> = if s.workload.mix.is_empty() {
        vec![shape(&s.workload.model, &s.workload.hints())]
    } else {
        s.workload
            .mix
            .iter()
            .map(|m| shape(&s.workload.model, &m.hints()))
            .collect()
    };
    for ((r, d), t) in reqs.iter().zip(done).zip(traces) {
        let (model, hints) = &shapes[r.hint];
        let ms = |ns: u64| ns.saturating_sub(r.at_ns) as f64 / 1e6;
        let attempts = t
            .tried
            .iter()
            .map(|a| {
                let e = t.map[a.endpoint];
                let answer = t
                    .answer
                    .filter(|&(w, _, _)| w == e && a.end == End::Answered);
                let (outcome, status) = AttemptLine::outcome_of(a.end);
                AttemptLine {
                    endpoint: s.endpoints[e].id.clone(),
                    start_ms: ms(a.started_ns),
                    outcome,
                    status,
                    took_ms: match answer {
                        Some((_, _, end)) => Some((end - a.started_ns) as f64 / 1e6),
                        None => Some((a.ended_ns.saturating_sub(a.started_ns)) as f64 / 1e6),
                    },
                    ttft_ms: answer.map(|(_, first, _)| (first - a.started_ns) as f64 / 1e6),
                    hedge: a.hedge,
                }
            })
            .collect();
        let answered = d.answered_by.is_some();
        lines.push(Line::Request(Box::new(Record {
            id: format!("req_{:016x}", r.seed),
            at_ms: EPOCH_MS + r.at_ns / 1_000_000,
            client: None,
            surface: "chat.completions".into(),
            model: model.clone(),
            stream: s.workload.stream,
            hints: hints.clone(),
            prompt_bytes: u64::from(r.prompt_tokens) * 4,
            est_prompt_tokens: u64::from(r.prompt_tokens),
            max_tokens: None,
            candidates: 0,
            ranked: Vec::new(),
            attempts,
            outcome: if answered {
                Outcome::Answered
            } else {
                Outcome::Failed
            },
            status: if answered { 200 } else { 502 },
            ttft_ms: answered.then_some(d.ttft_ms),
            total_ms: answered.then_some(d.total_ms),
            prompt_tokens: Some(u64::from(r.prompt_tokens)),
            output_tokens: answered.then_some(u64::from(r.output_tokens)),
            cost_usd: answered.then_some(d.cost_usd),
            hedge: None,
        })));
    }
    lines
}

fn shape(model: &str, h: &crate::sim::scenario::Hints) -> (String, Hints) {
    (
        h.model.clone().unwrap_or_else(|| model.to_owned()),
        Hints {
            route: h.route.as_ref().map(RawJson::from),
            provider: h.provider.as_ref().map(RawJson::from),
            models: h
                .models
                .as_ref()
                .map(|m| RawJson::from(&serde_json::json!(m))),
            headers: h.headers.clone(),
        },
    )
}
