//! `cheapest`: lowest estimated cost first, ties broken by endpoint id.
//!
//! Static: it learns nothing, so it keeps trying a cheap endpoint that fails and relies on
//! fallback to recover each request. The baseline the learning selector must beat.

use rand::RngCore;

use super::{sorted_decision, Candidate, Context, Decision, Policy, Score};

#[derive(Debug, Clone, Copy, Default)]
pub struct Cheapest;

impl Policy for Cheapest {
    fn name(&self) -> &'static str {
        "cheapest"
    }

    fn decide(
        &self,
        ctx: &Context<'_>,
        candidates: &[Candidate],
        _rng: &mut dyn RngCore,
    ) -> Decision {
        let scored = candidates
            .iter()
            .map(|c| {
                let score = Score {
                    estimate: c.estimate,
                    feasible: true,
                    value: c.estimate.cost_usd,
                    ..Score::default()
                };
                (*c, score)
            })
            .collect();
        sorted_decision(self.name(), ctx, candidates, scored)
    }
}
