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
    /// Every attempt, in order (when traced).
    pub trace: Vec<Tried>,
}

/// Attempts that may run at once: the first and three hedges.
const MAX_RUNNING: usize = 4;

/// The running attempts, inline.
#[derive(Debug, Clone, Copy, Default)]
struct Running {
    slots: [(EndpointIdx, u64); MAX_RUNNING],
    len: usize,
}

impl Running {
    fn all(&self) -> &[(EndpointIdx, u64)] {
        &self.slots[..self.len]
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn is_full(&self) -> bool {
        self.len == MAX_RUNNING
    }

    fn push(&mut self, run: (EndpointIdx, u64)) {
        debug_assert!(!self.is_full());
        if self.len < MAX_RUNNING {
            self.slots[self.len] = run;
            self.len += 1;
        }
    }

    /// Takes `idx` off, returning when it started.
    fn remove(&mut self, idx: EndpointIdx) -> Option<u64> {
        let at = self.all().iter().position(|&(i, _)| i == idx)?;
        let started = self.slots[at].1;
        self.len -= 1;
        self.slots[at] = self.slots[self.len];
        Some(started)
    }
}

/// How an attempt ended, as far as the machine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Still running (or, for the answering attempt, answered: its driver knows when).
    Running,
    Answered,
    Failed(FailureClass, Option<u16>),
    /// Refused for a parameter its model lacks.
    Unsupported(u16),
    /// The request's own fault, relayed.
    Rejected,
    /// Lost a hedge race.
    Cancelled,
}

