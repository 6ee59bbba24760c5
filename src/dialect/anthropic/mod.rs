//! Anthropic's Messages API ↔ OpenAI's chat completions: requests ([`request`]), complete
//! answers ([`answer`]) and streams ([`stream`]).
//!
//! | Anthropic | OpenAI |
//! |---|---|
//! | `system` (string or text blocks) | a leading `system` message |
//! | `text`, `image` (base64 or URL) blocks | `text`, `image_url` parts (data: URLs) |
//! | `tool_use` blocks of an assistant turn | `tool_calls` |
//! | `tool_result` blocks of a user turn | `tool` messages |
//! | `tools[].input_schema` | `tools[].function.parameters` |
//! | `tool_choice` `auto` / `any` / `tool` / `none` | `auto` / `required` / function / `none` |
//! | `stop_sequences` | `stop` |
//! | `max_tokens` (required) | `max_completion_tokens` / `max_tokens` |
//! | `stop_reason` `end_turn` / `max_tokens` / `tool_use` / `stop_sequence` | `finish_reason` `stop` / `length` / `tool_calls` / `stop` |
//! | `usage.input_tokens` + cache reads + cache writes, `output_tokens` | `usage.prompt_tokens` (with `cached_tokens`), `completion_tokens` |

pub mod answer;
pub mod request;
pub mod stream;

/// `anthropic-version` sent to Anthropic-protocol providers unless configured.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// `max_tokens` sent to an Anthropic-protocol provider when an OpenAI client gave none
/// (Anthropic requires it).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Anthropic's `stop_reason` for an OpenAI `finish_reason`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        _ => "end_turn",
    }
}

/// OpenAI's `finish_reason` for an Anthropic `stop_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}
