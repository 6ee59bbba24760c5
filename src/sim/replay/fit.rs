//! Each endpoint's behaviour over time, fitted from the attempts a request log observed:
//! per endpoint over the whole log (its base) and per time window (events overriding the
//! base where the window holds enough attempts). What is fitted is what the log supports:
//! - error rate: failed attempts (every failure class) over attempts that ended on their
//!   own (answers and failures; a hedge race's cancelled loser, a refusal and an unsupported
//!   parameter say nothing of health);
//! - time to first token (median and log spread) from streamed answers' own first tokens;
//! - decode speed from streamed answers (output tokens over the time after the first
//!   token), or, with only non-streamed answers, over their whole time (their first token
//!   then counts as instant: a non-streamed replay is judged on total time, which this
//!   keeps);
//! - how long failures take, and their most common status.
//!
//! Endpoints the old policy rarely tried have too little to fit: they get the pooled
//! behaviour of the observed endpoints and are reported as extrapolated.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::log::Record;

/// Attempts an endpoint needs to be fitted on its own.
pub const MIN_OBSERVED: u64 = 20;
/// Attempts a window needs to override the endpoint's base.
pub const MIN_WINDOW: u64 = 8;

/// Sums of one endpoint's attempts (in one window, or overall).
#[derive(Debug, Clone, Default)]
pub(super) struct Sums {
    pub ok: u64,
    pub failed: u64,
    ttft: LogSums,
    speed: LogSums,
    fail_ms: f64,
    statuses: BTreeMap<u16, u64>,
}

#[derive(Debug, Clone, Copy, Default)]
struct LogSums {
    n: f64,
    s: f64,
    ss: f64,
}

impl LogSums {
    fn add(&mut self, x: f64) {
        if x.is_finite() && x > 0.0 {
            let l = x.ln();
            self.n += 1.0;
            self.s += l;
            self.ss += l * l;
        }
    }

    /// Median and log spread, with at least `min` observations.
    fn fit(&self, min: f64) -> Option<(f64, f64)> {
        (self.n >= min).then(|| {
            let mean = self.s / self.n;
            let var = (self.ss / self.n - mean * mean).max(0.0);
            (mean.exp(), var.sqrt().min(3.0))
        })
    }
}

/// A fitted behaviour (what a scenario endpoint or event sets).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Behaviour {
    pub error_rate: f64,
    pub ttft_median_ms: f64,
    pub ttft_sigma: f64,
    pub tokens_per_s: f64,
    pub error_after_ms: Option<f64>,
    pub error_status: Option<u16>,
}

impl Sums {
    /// Adds attempt `a` of record `r` (see the module doc for what counts).
    pub fn add(&mut self, r: &Record, a: &crate::log::AttemptLine) {
        match a.outcome.as_str() {
            "cancelled" | "rejected" | "unsupported" | "client_gone" => {}
            "answered" | "mid_stream" => {
                self.ok += u64::from(a.outcome == "answered");
                self.failed += u64::from(a.outcome == "mid_stream");
                let output = r.output_tokens.unwrap_or(0) as f64;
                match (r.stream, a.ttft_ms, a.took_ms) {
                    (true, Some(ttft), Some(took)) => {
                        self.ttft.add(ttft);
                        if output > 0.0 && took > ttft {
                            self.speed.add(output / ((took - ttft) / 1000.0));
                        }
                    }
                    (false, _, Some(took)) if output > 0.0 => {
                        self.speed.add(output / (took / 1000.0));
                    }
                    _ => {}
                }
            }
            _ => {
                self.failed += 1;
                self.fail_ms += a.took_ms.unwrap_or(0.0);
                if let Some(s) = a.status {
                    *self.statuses.entry(s).or_default() += 1;
                }
            }
        }
    }

    pub fn attempts(&self) -> u64 {
        self.ok + self.failed
    }

    pub fn merge(&mut self, o: &Sums) {
        self.ok += o.ok;
        self.failed += o.failed;
        for (a, b) in [(&mut self.ttft, o.ttft), (&mut self.speed, o.speed)] {
            a.n += b.n;
            a.s += b.s;
            a.ss += b.ss;
        }
        self.fail_ms += o.fail_ms;
        for (s, n) in &o.statuses {
            *self.statuses.entry(*s).or_default() += n;
        }
    }

    /// The behaviour these attempts show, parts missing taken from `fallback`.
    pub fn behaviour(&self, fallback: &Behaviour) -> Behaviour {
        let n = self.attempts();
        let (ttft_median_ms, ttft_sigma) = self
            .ttft
            .fit(3.0)
            .unwrap_or((fallback.ttft_median_ms, fallback.ttft_sigma));
        Behaviour {
            error_rate: if n > 0 {
                self.failed as f64 / n as f64
            } else {
                fallback.error_rate
            },
            ttft_median_ms,
            ttft_sigma,
            tokens_per_s: self
                .speed
                .fit(3.0)
                .map_or(fallback.tokens_per_s, |(m, _)| m),
            error_after_ms: (self.failed > 0)
                .then(|| (self.fail_ms / self.failed as f64).max(1.0))
                .or(fallback.error_after_ms),
            error_status: self
                .statuses
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(s, _)| *s)
                .or(fallback.error_status),
        }
    }
}

/// What a log with nothing to say about an endpoint assumes (only when no endpoint at all
/// was observed: otherwise the pooled fit is used).
pub(super) const UNKNOWN: Behaviour = Behaviour {
    error_rate: 0.01,
    ttft_median_ms: 500.0,
    ttft_sigma: 0.5,
    tokens_per_s: 50.0,
    error_after_ms: None,
    error_status: None,
};
