//! The simulated request stream, and its hints read by the router's own parser.
//!
//! Each request shape of a workload (the single one, or each `mix` entry) is written as the
//! JSON body and headers a client would send — `model`, `stream`, the `route` object,
//! OpenRouter's `provider` and `models`, `x-route-*` headers — and parsed once, when the
//! scenario is loaded, by [`ChatBody::parse`] and [`Parsed::new`]: exactly what the gateway
//! runs on a live request. A hint the gateway would refuse is a scenario error naming the
//! workload field. Per request only the prompt size changes.

use rand::{Rng, RngCore, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal as LogNormalDist};
use serde_json::{json, Map, Value};

use super::scenario::{Hints, LogNormal, Scenario, ScenarioError};
use crate::plan::{Parsed, PlanError};
use crate::pricing::{Capabilities, Capability};
use crate::route::ChatBody;

/// One request shape of the workload, as the router reads it.
#[derive(Debug, Clone)]
pub struct WorkloadHint {
    pub weight: f64,
    pub parsed: Parsed,
}

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
    /// The conversation it is a turn of (`u32::MAX`: none) and the prompt tokens of that
    /// conversation's previous turn (what a cache that served it holds).
    pub session: u32,
    pub previous_prompt: u32,
}

/// Parses every request shape of `s` through the gateway's parser.
pub(crate) fn parse_hints(s: &Scenario) -> Result<Vec<WorkloadHint>, ScenarioError> {
    let w = &s.workload;
    let shapes: Vec<(String, f64, Hints)> = if w.mix.is_empty() {
        vec![("workload".to_owned(), 1.0, w.hints())]
    } else {
        w.mix
            .iter()
            .enumerate()
            .map(|(i, m)| (format!("workload.mix[{i}]"), m.weight, m.hints()))
            .collect()
    };
    // Every endpoint the scenario ever has: a model must name some of them.
    let (everything, _) = super::truth::catalog(&super::truth::states_at(s, u64::MAX));
    shapes
        .into_iter()
        .map(|(at, weight, hints)| {
            let field = |field: &str, message: String| ScenarioError::Field {
                field: format!("{at}.{field}"),
                message,
            };
            let parsed = parse_one(&w.model, w.stream, &hints).map_err(|(f, m)| field(&f, m))?;
            let fallbacks = parsed.request.constraints.fallback_models.iter();
            let names = std::iter::once(("model".to_owned(), parsed.model.as_str())).chain(
                fallbacks
                    .enumerate()
                    .map(|(i, m)| (format!("models[{i}]"), crate::route::hints::split_suffix(m).0)),
            );
            for (f, name) in names {
                if everything.resolve(name).is_none() {
                    let why = format!("`{name}` is neither `auto`, an endpoint id nor a model of the scenario's endpoints");
                    return Err(field(&f, why));
                }
            }
            Ok(WorkloadHint { weight, parsed })
        })
        .collect()
}

/// A simulated prompt with the parts `needs` asks for (an image, a PDF file).
fn messages(needs: Capabilities) -> Value {
    let mut parts = vec![json!({"type": "text", "text": "simulated"})];
    if needs.has(Capability::Vision) {
        parts.push(
            json!({"type": "image_url", "image_url": {"url": "https://simulated.invalid/a.png"}}),
        );
    }
    if needs.has(Capability::Pdf) {
        parts.push(json!({"type": "file", "file": {"file_id": "file-simulated"}}));
    }
    json!([{"role": "user", "content": parts}])
}

/// The body fields a client sets to need what `needs` lists.
fn ask_for(body: &mut Map<String, Value>, needs: Capabilities) {
    let tool = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]);
    for c in needs.iter() {
        let (field, value) = match c {
            Capability::Tools => ("tools", tool.clone()),
            Capability::ToolChoice => ("tool_choice", json!("required")),
            Capability::ParallelToolCalls => ("parallel_tool_calls", json!(true)),
            Capability::JsonObject => ("response_format", json!({"type": "json_object"})),
            Capability::JsonSchema => (
                "response_format",
                json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}),
            ),
            Capability::Reasoning => ("reasoning_effort", json!("low")),
            // In the prompt (above), or not something a body asks for.
            Capability::Vision
            | Capability::Pdf
            | Capability::PromptCaching
            | Capability::Responses => continue,
        };
        body.insert(field.into(), value);
    }
    // A forced choice or parallel calls need tools to choose from.
    if needs.has(Capability::ToolChoice) || needs.has(Capability::ParallelToolCalls) {
        body.entry("tools").or_insert(tool);
    }
}

/// `(field, message)` on failure.
fn parse_one(model: &str, stream: bool, h: &Hints) -> Result<Parsed, (String, String)> {
    let mut body = Map::new();
    body.insert("model".into(), json!(h.model.as_deref().unwrap_or(model)));
    body.insert("messages".into(), messages(h.needs));
    body.insert("stream".into(), json!(stream));
    ask_for(&mut body, h.needs);
    for (name, v) in [("route", &h.route), ("provider", &h.provider)] {
        if let Some(v) = v {
            body.insert(name.into(), v.clone());
        }
    }
    if let Some(models) = &h.models {
        body.insert("models".into(), json!(models));
    }
    let bytes = serde_json::to_vec(&Value::Object(body)).expect("JSON values serialize");
    let chat = ChatBody::parse(&bytes).map_err(|e| {
        let field = e.field().unwrap_or("route").to_owned();
        (field, e.to_string())
    })?;
    let needs = crate::route::needs::of(&chat, crate::route::body::Shape::Chat);
    let headers: Vec<(String, &str)> = h
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let mut parsed = Parsed::new(&chat, header).map_err(|e| match e {
        PlanError::Hint(h) => {
            let field = if h.field.starts_with("x-") {
                format!("headers.{}", h.field)
            } else {
                h.field.clone()
            };
            (field, h.message)
        }
        other => ("model".to_owned(), other.to_string()),
    })?;
    parsed.request.constraints.needs = needs;
    Ok(parsed)
}

/// The request stream of a scenario: Poisson arrivals, log-normal lengths, a hint each.
pub fn requests(s: &Scenario, seed: u64) -> Vec<Req> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let gap = Exp::new(s.workload.rate_rps).expect("validated rate");
    let len = |ln: LogNormal| LogNormalDist::new(ln.median.ln(), ln.sigma).expect("validated");
    let (prompt, output) = (len(s.workload.prompt_tokens), len(s.workload.output_tokens));
    let weights: Vec<f64> = s.hints.iter().map(|h| h.weight).collect();
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
            session: u32::MAX,
            previous_prompt: 0,
        });
        if let Some(s) = s.workload.sessions {
            let i = (out.len() - 1) as u32;
            let (slot, turn) = (i % s.concurrent, i / s.concurrent);
            let r = out.last_mut().expect("just pushed");
            r.session = slot + s.concurrent * (turn / s.turns);
            if turn % s.turns > 0 {
                // The conversation so far, then this turn's own tokens.
                let before = out[(i - s.concurrent) as usize].prompt_tokens;
                let r = out.last_mut().expect("just pushed");
                r.previous_prompt = before;
                r.prompt_tokens = r.prompt_tokens.saturating_add(before);
            }
        }
    }
}
