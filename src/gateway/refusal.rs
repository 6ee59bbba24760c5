//! Which provider refusals are about the model rather than the request: a 400 (or 422) saying
//! a parameter is not supported. Another model may well take the same request, so the router
//! tries the next candidate instead of relaying the refusal, and counts it under its own
//! class (`unsupported`), which does not count against the endpoint's health.
//!
//! The known shapes, each tested: OpenAI's `error.code` `unsupported_parameter` /
//! `unsupported_value`; and, in OpenAI's or Anthropic's `error.message`, or a top-level
//! `message` / `detail` (vLLM, FastAPI servers), the phrases providers use for it.

use serde_json::Value;

/// Phrases (lower case) that say a parameter or value is not supported.
const PHRASES: [&str; 9] = [
    "unsupported parameter",
    "unsupported value",
    "is not supported",
    "are not supported",
    "does not support",
    "not supported by this model",
    "extra inputs are not permitted",
    "unrecognized request argument",
    "unknown parameter",
];

/// Whether a provider's refusal with `status` and `body` says a parameter is not supported.
pub(crate) fn unsupported_parameter(status: u16, body: &[u8]) -> bool {
    if !matches!(status, 400 | 422) {
        return false;
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let error = &v["error"];
    if matches!(
        error["code"].as_str(),
        Some("unsupported_parameter" | "unsupported_value")
    ) {
        return true;
    }
    let says_so = [&error["message"], &v["message"], &v["detail"]]
        .into_iter()
        .filter_map(Value::as_str)
        .any(|m| {
            let m = m.to_lowercase();
            PHRASES.iter().any(|p| m.contains(p))
        });
    says_so
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_known_shapes_are_recognised() {
        let yes = [
            // OpenAI.
            r#"{"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}}"#,
            r#"{"error": {"message": "Unsupported value: 'temperature' does not support 0.2 with this model.", "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}}"#,
            // Anthropic.
            r#"{"type": "error", "error": {"type": "invalid_request_error", "message": "tools.0.strict: Extra inputs are not permitted"}}"#,
            // OpenAI-compatible servers.
            r#"{"error": {"message": "response_format json_schema is not supported by this model", "type": "invalid_request_error"}}"#,
            r#"{"object": "error", "message": "This model does not support tools", "type": "BadRequestError", "code": 400}"#,
            r#"{"detail": "Unrecognized request argument supplied: parallel_tool_calls"}"#,
        ];
        for body in yes {
            assert!(unsupported_parameter(400, body.as_bytes()), "{body}");
        }
        let no = [
            (
                400,
                r#"{"error": {"message": "messages: at least one message is required", "type": "invalid_request_error"}}"#,
            ),
            (
                400,
                r#"{"error": {"message": "This model's maximum context length is 8192 tokens", "code": "context_length_exceeded"}}"#,
            ),
            (400, "not json"),
            // Not a 400: a provider that refuses us is failed over as `refused` elsewhere.
            (
                403,
                r#"{"error": {"message": "tools are not supported on your plan"}}"#,
            ),
        ];
        for (status, body) in no {
            assert!(!unsupported_parameter(status, body.as_bytes()), "{body}");
        }
    }
}
