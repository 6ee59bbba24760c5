//! What a request needs of a model, read from its body: tools, a forced tool choice,
//! parallel tool calls, a JSON mode, image or PDF parts, reasoning options.
//!
//! Chat completions (and Anthropic clients' requests, which are planned in that form) and the
//! Responses API each say these in their own fields. Content parts are found without parsing
//! the prompt into a tree: a key such as `"image_url"` can only appear in the raw JSON as a
//! key or a whole string value, never inside a text (where its quotes would be escaped), so a
//! byte search over the prompt finds the parts that carry it.

use std::borrow::Cow;

use memchr::memmem;
use serde_json::value::RawValue;

use super::body::{ChatBody, Shape};
use crate::pricing::{Capabilities, Capability};

/// The capabilities `body`, a request of `shape`, needs.
pub fn of(body: &ChatBody<'_>, shape: Shape) -> Capabilities {
    let mut needs = Capabilities::NONE;
    let present = |name: &str| body.field(name).is_some_and(|v| v.get() != "null");
    if body.field("tools").is_some_and(non_empty_array) {
        needs = needs.with(Capability::Tools);
    }
    if body.field("tool_choice").is_some_and(forces_a_tool) {
        needs = needs.with(Capability::ToolChoice);
    }
    // Asking for parallel calls; `false` asks nothing a model without them cannot do.
    if body
        .field("parallel_tool_calls")
        .is_some_and(|v| v.get().trim() == "true")
    {
        needs = needs.with(Capability::ParallelToolCalls);
    }
    if present("reasoning_effort") || present("reasoning") {
        needs = needs.with(Capability::Reasoning);
    }
    let (format, prompt, image_keys, file_keys): (_, _, &[&str], &[&str]) = match shape {
        Shape::Chat => (
            body.field("response_format").and_then(format_type),
            body.field("messages"),
            &["\"image_url\""],
            &["\"file_data\"", "\"file_id\""],
        ),
        Shape::Responses => (
            body.field("text")
                .and_then(|t| serde_json::from_str::<TextField>(t.get()).ok())
                .and_then(|t| t.format)
                .map(|f| f.kind),
            body.field("input"),
            &["\"input_image\""],
            &["\"input_file\""],
        ),
        Shape::Completions => (None, None, &[], &[]),
    };
    match format.as_deref() {
        Some("json_object") => needs = needs.with(Capability::JsonObject),
        Some("json_schema") => needs = needs.with(Capability::JsonSchema),
        _ => {}
    }
    if let Some(prompt) = prompt.map(|p| p.get().as_bytes()) {
        let holds = |keys: &[&str]| {
            keys.iter()
                .any(|k| memmem::find(prompt, k.as_bytes()).is_some())
        };
        if holds(image_keys) {
            needs = needs.with(Capability::Vision);
        }
        if holds(file_keys) {
            needs = needs.with(Capability::Pdf);
        }
    }
    needs
}

