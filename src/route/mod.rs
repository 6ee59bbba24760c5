//! What a request asks for: the model (endpoint id, model, group or `auto`), whether it
//! streams, how large it is, and the routing hints of every source ([`hints`]).
//!
//! [`body`] reads the request bytes; [`RouteRequest`] is the small, owned summary handed to
//! the selector, which never sees JSON or HTTP.

pub mod body;
pub mod hints;
pub mod needs;
pub(crate) mod preset;

pub use body::{BodyError, ChatBody};
pub use hints::{Constraints, HintError, LatencyMetric, Prefer};

/// The routing-relevant summary of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRequest {
    pub stream: bool,
    /// Size of the raw `messages` array in bytes: the prompt-size estimate starts here.
    pub messages_bytes: usize,
    /// The completion cap the client set, if any.
    pub max_output_tokens: Option<u32>,
    pub constraints: Constraints,
    /// What is asked: a chat answer (the default) or embeddings.
    pub operation: Operation,
}

/// What a request asks of an endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// A chat answer (OpenAI's chat completions, Anthropic's messages).
    #[default]
    Chat,
    /// Embedding vectors (`POST /v1/embeddings`).
    Embeddings,
    /// Legacy text completions (`POST /v1/completions`).
    Completions,
    /// The Responses API (`POST /v1/responses`).
    Responses,
}

impl RouteRequest {
    pub fn new(body: &ChatBody<'_>, constraints: Constraints) -> RouteRequest {
        RouteRequest {
            stream: body.stream,
            messages_bytes: body.messages_bytes,
            max_output_tokens: body.max_output_tokens,
            constraints,
            operation: Operation::Chat,
        }
    }
}

impl Default for Constraints {
    fn default() -> Self {
        Constraints {
            prefer: Prefer::Cost,
            metric: LatencyMetric::Total,
            latency: Vec::new(),
            throughput: Vec::new(),
            min_quality: None,
            max_cost_usd: None,
            max_price: hints::MaxPrice::default(),
            only: Vec::new(),
            ignore: Vec::new(),
            order: Vec::new(),
            max_attempts: None,
            allow_fallbacks: true,
            fallback_models: Vec::new(),
            merge_models: false,
            needs: crate::pricing::Capabilities::NONE,
            require_parameters: false,
            hedge: None,
        }
    }
}
