//! Exponentially decayed statistics: recent observations weigh more, old ones fade.
//!
//! An observation's weight halves every half-life. Values are stored as of the time of the
//! last update and read as of `now` without mutating (as linkerd's EWMA does), so reading is
//! cheap and side-effect free, and the same code runs on a real or a virtual clock. Times
//! are nanoseconds since the router's epoch. A `now` earlier than the last update (two
//! threads racing) reads as no time passed.

use serde::{Deserialize, Serialize};

/// A half-life, kept as its reciprocal in nanoseconds for cheap decay factors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HalfLife {
    inv_ns: f64,
}

impl HalfLife {
    pub fn new(half_life: std::time::Duration) -> HalfLife {
        HalfLife {
            inv_ns: 1.0 / (half_life.as_nanos().max(1) as f64),
        }
    }

    /// The weight left after `dt_ns`: 1 at zero, 0.5 after one half-life.
    #[inline]
    pub(crate) fn factor(&self, dt_ns: u64) -> f64 {
        let halvings = dt_ns as f64 * self.inv_ns;
        if dt_ns == 0 {
            1.0
        } else if halvings > 1000.0 {
            // 2^-1000 is nothing as a weight. Returning zero keeps every factor a normal
            // float: exp2 with a subnormal result, and arithmetic on subnormals, take slow
            // paths costing tens of nanoseconds (an endpoint idle for hours would pay them).
            0.0
        } else {
            (-halvings).exp2()
        }
    }
}

/// Decayed values below this are stored as zero.
const NEGLIGIBLE: f64 = 1e-200;

/// A decayed count or sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Decayed {
    value: f64,
    at_ns: u64,
}

impl Decayed {
    /// `value`, dated `now_ns`.
    pub(crate) fn at(value: f64, now_ns: u64) -> Decayed {
        Decayed {
            value,
            at_ns: now_ns,
        }
    }

    /// The value as of its last update, undecayed. Ratios of two values updated together
    /// (same time) equal the ratio of their decayed values, without computing a decay.
    #[inline]
    pub(crate) fn raw(&self) -> (f64, u64) {
        (self.value, self.at_ns)
    }

    #[inline]
    pub fn get(&self, now_ns: u64, hl: HalfLife) -> f64 {
        if self.value == 0.0 {
            return 0.0;
        }
        self.value * hl.factor(now_ns.saturating_sub(self.at_ns))
    }

    /// Two values with the same half-life read at `now_ns`, with one decay factor when they
    /// were last updated at the same time (as successes and failures are, see
    /// [`Decayed::redate`]).
    #[inline]
    pub(crate) fn get_pair(a: &Decayed, b: &Decayed, now_ns: u64, hl: HalfLife) -> (f64, f64) {
        if a.at_ns == b.at_ns {
            let f = hl.factor(now_ns.saturating_sub(a.at_ns));
            (a.value * f, b.value * f)
        } else {
            (a.get(now_ns, hl), b.get(now_ns, hl))
        }
    }

    /// Decays the stored value to `now_ns` and dates it then (a value unchanged by decay
    /// needs no factor: zero stays zero).
    #[inline]
    pub(crate) fn redate(&mut self, now_ns: u64, hl: HalfLife) {
        self.add(0.0, now_ns, hl);
    }

    #[inline]
    pub fn add(&mut self, x: f64, now_ns: u64, hl: HalfLife) {
        let value = self.get(now_ns, hl) + x;
        // A weight this small is nothing; stored, it would decay into subnormals on every
        // re-dating (a count that only ever decays, like the successes of an endpoint that
        // keeps failing), and each read would then pay the processor's slow path for them.
        self.value = if value.abs() < NEGLIGIBLE { 0.0 } else { value };
        self.at_ns = self.at_ns.max(now_ns);
    }

    /// The stored value and date as plain words (for [`super::published`]).
    #[inline(always)]
    pub(super) fn to_words(self) -> [u64; 2] {
        [self.value.to_bits(), self.at_ns]
    }

    #[inline(always)]
    pub(super) fn from_words(w: [u64; 2]) -> Decayed {
        Decayed {
            value: f64::from_bits(w[0]),
            at_ns: w[1],
        }
    }

    /// The sum of two decayed values, dated at the later of their dates.
    #[inline]
    pub(crate) fn plus(&self, other: &Decayed, hl: HalfLife) -> Decayed {
        let at = self.at_ns.max(other.at_ns);
        Decayed {
            value: self.get(at, hl) + other.get(at, hl),
            at_ns: at,
        }
    }

    /// Ages the stored value by `dt_ns` and re-dates it to `now_ns` (used when a saved state
    /// is loaded into a new process with a new epoch).
    pub(crate) fn rebase(&mut self, dt_ns: u64, now_ns: u64, hl: HalfLife) {
        self.value *= hl.factor(dt_ns);
        self.at_ns = now_ns;
    }

