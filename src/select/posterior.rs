//! Posterior sampling for Thompson sampling: a Normal-Inverse-Gamma posterior over the
//! log-normal parameters of a latency (or decode speed), and a Beta posterior over success.
//!
//! Latency is modelled as log-normal: `ln x ~ N(mu, sigma^2)`. The conjugate prior on
//! `(mu, sigma^2)` is Normal-Inverse-Gamma(mu0, kappa0, alpha0, beta0); the data enter as the
//! decayed sufficient statistics the stats module keeps (weight `n`, mean and variance of
//! `ln x`), so old observations count less and the posterior widens again when an endpoint
//! is not observed — which is what makes discounted Thompson sampling re-explore. A sample
//! of `(mu, sigma)` gives a sample of any quantile: `exp(mu + sigma * z_p)`. Distributions
//! come from `rand_distr`; the normal quantile `z_p` from `statrs`.

use std::sync::OnceLock;

use rand::Rng;
use rand_distr::{Distribution, Exp1, Gamma, StandardNormal};
use statrs::distribution::{ContinuousCDF, Normal as StdNormal};

use crate::stats::{LogSummary, PrefillSummary, QualityPosterior};

/// Prior pseudo-observations of the mean. One: a single real observation already moves the
/// estimate halfway.
const KAPPA0: f64 = 1.0;
/// Prior shape of the variance: two, the smallest with a finite prior mean of sigma^2.
const ALPHA0: f64 = 2.0;
/// Prior spread of `ln x`: 0.5, i.e. the p95 about 2.3 times the median, typical of
/// provider latency.
pub(crate) const PRIOR_SIGMA: f64 = 0.5;

/// `z_p` of the standard normal, for a percentile in (0, 100). Targets nearly always name a
/// whole percentile (p50, p90, p95, p99), and the inverse CDF costs about 40 ns, paid for
/// every target of every decision: whole percentiles come from a table made once.
pub(crate) fn z(percentile: f64) -> f64 {
    static WHOLE: OnceLock<[f64; 99]> = OnceLock::new();
    if percentile.fract() == 0.0 && (1.0..=99.0).contains(&percentile) {
        let table = WHOLE.get_or_init(|| std::array::from_fn(|i| z_exact(i as f64 + 1.0)));
        table[percentile as usize - 1]
    } else {
        z_exact(percentile)
    }
}

fn z_exact(percentile: f64) -> f64 {
    let std = StdNormal::new(0.0, 1.0).expect("the standard normal is valid");
    std.inverse_cdf((percentile / 100.0).clamp(1e-6, 1.0 - 1e-6))
}

/// Standard normal CDF.
pub(crate) fn phi(x: f64) -> f64 {
    let std = StdNormal::new(0.0, 1.0).expect("the standard normal is valid");
    std.cdf(x)
}

/// Below this, Φ comes from its asymptotic series ([`tail`]) rather than from `erfc`.
const TAIL: f64 = -6.0;

/// Φ(x) for `x < TAIL` as `exp(e) · m`, returned as `(e, m)`: `e = −x²/2` and
/// `m = (1 − 1/x² + 3/x⁴ − 15/x⁶ + 105/x⁸) / (−x √(2π))`. The series alternates, so its
/// relative error is below the first term left out, 945/x¹⁰ (1.6e-5 at `TAIL`); it needs no
/// `exp` or `ln`, and works where Φ itself underflows.
fn tail(x: f64) -> (f64, f64) {
    let r = 1.0 / (x * x);
    let series = 1.0 - r * (1.0 - 3.0 * r * (1.0 - 5.0 * r * (1.0 - 7.0 * r)));
    (-0.5 * x * x, series / (-x * std::f64::consts::TAU.sqrt()))
}

/// ln Φ(x), accurate far into the lower tail where Φ itself underflows to zero (there from
/// the asymptotic series, see [`tail`]), so two hopeless candidates still compare by how
/// hopeless they are.
pub(crate) fn ln_phi(x: f64) -> f64 {
    if x >= TAIL {
        phi(x).max(f64::MIN_POSITIVE).ln()
    } else {
        let (e, m) = tail(x);
        e + m.ln()
    }
}

/// The logarithm of a product of probabilities, taken with one `ln` at the end rather than
/// one per factor; a product about to underflow is folded into the logarithm first, and a
/// Φ too far in the tail to compute is added as its logarithm ([`ln_phi`]), so the result
/// is as exact as summing logarithms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LnProduct {
    product: f64,
    ln: f64,
}

