//! Recent routing decisions, kept so `GET /v1/decisions/{request id}` can explain them.
//!
//! A bounded ring: the newest [`CAPACITY`] decisions, the oldest dropped first. A record holds
//! indices and the catalog they index, and is turned into JSON only when someone asks, so
//! keeping it costs the request path one short lock and no formatting.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::attempt::AttemptFailure;
use crate::catalog::{Catalog, EndpointIdx};
use crate::route::RouteRequest;
use crate::select::{missed, Decision, Removal};

/// Decisions kept: enough for minutes of traffic at hundreds of requests a second.
pub const CAPACITY: usize = 4096;

/// One request's routing, as decided and as it went.
pub struct Record {
    pub request_id: String,
    /// The client key's name, when keys are configured.
    pub client: Option<String>,
    pub model: String,
    pub catalog: Arc<Catalog>,
    pub request: RouteRequest,
    pub decision: Decision,
    pub removed: Vec<Removal>,
    pub max_attempts: usize,
    pub failures: Vec<AttemptFailure>,
    /// The endpoint that answered, if any did.
    pub answered_by: Option<EndpointIdx>,
}

#[derive(Default)]
pub struct DecisionLog {
    ring: Mutex<VecDeque<Arc<Record>>>,
}

impl DecisionLog {
    pub fn push(&self, record: Record) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        ring.push_back(Arc::new(record));
    }

    pub fn find(&self, request_id: &str) -> Option<Arc<Record>> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter()
            .rev()
            .find(|r| r.request_id == request_id)
            .cloned()
    }
}

impl Record {
    /// The explanation served by `GET /v1/decisions/{id}`.
    pub fn to_json(&self) -> Value {
        let cat = &self.catalog;
        let id = |i: EndpointIdx| cat.endpoint(i).id.as_str();
        let candidates: Vec<Value> = self
            .decision
            .ranked
            .iter()
            .zip(&self.decision.scores)
            .enumerate()
            .map(|(rank, (&i, s))| {
                json!({
                    "rank": rank + 1,
                    "endpoint": id(i),
                    "feasible": s.feasible,
                    "missed": missed::names(s.missed),
                    "estimated_cost_usd": s.estimate.cost_usd,
                    "estimated_prompt_tokens": s.estimate.prompt_tokens,
                    "estimated_output_tokens": s.estimate.output_tokens,
                    "sampled_latency_ms": s.latency_ms,
                    "sampled_success": s.success,
                    "sampled_tokens_per_s": s.tokens_per_s,
                    "quality": cat.endpoint(i).price.quality,
                    "objective": s.value,
                })
            })
            .collect();
        let removed: Vec<Value> = self
            .removed
            .iter()
            .map(|r| json!({"endpoint": id(r.endpoint), "constraint": r.constraint}))
            .collect();
        let attempts: Vec<Value> = self
            .failures
            .iter()
            .map(|f| json!({"endpoint": f.endpoint, "failed": f.class.name(), "status": f.status}))
            .chain(
                self.answered_by
                    .map(|i| json!({"endpoint": id(i), "answered": true})),
            )
            .collect();
        let why = match self.decision.scores.first() {
            Some(s) if s.feasible => format!(
                "{} met every target and ranked first by `{}` among those that did",
                self.decision.ranked.first().map_or("", |&i| id(i)),
                serde_json::to_value(self.request.constraints.prefer)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            Some(s) => format!(
                "no candidate met every target in this draw; {} came closest (missed: {})",
                self.decision.ranked.first().map_or("", |&i| id(i)),
                missed::names(s.missed).join(", ")
            ),
            None => String::new(),
        };
        json!({
            "id": self.request_id,
            "client": self.client,
            "model": self.model,
            "policy": self.decision.policy,
            "constraints": self.request.constraints,
            "why": why,
            "candidates": candidates,
            "removed_by_constraints": removed,
            "max_attempts": self.max_attempts,
            "attempts": attempts,
        })
    }
}
