//! Measuring one attempt from its start to its end, recorded exactly once.
//!
//! The attempt machine ([`crate::plan::Attempts`]) counts an attempt in flight when it starts
//! it and records failures and rejections itself. An [`AttemptMeter`] is the gateway's guard
//! for the rest: it times the attempt, records a success (or, for a stream that breaks after
//! its first byte, the mid-stream failure) and, if dropped untold — the client went away and
//! the request's future was dropped — records the attempt as cancelled. So in-flight counts
//! return to zero whatever happens, and each attempt is counted once. Time is read here, in
//! the gateway, and handed to the pure statistics as nanoseconds since the router's epoch.

use std::sync::Arc;

use tokio::time::Instant;

use super::usage::Usage;
use crate::catalog::EndpointIdx;
use crate::pricing::Rates;
use crate::stats::{FailureClass, StatsTable, Success};
use rust_decimal::Decimal;

pub(crate) struct AttemptMeter {
    table: Arc<StatsTable>,
    idx: EndpointIdx,
    /// The endpoint's rates in the catalog the request started with.
    rates: Rates,
    epoch: Instant,
    started: Instant,
    done: bool,
}

impl AttemptMeter {
    /// Guards an attempt the machine has just started (already counted in flight).
    pub(crate) fn started(
        table: Arc<StatsTable>,
        idx: EndpointIdx,
        rates: Rates,
        epoch: Instant,
    ) -> AttemptMeter {
        AttemptMeter {
            table,
            idx,
            rates,
            epoch,
            started: Instant::now(),
            done: false,
        }
    }

    /// The endpoint attempted.
    pub(crate) fn endpoint(&self) -> EndpointIdx {
        self.idx
    }

    fn now_ns(&self) -> u64 {
        nanos_since(self.epoch)
    }

    /// The attempt machine records this attempt's end (a failure before the first byte, or a
    /// rejection): the meter steps aside.
    pub(crate) fn hand_over(mut self) {
        self.done = true;
    }

    /// A committed stream broke, went silent or reported an error after its first byte.
    pub(crate) fn fail(mut self, class: FailureClass) {
        self.done = true;
        self.table.failure(self.idx, class, self.now_ns());
    }

    /// A complete answer; `first_token` is when the first content arrived (streams only);
    /// `prompt_bytes` is the size of the request's `messages`. Returns what it cost, when the
    /// provider reported usage.
    pub(crate) fn succeed(
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
        let now_ns = self.now_ns();
        match usage {
            Some(u) => {
                let cached = u
                    .prompt_tokens_details
                    .as_ref()
                    .map_or(0, |d| d.cached_tokens);
                self.table
                    .success_cached(self.idx, &success, cached, now_ns);
            }
            None => self.table.success(self.idx, &success, now_ns),
        }
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
pub(crate) fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