impl Default for LnProduct {
    fn default() -> LnProduct {
        LnProduct {
            product: 1.0,
            ln: 0.0,
        }
    }
}

impl LnProduct {
    /// Multiplies by `p` (a probability, at least `f64::MIN_POSITIVE` counted).
    #[inline]
    pub fn times(&mut self, p: f64) {
        self.product *= p.max(f64::MIN_POSITIVE);
        if self.product < 1e-200 {
            self.ln += self.product.ln();
            self.product = 1.0;
        }
    }

    /// Multiplies by Φ(x).
    #[inline]
    pub(crate) fn times_phi(&mut self, x: f64) {
        if x >= TAIL {
            self.times(phi(x));
        } else {
            let (e, m) = tail(x);
            self.ln += e;
            self.times(m);
        }
    }

    pub fn ln(self) -> f64 {
        self.ln + self.product.ln()
    }
}

/// One posterior draw of the log-normal parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogNormalDraw {
    pub mu: f64,
    pub sigma: f64,
}

impl LogNormalDraw {
    /// The `z`-quantile (`z = z(percentile)`).
    pub(crate) fn quantile(&self, z: f64) -> f64 {
        (self.mu + self.sigma * z).exp()
    }

    /// Where `x` lies in this draw's distribution, in standard deviations of `ln x`.
    pub(crate) fn standardized(&self, x: f64) -> f64 {
        self.standardized_ln(x.max(1e-9).ln())
    }

    /// [`Self::standardized`] for a bound whose logarithm is already known.
    pub(crate) fn standardized_ln(&self, ln_x: f64) -> f64 {
        (ln_x - self.mu) / self.sigma.max(1e-9)
    }

    /// ln P(X <= x) under this draw.
    pub fn ln_cdf(&self, x: f64) -> f64 {
        ln_phi(self.standardized(x))
    }
}

/// Draws `(mu, sigma)` from the posterior given `data` and the prior's `mu0`, the log of its
/// median (taken once per decision by the caller).
pub fn draw_log_normal(
    data: Option<LogSummary>,
    mu0: f64,
    rng: &mut (impl Rng + ?Sized),
) -> LogNormalDraw {
    let beta0 = PRIOR_SIGMA * PRIOR_SIGMA * (ALPHA0 - 1.0);
    let (n, mean, var) = data.map_or((0.0, 0.0, 0.0), |d| (d.weight, d.mean, d.var));
    // One division for the posterior's 1/kappa, reused: divisions are slow and this runs
    // for every candidate of every request.
    let inv_kappa = 1.0 / (KAPPA0 + n);
    let mu_n = (KAPPA0 * mu0 + n * mean) * inv_kappa;
    let alpha = ALPHA0 + n / 2.0;
    let dev = mean - mu0;
    let beta = beta0 + 0.5 * n * var + 0.5 * KAPPA0 * n * dev * dev * inv_kappa;
    // sigma^2 ~ InvGamma(alpha, beta)  <=>  sigma^2 = beta / G with G ~ Gamma(alpha, 1).
    let g = Gamma::new(alpha, 1.0)
        .map(|g| g.sample(rng))
        .unwrap_or(alpha);
    let var_draw = beta / g.max(1e-300);
    let sigma = var_draw.sqrt();
    // mu ~ N(mu_n, sigma^2 / kappa).
    let z: f64 = StandardNormal.sample(rng);
    LogNormalDraw {
        mu: mu_n + sigma * inv_kappa.sqrt() * z,
        sigma,
    }
}

/// Prior precision of the prompt-size slope relative to the noise (see [`draw_prefill`]): one,
/// so a priori the slope is within about ±σ (±0.5) of zero — prompt size does not matter
/// until the endpoint's outcomes say it does, as without a prompt-size fit.
const LAMBDA_SLOPE: f64 = 1.0;

