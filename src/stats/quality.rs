//! What clients said of an endpoint's answers (`POST /v1/feedback`), as the evidence of a
//! Beta posterior of its quality.
//!
//! A score `s` in [0, 1] adds `s` to the decayed "good" sum and `1 − s` to the "bad" one (a
//! thumbs up is 1, a thumbs down 0), both dated together so one decay factor reads them. The
//! prior is the sheet's declared `quality` `q0` held with a strength of `k` pseudo-scores —
//! `Beta(q0·k, (1 − q0)·k)` — so the posterior is `Beta(q0·k + good, (1 − q0)·k + bad)`: a
//! sheet's guess is believed until about `k` scores say otherwise, and as feedback fades
//! (the quality half-life) the sheet's word returns. An endpoint whose sheet gives no quality
//! starts from 0.5. Until an endpoint's first feedback its quality is the sheet's value as
//! stated, not a draw, so sheets alone route exactly as they always did; from then on the
//! selector samples the posterior (see [`crate::select::posterior::draw_quality`]).

use serde::{Deserialize, Serialize};

use super::decay::{Decayed, HalfLife};

/// The prior's mean where the sheet declares no quality: nothing known either way.
pub const UNDECLARED_PRIOR: f64 = 0.5;

/// Feedback weight below which an endpoint counts as having none (faded away).
const MIN_WEIGHT: f64 = 1e-6;

/// Decayed sums of scores and of their complements, dated together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct QualityStats {
    good: Decayed,
    bad: Decayed,
}

/// A quality posterior `Beta(alpha, beta)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityPosterior {
    pub alpha: f64,
    pub beta: f64,
    /// The decayed number of scores it holds.
    pub weight: f64,
}

impl QualityPosterior {
    pub fn mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }
}

impl QualityStats {
    /// Adds one score in [0, 1] (clamped; a non-finite one is ignored).
    pub fn add(&mut self, score: f64, now_ns: u64, hl: HalfLife) {
        if !score.is_finite() {
            return;
        }
        let s = score.clamp(0.0, 1.0);
        self.good.add(s, now_ns, hl);
        // Both added at one time, so both stay dated together.
        self.bad.add(1.0 - s, now_ns, hl);
    }

    /// The decayed good and bad sums at `now_ns`; zero without any feedback, at no cost.
    #[inline]
    pub fn sums(&self, now_ns: u64, hl: HalfLife) -> (f64, f64) {
        if self.good.raw().0 == 0.0 && self.bad.raw().0 == 0.0 {
            return (0.0, 0.0);
        }
        Decayed::get_pair(&self.good, &self.bad, now_ns, hl)
    }

    /// Whether any feedback was ever recorded (and not yet faded to nothing).
    #[inline]
    pub fn any(&self) -> bool {
        self.good.raw().0 + self.bad.raw().0 > 0.0
    }

    /// The posterior at `now_ns` around the declared quality `declared` held with `strength`
    /// pseudo-scores; `None` while there is no feedback (the declared value stands as is).
    pub fn posterior(
        &self,
        declared: Option<f64>,
        strength: f64,
        now_ns: u64,
        hl: HalfLife,
    ) -> Option<QualityPosterior> {
        let (good, bad) = self.sums(now_ns, hl);
        let weight = good + bad;
        if weight < MIN_WEIGHT {
            return None;
        }
        // A declared 0 or 1 would make one prior shape zero, which no Beta has.
        let q0 = declared.unwrap_or(UNDECLARED_PRIOR).clamp(1e-3, 1.0 - 1e-3);
        let k = strength.max(1e-3);
        Some(QualityPosterior {
            alpha: q0 * k + good,
            beta: (1.0 - q0) * k + bad,
            weight,
        })
    }

    pub(crate) fn settled(&self, now_ns: u64, hl: HalfLife) -> QualityStats {
        QualityStats {
            good: self.good.settled(now_ns, hl),
            bad: self.bad.settled(now_ns, hl),
        }
    }

