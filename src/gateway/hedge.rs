//! Hedging in the gateway: the router-wide budget and counters, a request's hedge settings,
//! and what hedging did for one request (its decision record, its `x-switchyard-hedged`
//! header, the request log). The rules are the pure [`crate::plan::hedge`]; the race
//! itself is run by [`super::attempt::run`].
//!
//! The budget is this replica's own (not shared by a fleet): each replica keeps its
//! hedging waste within its share of its own spend.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::catalog::EndpointIdx;
use crate::plan::hedge::{HedgeBudget, HedgeConfig, HedgeSettings};

/// The router's hedging state.
pub(crate) struct Hedging {
    pub config: HedgeConfig,
    budget: Mutex<HedgeBudget>,
    pub started: AtomicU64,
    pub won: AtomicU64,
    /// Hedges not started because the budget was spent.
    pub paused: AtomicU64,
    /// What losers were estimated to cost, in micro-USD.
    pub wasted_micro_usd: AtomicU64,
}

impl Hedging {
    pub fn new(config: &HedgeConfig) -> Hedging {
        Hedging {
            config: config.clone(),
            budget: Mutex::new(HedgeBudget::new(config)),
            started: AtomicU64::new(0),
            won: AtomicU64::new(0),
            paused: AtomicU64::new(0),
            wasted_micro_usd: AtomicU64::new(0),
        }
    }

    fn budget(&self) -> std::sync::MutexGuard<'_, HedgeBudget> {
        self.budget.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request's answer cost this much.
    pub fn spent(&self, cost: Option<Decimal>, now_ns: u64) {
        if let Some(usd) = cost.and_then(|c| c.to_f64()) {
            self.budget().spent(usd, now_ns);
        }
    }

    pub fn allows(&self, now_ns: u64) -> bool {
        self.budget().allows(now_ns)
    }

    /// A hedge race was lost by an attempt estimated to have cost `usd`.
    pub fn wasted(&self, usd: f64, now_ns: u64) {
        self.budget().wasted(usd, now_ns);
        self.wasted_micro_usd
            .fetch_add((usd * 1e6).round() as u64, Ordering::Relaxed);
    }
}

/// How one request may be hedged.
pub(crate) struct Hedge {
    pub settings: HedgeSettings,
    /// Each ranked candidate's estimated request cost, in rank order.
    pub costs: Vec<f64>,
    /// The request's estimated prompt tokens (what a cancelled attempt may be billed).
    pub prompt_tokens: f64,
}

/// What hedging did for one request.
#[derive(Debug, Clone, Default)]
pub(crate) struct HedgeOutcome {
    /// The hedge attempt's endpoint, when one started.
    pub started: Option<EndpointIdx>,
    /// The hedge answered first.
    pub won: bool,
    /// Why a hedge that was due did not start (`budget`, `cost`, `history`).
    pub skipped: Option<&'static str>,
    /// When, after the first attempt started, the hedge was due, ms.
    pub after_ms: Option<f64>,
    /// The loser's estimated cost.
    pub wasted_usd: f64,
}

impl HedgeOutcome {
    /// The `x-switchyard-hedged` header's value: `won`, `lost`, or none without a hedge.
    pub fn header(&self) -> Option<&'static str> {
        self.started.map(|_| if self.won { "won" } else { "lost" })
    }
}