/// Draws the log-normal of TTFT for a prompt whose regressor is `u` (see
/// [`crate::stats::prefill`]) from the Normal-Inverse-Gamma posterior of the regression
/// `ln TTFT = a + b·(u − ū) + ε`, centred on the observed prompts' mean regressor `ū`: prior
/// `a ~ N(mu0, σ²/κ0)`, `b ~ N(0, σ²/λ)`, `σ² ~ IG(α0, β0)` as for [`draw_log_normal`], to
/// which it reduces at `u = ū`. Centred, the two coefficients' posteriors are independent
/// given `σ²`, and a slope prior of zero means "no growth from the prompts seen" rather than
/// from an empty one. Only the prediction at `u` is drawn — `σ²`, then `a + b·(u − ū)` from its
/// normal — so a prompt far from the sizes observed gets a wide draw and is explored.
pub fn draw_prefill(
    fit: PrefillSummary,
    mu0: f64,
    u: f64,
    rng: &mut (impl Rng + ?Sized),
) -> LogNormalDraw {
    let beta0 = PRIOR_SIGMA * PRIOR_SIGMA * (ALPHA0 - 1.0);
    // From the decayed sums [n, Σu, Σu², Σy, Σuy, Σy²]: the intercept's precision is
    // `ka = κ0 + n`, the slope's `kb = λ + n·var(u) = d / n` with `d = λ·n + (n·Σu² − (Σu)²)`.
    // Divisions are the slow part here, and this runs for every candidate of every request:
    // one reciprocal of `n·ka·d` gives 1/n, 1/ka and 1/kb.
    let [n, su, suu, sy, suy, syy] = fit.sums;
    let ka = KAPPA0 + n;
    let d = LAMBDA_SLOPE * n + (n * suu - su * su).max(0.0);
    let r = 1.0 / (n * ka * d);
    let inv_n = ka * d * r;
    let (inv_ka, inv_kb) = (n * d * r, n * n * ka * r);
    let mean_u = su * inv_n;
    let r_a = KAPPA0 * mu0 + sy;
    let r_b = suy - mean_u * sy;
    let (a, b) = (r_a * inv_ka, r_b * inv_kb);
    let yy = syy + KAPPA0 * mu0 * mu0;
    let beta = (beta0 + 0.5 * (yy - a * r_a - b * r_b)).max(beta0 * 1e-3);
    let alpha = ALPHA0 + n / 2.0;
    let g = Gamma::new(alpha, 1.0)
        .map(|g| g.sample(rng))
        .unwrap_or(alpha);
    let sigma = (beta / g.max(1e-300)).sqrt();
    let du = u - mean_u;
    let spread = inv_ka + du * du * inv_kb;
    let z: f64 = StandardNormal.sample(rng);
    LogNormalDraw {
        mu: a + b * du + sigma * spread.sqrt() * z,
        sigma,
    }
}

/// Prior successes and failures: optimistic (mean 0.94: an endpoint never tried is drawn
/// below the 0.8 feasibility bar only about 9% of the time) but weak: after three straight
/// failures about 92% of draws fall below it, at a 30% failure rate over twenty outcomes 73%,
/// at 5% about 1%.
const SUCCESS_PRIOR: (f64, f64) = (4.0, 0.25);

/// Draws a success probability from Beta(prior + decayed successes, prior + decayed failures),
/// as `X / (X + Y)` with `X ~ Gamma(a)` and `Y ~ Gamma(b)` (rand_distr's samplers): exactly a
/// Beta(a, b) draw, and about twice as fast as rand_distr's `Beta` (Cheng's algorithm, whose
/// set-up is redone for every candidate's own parameters) when `b` is small, as it is for
/// an endpoint that rarely fails.
///
/// A shape below one (an endpoint with under 0.75 recent failures) is drawn as
/// `Gamma(b + 1) · U^(1/b)` (Marsaglia and Tsang's boost, as rand_distr does), with
/// `U^(1/b) = exp(−E / b)` for `E ~ Exp(1)` from the ziggurat: one `exp` instead of a `pow`,
/// the same distribution.
pub fn draw_success(successes: f64, failures: f64, rng: &mut (impl Rng + ?Sized)) -> f64 {
    let a = SUCCESS_PRIOR.0 + successes.max(0.0);
    let b = SUCCESS_PRIOR.1 + failures.max(0.0);
    draw_beta(a, b, rng)
}

/// Draws an endpoint's quality from its feedback posterior (see [`crate::stats::quality`]).
pub fn draw_quality(p: QualityPosterior, rng: &mut (impl Rng + ?Sized)) -> f64 {
    draw_beta(p.alpha, p.beta, rng)
}

