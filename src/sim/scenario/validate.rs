//! A scenario's validation: every value in range, every error naming its field.

use std::collections::BTreeSet;

use super::{Scenario, ScenarioError};

impl Scenario {
    pub(super) fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |field: String, why: &str| {
            Err(ScenarioError::Field {
                field,
                message: why.to_owned(),
            })
        };
        if self.duration.is_zero() {
            return bad("duration".into(), "must be above zero");
        }
        if !(self.workload.rate_rps > 0.0 && self.workload.rate_rps.is_finite()) {
            return bad("workload.rate_rps".into(), "must be above zero");
        }
        for (f, ln) in [
            ("prompt_tokens", self.workload.prompt_tokens),
            ("output_tokens", self.workload.output_tokens),
        ] {
            if !at_least(ln.median, 1.0) || !(0.0..=3.0).contains(&ln.sigma) {
                return bad(
                    format!("workload.{f}"),
                    "median must be at least 1 and sigma in [0, 3]",
                );
            }
        }
        if self
            .workload
            .sessions
            .is_some_and(|s| s.concurrent == 0 || s.turns == 0)
        {
            return bad(
                "workload.sessions".into(),
                "concurrent and turns must be at least 1",
            );
        }
        if !(0.0..=1.0).contains(&self.workload.feedback_rate) {
            return bad("workload.feedback_rate".into(), "must be in [0, 1]");
        }
        if !positive(self.quality_prior_strength) {
            return bad("quality_prior_strength".into(), "must be above zero");
        }
        if !self.workload.hints().is_empty() && !self.workload.mix.is_empty() {
            return bad(
                "workload.mix".into(),
                "give either hints (`route`, `provider`, `models`, `headers`) or `mix`, not both",
            );
        }
        for (i, m) in self.workload.mix.iter().enumerate() {
            if !positive(m.weight) {
                return bad(format!("workload.mix[{i}].weight"), "must be above zero");
            }
        }
        if self.endpoints.is_empty() {
            return bad("endpoints".into(), "at least one [[endpoints]] is needed");
        }
        if let Err((field, why)) = self.fleet.check() {
            return bad(field, why);
        }
        if !(1..=10).contains(&self.max_attempts) {
            return bad("max_attempts".into(), "must be between 1 and 10");
        }
        let mut ids = BTreeSet::new();
        for (i, e) in self.endpoints.iter().enumerate() {
            let f = |name: &str| format!("endpoints[{i}].{name}");
            let valid_id =
                e.id.split_once('/')
                    .is_some_and(|(p, m)| crate::config::is_valid_name(p) && !m.is_empty());
            if !valid_id {
                return bad(f("id"), "must be `provider/model`");
            }
            if !ids.insert(e.id.as_str()) {
                return bad(f("id"), "appears twice");
            }
            for (name, v) in [
                ("input_per_mtok", e.input_per_mtok),
                ("output_per_mtok", e.output_per_mtok),
            ] {
                if !(0.0..=1000.0).contains(&v) {
                    return bad(f(name), "must be between 0 and 1000");
                }
            }
            if !positive(e.ttft.median_ms) || !(0.0..=3.0).contains(&e.ttft.sigma) {
                return bad(
                    f("ttft"),
                    "median_ms must be above zero and sigma in [0, 3]",
                );
            }
            if !((0.0..=1.0).contains(&e.ttft.stall_rate)
                && (0.0..f64::INFINITY).contains(&e.ttft.stall_ms))
            {
                return bad(
                    f("ttft"),
                    "stall_rate must be in [0, 1] and stall_ms zero or more",
                );
            }
            if !positive(e.tokens_per_s) {
                return bad(f("tokens_per_s"), "must be above zero");
            }
            if !(0.0..=1.0).contains(&e.error_rate) {
                return bad(f("error_rate"), "must be in [0, 1]");
            }
            for (name, q) in [("quality", e.quality), ("true_quality", e.true_quality)] {
                if q.is_some_and(|q| !(0.0..=1.0).contains(&q)) {
                    return bad(f(name), "must be in [0, 1]");
                }
            }
            if e.capacity == Some(0) {
                return bad(f("capacity"), "must be above zero");
            }
            if e.error_status.is_some_and(|c| !(400..=599).contains(&c)) {
                return bad(f("error_status"), "must be an HTTP error status (400-599)");
            }
            if e.error_after_ms.is_some_and(|v| !positive(v)) {
                return bad(f("error_after_ms"), "must be above zero");
            }
            if e.cached_input_per_mtok
                .is_some_and(|v| !(v.is_finite() && (0.0..=e.input_per_mtok).contains(&v)))
            {
                return bad(
                    f("cached_input_per_mtok"),
                    "must be from 0 to the input price",
                );
            }
            if e.prefill_tokens_per_s.is_some_and(|v| !positive(v)) {
                return bad(f("prefill_tokens_per_s"), "must be above zero");
            }
        }
        for (i, ev) in self.events.iter().enumerate() {
            let f = |name: &str| format!("events[{i}].{name}");
            if !ids.contains(ev.endpoint.as_str()) {
                return bad(f("endpoint"), "names no endpoint of the scenario");
            }
            if ev.until.is_some_and(|u| u <= ev.at) {
                return bad(f("until"), "must be after `at`");
            }
            if ev.set.error_rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
                return bad(f("set.error_rate"), "must be in [0, 1]");
            }
            if ev
                .set
                .error_status
                .is_some_and(|c| !(400..=599).contains(&c))
            {
                return bad(
                    f("set.error_status"),
                    "must be an HTTP error status (400-599)",
                );
            }
            if ev.set.capacity == Some(0)
                || ev.set.tokens_per_s.is_some_and(|v| !positive(v))
                || ev.set.ttft_median_ms.is_some_and(|v| !positive(v))
                || ev.set.error_after_ms.is_some_and(|v| !positive(v))
                || ev.set.prefill_tokens_per_s.is_some_and(|v| !positive(v))
            {
                return bad(
                    f("set"),
                    "capacity, tokens_per_s, ttft_median_ms, error_after_ms and \
                     prefill_tokens_per_s must be above zero",
                );
            }
        }
        self.hedge
            .validate()
            .map_err(|(field, message)| ScenarioError::Field { field, message })?;
        Ok(())
    }
}

/// A finite number above zero (NaN is not).
fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// A finite number at least `min` (NaN is not).
fn at_least(x: f64, min: f64) -> bool {
    x.is_finite() && x >= min
}
