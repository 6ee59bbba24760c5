//! Hedged attempts (pure): when a running attempt has been silent long enough to start the
//! next candidate beside it, and whether the hedge is worth its price.
//!
//! - **The ask** ([`HedgeAsk`]): `route.hedge` in a request or preset (`true`, `false`, or
//!   `{ after = "p90" | <ms>, max_extra_cost_usd = <usd> }`), else the `[hedge]` config's
//!   defaults for the router or a group ([`HedgeConfig::settings`]).
//! - **The moment** ([`delay_ms`]): a fixed delay, or a learned percentile of the running
//!   endpoint's time to first byte for this request: its TTFT for streams (at the request's
//!   prompt size, from the prefill fit), its total time otherwise (a non-streamed answer's
//!   first byte is its last). An endpoint with too little history is not hedged by
//!   percentile: its percentile would be a guess.
//! - **The price** ([`HedgeBudget`]): the hedge's estimated cost must be within the request's
//!   `max_extra_cost_usd`, and what hedges wasted (the losers' estimated billed prompt)
//!   within `budget_share` of recent spend; past it, hedging pauses until spend catches up.
//!
//! The attempt machine ([`super::Attempts`]) starts and settles the hedge; the gateway and
//! the simulator each drive it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::stats::decay::Decayed;
use crate::stats::{EndpointView, HalfLife};

/// When to start a hedge: at a learned percentile of the running endpoint's first-byte time,
/// or after a fixed wait.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum After {
    Percentile(f64),
    Ms(f64),
}

impl std::fmt::Display for After {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            After::Percentile(p) => write!(f, "p{p}"),
            After::Ms(ms) => write!(f, "{ms} ms"),
        }
    }
}

/// Parses `"p90"` or a number of milliseconds (as JSON text or TOML: both come as a value).
impl<'de> Deserialize<'de> for After {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<After, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Ms(f64),
            Text(String),
        }
        let bad = || {
            serde::de::Error::custom(
                "must be a percentile like \"p90\" or a number of milliseconds above zero",
            )
        };
        match Raw::deserialize(d)? {
            Raw::Ms(ms) if ms.is_finite() && ms > 0.0 => Ok(After::Ms(ms)),
            Raw::Ms(_) => Err(bad()),
            Raw::Text(t) => {
                let p: f64 = t
                    .trim()
                    .strip_prefix('p')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad)?;
                if p > 0.0 && p < 100.0 {
                    Ok(After::Percentile(p))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// What a request (or preset) says about hedging.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum HedgeAsk {
    /// `false`: never, whatever the config says.
    Off,
    /// `true` or an object: hedge, with these overrides of the config's defaults.
    On {
        after: Option<After>,
        max_extra_cost_usd: Option<f64>,
    },
}

/// `[hedge]`: the defaults, and the budget.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HedgeConfig {
    /// Hedge every request that does not say otherwise.
    pub enabled: bool,
    /// Groups (or models) whose requests are hedged unless they say otherwise.
    pub groups: Vec<String>,
    pub after: After,
    /// The most a hedge may be expected to cost (its candidate's estimated request cost).
    pub max_extra_cost_usd: f64,
    /// Hedges started per request.
    pub max_hedges: u32,
    /// What hedging may waste, as a share of recent spend.
    pub budget_share: f64,
    /// How long spend counts as recent (the half-life of both sums).
    #[serde(with = "humantime_serde")]
    pub budget_window: Duration,
}

impl Default for HedgeConfig {
    fn default() -> HedgeConfig {
        HedgeConfig {
            enabled: false,
            groups: Vec::new(),
            after: After::Percentile(90.0),
            max_extra_cost_usd: 0.01,
            max_hedges: 1,
            budget_share: 0.05,
            budget_window: Duration::from_secs(600),
        }
    }
}

/// How one request is hedged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HedgeSettings {
    pub after: After,
    pub max_extra_cost_usd: f64,
    pub max_hedges: u32,
}

impl HedgeConfig {
    /// Checks the values a file may get wrong: the field at fault and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |field: &str, m: String| Err((format!("hedge.{field}"), m));
        if !(0.0..=1.0).contains(&self.budget_share) {
            return bad(
                "budget_share",
                format!("must be between 0 and 1, got {}", self.budget_share),
            );
        }
        if !(self.max_extra_cost_usd.is_finite() && self.max_extra_cost_usd >= 0.0) {
            return bad("max_extra_cost_usd", "must be zero or more".into());
        }
        if self.budget_window.is_zero() {
            return bad("budget_window", "must be above zero".into());
        }
        if self.max_hedges > 3 {
            return bad(
                "max_hedges",
                format!("must be 3 or fewer, got {}", self.max_hedges),
            );
        }
        Ok(())
    }

    /// The hedging of a request for `model` (as asked, a group name included) that asked
    /// `ask`: `None` when it is not hedged.
    pub fn settings(&self, ask: Option<HedgeAsk>, model: &str) -> Option<HedgeSettings> {
        let on = |after: Option<After>, max: Option<f64>| HedgeSettings {
            after: after.unwrap_or(self.after),
            max_extra_cost_usd: max.unwrap_or(self.max_extra_cost_usd),
            max_hedges: self.max_hedges,
        };
        match ask {
            Some(HedgeAsk::Off) => None,
            Some(HedgeAsk::On {
                after,
                max_extra_cost_usd,
            }) => Some(on(after, max_extra_cost_usd)),
            None if self.enabled || self.groups.iter().any(|g| g == model) => Some(on(None, None)),
            None => None,
        }
    }
}

/// Decayed weight of first-byte observations below which an endpoint's percentile is not
/// trusted to time a hedge.
pub const MIN_HISTORY: f64 = 5.0;

