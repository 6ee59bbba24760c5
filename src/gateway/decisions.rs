//! Recent routing decisions, kept so `GET /v1/decisions/{request id}` can explain them.
//!
//! A bounded ring: the newest [`CAPACITY`] decisions, the oldest dropped first. A record holds
//! indices and the catalog they index, and is turned into JSON only when someone asks, so
//! keeping it costs the request path one short lock and no formatting.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::catalog::{Catalog, EndpointIdx};
use crate::plan::AttemptFailure;
use crate::route::RouteRequest;
use crate::select::{missed, Decision, Removal};

/// Decisions kept: enough for minutes of traffic at hundreds of requests a second.
pub(crate) const CAPACITY: usize = 4096;
/// Ranked candidates (and removals) kept per decision, with the totals: as many as a request
/// can attempt (`max_attempts` is at most 10). A request over 200 endpoints would otherwise
/// keep 20 KB of scores, and the ring 90 MB (measured: 99 MiB peak RSS at 2,000 req/s).
pub(crate) const KEPT_CANDIDATES: usize = 10;

/// One request's routing, as decided and as it went.
pub(crate) struct Record {
    pub request_id: String,
    /// When the request arrived, Unix milliseconds.
    pub at_unix_ms: u64,
    /// The client key's name, when keys are configured.
    pub client: Option<String>,
    pub model: String,
    /// The preset the request named, and the presets version it was read from.
    pub preset: Option<(String, u64)>,
    pub catalog: Arc<Catalog>,
    pub request: RouteRequest,
    pub decision: Decision,
    pub removed: Vec<Removal>,
    pub max_attempts: usize,
    pub failures: Vec<AttemptFailure>,
    /// The endpoint that answered, if any did.
    pub answered_by: Option<EndpointIdx>,
    /// How many candidates were ranked and removed before [`DecisionLog::push`] kept the
    /// first [`KEPT_CANDIDATES`] of each.
    pub candidates_total: usize,
    pub removed_total: usize,
    /// What conversation affinity did to the ranking.
    pub affinity: crate::affinity::Outcome,
    /// What hedging did, when the request was hedged.
    pub hedge: Option<super::hedge::HedgeOutcome>,
}

#[derive(Default)]
pub(crate) struct DecisionLog {
    ring: Mutex<VecDeque<Arc<Record>>>,
}

impl DecisionLog {
    pub fn push(&self, mut record: Record) {
        record.candidates_total = record.decision.ranked.len();
        record.removed_total = record.removed.len();
        // The kept part is copied into new allocations rather than shrunk in place. A shrunk
        // block stays where the whole list was, so 4,096 long-lived small blocks can each
        // pin the start of a freed 20 KB hole that the next decision's lists do not fit.
        // Measured in the 200-endpoint memory benchmark: 84 MiB peak shrinking (once the
        // lists came straight from the policy), 22 MiB copying.
        if record.candidates_total > KEPT_CANDIDATES {
            let d = &mut record.decision;
            d.ranked = d.ranked[..KEPT_CANDIDATES].to_vec();
            d.scores = d.scores[..KEPT_CANDIDATES].to_vec();
        }
        if record.removed_total > KEPT_CANDIDATES {
            record.removed = record.removed[..KEPT_CANDIDATES].to_vec();
        }
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        ring.push_back(Arc::new(record));
    }

    /// The newest `n` records, newest first.
    pub fn recent(&self, n: usize) -> Vec<Arc<Record>> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter().rev().take(n).cloned().collect()
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
    /// A one-line summary for the dashboard.
    pub fn summary(&self) -> Value {
        let id = |i: EndpointIdx| self.catalog.endpoint(i).id.as_str();
        json!({
            "id": self.request_id,
            "at_ms": self.at_unix_ms,
            "client": self.client,
            "model": self.model,
            "preset": self.preset.as_ref().map(|(name, version)| json!({"name": name, "version": version})),
            "policy": self.decision.policy,
            "ranked": self.decision.ranked.iter().take(4).map(|&i| id(i)).collect::<Vec<_>>(),
            "candidates": self.candidates_total,
            "removed": self.removed_total,
            "failures": self.failures.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            "answered_by": self.answered_by.map(id),
            "why": self.why(),
        })
    }

    fn why(&self) -> String {
        let id = |i: EndpointIdx| self.catalog.endpoint(i).id.as_str();
        match self.decision.scores.first() {
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
        }
    }

    /// The explanation served by `GET /v1/decisions/{id}`; `changes(endpoint id)` lists the
    /// regime changes detected on an endpoint in the ten minutes before the decision, and
    /// `prefill(endpoint id)` what it has learned of first-token time against prompt size.
    pub(crate) fn to_json(
        &self,
        changes: impl Fn(&str, u64) -> Vec<Value>,
        prefill: impl Fn(&str) -> Value,
    ) -> Value {
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
                    "quality": {"declared": cat.endpoint(i).price.quality, "used": s.quality},
                    "prefill_now": prefill(id(i)),
                    "objective": s.value,
                    "changes_before": changes(id(i), self.at_unix_ms),
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
        let why = self.why();
        json!({
            "id": self.request_id,
            "client": self.client,
            "model": self.model,
            "preset": self.preset.as_ref().map(|(name, version)| json!({"name": name, "version": version})),
            "policy": self.decision.policy,
            "constraints": self.request.constraints,
            "why": why,
            "candidates": candidates,
            "removed_by_constraints": removed,
            "candidates_total": self.candidates_total,
            "removed_total": self.removed_total,
            "max_attempts": self.max_attempts,
            "affinity": self.affinity.describe(),
            "attempts": attempts,
            "hedge": self.hedge.as_ref().map(|h| json!({
                "started": h.started.map(id),
                "won": h.won,
                "after_ms": h.after_ms,
                "skipped": h.skipped,
                "wasted_usd": h.wasted_usd,
            })),
        })
    }
}
