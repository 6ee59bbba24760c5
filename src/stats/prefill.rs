//! How an endpoint's time to first token grows with the prompt (prefill): decayed sufficient
//! statistics of a weighted linear regression of `y = ln TTFT` on `u = ln(1 + prompt tokens /
//! 1000)`.
//!
//! Why that regressor: prefill adds time in proportion to the prompt, `TTFT ≈ base + tokens /
//! rate`, and `ln(base + k·tokens)` is close to linear in `ln(1 + tokens / 1000)` across the
//! prompts agents send (200 to 100,000 tokens: a slope near 1 for a slow-prefill endpoint,
//! near 0 for one whose prefill is negligible), while keeping the log-normal noise the rest of
//! the selector assumes. A plain regression on tokens would make TTFT exponential in the
//! prompt. The posterior over the intercept, slope and noise (Normal-Inverse-Gamma) is in
//! [`crate::select::posterior::draw_prefill`]; with prompts of one size only, the slope stays
//! at its prior and a prediction far from the observed sizes is uncertain, so it is explored.

use serde::{Deserialize, Serialize};

use super::decay::HalfLife;

/// Prompt tokens per unit inside the regressor's logarithm.
const TOKENS_UNIT: f64 = 1000.0;

/// The regressor for a prompt of `tokens`. `ln`, not `ln_1p`: about twice as fast, and a
/// prompt is at least a token, where `1 + 1/1000` loses nothing that matters to a fit.
#[inline]
pub fn regressor(tokens: f64) -> f64 {
    (1.0 + tokens.max(0.0) * (1.0 / TOKENS_UNIT)).ln()
}

/// The least decayed weight a fit is read with.
const MIN_WEIGHT: f64 = 1e-6;

/// Decayed weight and sums `Σu, Σu², Σy, Σuy, Σy²`, dated at the last observation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PrefillStats {
    sums: [f64; 6],
    at_ns: u64,
}

/// A [`PrefillStats`] read at one instant: the decayed weight and sums `[w, Σu, Σu², Σy, Σuy,
/// Σy²]`. Kept as sums, not means, so reading one costs no division: the selector reads one
/// per candidate per decision and derives what its draw needs with two.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrefillSummary {
    pub sums: [f64; 6],
}

impl PrefillSummary {
    /// Decayed number of observations.
    pub fn weight(&self) -> f64 {
        self.sums[0]
    }

    /// The weighted means of `u` and `y`, the variance of `u` and the covariance.
    fn moments(&self) -> (f64, f64, f64, f64) {
        let [w, su, suu, sy, suy, _] = self.sums;
        let (mu, my) = (su / w, sy / w);
        (mu, my, (suu / w - mu * mu).max(0.0), suy / w - mu * my)
    }

    /// The least-squares slope (`d ln TTFT / d u`), `None` while the prompts observed are all
    /// of one size.
    pub fn slope(&self) -> Option<f64> {
        let (_, _, var_u, cov) = self.moments();
        (var_u > 1e-6).then(|| cov / var_u)
    }

    /// The least-squares median TTFT for a prompt of `tokens`, ms (the mean log where the
    /// slope is unknown).
    pub fn median_at(&self, tokens: f64) -> f64 {
        let (mu, my, _, _) = self.moments();
        let b = self.slope().unwrap_or(0.0);
        (my + b * (regressor(tokens) - mu)).exp()
    }
}

impl PrefillStats {
    /// Adds a first-token time `ttft_ms` observed for a prompt of `tokens`.
    pub fn add(&mut self, tokens: f64, ttft_ms: f64, now_ns: u64, hl: HalfLife) {
        self.add_ln(tokens, ttft_ms.ln(), now_ns, hl);
    }

    /// [`Self::add`] with the first-token time's logarithm already taken; a non-finite one
    /// is ignored.
    pub fn add_ln(&mut self, tokens: f64, y: f64, now_ns: u64, hl: HalfLife) {
        if !y.is_finite() || !tokens.is_finite() {
            return;
        }
        let f = hl.factor(now_ns.saturating_sub(self.at_ns));
        let u = regressor(tokens);
        let obs = [1.0, u, u * u, y, u * y, y * y];
        for (s, x) in self.sums.iter_mut().zip(obs) {
            *s = *s * f + x;
        }
        self.at_ns = self.at_ns.max(now_ns);
    }

    /// Time of the last observation.
    pub fn at_ns(&self) -> u64 {
        self.at_ns
    }

    /// The fit with a decay factor the caller computed; `None` before any observation, and
    /// once decay has left less than a millionth of one (the posterior's arithmetic would
    /// then underflow; the size-free fit, as faded, serves instead).
    #[inline]
    pub fn summary_with(&self, f: f64) -> Option<PrefillSummary> {
        (self.sums[0] * f > MIN_WEIGHT).then(|| PrefillSummary {
            sums: self.sums.map(|s| s * f),
        })
    }