    pub(crate) fn rebase(&mut self, dt_ns: u64, now_ns: u64, hl: HalfLife) {
        self.good.rebase(dt_ns, now_ns, hl);
        self.bad.rebase(dt_ns, now_ns, hl);
    }

    pub(crate) fn plus(&self, other: &QualityStats, hl: HalfLife) -> QualityStats {
        QualityStats {
            good: self.good.plus(&other.good, hl),
            bad: self.bad.plus(&other.bad, hl),
        }
    }

    /// The sums as of their date (for snapshots): `(good, bad)`.
    pub(crate) fn parts(&self) -> (f64, f64) {
        (self.good.raw().0, self.bad.raw().0)
    }

    pub(crate) fn from_parts((good, bad): (f64, f64), at_ns: u64) -> QualityStats {
        QualityStats {
            good: Decayed::at(good, at_ns),
            bad: Decayed::at(bad, at_ns),
        }
    }

    #[inline(always)]
    pub(super) fn to_words(self) -> [u64; 4] {
        let [g0, g1] = self.good.to_words();
        let [b0, b1] = self.bad.to_words();
        [g0, g1, b0, b1]
    }

    #[inline(always)]
    pub(super) fn from_words(w: [u64; 4]) -> QualityStats {
        QualityStats {
            good: Decayed::from_words([w[0], w[1]]),
            bad: Decayed::from_words([w[2], w[3]]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: u64 = 1_000_000_000;

    #[test]
    fn scores_move_the_posterior_from_the_declared_quality() {
        let hl = HalfLife::new(Duration::from_secs(3600));
        let mut q = QualityStats::default();
        assert_eq!(
            q.posterior(Some(0.9), 20.0, 0, hl),
            None,
            "no feedback: the sheet"
        );
        for k in 0..30 {
            q.add(0.2, k * S, hl);
        }
        let p = q.posterior(Some(0.9), 20.0, 30 * S, hl).expect("feedback");
        // (0.9·20 + 30·0.2) / (20 + 30) = 0.48, give or take 30 s of decay.
        assert!((p.mean() - 0.48).abs() < 0.01, "{p:?}");
        assert!((p.weight - 30.0).abs() < 0.1);
        // An undeclared quality starts from 0.5.
        let u = q.posterior(None, 20.0, 30 * S, hl).expect("feedback");
        assert!((u.mean() - (10.0 + 6.0) / 50.0).abs() < 0.01, "{u:?}");
    }

    #[test]
    fn feedback_fades_back_to_the_sheet() {
        let hl = HalfLife::new(Duration::from_secs(60));
        let mut q = QualityStats::default();
        for _ in 0..40 {
            q.add(0.0, 0, hl);
        }
        let now = q
            .posterior(Some(0.8), 10.0, 0, hl)
            .expect("feedback")
            .mean();
        let later = q
            .posterior(Some(0.8), 10.0, 600 * S, hl)
            .expect("faded, not gone");
        assert!(now < 0.2, "{now}");
        assert!((later.mean() - 0.8).abs() < 0.02, "{later:?}");
        // Scores outside [0, 1] are clamped, non-finite ones ignored.
        q.add(f64::NAN, 700 * S, hl);
        q.add(7.0, 700 * S, hl);
        let (good, _) = q.sums(700 * S, hl);
        assert!((good - 1.0).abs() < 1e-9);
    }

    #[test]
    fn two_replicas_feedback_adds_up() {
        let hl = HalfLife::new(Duration::from_secs(60));
        let (mut a, mut b, mut one) = (
            QualityStats::default(),
            QualityStats::default(),
            QualityStats::default(),
        );
        for k in 0..10u64 {
            let (t, s) = (k * S, (k % 3) as f64 / 2.0);
            if k % 2 == 0 { &mut a } else { &mut b }.add(s, t, hl);
            one.add(s, t, hl);
        }
        let both = a.plus(&b, hl);
        let (x, y) = (both.sums(20 * S, hl), one.sums(20 * S, hl));
        assert!(
            (x.0 - y.0).abs() < 1e-9 && (x.1 - y.1).abs() < 1e-9,
            "{x:?} {y:?}"
        );
    }
}
