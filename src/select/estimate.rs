//! What a request is expected to cost at an endpoint, and how long its answer will run.
//!
//! Prompt tokens come from the size of `messages` and the bytes per token learned for the
//! endpoint's model from providers' usage reports. Output tokens are the request's
//! `max_tokens` when set (the most it can cost), else the mean of the model's learned
//! completion lengths, else [`DEFAULT_EXPECTED_OUTPUT_TOKENS`]; never more than the
//! endpoint's `max_output_tokens`. Scoring may use f64; accounting uses the provider's usage.

use serde::Serialize;

use crate::catalog::Endpoint;
use crate::route::RouteRequest;
use crate::stats::ModelStats;

/// Completion length assumed for a model nothing was learned about: a typical chat answer.
pub const DEFAULT_EXPECTED_OUTPUT_TOKENS: f64 = 300.0;

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Estimate {
    pub prompt_tokens: f64,
    pub output_tokens: f64,
    pub cost_usd: f64,
}

/// What an estimate needs from a model's statistics, read once under their lock: endpoints
/// serving the same model share one read within a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ModelFacts {
    pub bytes_per_token: f64,
    pub mean_output_tokens: Option<f64>,
}

impl ModelFacts {
    pub fn of(model: &ModelStats) -> ModelFacts {
        ModelFacts {
            bytes_per_token: model.bytes_per_token(),
            mean_output_tokens: model.mean_output_tokens(),
        }
    }
}

pub fn estimate(request: &RouteRequest, endpoint: &Endpoint, model: &ModelStats) -> Estimate {
    estimate_with(request, endpoint, ModelFacts::of(model))
}

pub(crate) fn estimate_with(
    request: &RouteRequest,
    endpoint: &Endpoint,
    model: ModelFacts,
) -> Estimate {
    let prompt_tokens = (request.messages_bytes as f64 / model.bytes_per_token).ceil();
    let mut output_tokens = match request.max_output_tokens {
        Some(max) => f64::from(max),
        None => model
            .mean_output_tokens
            .unwrap_or(DEFAULT_EXPECTED_OUTPUT_TOKENS),
    };
    if let Some(cap) = endpoint.price.max_output_tokens {
        output_tokens = output_tokens.min(f64::from(cap));
    }
    let p = &endpoint.price;
    let cost_usd = (prompt_tokens * p.input_per_mtok + output_tokens * p.output_per_mtok) / 1e6
        + p.per_request.unwrap_or(0.0);
    Estimate {
        prompt_tokens,
        output_tokens,
        cost_usd,
    }
}
