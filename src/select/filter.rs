//! Hard constraints: which candidates a request rules out, and why.
//!
//! The operation (chat models answer chats, embedding models embeddings), what the request
//! needs of the model (tools, images, a JSON mode, ...: the sheet's `supports`), `only` / `ignore`
//! (provider names or endpoint ids), `max_price` (per million tokens and
//! per request), the context window (estimated prompt plus `max_tokens`), `max_tokens` above
//! the endpoint's output limit, and `max_cost_usd` against the estimate. Every removal keeps
//! the constraint that caused it, so a request nothing survives gets a 422 that says which
//! constraint removed which candidate.

use serde::Serialize;

use super::estimate::{estimate_with, Estimate, ModelFacts};
use crate::catalog::{Catalog, EndpointIdx};
use crate::pricing::Capabilities;
use crate::route::{Constraints, Operation, RouteRequest};
use crate::stats::StatsTable;

/// A candidate that survived, with its estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub idx: EndpointIdx,
    pub estimate: Estimate,
}

/// A candidate a hard constraint removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Removal {
    pub endpoint: EndpointIdx,
    /// The field at fault, e.g. `provider.max_price.prompt`, `route.max_cost_usd`.
    pub constraint: String,
}

/// The model facts read during one request, direct-mapped by model slot: a model served by
/// several of the candidates (the same open model at many providers) is read under its lock
/// once, not once per endpoint. Bounded, so a catalog of thousands of models costs no more
/// than a miss per candidate.
struct FactsMemo {
    entries: [(usize, ModelFacts); FactsMemo::SIZE],
}

impl FactsMemo {
    const SIZE: usize = 16;

    fn new() -> FactsMemo {
        let empty = ModelFacts {
            bytes_per_token: 0.0,
            mean_output_tokens: None,
        };
        FactsMemo {
            entries: [(usize::MAX, empty); FactsMemo::SIZE],
        }
    }

    fn get(&mut self, stats: &StatsTable, idx: EndpointIdx) -> ModelFacts {
        let slot = stats.model_slot(idx);
        let entry = &mut self.entries[slot % FactsMemo::SIZE];
        if entry.0 != slot {
            *entry = (slot, stats.with_model(idx, ModelFacts::of));
        }
        entry.1
    }
}

/// What removes an endpoint whose sheet says it `supports` this (`None`: nothing listed) from
/// a request with constraints `c`: the first capability it needs that the endpoint lacks, or
/// `provider.require_parameters` when that asks for listed capabilities and there are none.
fn lacking(
    c: &Constraints,
    supports: Option<Capabilities>,
    unknown_capable: bool,
) -> Option<String> {
    if c.needs.is_empty() {
        return None;
    }
    let first_missing = |s: Capabilities| c.needs.missing_from(s).next();
    let missing = match supports {
        Some(s) => first_missing(s),
        None if c.require_parameters => return Some("provider.require_parameters".into()),
        None if unknown_capable => None,
        None => first_missing(Capabilities::NONE),
    };
    missing.map(|m| m.name().to_owned())
}

/// Splits `candidates` into those every hard constraint allows and those removed.
pub fn filter(
    request: &RouteRequest,
    catalog: &Catalog,
    stats: &StatsTable,
    candidates: &[EndpointIdx],
) -> (Vec<Candidate>, Vec<Removal>) {
    let c = &request.constraints;
    let mut kept = Vec::with_capacity(candidates.len());
    let mut removed = Vec::new();
    let mut facts = FactsMemo::new();
    for &idx in candidates {
        let ep = catalog.endpoint(idx);
        let provider = &catalog.provider_of(idx).name;
        let named = |list: &[String]| list.iter().any(|n| n == provider || *n == ep.id);
        let est = estimate_with(request, ep, facts.get(stats, idx));
        let p = &ep.price;
        let over =
            |max: Option<f64>, v: Option<f64>| matches!((max, v), (Some(m), Some(v)) if v > m);
        let provider_of = catalog.provider_of(idx);
        let openai = provider_of.protocol == crate::dialect::Protocol::Openai;
        let serves = match request.operation {
            Operation::Chat => ep.kind.is_chat(),
            Operation::Embeddings => !ep.kind.is_chat() && openai,
            Operation::Completions => ep.kind.is_chat() && openai,
            Operation::Responses => ep.kind.is_chat() && openai && provider_of.responses,
        };
        let why: Option<String> = if !serves {
            // A chat model asked for embeddings, or an embedding model for a chat answer.
            Some("operation".into())
        } else if let Some(lacking) = lacking(c, p.supports, catalog.unknown_capable()) {
            Some(lacking)
        } else if let Some((field, _)) = c.only.iter().find(|(_, l)| !named(l)) {
            Some((*field).to_owned())
        } else if let Some((field, _)) = c.ignore.iter().find(|(_, l)| named(l)) {
            Some((*field).to_owned())
        } else if over(c.max_price.prompt, Some(p.input_per_mtok)) {
            Some("provider.max_price.prompt".into())
        } else if over(c.max_price.completion, Some(p.output_per_mtok)) {
            Some("provider.max_price.completion".into())
        } else if over(c.max_price.request, Some(p.per_request.unwrap_or(0.0))) {
            Some("provider.max_price.request".into())
        } else if over(
            p.context_window.map(f64::from),
            Some(est.prompt_tokens + f64::from(request.max_output_tokens.unwrap_or(0))),
        ) {
            Some("context_window".into())
        } else if over(
            p.max_output_tokens.map(f64::from),
            request.max_output_tokens.map(f64::from),
        ) {
            Some("max_tokens".into())
        } else if over(c.max_cost_usd, Some(est.cost_usd)) {
            Some("max_cost_usd".into())
        } else {
            None
        };
        match why {
            Some(constraint) => removed.push(Removal {
                endpoint: idx,
                constraint,
            }),
            None => kept.push(Candidate { idx, estimate: est }),
        }
    }
    (kept, removed)
}
