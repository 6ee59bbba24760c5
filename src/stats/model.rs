//! Per-model statistics: how long answers run, and how many bytes of `messages` make one
//! prompt token (so the prompt estimate of a request improves with every answered request).

use serde::{Deserialize, Serialize};

use super::decay::{Decayed, HalfLife, LogStats};

use super::outcome::Success;

/// Bytes of JSON-encoded messages per prompt token assumed before any usage was seen.
/// English text runs about four characters a token and JSON framing adds a little; erring
/// low overestimates tokens, so cost estimates lean cautious.
pub(crate) const DEFAULT_BYTES_PER_TOKEN: f64 = 4.0;

/// Prompt tokens after which the learned ratio replaces the default.
const MIN_TOKENS_FOR_RATIO: f64 = 200.0;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelStats {
    /// Fit of completion lengths, in tokens.
    pub output_tokens: LogStats,
    /// Decayed bytes of `messages` of answered requests...
    pub prompt_bytes: Decayed,
    /// ...and the prompt tokens the providers counted for them.
    pub prompt_tokens: Decayed,
}

impl ModelStats {
    pub fn record(&mut self, s: &Success, now_ns: u64, hl: HalfLife) {
        if let Some(tokens) = s.output_tokens {
            self.output_tokens.add(tokens as f64, now_ns, hl);
        }
        if let (Some(bytes), Some(tokens)) = (s.prompt_bytes, s.prompt_tokens) {
            if bytes > 0 && tokens > 0 {
                self.prompt_bytes.add(bytes as f64, now_ns, hl);
                self.prompt_tokens.add(tokens as f64, now_ns, hl);
            }
        }
    }

    /// Learned bytes per prompt token, or the default until enough was seen. Both sums are
    /// updated together, so their ratio needs no decay; the threshold is checked on the
    /// tokens seen as of the last update (a ratio learned once stays the best estimate).
    pub(crate) fn bytes_per_token(&self) -> f64 {
        let (tokens, _) = self.prompt_tokens.raw();
        if tokens < MIN_TOKENS_FOR_RATIO {
            return DEFAULT_BYTES_PER_TOKEN;
        }
        (self.prompt_bytes.raw().0 / tokens).clamp(0.5, 64.0)
    }

    /// Mean completion length of the fitted log-normal, `None` before any answer.
    pub(crate) fn mean_output_tokens(&self) -> Option<f64> {
        self.output_tokens
            .mean_var()
            .map(|(m, v)| (m + v / 2.0).exp())
    }

    #[cfg(test)]
    pub(crate) fn output_summary(&self, now_ns: u64, hl: HalfLife) -> Option<super::LogSummary> {
        self.output_tokens.summary(now_ns, hl)
    }

    pub(crate) fn settled(&self, now_ns: u64, hl: HalfLife) -> ModelStats {
        ModelStats {
            output_tokens: self.output_tokens.settled(now_ns, hl),
            prompt_bytes: self.prompt_bytes.settled(now_ns, hl),
            prompt_tokens: self.prompt_tokens.settled(now_ns, hl),
        }
    }

    pub(crate) fn rebase(&mut self, dt_ns: u64, now_ns: u64, hl: HalfLife) {
        self.output_tokens.rebase(dt_ns, now_ns, hl);
        self.prompt_bytes.rebase(dt_ns, now_ns, hl);
        self.prompt_tokens.rebase(dt_ns, now_ns, hl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_ratio_is_learned_from_usage() {
        let hl = HalfLife::new(std::time::Duration::from_secs(300));
        let mut m = ModelStats::default();
        assert_eq!(m.bytes_per_token(), DEFAULT_BYTES_PER_TOKEN);
        for i in 0..10 {
            let s = Success {
                prompt_bytes: Some(2500),
                prompt_tokens: Some(1000),
                output_tokens: Some(50),
                ..Success::default()
            };
            m.record(&s, i, hl);
        }
        assert!((m.bytes_per_token() - 2.5).abs() < 1e-9);
    }
}