    /// The value as of `now_ns`, re-dated to `now_ns`.
    pub(crate) fn settled(&self, now_ns: u64, hl: HalfLife) -> Decayed {
        Decayed {
            value: self.get(now_ns, hl),
            at_ns: now_ns.max(self.at_ns),
        }
    }
}

/// Decayed sufficient statistics of `ln x`: weight, sum and sum of squares. They give the
/// mean and variance of a log-normal fit, which is what the selector's latency and
/// output-length posteriors start from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LogStats {
    weight: f64,
    sum: f64,
    sum_sq: f64,
    at_ns: u64,
}

/// A [`LogStats`] read at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogSummary {
    /// Decayed number of observations.
    pub weight: f64,
    /// Mean of `ln x`.
    pub mean: f64,
    /// Variance of `ln x` (population; 0 with a single observation).
    pub var: f64,
}

impl LogSummary {
    /// The median of the fitted log-normal, `exp(mean)`.
    pub fn median(&self) -> f64 {
        self.mean.exp()
    }

    /// The mean of the fitted log-normal, `exp(mean + var / 2)`: above the median by the
    /// spread, so a mix of fast and slow values counts the slow ones.
    pub fn mean_value(&self) -> f64 {
        (self.mean + 0.5 * self.var).exp()
    }
}

impl LogStats {
    /// Adds an observation; values at or below zero are ignored (no log).
    pub fn add(&mut self, x: f64, now_ns: u64, hl: HalfLife) {
        self.add_ln(x.ln(), now_ns, hl);
    }

    /// [`Self::add`] for an observation whose logarithm the caller already took (one `ln`
    /// for the several fits an answer's latency enters); a non-finite one (the logarithm of
    /// zero, a negative or an infinite value) is ignored.
    #[inline]
    pub fn add_ln(&mut self, l: f64, now_ns: u64, hl: HalfLife) {
        if !l.is_finite() {
            return;
        }
        let f = hl.factor(now_ns.saturating_sub(self.at_ns));
        self.weight = self.weight * f + 1.0;
        self.sum = self.sum * f + l;
        self.sum_sq = self.sum_sq * f + l * l;
        self.at_ns = self.at_ns.max(now_ns);
    }

    /// The stored sums and date as plain words (for [`super::published`]).
    #[inline(always)]
    pub(super) fn to_words(self) -> [u64; 4] {
        [
            self.weight.to_bits(),
            self.sum.to_bits(),
            self.sum_sq.to_bits(),
            self.at_ns,
        ]
    }

    #[inline(always)]
    pub(super) fn from_words(w: [u64; 4]) -> LogStats {
        LogStats {
            weight: f64::from_bits(w[0]),
            sum: f64::from_bits(w[1]),
            sum_sq: f64::from_bits(w[2]),
            at_ns: w[3],
        }
    }

    /// Time of the last observation.
    pub fn at_ns(&self) -> u64 {
        self.at_ns
    }

    /// The mean of the fitted log-normal (see [`LogSummary::mean_value`]), which decay does
    /// not change; `None` before any observation.
    pub fn mean_value(&self) -> Option<f64> {
        self.mean_var().map(|(mean, var)| (mean + 0.5 * var).exp())
    }

    /// Mean and variance of `ln x`, which decay does not change; `None` before any
    /// observation.
    pub(crate) fn mean_var(&self) -> Option<(f64, f64)> {
        if self.weight <= 0.0 {
            return None;
        }
        let mean = self.sum / self.weight;
        Some((mean, (self.sum_sq / self.weight - mean * mean).max(0.0)))
    }

    /// The fit as of `now_ns`; `None` before any observation.
    pub fn summary(&self, now_ns: u64, hl: HalfLife) -> Option<LogSummary> {
        self.summary_with(hl.factor(now_ns.saturating_sub(self.at_ns)))
    }

    /// The fit with a decay factor the caller computed (shared between fits updated at the
    /// same time).
    pub(crate) fn summary_with(&self, f: f64) -> Option<LogSummary> {
        if self.weight <= 0.0 {
            return None;
        }
        let weight = self.weight * f;
        // The mean and variance do not depend on the common decay factor.
        let mean = self.sum / self.weight;
        let var = (self.sum_sq / self.weight - mean * mean).max(0.0);
        Some(LogSummary { weight, mean, var })
    }

    /// The sufficient statistics `(weight, sum, sum of squares)` as of their date.
    pub(crate) fn parts(&self) -> (f64, f64, f64) {
        (self.weight, self.sum, self.sum_sq)
    }

