//! `cheapest`: lowest estimated cost at list prices first, ties broken by endpoint id.
//!
//! Static: it learns nothing, so it keeps trying a cheap endpoint that fails and relies on
//! fallback to recover each request. It is the baseline the learning selector must beat and
//! the simplest correct default until statistics exist.

use rand::RngCore;

use super::{estimate_cost_usd, Decision, Policy};
use crate::catalog::{Catalog, EndpointIdx};
use crate::route::RouteRequest;

#[derive(Debug, Clone, Copy, Default)]
pub struct Cheapest;

impl Policy for Cheapest {
    fn name(&self) -> &'static str {
        "cheapest"
    }

    fn decide(
        &self,
        request: &RouteRequest,
        candidates: &[EndpointIdx],
        catalog: &Catalog,
        _now_ns: u64,
        _rng: &mut dyn RngCore,
    ) -> Decision {
        let mut scored: Vec<(f64, EndpointIdx)> = candidates
            .iter()
            .map(|&i| (estimate_cost_usd(&catalog.endpoint(i).price, request), i))
            .collect();
        scored.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then_with(|| catalog.endpoint(a.1).id.cmp(&catalog.endpoint(b.1).id))
        });
        Decision {
            policy: self.name(),
            ranked: scored.iter().map(|s| s.1).collect(),
            scores: scored.iter().map(|s| s.0).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::pricing::PriceSheet;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use std::path::Path;

    fn catalog(prices: &[(f64, f64)]) -> Catalog {
        let mut text = "provider = \"p\"\neffective = \"2026-11-01\"\nsource = \"x\"\n".to_owned();
        for (i, (inp, out)) in prices.iter().enumerate() {
            text.push_str(&format!(
                "[models.m{i}]\ninput_per_mtok = {inp:?}\noutput_per_mtok = {out:?}\n"
            ));
        }
        let sheet = PriceSheet::parse(&text, Path::new("p.toml")).expect("valid sheet");
        let config = Config::parse(
            "[server]\n[[providers]]\nname = \"p\"\nbase_url = \"http://p\"\n",
            Path::new("t.toml"),
        )
        .expect("valid config");
        Catalog::build(&config, &[sheet], |_| None).expect("builds")
    }

    proptest! {
        /// Every candidate is ranked exactly once, in non-decreasing estimated cost.
        #[test]
        fn ranks_every_candidate_once_by_cost(
            prices in proptest::collection::vec((0.0f64..100.0, 0.0f64..100.0), 1..20),
            prompt in 0u32..100_000,
            max_out in proptest::option::of(1u32..10_000),
        ) {
            let c = catalog(&prices);
            let req = RouteRequest { stream: false, prompt_tokens: prompt, max_output_tokens: max_out };
            let all = c.resolve("auto").expect("auto").to_vec();
            let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
            let d = Cheapest.decide(&req, &all, &c, 0, &mut rng);
            let mut sorted = d.ranked.clone();
            sorted.sort_unstable();
            prop_assert_eq!(sorted, all);
            prop_assert!(d.scores.windows(2).all(|w| w[0] <= w[1]));
            for (i, &idx) in d.ranked.iter().enumerate() {
                prop_assert_eq!(d.scores[i], estimate_cost_usd(&c.endpoint(idx).price, &req));
            }
        }
    }

    #[test]
    fn output_price_matters_more_for_long_answers() {
        // m0: cheap input, dear output; m1: the reverse.
        let c = catalog(&[(0.1, 10.0), (5.0, 0.5)]);
        let all = c.resolve("auto").expect("auto").to_vec();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let long_answer = RouteRequest {
            stream: false,
            prompt_tokens: 100,
            max_output_tokens: Some(4000),
        };
        let long_prompt = RouteRequest {
            stream: false,
            prompt_tokens: 50_000,
            max_output_tokens: Some(10),
        };
        assert_eq!(
            c.endpoint(Cheapest.decide(&long_answer, &all, &c, 0, &mut rng).ranked[0])
                .id,
            "p/m1"
        );
        assert_eq!(
            c.endpoint(Cheapest.decide(&long_prompt, &all, &c, 0, &mut rng).ranked[0])
                .id,
            "p/m0"
        );
    }
}
