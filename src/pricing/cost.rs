//! Exact cost of a request from the provider's token counts, in decimal USD.
//!
//! Rates are taken from a sheet's numbers by their shortest decimal form, so a price written
//! `0.59` is exactly 0.59, not the nearest binary float. Cost = uncached prompt tokens × input
//! rate + cached prompt tokens × cached-input rate (the input rate when the sheet has none) +
//! completion tokens × output rate, per million, plus the per-request price. The catalog
//! builds rates once per sheet version; a request is charged at the rates of the catalog it
//! started with, so a reload mid-request never changes its price.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::ModelPrice;

/// USD per million tokens (and per request), exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rates {
    pub input: Decimal,
    pub output: Decimal,
    pub cached_input: Decimal,
    /// Per prompt token written to the provider's cache.
    pub cache_write: Decimal,
    pub per_request: Decimal,
}

/// A sheet number as the decimal it was written as.
pub fn decimal(v: f64) -> Decimal {
    // `Display` of an f64 is its shortest round-trip form: the digits the sheet had.
    Decimal::from_str(&v.to_string())
        .or_else(|_| Decimal::from_scientific(&format!("{v:e}")))
        .unwrap_or_default()
}

const MILLION: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

impl Rates {
    pub fn of(p: &ModelPrice) -> Rates {
        let input = decimal(p.input_per_mtok);
        Rates {
            input,
            output: decimal(p.output_per_mtok),
            cached_input: p.cached_input_per_mtok.map(decimal).unwrap_or(input),
            cache_write: p.cache_write_per_mtok.map(decimal).unwrap_or(input),
            per_request: p.per_request.map(decimal).unwrap_or_default(),
        }
    }

    /// The cost of one answered request. `cached` counts among `prompt` (as providers report
    /// it) and is capped there.
    pub fn cost(&self, prompt: u64, cached: u64, completion: u64) -> Decimal {
        self.cost_with_writes(prompt, cached, 0, completion)
    }

    /// [`Rates::cost`] with `written` prompt tokens written to the provider's cache (also
    /// counted among `prompt`): uncached input × input + cache reads × cached input + cache
    /// writes × cache write + output × output.
    pub fn cost_with_writes(
        &self,
        prompt: u64,
        cached: u64,
        written: u64,
        completion: u64,
    ) -> Decimal {
        let cached = cached.min(prompt);
        let written = written.min(prompt - cached);
        let tokens = Decimal::from(prompt - cached - written) * self.input
            + Decimal::from(cached) * self.cached_input
            + Decimal::from(written) * self.cache_write
            + Decimal::from(completion) * self.output;
        (tokens / MILLION + self.per_request).normalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rates(input: f64, output: f64, cached: Option<f64>, per_request: Option<f64>) -> Rates {
        Rates::of(&ModelPrice {
            upstream_model: None,
            input_per_mtok: input,
            output_per_mtok: output,
            cached_input_per_mtok: cached,
            cache_write_per_mtok: None,
            kind: Default::default(),
            per_request,
            context_window: None,
            max_output_tokens: None,
            quality: None,
            supports: None,
        })
    }

    #[test]
    fn cache_writes_are_priced_at_their_own_rate() {
        let mut p = ModelPrice {
            upstream_model: None,
            input_per_mtok: 3.0,
            output_per_mtok: 15.0,
            cached_input_per_mtok: Some(0.3),
            cache_write_per_mtok: Some(3.75),
            kind: Default::default(),
            per_request: None,
            context_window: None,
            max_output_tokens: None,
            quality: None,
            supports: None,
        };
        // 1,000 prompt tokens of which 600 read from the cache and 300 written to it; 100 out:
        // (100 × 3 + 600 × 0.3 + 300 × 3.75 + 100 × 15) / 1e6 = (300 + 180 + 1125 + 1500) / 1e6.
        let expected = Decimal::from_str("0.003105").expect("literal");
        assert_eq!(
            Rates::of(&p).cost_with_writes(1000, 600, 300, 100),
            expected
        );
        // Without a write price, writes cost the input price.
        p.cache_write_per_mtok = None;
        let expected = Decimal::from_str("0.00288").expect("literal");
        assert_eq!(
            Rates::of(&p).cost_with_writes(1000, 600, 300, 100),
            expected
        );
        // Counts beyond the prompt are capped, never negative.
        assert!(Rates::of(&p).cost_with_writes(10, 8, 50, 0) >= Decimal::ZERO);
    }

    #[test]
    fn cost_is_exact_for_known_counts() {
        // 1,234 prompt tokens (200 cached) and 567 completion tokens at 0.59 / 0.79, cache 0.295.
        let r = rates(0.59, 0.79, Some(0.295), None);
        let expected = Decimal::from_str("0.00111699").expect("literal");
        // (1034 × 0.59 + 200 × 0.295 + 567 × 0.79) / 1e6 = (610.06 + 59 + 447.93) / 1e6 = 1116.99 / 1e6
        assert_eq!(r.cost(1234, 200, 567), expected.normalize());
        assert_eq!(
            rates(0.1, 0.2, None, Some(0.002)).cost(0, 0, 0),
            Decimal::from_str("0.002").expect("lit")
        );
        // Without a cached rate, cached tokens cost the input rate.
        assert_eq!(
            rates(3.0, 15.0, None, None).cost(1000, 400, 0),
            Decimal::from_str("0.003").expect("lit")
        );
        // Binary-unfriendly prices stay exact: 0.1 + 0.2 per million.
        assert_eq!(
            rates(0.1, 0.2, None, None).cost(1_000_000, 0, 1_000_000),
            Decimal::from_str("0.3").expect("lit")
        );
    }

    proptest! {
        /// More tokens of any kind, or a higher price, never costs less.
        #[test]
        fn cost_is_monotonic_in_tokens_and_prices(
            input in 0.0f64..500.0, output in 0.0f64..500.0, cached in 0.0f64..500.0,
            prompt in 0u64..2_000_000, cached_tokens in 0u64..2_000_000, completion in 0u64..2_000_000,
            more in 1u64..100_000, bump in 0.001f64..10.0,
        ) {
            let r = rates(input, output, Some(cached.min(input)), None);
            let base = r.cost(prompt, cached_tokens, completion);
            prop_assert!(base >= Decimal::ZERO);
            prop_assert!(r.cost(prompt + more, cached_tokens, completion) >= base);
            prop_assert!(r.cost(prompt, cached_tokens, completion + more) >= base);
            let dearer = rates(input + bump, output + bump, Some(cached.min(input) + bump), None);
            prop_assert!(dearer.cost(prompt, cached_tokens, completion) >= base);
        }
    }
}