    /// Statistics from their parts, dated `at_ns`.
    pub(crate) fn from_parts((weight, sum, sum_sq): (f64, f64, f64), at_ns: u64) -> LogStats {
        LogStats {
            weight,
            sum,
            sum_sq,
            at_ns,
        }
    }

    /// The sum of two fits' statistics (as if one had seen both streams), dated at the later
    /// of their dates.
    #[inline]
    pub(crate) fn plus(&self, other: &LogStats, hl: HalfLife) -> LogStats {
        let at = self.at_ns.max(other.at_ns);
        let a = hl.factor(at - self.at_ns);
        let b = hl.factor(at - other.at_ns);
        LogStats {
            weight: self.weight * a + other.weight * b,
            sum: self.sum * a + other.sum * b,
            sum_sq: self.sum_sq * a + other.sum_sq * b,
            at_ns: at,
        }
    }

    pub(crate) fn rebase(&mut self, dt_ns: u64, now_ns: u64, hl: HalfLife) {
        let f = hl.factor(dt_ns);
        self.weight *= f;
        self.sum *= f;
        self.sum_sq *= f;
        self.at_ns = now_ns;
    }

    pub(crate) fn settled(&self, now_ns: u64, hl: HalfLife) -> LogStats {
        let mut s = *self;
        let dt = now_ns.saturating_sub(self.at_ns);
        s.rebase(dt, now_ns.max(self.at_ns), hl);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn weight_halves_after_one_half_life() {
        let hl = HalfLife::new(Duration::from_secs(60));
        let mut d = Decayed::default();
        d.add(8.0, 10 * SEC, hl);
        assert_eq!(d.get(10 * SEC, hl), 8.0);
        assert!((d.get(70 * SEC, hl) - 4.0).abs() < 1e-9);
        assert!((d.get(190 * SEC, hl) - 1.0).abs() < 1e-9);
        // An earlier `now` (a racing thread) reads as no time passed.
        assert_eq!(d.get(5 * SEC, hl), 8.0);
    }

    #[test]
    fn a_very_old_value_decays_to_exactly_zero() {
        let hl = HalfLife::new(Duration::from_secs(1));
        assert_eq!(hl.factor(2000 * SEC), 0.0);
        assert_eq!(hl.factor(1001 * SEC), 0.0);
        // Inside the cutoff the exact value is still computed.
        let close = |a: f64, b: f64| ((a - b) / b).abs() < 1e-12;
        assert!(close(hl.factor(999 * SEC), (-999f64).exp2()));
        assert!(close(hl.factor(10 * SEC), (-10f64).exp2()));
    }

    #[test]
    fn log_stats_fit_a_known_sample_and_decay_their_weight() {
        let hl = HalfLife::new(Duration::from_secs(60));
        let mut s = LogStats::default();
        for x in [100.0, 200.0, 400.0] {
            s.add(x, 0, hl);
        }
        let sum = s.summary(0, hl).expect("observed");
        assert!((sum.median() - 200.0).abs() < 1e-6, "{sum:?}");
        let l2 = 2f64.ln();
        assert!((sum.var - 2.0 * l2 * l2 / 3.0).abs() < 1e-9, "{sum:?}");
        let later = s.summary(60 * SEC, hl).expect("observed");
        assert!((later.weight - 1.5).abs() < 1e-9);
        assert!((later.mean - sum.mean).abs() < 1e-12);
    }

    #[test]
    fn recent_observations_outweigh_old_ones() {
        let hl = HalfLife::new(Duration::from_secs(10));
        let mut s = LogStats::default();
        for i in 0..50 {
            s.add(1000.0, i * SEC / 10, hl);
        }
        for i in 0..50 {
            s.add(100.0, 60 * SEC + i * SEC / 10, hl);
        }
        let m = s.summary(65 * SEC, hl).expect("observed").median();
        assert!(m < 110.0, "median {m} should be near the recent 100");
    }

    #[test]
    fn a_count_that_only_decays_reaches_zero_not_subnormals() {
        let hl = HalfLife::new(Duration::from_secs(1));
        let mut d = Decayed::default();
        d.add(1.0, 0, hl);
        for s in 1..=4000 {
            d.redate(s * SEC / 2, hl);
            assert!(d.raw().0 == 0.0 || d.raw().0.is_normal(), "{:?}", d.raw());
        }
        assert_eq!(d.raw().0, 0.0);
    }

    #[test]
    fn rebase_ages_a_loaded_state() {
        let hl = HalfLife::new(Duration::from_secs(30));
        let mut d = Decayed::default();
        d.add(10.0, 500 * SEC, hl);
        d.rebase(30 * SEC, 0, hl);
        assert!((d.get(0, hl) - 5.0).abs() < 1e-9);
    }
}
