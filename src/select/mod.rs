//! Choosing endpoints: the [`Policy`] trait and its implementations.
//!
//! A policy ranks the candidate endpoints of one request: the first is tried first, the rest
//! are the fallback order. Policies are pure: the time comes in as `now_ns` (nanoseconds
//! since the router's epoch) and randomness as `&mut dyn RngCore`, so the same code runs in
//! the live gateway and, deterministically, in tests and simulations. Nothing here knows
//! about HTTP or tokio.

mod cheapest;

use rand::RngCore;

use crate::catalog::{Catalog, EndpointIdx};
use crate::config::PolicyName;
use crate::pricing::ModelPrice;
use crate::route::RouteRequest;

pub use cheapest::Cheapest;

/// Completion length assumed when a request sets no `max_tokens`: a typical chat answer.
/// Used only to compare prices; accounting uses the tokens the provider reports.
pub const DEFAULT_EXPECTED_OUTPUT_TOKENS: u32 = 300;

/// A ranked choice among candidates, with the scores behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The policy that decided.
    pub policy: &'static str,
    /// Candidates in the order to try them; each appears once.
    pub ranked: Vec<EndpointIdx>,
    /// `scores[i]` is the score of `ranked[i]`; its meaning depends on the policy
    /// (for `cheapest`, the estimated cost in USD).
    pub scores: Vec<f64>,
}

/// Ranks the candidate endpoints of a request.
pub trait Policy: Send + Sync {
    fn name(&self) -> &'static str;

    /// `candidates` is non-empty and holds each endpoint once.
    fn decide(
        &self,
        request: &RouteRequest,
        candidates: &[EndpointIdx],
        catalog: &Catalog,
        now_ns: u64,
        rng: &mut dyn RngCore,
    ) -> Decision;
}

/// The policy a config names.
pub fn from_name(name: PolicyName) -> Box<dyn Policy> {
    match name {
        PolicyName::Cheapest => Box::new(Cheapest),
    }
}

/// Estimated USD cost of a request at an endpoint's list prices.
pub fn estimate_cost_usd(price: &ModelPrice, request: &RouteRequest) -> f64 {
    let output = request
        .max_output_tokens
        .unwrap_or(DEFAULT_EXPECTED_OUTPUT_TOKENS);
    (f64::from(request.prompt_tokens) * price.input_per_mtok
        + f64::from(output) * price.output_per_mtok)
        / 1e6
        + price.per_request.unwrap_or(0.0)
}
