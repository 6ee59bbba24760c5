//! The attempt machine: walks a plan's ranked candidates until one answers.
//!
//! The machine decides and records; its driver does the I/O. The gateway drives it with real
//! HTTP exchanges and the system clock, the simulator with simulated endpoints in virtual
//! time, so both fail over, rest and stop by the same rules:
//!
//! - **next**: the next ranked candidate, counted in flight; none once `max_attempts` were
//!   made, the candidates ran out, or the request's deadline passed;
//! - **classify**: an HTTP status either fails over (401, 403, 404, 409: the provider refuses
//!   us; 408 and every timeout; 429; every 5xx) or is the request's own fault (any other
//!   4xx), which another provider would refuse too: it is `rejected`, relayed, and ends the
//!   attempts without blaming the endpoint;
//! - **rest**: a failure that carries a provider's `Retry-After` (429 or 503) rests the
//!   endpoint for that long, capped at `routing.max_retry_after`; the shortest wait asked
//!   for goes back to the client when every attempt failed;
//! - **record**: every failure is recorded in the endpoint's statistics at the time it
//!   happened (the failure break and the posteriors learn from it).
//!
//! A success is recorded by the driver (only it knows when the first token came and what
//! the answer cost).

use std::fmt;
use std::time::Duration;

use crate::catalog::EndpointIdx;
use crate::stats::{FailureClass, StatsTable};

/// Why one attempt failed: the class learned from, the status if there was one, and the
/// provider's `Retry-After` if it sent one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
}

impl From<FailureClass> for Failure {
    fn from(class: FailureClass) -> Failure {
        Failure {
            class,
            status: None,
            retry_after: None,
        }
    }
}

impl Failure {
    /// A failed HTTP status (see [`failover_class`]).
    pub fn status(class: FailureClass, status: u16, retry_after: Option<Duration>) -> Failure {
        // Only 429 and 503 carry a wait worth honouring.
        let retry_after = retry_after.filter(|_| matches!(status, 429 | 503));
        Failure {
            class,
            status: Some(status),
            retry_after,
        }
    }
}

/// The failure class of a status that moves on to the next candidate, `None` for a status
/// that is the request's own fault (relayed as it came, the attempts end).
pub(crate) fn failover_class(status: u16) -> Option<FailureClass> {
    match status {
        429 => Some(FailureClass::RateLimited),
        408 => Some(FailureClass::Timeout),
        401 | 403 | 404 | 409 => Some(FailureClass::Refused),
        500..=599 => Some(FailureClass::ServerError),
        _ => None,
    }
}

/// One failed attempt, as reported to the client and the logs.
#[derive(Debug, Clone)]
pub struct AttemptFailure {
    pub endpoint: String,
    pub class: FailureClass,
    /// The HTTP status, for failures that had one.
    pub status: Option<u16>,
}

impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(code) => write!(f, "{}: HTTP {code}", self.endpoint),
            None => write!(f, "{}: {}", self.endpoint, self.class),
        }
    }
}

/// Every attempt failed (or none could be made).
#[derive(Debug, Clone, PartialEq)]
pub struct Exhausted {
    /// Each failed attempt's endpoint and failure, in order.
    pub failures: Vec<(EndpointIdx, Failure)>,
    /// The deadline ended the attempts before `max_attempts` or the candidates did.
    pub deadline_hit: bool,
    /// The shortest `Retry-After` any provider asked for.
    pub retry_after: Option<Duration>,
}

/// The attempts of one request.
#[derive(Debug, Clone)]
pub struct Attempts {
    ranked: Vec<EndpointIdx>,
    max_attempts: usize,
    deadline_ns: u64,
    max_retry_after: Duration,
    /// Attempts started so far.
    started: usize,
    /// An answer or a rejection ended the attempts.
    over: bool,
    /// The running attempt and when it started.
    current: Option<(EndpointIdx, u64)>,
    failures: Vec<(EndpointIdx, Failure)>,
    retry_after: Option<Duration>,
}