    /// The fit as of `now_ns`.
    pub fn summary(&self, now_ns: u64, hl: HalfLife) -> Option<PrefillSummary> {
        self.summary_with(hl.factor(now_ns.saturating_sub(self.at_ns)))
    }

    /// The sums as of their date (for snapshots).
    pub(crate) fn parts(&self) -> [f64; 6] {
        self.sums
    }

    pub(crate) fn from_parts(sums: [f64; 6], at_ns: u64) -> PrefillStats {
        PrefillStats { sums, at_ns }
    }

    /// The sums scaled by `f` (an age's decay), re-dated `at_ns`.
    pub(crate) fn scaled(&self, f: f64, at_ns: u64) -> PrefillStats {
        PrefillStats {
            sums: self.sums.map(|s| s * f),
            at_ns,
        }
    }

    /// The same relation (slope and spread) at weight `weight` and mean log TTFT `mean_y`,
    /// dated `now_ns`: what a detected TTFT change re-bases the fit on.
    pub(crate) fn moved_to(&self, weight: f64, mean_y: f64, now_ns: u64) -> PrefillStats {
        let w = self.sums[0];
        if w <= 0.0 {
            return *self;
        }
        let [w, su, suu, sy, suy, syy] = self.sums.map(|s| s * weight / w);
        let delta = mean_y - sy / w;
        PrefillStats {
            sums: [
                w,
                su,
                suu,
                sy + w * delta,
                suy + su * delta,
                syy + 2.0 * delta * sy + w * delta * delta,
            ],
            at_ns: now_ns,
        }
    }

    /// Both fits' observations together, dated at the later date.
    pub(crate) fn plus(&self, other: &PrefillStats, hl: HalfLife) -> PrefillStats {
        let at = self.at_ns.max(other.at_ns);
        let (a, b) = (hl.factor(at - self.at_ns), hl.factor(at - other.at_ns));
        let mut sums = [0.0; 6];
        for (i, s) in sums.iter_mut().enumerate() {
            *s = self.sums[i] * a + other.sums[i] * b;
        }
        PrefillStats { sums, at_ns: at }
    }

    pub(crate) fn rebase(&mut self, dt_ns: u64, now_ns: u64, hl: HalfLife) {
        *self = self.scaled(hl.factor(dt_ns), now_ns);
    }

    pub(crate) fn settled(&self, now_ns: u64, hl: HalfLife) -> PrefillStats {
        let dt = now_ns.saturating_sub(self.at_ns);
        self.scaled(hl.factor(dt), now_ns.max(self.at_ns))
    }

    /// The sums and date as plain words (for [`super::published`]).
    #[inline(always)]
    pub(super) fn to_words(self) -> [u64; 7] {
        let s = self.sums.map(f64::to_bits);
        [s[0], s[1], s[2], s[3], s[4], s[5], self.at_ns]
    }

    #[inline(always)]
    pub(super) fn from_words(w: [u64; 7]) -> PrefillStats {
        PrefillStats {
            sums: [w[0], w[1], w[2], w[3], w[4], w[5]].map(f64::from_bits),
            at_ns: w[6],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_known_relation_is_recovered_and_decays_its_weight() {
        let hl = HalfLife::new(Duration::from_secs(300));
        let mut p = PrefillStats::default();
        // TTFT = 150 ms · (1 + tokens/1000)^0.8, exactly.
        for (k, tokens) in [200.0, 1000.0, 4000.0, 16000.0, 64000.0].iter().enumerate() {
            let ttft = 150.0 * (regressor(*tokens) * 0.8).exp();
            p.add(*tokens, ttft, k as u64, hl);
        }
        let s = p.summary(5, hl).expect("fit");
        assert!((s.slope().expect("sizes vary") - 0.8).abs() < 1e-9, "{s:?}");
        assert!((s.median_at(0.0) - 150.0).abs() < 1e-6);
        let later = p.summary(300_000_000_005, hl).expect("fit");
        assert!((later.weight() / s.weight() - 0.5).abs() < 1e-6);
        assert_eq!(later.slope(), s.slope());
        // Moved to a new level: same slope, the new median at the mean prompt, new weight.
        let moved = p.moved_to(10.0, 7.0, 9).summary(9, hl).expect("fit");
        assert!((moved.slope().expect("sizes vary") - 0.8).abs() < 1e-9);
        assert!((moved.weight() - 10.0).abs() < 1e-9);
        assert!((moved.sums[3] / moved.sums[0] - 7.0).abs() < 1e-9);
    }

    #[test]
    fn one_prompt_size_gives_no_slope() {
        let hl = HalfLife::new(Duration::from_secs(300));
        let mut p = PrefillStats::default();
        for k in 0..20 {
            p.add(800.0, 200.0 + k as f64, k, hl);
        }
        assert_eq!(p.summary(20, hl).expect("fit").slope(), None);
    }
}
