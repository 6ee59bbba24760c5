//! What a request asks for: the model (endpoint id, model, group or `auto`), whether it
//! streams, and the sizes the router estimates cost from.
//!
//! [`body`] reads the request bytes; [`RouteRequest`] is the small, owned summary handed to
//! the selector, which never sees JSON or HTTP.

pub mod body;

pub use body::{BodyError, ChatBody};

/// Average bytes of JSON-encoded messages per prompt token. English text runs about four
/// characters per token and the JSON framing adds a little; erring low overestimates
/// tokens, so cost estimates lean cautious.
const BYTES_PER_PROMPT_TOKEN: usize = 4;

/// The routing-relevant summary of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRequest {
    pub stream: bool,
    /// Estimated prompt tokens.
    pub prompt_tokens: u32,
    /// The completion cap the client set, if any.
    pub max_output_tokens: Option<u32>,
}

impl RouteRequest {
    pub fn from_body(body: &ChatBody<'_>) -> RouteRequest {
        let tokens = body.messages_bytes.div_ceil(BYTES_PER_PROMPT_TOKEN);
        RouteRequest {
            stream: body.stream,
            prompt_tokens: u32::try_from(tokens).unwrap_or(u32::MAX),
            max_output_tokens: body.max_output_tokens,
        }
    }
}
