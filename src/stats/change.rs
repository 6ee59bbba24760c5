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
//! the new regime, so the posterior describes it at once; the change is recorded (when,
//! which stream, old → new) for `/v1/endpoints`.
//!
//! Where the new regime starts: the window mixes it with the old one (two seconds into a
//! brownout, a 5 s window is still three quarters old outcomes, so its failure rate reads 0.11
//! where the truth is 0.5, and a posterior re-based on it kept the endpoint feasible for ten
//! seconds more). For outcomes, two Page CUSUMs (one for a rise of the failure rate by
//! [`MIN_RATE_SHIFT`] over the long fit's, one for a fall by as much) count the outcomes since
//! each last stood at zero — Page's estimate of the change point — and an alarm re-bases the
//! long fit on the counts of its direction when they hold at least [`MIN_RECENT`] outcomes (on
//! the window otherwise). The CUSUMs only locate a change; the GLR decides that there is one.
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
    /// Where a rise of the failure rate would have started.
    pub(crate) rise: Cusum,
    /// Where a fall would have.
    pub(crate) fall: Cusum,
}

/// Successes and failures.
pub type Counts = (f64, f64);

/// A one-sided Page CUSUM on the failure stream, and the outcomes since it last stood at zero:
/// the maximum-likelihood start of a shift in its direction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cusum {
    stat: f64,
    /// Successes and failures since the statistic last stood at zero.
    since: Counts,
}

impl Cusum {
    /// Adds one outcome, `p0` being the rate the long fit believes and `p1` the alternative.
    fn add(&mut self, failed: bool, p0: f64, p1: f64) {
        let llr = if failed {
            (p1 / p0).ln()
        } else {
            ((1.0 - p1) / (1.0 - p0)).ln()
        };
        self.stat += llr;
        if self.stat <= 0.0 {
            *self = Cusum::default();
        } else if failed {
            self.since.1 += 1.0;
        } else {
            self.since.0 += 1.0;
        }
    }

    /// The outcomes since the shift would have started, when there are enough to stand for
    /// the new regime.
    pub(crate) fn since(&self) -> Option<Counts> {
        (self.since.0 + self.since.1 >= MIN_RECENT).then_some(self.since)
    }

    /// Starts afresh (after the fit was re-based).
    pub(crate) fn reset(&mut self) {
        *self = Cusum::default();
    }
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

    /// Feeds the change-point CUSUMs one outcome; `long_rate` is the long fit's failure rate.
    pub(crate) fn locate(&mut self, ok: bool, long_rate: f64) {
        // Kept off 0 and 1, where a likelihood ratio is infinite.
        let p0 = long_rate.clamp(1e-3, 1.0 - 1e-3);
        self.rise.add(!ok, p0, (p0 + MIN_RATE_SHIFT).min(0.999));
        if p0 > MIN_RATE_SHIFT {
            self.fall.add(!ok, p0, (p0 - MIN_RATE_SHIFT).max(1e-3));
        }
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

/// A failure-rate change between the window `(s, f)` and the long fit `(s, f)`, `located`
/// being the outcomes since the change would have started in each direction (rise, fall;
/// see [`Cusum`]): `Some((old rate, new rate, the new regime's (s, f)))` when the window's
/// GLR is significant and the new regime's rate — the located outcomes', else the window's —
/// moved far enough. The window alone would understate the new rate while it still holds
/// old outcomes, and a 0.5% → 12% step would wait some 15 s to pass the shift bar.
pub fn outcome_shift(
    recent: Counts,
    long: Counts,
    located: (Option<Counts>, Option<Counts>),
) -> Option<(f64, f64, Counts)> {
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
    let rising = p_recent > p_long;
    let regime = if rising { located.0 } else { located.1 }.unwrap_or(recent);
    let p_new = regime.1 / (regime.0 + regime.1);
    // The located regime must lie on the window's side of the old rate, far enough.
    let shift = if rising {
        p_new - p_long
    } else {
        p_long - p_new
    };
    if shift < MIN_RATE_SHIFT {
        return None;
    }
    (n * kl(p_recent, p_long) > THRESHOLD).then_some((p_long, p_new, regime))
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