impl Attempts {
    /// `ranked` in order, at most `max_attempts` of them, none started at or after
    /// `deadline_ns`; provider rests capped at `max_retry_after`.
    pub fn new(
        ranked: Vec<EndpointIdx>,
        max_attempts: usize,
        deadline_ns: u64,
        max_retry_after: Duration,
    ) -> Attempts {
        Attempts {
            ranked,
            max_attempts,
            deadline_ns,
            max_retry_after,
            started: 0,
            over: false,
            current: None,
            failures: Vec::new(),
            retry_after: None,
        }
    }

    /// The next candidate to try at `now_ns`, counted in flight in `table`; `None` when the
    /// attempts are over.
    pub fn next(&mut self, table: &StatsTable, now_ns: u64) -> Option<EndpointIdx> {
        if self.current.is_some() {
            debug_assert!(false, "an attempt is still running");
            return None;
        }
        if self.over
            || self.started >= self.max_attempts.min(self.ranked.len())
            || now_ns >= self.deadline_ns
        {
            return None;
        }
        let idx = self.ranked[self.started];
        self.started += 1;
        self.current = Some((idx, now_ns));
        table.begin(idx);
        Some(idx)
    }

    /// The running attempt failed at `now_ns`: rest the endpoint if the provider asked,
    /// record the failure with the time it took (what the next attempt starts late by),
    /// remember it for the client.
    pub fn failed(&mut self, table: &StatsTable, failure: Failure, now_ns: u64) {
        let Some((idx, started_ns)) = self.current.take() else {
            debug_assert!(false, "no attempt is running");
            return;
        };
        let mut failure = failure;
        failure.retry_after = failure.retry_after.map(|d| d.min(self.max_retry_after));
        if let Some(rest) = failure.retry_after {
            let rest_ns = u64::try_from(rest.as_nanos()).unwrap_or(u64::MAX);
            table.rest_until(idx, now_ns.saturating_add(rest_ns));
            self.retry_after = Some(self.retry_after.map_or(rest, |r| r.min(rest)));
        }
        let took_ms = now_ns.saturating_sub(started_ns) as f64 / 1e6;
        table.failure_after(idx, failure.class, Some(took_ms), now_ns);
        self.failures.push((idx, failure));
    }

    /// Whether another candidate may still be tried after the running attempt (the deadline
    /// aside).
    pub(crate) fn has_next(&self) -> bool {
        !self.over && self.started < self.max_attempts.min(self.ranked.len())
    }

    /// The running attempt's provider said the request uses a parameter its model does not
    /// support: counted as `unsupported` (not against the endpoint's health), remembered for
    /// the client, and the next candidate may take it.
    pub(crate) fn unsupported(&mut self, table: &StatsTable, status: u16, now_ns: u64) {
        let Some((idx, _)) = self.current.take() else {
            debug_assert!(false, "no attempt is running");
            return;
        };
        table.unsupported(idx, now_ns);
        let failure = Failure::status(FailureClass::Unsupported, status, None);
        self.failures.push((idx, failure));
    }

    /// The running attempt ended without an outcome to learn from: the provider refused the
    /// request itself (`rejected`, see [`failover_class`]). The attempts are over.
    pub(crate) fn rejected(&mut self, table: &StatsTable) {
        if let Some((idx, _)) = self.current.take() {
            table.rejected(idx);
        }
        self.over = true;
    }

    /// The running attempt answered; its driver records the success (or, for a stream that
    /// breaks later, the mid-stream failure). The attempts are over.
    pub fn answered(&mut self) -> Option<EndpointIdx> {
        self.over = true;
        self.current.take().map(|(idx, _)| idx)
    }

    /// Attempts started so far.
    pub fn started(&self) -> usize {
        self.started
    }

    /// The failures so far, in order.
    pub fn failures(&self) -> &[(EndpointIdx, Failure)] {
        &self.failures
    }

    /// Why the attempts ended without an answer, as of `now_ns`.
    pub(crate) fn exhausted(self, now_ns: u64) -> Exhausted {
        Exhausted {
            failures: self.failures,
            deadline_hit: now_ns >= self.deadline_ns,
            retry_after: self.retry_after,
        }
    }
}

#[cfg(test)]
mod tests;