/// A Beta(a, b) draw as described at [`draw_success`].
#[inline]
fn draw_beta(a: f64, b: f64, rng: &mut (impl Rng + ?Sized)) -> f64 {
    let boosted = b < 1.0;
    let (Ok(ga), Ok(gb)) = (
        Gamma::new(a, 1.0),
        Gamma::new(if boosted { b + 1.0 } else { b }, 1.0),
    ) else {
        return 0.5;
    };
    let x = ga.sample(rng);
    let mut y = gb.sample(rng);
    if boosted {
        let e: f64 = Exp1.sample(rng);
        y *= (-e / b).exp();
    }
    if x + y > 0.0 {
        x / (x + y)
    } else {
        // Both underflowed (tiny shapes): the mean is the best answer left.
        a / (a + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ln_phi_is_continuous_into_the_far_tail() {
        assert!((ln_phi(0.0) - 0.5f64.ln()).abs() < 1e-9);
        let (near, far) = (ln_phi(TAIL + 1e-9), ln_phi(TAIL - 1e-9));
        assert!((near - far).abs() < 2e-5, "{near} {far}");
        // The series against erfc wherever erfc still has the answer.
        let mut x = TAIL;
        while x > -37.0 {
            let exact = phi(x).ln();
            assert!(
                (ln_phi(x) - exact).abs() < 2e-5,
                "{x}: {} vs {exact}",
                ln_phi(x)
            );
            x -= 0.25;
        }
        assert!(ln_phi(-100.0) < ln_phi(-50.0));
        assert!(ln_phi(-1e6).is_finite());
    }

    #[test]
    fn a_product_of_probabilities_has_the_sum_of_their_logarithms() {
        let cases: [&[f64]; 4] = [
            &[0.5, -1.0, 2.0],
            &[
                -30.0, -10.0, -10.0, -10.0, -10.0, -10.0, -10.0, -10.0, -10.0, -10.0,
            ],
            &[-19.9, -20.1, 0.0],
            &[-1e6, 40.0],
        ];
        for xs in cases {
            let mut p = LnProduct::default();
            p.times(0.3);
            for &x in xs {
                p.times_phi(x);
            }
            let sum: f64 = 0.3f64.ln() + xs.iter().map(|&x| ln_phi(x)).sum::<f64>();
            assert!(
                (p.ln() - sum).abs() <= 1e-9 * sum.abs().max(1.0),
                "{xs:?}: {} vs {sum}",
                p.ln()
            );
        }
    }

    #[test]
    fn z_matches_known_quantiles() {
        assert!((z(95.0) - 1.6449).abs() < 1e-3);
        assert!(z(50.0).abs() < 1e-9);
        assert!((phi(1.6449) - 0.95).abs() < 1e-3);
    }

    #[test]
    fn z_from_the_table_is_the_exact_quantile() {
        for p in [1.0, 50.0, 90.0, 95.0, 99.0] {
            assert_eq!(z(p), z_exact(p));
        }
        // Off the table: fractional percentiles and the clamped ends.
        assert!((z(99.9) - 3.0902).abs() < 1e-3);
        assert_eq!(z(100.0), z_exact(100.0));
        assert_eq!(z(0.0), z_exact(0.0));
    }

    #[test]
    fn with_much_data_draws_concentrate_on_the_data() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let data = LogSummary {
            weight: 1000.0,
            mean: 200f64.ln(),
            var: 0.09,
        };
        for _ in 0..100 {
            let d = draw_log_normal(Some(data), 5000f64.ln(), &mut rng);
            assert!((d.quantile(0.0) - 200.0).abs() < 10.0, "{d:?}");
            assert!((d.sigma - 0.3).abs() < 0.05, "{d:?}");
        }
    }

    #[test]
    fn without_data_draws_follow_the_prior_median() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(4);
        let mut medians: Vec<f64> = (0..2001)
            .map(|_| draw_log_normal(None, 300f64.ln(), &mut rng).quantile(0.0))
            .collect();
        medians.sort_by(f64::total_cmp);
        let m = medians[1000];
        assert!((m / 300.0 - 1.0).abs() < 0.1, "median of draws {m}");
    }

    /// Noisy first-token times from `TTFT = 120 ms · (1 + tokens/1000)^0.9 · e^ε`, σ 0.3,
    /// over prompts from 100 to 50,000 tokens: the draws recover the relation.
    #[test]
    fn the_prefill_posterior_recovers_a_known_slope_from_noisy_samples() {
        use crate::stats::prefill::{regressor, PrefillStats};
        let hl = crate::stats::HalfLife::new(std::time::Duration::from_secs(300));
        let mut rng = rand::rngs::SmallRng::seed_from_u64(8);
        let mut p = PrefillStats::default();
        for k in 0..2000u64 {
            let tokens = (100.0f64.ln() + (k % 97) as f64 / 96.0 * 500.0f64.ln()).exp();
            let eps: f64 = StandardNormal.sample(&mut rng);
            let ttft = 120.0 * (0.9 * regressor(tokens) + 0.3 * eps).exp();
            p.add(tokens, ttft, k, hl);
        }
        let fit = p.summary(2000, hl).expect("fit");
        assert!(
            (fit.slope().expect("sizes vary") - 0.9).abs() < 0.05,
            "{fit:?}"
        );
        for tokens in [200.0, 5000.0, 40000.0] {
            let truth = 120.0 * (0.9 * regressor(tokens)).exp();
            let mut medians: Vec<f64> = (0..501)
                .map(|_| draw_prefill(fit, 300f64.ln(), regressor(tokens), &mut rng).quantile(0.0))
                .collect();
            medians.sort_by(f64::total_cmp);
            let m = medians[250];
            assert!((m / truth - 1.0).abs() < 0.05, "{tokens}: {m} vs {truth}");
            let sigma = draw_prefill(fit, 300f64.ln(), regressor(tokens), &mut rng).sigma;
            assert!((sigma - 0.3).abs() < 0.03, "{sigma}");
        }
    }

    /// Prompts of one size only: at that size the draw is the size-free fit's; far from it
    /// the slope is unknown, so the draws spread (explored), centred on no growth.
    #[test]
    fn one_prompt_size_falls_back_to_the_size_free_fit_with_wider_draws() {
        use crate::stats::prefill::{regressor, PrefillStats};
        let hl = crate::stats::HalfLife::new(std::time::Duration::from_secs(300));
        let mut rng = rand::rngs::SmallRng::seed_from_u64(9);
        let (mut p, mut plain) = (PrefillStats::default(), crate::stats::LogStats::default());
        for k in 0..200u64 {
            let eps: f64 = StandardNormal.sample(&mut rng);
            let ttft = 200.0 * (0.25 * eps).exp();
            p.add(800.0, ttft, k, hl);
            plain.add(ttft, k, hl);
        }
        let (fit, plain) = (p.summary(200, hl).expect("fit"), plain.summary(200, hl));
        let spread = |tokens: f64, rng: &mut rand::rngs::SmallRng| {
            let mut mus: Vec<f64> = (0..2001)
                .map(|_| draw_prefill(fit, 300f64.ln(), regressor(tokens), rng).mu)
                .collect();
            mus.sort_by(f64::total_cmp);
            (mus[1000], mus[1900] - mus[100])
        };
        let mut plain_mus: Vec<f64> = (0..2001)
            .map(|_| draw_log_normal(plain, 300f64.ln(), &mut rng).mu)
            .collect();
        plain_mus.sort_by(f64::total_cmp);
        let (here, here_width) = spread(800.0, &mut rng);
        let plain_width = plain_mus[1900] - plain_mus[100];
        assert!(
            (here - plain_mus[1000]).abs() < 0.01,
            "{here} vs {}",
            plain_mus[1000]
        );
        assert!((here_width / plain_width - 1.0).abs() < 0.15);
        let (far, far_width) = spread(30_000.0, &mut rng);
        assert!(
            (far - here).abs() < 0.05,
            "centred on no growth: {far} vs {here}"
        );
        assert!(far_width > 10.0 * here_width, "{far_width} vs {here_width}");
    }

    #[test]
    fn success_draws_have_the_beta_mean_and_variance() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(6);
        for (s, f) in [
            (0.0, 0.0),
            (48.0, 2.0),
            (3.0, 9.0),
            (200.0, 0.0),
            (60.0, 0.5),
        ] {
            let (a, b) = (SUCCESS_PRIOR.0 + s, SUCCESS_PRIOR.1 + f);
            let n = 40_000;
            let draws: Vec<f64> = (0..n).map(|_| draw_success(s, f, &mut rng)).collect();
            assert!(draws.iter().all(|x| (0.0..=1.0).contains(x)));
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            let (m, v) = (a / (a + b), a * b / ((a + b).powi(2) * (a + b + 1.0)));
            assert!(
                (mean - m).abs() < 4.0 * (v / n as f64).sqrt() + 1e-9,
                "{s}/{f}: mean {mean} vs {m}"
            );
            assert!((var / v - 1.0).abs() < 0.05, "{s}/{f}: var {var} vs {v}");
        }
    }

    #[test]
    fn success_draws_follow_the_counts() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(5);
        let mean = |s: f64, f: f64, rng: &mut rand::rngs::SmallRng| {
            (0..2000).map(|_| draw_success(s, f, rng)).sum::<f64>() / 2000.0
        };
        assert!(mean(200.0, 0.0, &mut rng) > 0.98);
        assert!(mean(0.0, 50.0, &mut rng) < 0.1);
    }
}
