//! Measuring one attempt: in flight from its start, recorded exactly once at its end.
//!
//! An [`AttemptMeter`] counts the attempt in flight when created and records its outcome
//! when told (`fail`, `succeed`, `rejected`) or, if dropped untold — the client went away
//! and the request's future was dropped — as cancelled. So in-flight counts return to zero
//! whatever happens, and a cancelled request is counted once. Time is read here, in the
//! gateway, and handed to the pure statistics as nanoseconds since the router's epoch.

use std::sync::Arc;

use tokio::time::Instant;

use super::usage::Usage;
use crate::catalog::EndpointIdx;
use crate::pricing::Rates;
use crate::stats::{FailureClass, StatsTable, Success};
use rust_decimal::Decimal;

pub struct AttemptMeter {
    table: Arc<StatsTable>,
    idx: EndpointIdx,
    /// The endpoint's rates in the catalog the request started with.
    rates: Rates,
    epoch: Instant,
    started: Instant,
    done: bool,
}

impl AttemptMeter {
    pub fn start(
        table: Arc<StatsTable>,
        idx: EndpointIdx,
        rates: Rates,
        epoch: Instant,
    ) -> AttemptMeter {
        table.begin(idx);
        AttemptMeter {
            table,
            idx,
            rates,
            epoch,
            started: Instant::now(),
            done: false,
        }
    }

    fn now_ns(&self) -> u64 {
        nanos_since(self.epoch)
    }

    pub fn fail(mut self, class: FailureClass) {
        self.done = true;
        self.table.failure(self.idx, class, self.now_ns());
    }

    /// A failure after which the provider asked to be left alone for `rest`.
    pub fn fail_resting(self, class: FailureClass, rest: Option<std::time::Duration>) {
        if let Some(rest) = rest {
            let rest_ns = u64::try_from(rest.as_nanos()).unwrap_or(u64::MAX);
            self.table
                .rest_until(self.idx, self.now_ns().saturating_add(rest_ns));
        }
        self.fail(class);
    }

    /// The provider refused the request itself (a 4xx that is the client's to fix): the
    /// endpoint is neither credited nor blamed.
    pub fn rejected(mut self) {
        self.done = true;
        self.table.cancelled(self.idx);
    }

    /// A complete answer; `first_token` is when the first content arrived (streams only);
    /// `prompt_bytes` is the size of the request's `messages`. Returns what it cost, when the
    /// provider reported usage.
    pub fn succeed(
        mut self,
        first_token: Option<Instant>,
        usage: Option<&Usage>,
        prompt_bytes: usize,
    ) -> Option<Decimal> {
        self.done = true;
        let ms = |t: Instant| t.saturating_duration_since(self.started).as_secs_f64() * 1000.0;
        let success = Success {
            ttft_ms: first_token.map(ms),
            total_ms: ms(Instant::now()),
            prompt_tokens: usage.map(|u| u.prompt_tokens),
            output_tokens: usage.map(|u| u.completion_tokens),
            prompt_bytes: Some(prompt_bytes as u64),
            cost_usd: usage.map(|u| u.cost(&self.rates)),
        };
        self.table.success(self.idx, &success, self.now_ns());
        success.cost_usd
    }
}

impl Drop for AttemptMeter {
    fn drop(&mut self) {
        if !self.done {
            self.table.cancelled(self.idx);
        }
    }
}

/// Nanoseconds from `epoch` to now.
pub fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