/// How long to let an attempt at an endpoint with `view` run silent before hedging it, ms:
/// `None` when a percentile is asked and the endpoint has too little history.
pub fn delay_ms(
    after: After,
    view: &EndpointView,
    stream: bool,
    prompt_tokens: f64,
) -> Option<f64> {
    let p = match after {
        After::Ms(ms) => return Some(ms),
        After::Percentile(p) => p,
    };
    let fit = if stream { view.ttft_ms } else { view.total_ms }?;
    if fit.weight < MIN_HISTORY {
        return None;
    }
    // The median for this prompt's size where TTFT was learned against it.
    let median_ln = match view.prefill.filter(|f| stream && f.slope().is_some()) {
        Some(prefill) => prefill.median_at(prompt_tokens).ln(),
        None => fit.mean,
    };
    Some((median_ln + fit.var.sqrt() * crate::select::posterior::z(p)).exp())
}

/// Recent spend and what hedging wasted of it, decayed alike: hedging pauses while the waste
/// is above `share` of the spend.
#[derive(Debug, Clone)]
pub struct HedgeBudget {
    spend: Decayed,
    wasted: Decayed,
    share: f64,
    hl: HalfLife,
}

impl HedgeBudget {
    pub fn new(config: &HedgeConfig) -> HedgeBudget {
        HedgeBudget {
            spend: Decayed::default(),
            wasted: Decayed::default(),
            share: config.budget_share,
            hl: HalfLife::new(config.budget_window),
        }
    }

    /// A request's cost (its answer's, and any loser's).
    pub fn spent(&mut self, usd: f64, now_ns: u64) {
        if usd.is_finite() && usd > 0.0 {
            self.spend.add(usd, now_ns, self.hl);
        }
    }

    /// What a hedge wasted: the losing attempt's cost (also counted as spent).
    pub fn wasted(&mut self, usd: f64, now_ns: u64) {
        if usd.is_finite() && usd > 0.0 {
            self.wasted.add(usd, now_ns, self.hl);
            self.spend.add(usd, now_ns, self.hl);
        }
    }

    /// Whether a hedge may start now.
    pub fn allows(&self, now_ns: u64) -> bool {
        self.wasted.get(now_ns, self.hl) <= self.share * self.spend.get(now_ns, self.hl)
    }
}

/// What a cancelled attempt is assumed to have cost: its prompt, which a provider has
/// begun to process and may bill; nothing of an answer that never came.
pub fn loser_cost(prompt_tokens: f64, input_per_mtok: f64) -> f64 {
    prompt_tokens * input_per_mtok / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::LogSummary;

    fn view(median_ms: f64, sd_ln: f64, weight: f64) -> EndpointView {
        EndpointView {
            ttft_ms: Some(LogSummary {
                weight,
                mean: median_ms.ln(),
                var: sd_ln * sd_ln,
            }),
            ..EndpointView::default()
        }
    }

    #[test]
    fn after_reads_percentiles_and_milliseconds() {
        let parse = |s: &str| serde_json::from_str::<After>(s);
        assert_eq!(parse("\"p90\"").unwrap(), After::Percentile(90.0));
        assert_eq!(parse("250").unwrap(), After::Ms(250.0));
        for bad in ["\"p100\"", "\"90\"", "0", "-5", "\"fast\""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_delay_is_the_learned_percentile_once_there_is_history() {
        let v = view(400.0, 0.5, 20.0);
        let p90 = delay_ms(After::Percentile(90.0), &v, true, 100.0).unwrap();
        // exp(ln 400 + 0.5 · 1.2816)
        assert!(
            (p90 - 400.0 * (0.5f64 * 1.281_551_6).exp()).abs() < 0.5,
            "{p90}"
        );
        let p50 = delay_ms(After::Percentile(50.0), &v, true, 100.0).unwrap();
        assert!((p50 - 400.0).abs() < 1e-6);
        assert_eq!(delay_ms(After::Ms(120.0), &v, true, 100.0), Some(120.0));
        // Too little history: no percentile; a non-stream reads total time, unknown here.
        assert_eq!(
            delay_ms(After::Percentile(90.0), &view(400.0, 0.5, 2.0), true, 1.0),
            None
        );
        assert_eq!(delay_ms(After::Percentile(90.0), &v, false, 1.0), None);
    }

    #[test]
    fn the_ask_overrides_the_config() {
        let mut c = HedgeConfig::default();
        assert_eq!(c.settings(None, "m"), None);
        let on = c
            .settings(
                Some(HedgeAsk::On {
                    after: Some(After::Ms(50.0)),
                    max_extra_cost_usd: None,
                }),
                "m",
            )
            .unwrap();
        assert_eq!(on.after, After::Ms(50.0));
        assert_eq!(on.max_extra_cost_usd, c.max_extra_cost_usd);
        c.groups = vec!["fast".into()];
        assert!(c.settings(None, "fast").is_some());
        assert!(c.settings(None, "slow").is_none());
        assert!(c.settings(Some(HedgeAsk::Off), "fast").is_none());
        c.enabled = true;
        assert!(c.settings(None, "slow").is_some());
    }

    #[test]
    fn the_budget_pauses_hedging_past_its_share() {
        let mut b = HedgeBudget::new(&HedgeConfig::default());
        assert!(b.allows(0));
        b.spent(1.0, 0);
        b.wasted(0.04, 0);
        assert!(b.allows(0));
        b.wasted(0.03, 0);
        assert!(!b.allows(0), "0.07 of 1.07 is above 5%");
        b.spent(1.0, 0);
        assert!(b.allows(0));
        // Both decay alike: the ratio holds over time.
        assert!(b.allows(3_600_000_000_000));
    }
}
