//! Complete answers and error bodies: Anthropic's `message` as OpenAI's `chat.completion`,
//! and back.

use serde_json::{json, Map, Value};

use super::{finish_reason, stop_reason};

/// Anthropic `usage` as OpenAI `usage`: prompt tokens count cache reads and writes too, and
/// cache reads show as `cached_tokens`.
pub fn usage_to_openai(u: &Value) -> Value {
    let n = |k: &str| u[k].as_u64().unwrap_or(0);
    let read = n("cache_read_input_tokens");
    let prompt = n("input_tokens") + read + n("cache_creation_input_tokens");
    let completion = n("output_tokens");
    let mut out = json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read},
    });
    let written = n("cache_creation_input_tokens");
    if written > 0 {
        out["prompt_tokens_details"]["cache_write_tokens"] = json!(written);
    }
    out
}

/// OpenAI `usage` as Anthropic `usage` (uncached input, cache reads, output).
pub fn usage_from_openai(u: &Value) -> Value {
    let prompt = u["prompt_tokens"].as_u64().unwrap_or(0);
    let read = u["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0);
    let written = u["prompt_tokens_details"]["cache_write_tokens"]
        .as_u64()
        .unwrap_or(0);
    json!({
        "input_tokens": prompt.saturating_sub(read + written),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "output_tokens": u["completion_tokens"].as_u64().unwrap_or(0),
    })
}

/// An Anthropic `message` as an OpenAI `chat.completion` created at `created` (Unix s).
pub fn to_openai(a: &Value, created: u64) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    if let Some(blocks) = a["content"].as_array() {
        for b in blocks {
            match b["type"].as_str() {
                Some("text") => text.push_str(b["text"].as_str().unwrap_or("")),
                Some("tool_use") => calls.push(json!({
                    "id": b["id"], "type": "function",
                    "function": {"name": b["name"], "arguments": b["input"].to_string()},
                })),
                _ => {}
            }
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        if text.is_empty() && !calls.is_empty() {
            Value::Null
        } else {
            json!(text)
        },
    );
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    let finish = finish_reason(a["stop_reason"].as_str().unwrap_or("end_turn"));
    json!({
        "id": a["id"],
        "object": "chat.completion",
        "created": created,
        "model": a["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage_to_openai(&a["usage"]),
    })
}

/// An OpenAI `chat.completion` as an Anthropic `message` (its first choice).
pub fn from_openai(o: &Value) -> Value {
    let choice = &o["choices"][0];
    let m = &choice["message"];
    let mut content = Vec::new();
    match &m["content"] {
        Value::String(s) if !s.is_empty() => content.push(json!({"type": "text", "text": s})),
        Value::Array(parts) => {
            for p in parts.iter().filter(|p| p["type"] == "text") {
                content.push(json!({"type": "text", "text": p["text"]}));
            }
        }
        _ => {}
    }
    if let Some(calls) = m["tool_calls"].as_array() {
        for c in calls {
            let args = c["function"]["arguments"].as_str().unwrap_or("{}");
            let input = serde_json::from_str::<Value>(args).unwrap_or_else(|_| json!({}));
            content.push(json!({"type": "tool_use", "id": c["id"], "name": c["function"]["name"], "input": input}));
        }
    }
    let id = o["id"].as_str().unwrap_or("");
    json!({
        "id": message_id(id),
        "type": "message",
        "role": "assistant",
        "model": o["model"],
        "content": content,
        "stop_reason": stop_reason(choice["finish_reason"].as_str().unwrap_or("stop")),
        "stop_sequence": Value::Null,
        "usage": usage_from_openai(&o["usage"]),
    })
}

/// An Anthropic-style message id for an OpenAI one.
pub fn message_id(openai_id: &str) -> String {
    if openai_id.starts_with("msg_") {
        openai_id.to_owned()
    } else {
        format!("msg_{}", openai_id.trim_start_matches("chatcmpl-"))
    }
}

/// Anthropic's error `type` for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

/// An error body of either dialect as Anthropic's `{"type":"error","error":{type,message}}`.
pub fn error_to_anthropic(status: u16, body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if v["type"] == "error" {
        return v;
    }
    let message = v["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    json!({"type": "error", "error": {"type": error_type(status), "message": message}})
}

/// An error body of either dialect as OpenAI's `{"error":{message,type,param,code}}`.
pub fn error_to_openai(body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if v["type"] != "error" {
        if v["error"].is_object() {
            return v;
        }
        let text = String::from_utf8_lossy(body).into_owned();
        return json!({"error": {"message": text, "type": "upstream_error", "param": null, "code": null}});
    }
    json!({"error": {
        "message": v["error"]["message"],
        "type": v["error"]["type"],
        "param": null,
        "code": null,
    }})
}