/// What an Anthropic Messages request needs beyond what its chat form (which the planner
/// reads through [`of`]) shows: extended `thinking` (reasoning) and `document` blocks (PDF).
/// `fields` are its body's top-level fields ([`super::body::top_level`]).
pub fn of_anthropic(fields: &[(Cow<'_, str>, &RawValue)]) -> Capabilities {
    let mut needs = Capabilities::NONE;
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.get());
    if get("thinking").is_some_and(|t| t != "null" && !t.contains("\"disabled\"")) {
        needs = needs.with(Capability::Reasoning);
    }
    if get("messages").is_some_and(|m| typed(m.as_bytes(), b"\"document\"")) {
        needs = needs.with(Capability::Pdf);
    }
    needs
}

/// Whether `raw` holds a block whose `"type"` is `value` (a quoted string): an occurrence of
/// `value` preceded, white space aside, by `"type":`.
fn typed(raw: &[u8], value: &[u8]) -> bool {
    memmem::find_iter(raw, value).any(|at| {
        let before = raw[..at].trim_ascii_end();
        before
            .strip_suffix(b":")
            .is_some_and(|b| b.trim_ascii_end().ends_with(b"\"type\""))
    })
}

fn non_empty_array(raw: &RawValue) -> bool {
    let t = raw.get().trim();
    t.starts_with('[') && !t[1..].trim_start().starts_with(']')
}

/// A `tool_choice` that forces a call: `required` or a named tool (`auto` and `none` leave
/// the choice to the model).
fn forces_a_tool(raw: &RawValue) -> bool {
    !matches!(raw.get().trim(), "null" | "\"auto\"" | "\"none\"")
}

#[derive(serde::Deserialize)]
struct Format {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(serde::Deserialize)]
struct TextField {
    format: Option<Format>,
}

fn format_type(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<Format>(raw.get())
        .ok()
        .map(|f| f.kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn needs(body: serde_json::Value, shape: Shape) -> String {
        let bytes = body.to_string();
        let parsed = ChatBody::parse_as(bytes.as_bytes(), shape).expect("valid");
        of(&parsed, shape).to_string()
    }

    #[test]
    fn chat_bodies_say_what_they_need() {
        let msg = json!([{"role": "user", "content": "hi"}]);
        assert_eq!(
            needs(json!({"model": "m", "messages": msg}), Shape::Chat),
            ""
        );
        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        let body = json!({"model": "m", "messages": msg, "tools": tools, "tool_choice": "required",
            "parallel_tool_calls": true, "response_format": {"type": "json_schema", "json_schema": {}},
            "reasoning_effort": "low"});
        assert_eq!(
            needs(body, Shape::Chat),
            "tools, tool_choice, parallel_tool_calls, json_schema, reasoning"
        );
        let auto = json!({"model": "m", "messages": msg, "tools": [], "tool_choice": "auto", "parallel_tool_calls": false,
            "response_format": {"type": "json_object"}});
        assert_eq!(needs(auto, Shape::Chat), "json_object");
        let parts = json!([{"role": "user", "content": [
            {"type": "text", "text": "what is \"image_url\" in this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA"}}]}]);
        assert_eq!(
            needs(json!({"model": "m", "messages": parts}), Shape::Chat),
            "vision, pdf"
        );
        // The key's name inside a text is escaped, not a part.
        let text = json!([{"role": "user", "content": "send \"image_url\": {\"url\": 1}"}]);
        assert_eq!(
            needs(json!({"model": "m", "messages": text}), Shape::Chat),
            ""
        );
    }

    #[test]
    fn anthropic_thinking_and_documents_are_needs() {
        let body = json!({"model": "m", "max_tokens": 10,
            "thinking": {"type": "enabled", "budget_tokens": 2000},
            "messages": [{"role": "user", "content": [
                {"type" : "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "AAAA"}},
                {"type": "text", "text": "document"}]}]});
        let needs_of = |v: &serde_json::Value| {
            let text = v.to_string();
            let fields = crate::route::body::top_level(text.as_bytes()).expect("an object");
            of_anthropic(&fields).to_string()
        };
        assert_eq!(needs_of(&body), "pdf, reasoning");
        let plain = json!({"model": "m", "max_tokens": 10, "thinking": {"type": "disabled"},
            "messages": [{"role": "user", "content": "document"}]});
        assert_eq!(needs_of(&plain), "");
    }

    #[test]
    fn responses_bodies_say_what_they_need() {
        let input = json!([{"role": "user", "content": [
            {"type": "input_text", "text": "hi"},
            {"type": "input_image", "image_url": "https://example.invalid/cat.png"}]}]);
        let body = json!({"model": "m", "input": input, "tools": [{"type": "function", "name": "f"}],
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {}}},
            "reasoning": {"effort": "low"}});
        assert_eq!(
            needs(body, Shape::Responses),
            "tools, json_schema, vision, reasoning"
        );
        assert_eq!(
            needs(json!({"model": "m", "input": "hello"}), Shape::Responses),
            ""
        );
    }
}