/// One attempt, as the request log records it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tried {
    pub endpoint: EndpointIdx,
    pub started_ns: u64,
    /// When it ended (failed, refused, cancelled); 0 while running or when it answered.
    pub ended_ns: u64,
    pub end: End,
    /// Started beside a running attempt.
    pub hedge: bool,
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
    /// Of which hedges: started beside a running attempt.
    hedges: u32,
    /// An answer or a rejection ended the attempts.
    over: bool,
    /// The running attempts and when each started: one, or more while hedged (inline: no
    /// allocation per request).
    running: Running,
    failures: Vec<(EndpointIdx, Failure)>,
    retry_after: Option<Duration>,
    /// Every attempt, when asked for ([`Attempts::traced`]).
    trace: Option<Vec<Tried>>,
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
            hedges: 0,
            over: false,
            running: Running::default(),
            failures: Vec::new(),
            retry_after: None,
            trace: None,
        }
    }

    /// Keeps every attempt's start, end and outcome ([`Attempts::trace`]), for the request
    /// log; off by default (it costs an allocation per request).
    pub fn traced(mut self) -> Attempts {
        self.trace = Some(Vec::new());
        self
    }

    /// The next candidate to try at `now_ns`, counted in flight in `table`; `None` when the
    /// attempts are over, or one is still running (see [`Attempts::hedge`] to start one
    /// beside it).
    pub fn next(&mut self, table: &StatsTable, now_ns: u64) -> Option<EndpointIdx> {
        if !self.running.is_empty() {
            return None;
        }
        self.start(table, now_ns)
    }

    /// A hedge: the next candidate, started at `now_ns` beside the running attempt, if
    /// fewer than `max_hedges` were started, a candidate is left and the deadline has not
    /// passed.
    pub fn hedge(
        &mut self,
        table: &StatsTable,
        max_hedges: u32,
        now_ns: u64,
    ) -> Option<EndpointIdx> {
        if self.running.is_empty() || self.hedges >= max_hedges || self.running.is_full() {
            return None;
        }
        let idx = self.start(table, now_ns)?;
        self.hedges += 1;
        if let Some(t) = self.trace.as_mut().and_then(|t| t.last_mut()) {
            t.hedge = true;
        }
        Some(idx)
    }

    /// The candidate a hedge would start now, if one may be started.
    pub fn hedge_candidate(&self, max_hedges: u32) -> Option<EndpointIdx> {
        (!self.running.is_empty()
            && !self.running.is_full()
            && self.hedges < max_hedges
            && self.has_next())
        .then(|| self.ranked[self.started])
    }

    fn start(&mut self, table: &StatsTable, now_ns: u64) -> Option<EndpointIdx> {
        if !self.has_next() || now_ns >= self.deadline_ns {
            return None;
        }
        let idx = self.ranked[self.started];
        self.started += 1;
        self.running.push((idx, now_ns));
        if let Some(trace) = &mut self.trace {
            trace.push(Tried {
                endpoint: idx,
                started_ns: now_ns,
                ended_ns: 0,
                end: End::Running,
                hedge: false,
            });
        }
        table.begin(idx);
        Some(idx)
    }

    /// Takes `idx` off the running attempts as ended at `now_ns` by `end`, returning when it
    /// started.
    fn stop(&mut self, idx: EndpointIdx, end: End, now_ns: u64) -> Option<u64> {
        let started = self.running.remove(idx);
        debug_assert!(started.is_some(), "no attempt is running at {idx}");
        let started = started?;
        let traced = self.trace.as_mut().into_iter().flatten();
        if let Some(t) = traced.rev().find(|t| t.endpoint == idx) {
            t.end = end;
            if end != End::Answered {
                t.ended_ns = now_ns;
            }
        }
        Some(started)
    }

    /// The running attempt at `idx` failed at `now_ns`: rest the endpoint if the provider
    /// asked, record the failure with the time it took (what the next attempt starts late
    /// by), remember it for the client.
    pub fn failed(&mut self, table: &StatsTable, idx: EndpointIdx, failure: Failure, now_ns: u64) {
        let Some(started_ns) = self.stop(idx, End::Failed(failure.class, failure.status), now_ns)
        else {
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

    /// The running attempt at `idx` was refused for a parameter its model does not support:
    /// counted as `unsupported` (not against the endpoint's health), remembered for the
    /// client, and the next candidate may take the request.
    pub(crate) fn unsupported(
        &mut self,
        table: &StatsTable,
        idx: EndpointIdx,
        status: u16,
        now_ns: u64,
    ) {
        if self.stop(idx, End::Unsupported(status), now_ns).is_none() {
            return;
        }
        table.unsupported(idx, now_ns);
        let failure = Failure::status(FailureClass::Unsupported, status, None);
        self.failures.push((idx, failure));
    }

    /// The running attempt at `idx` ended without an outcome to learn from: the provider
    /// refused the request itself (`rejected`, see [`failover_class`]). The attempts are
    /// over; a hedge still running is cancelled (returned, for its driver to stop).
    pub(crate) fn rejected(
        &mut self,
        table: &StatsTable,
        idx: EndpointIdx,
        now_ns: u64,
    ) -> Vec<EndpointIdx> {
        if self.stop(idx, End::Rejected, now_ns).is_some() {
            table.rejected(idx);
        }
        self.over = true;
        self.cancel_rest(table, now_ns)
    }

    /// The running attempt at `idx` answered first (its driver records the success, or, for
    /// a stream that breaks later, the mid-stream failure). The attempts are over; the
    /// others still running lost the race and are cancelled, penalising no one: they are
    /// returned, for their driver to stop.
    pub fn answered(
        &mut self,
        table: &StatsTable,
        idx: EndpointIdx,
        now_ns: u64,
    ) -> Vec<EndpointIdx> {
        self.stop(idx, End::Answered, now_ns);
        self.over = true;
        self.cancel_rest(table, now_ns)
    }

    fn cancel_rest(&mut self, table: &StatsTable, now_ns: u64) -> Vec<EndpointIdx> {
        let losers: Vec<EndpointIdx> = self.running.all().iter().map(|&(idx, _)| idx).collect();
        for &idx in &losers {
            self.stop(idx, End::Cancelled, now_ns);
            table.cancelled(idx);
        }
        losers
    }

    /// Every attempt started, in order (empty unless [`Attempts::traced`]).
    pub fn trace(&self) -> &[Tried] {
        self.trace.as_deref().unwrap_or_default()
    }

    /// Hedges started so far.
    pub fn hedges(&self) -> u32 {
        self.hedges
    }

    /// Attempts running now.
    pub fn running(&self) -> usize {
        self.running.len
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
            trace: self.trace.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests;
