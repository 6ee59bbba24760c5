//! Change detection: noticing within seconds that an endpoint's behaviour stepped, instead of
//! waiting for exponential discounting to forget the old regime (a minute for outcomes, five
//! for latency).
//!
//! Each endpoint keeps a short window — the same sufficient statistics decayed with a
//! [`RECENT_HALF_LIFE`] of 5 s — beside its long fit, and after every outcome tests the
//! window against the fit with a generalised likelihood ratio (GLR; Besson, Kaufmann,
//! Maillard & Seznec, JMLR 2022, use one per arm for piecewise-stationary bandits):
//!
//! - outcomes: `n · KL(p_recent ‖ p_long)` for the Bernoulli failure rate, where `n` is the
//!   window's (decayed) count;
//! - latency (TTFT and total, in logs): `n · (μ_recent − μ_long)² / (2 σ²_long)`, a Gaussian
//!   mean shift, with σ floored at 0.1 so near-constant latencies do not make every jitter
//!   significant.
//!
//! An alarm needs the statistic above [`THRESHOLD`] (12), at least [`MIN_RECENT`] observations
//! in the window, and a shift worth acting on: a failure rate that moved by 0.1 or more, a
//! median that moved by half or more. When it fires, the long fit of that stream is re-based on
//! the window, so the posterior describes the new regime at once; the change is recorded (when,
//! which stream, old → new) for `/v1/endpoints`.
//!
//! False alarms: `e^-12 ≈ 6·10⁻⁶` bounds one test's tail under the null; the tests are
//! correlated, so the rate is stated from measurement: on stationary input (1% failures,
//! log-normal latency with σ = 0.4, 25 outcomes/s) the unit test sees none in 20 simulated
//! minutes per seed over 10 seeds (300,000 tests). A false alarm only re-bases the fit on 5 s of the same
//! behaviour: a little more exploration, never an outage.

use std::time::Duration;

use serde::Serialize;

use super::decay::{Decayed, HalfLife, LogStats, LogSummary};

/// The short window's half-life.
pub const RECENT_HALF_LIFE: Duration = Duration::from_secs(5);
/// GLR statistic at which a change is declared.
pub const THRESHOLD: f64 = 12.0;
/// Observations (decayed) the window needs before it is tested.
pub const MIN_RECENT: f64 = 4.0;
/// Smallest failure-rate shift acted on.
const MIN_RATE_SHIFT: f64 = 0.1;
/// Smallest median shift acted on, in logs (ln 1.5).
const MIN_LOG_SHIFT: f64 = 0.405_465;
/// Floor of the long fit's log-latency variance (σ = 0.1).
const MIN_VAR: f64 = 0.01;

/// Which stream changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// The failure rate.
    Failures,
    /// The median time to first token, ms.
    Ttft,
    /// The median whole-answer time, ms.
    Total,
}

/// A detected change: when, in which stream, from what to what.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Change {
    pub at_ns: u64,
    pub stream: Stream,
    pub old: f64,
    pub new: f64,
}

/// The short window of one endpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    pub(crate) successes: Decayed,
    pub(crate) failures: Decayed,
    pub(crate) ttft_ms: LogStats,
    pub(crate) total_ms: LogStats,
}

/// The window's half-life as the decay code takes it.
pub(crate) fn recent_hl() -> HalfLife {
    HalfLife::new(RECENT_HALF_LIFE)
}

impl Window {
    pub(crate) fn outcome(&mut self, ok: bool, now_ns: u64) {
        let hl = recent_hl();
        let (hit, other) = if ok {
            (&mut self.successes, &mut self.failures)
        } else {
            (&mut self.failures, &mut self.successes)
        };
        hit.add(1.0, now_ns, hl);
        other.redate(now_ns, hl);
    }

    /// `(successes, failures)` as of `now_ns`.
    pub(crate) fn counts(&self, now_ns: u64) -> (f64, f64) {
        Decayed::get_pair(&self.successes, &self.failures, now_ns, recent_hl())
    }
}

/// The last few changes of an endpoint, newest first when read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Changes {
    last: [Option<Change>; 4],
    next: usize,
}

impl Changes {
    pub(crate) fn push(&mut self, c: Change) {
        self.last[self.next % self.last.len()] = Some(c);
        self.next += 1;
    }

    /// Newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = Change> + '_ {
        let n = self.last.len();
        (0..n).filter_map(move |k| self.last[(self.next + n - 1 - k) % n])
    }
}

/// Bernoulli KL divergence `KL(p ‖ q)`, both clamped away from 0 and 1.
fn kl(p: f64, q: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    let q = q.clamp(1e-9, 1.0 - 1e-9);
    p * (p / q).ln() + (1.0 - p) * ((1.0 - p) / (1.0 - q)).ln()
}

/// A failure-rate change between the window `(s, f)` and the long fit `(s, f)`:
/// `Some((old rate, new rate))` when it is significant and large enough.
pub fn outcome_shift(recent: (f64, f64), long: (f64, f64)) -> Option<(f64, f64)> {
    let n = recent.0 + recent.1;
    let total = long.0 + long.1;
    // There must be an older regime to compare with: at least as much weight outside the
    // window as in it.
    if n < MIN_RECENT || total < 2.0 * n {
        return None;
    }
    let p_recent = recent.1 / n;
    // The long fit without the window's share: the regime it is tested against.
    let p_long = ((long.1 - recent.1).max(0.0) / (total - n)).clamp(0.0, 1.0);
    if (p_recent - p_long).abs() < MIN_RATE_SHIFT {
        return None;
    }
    (n * kl(p_recent, p_long) > THRESHOLD).then_some((p_long, p_recent))
}

/// A log-latency change between the window and the long fit: `Some((old median, new
/// median))` in the stream's unit when it is significant and large enough.
pub fn latency_shift(recent: LogSummary, long: LogSummary) -> Option<(f64, f64)> {
    if recent.weight < MIN_RECENT || long.weight < 2.0 * recent.weight {
        return None;
    }
    let delta = recent.mean - long.mean;
    if delta.abs() < MIN_LOG_SHIFT {
        return None;
    }
    let stat = recent.weight * delta * delta / (2.0 * long.var.max(MIN_VAR));
    (stat > THRESHOLD).then_some((long.mean.exp(), recent.mean.exp()))
}

#[cfg(test)]
mod tests;
