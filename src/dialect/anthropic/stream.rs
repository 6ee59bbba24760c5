//! Streams: Anthropic's events as OpenAI chunks, and OpenAI chunks as Anthropic's events.
//! Both are state machines fed one SSE event at a time (its payload, already split from
//! the byte stream) and answering the events to send on, as SSE bytes; content is never
//! split, merged or reordered, only re-framed.

use serde_json::{json, Value};

use super::answer::{message_id, usage_from_openai, usage_to_openai};
use super::{finish_reason, stop_reason};

fn openai_event(v: &Value) -> Vec<u8> {
    format!("data: {v}\n\n").into_bytes()
}

fn anthropic_event(v: &Value) -> Vec<u8> {
    let name = v["type"].as_str().unwrap_or("message");
    format!("event: {name}\ndata: {v}\n\n").into_bytes()
}

/// Anthropic events → OpenAI `chat.completion.chunk`s (for an OpenAI client served by an
/// Anthropic-protocol provider).
#[derive(Debug, Default)]
pub struct ToOpenAi {
    id: String,
    model: Value,
    created: u64,
    /// Anthropic content block index → OpenAI tool call index, for tool-use blocks.
    tools: Vec<(u64, usize)>,
    usage: Value,
    finish: Option<&'static str>,
    done: bool,
}

impl ToOpenAi {
    pub fn new(created: u64) -> ToOpenAi {
        ToOpenAi {
            created,
            usage: json!({}),
            ..ToOpenAi::default()
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    }

    /// Translates one event's JSON payload; appends what to send to `out`.
    pub fn event(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let Ok(v) = serde_json::from_slice::<Value>(payload) else {
            return;
        };
        match v["type"].as_str() {
            Some("message_start") => {
                let m = &v["message"];
                self.id = m["id"].as_str().unwrap_or("").to_owned();
                self.model = m["model"].clone();
                merge(&mut self.usage, &m["usage"]);
                out.extend(openai_event(
                    &self.chunk(json!({"role": "assistant", "content": ""}), None),
                ));
            }
            Some("content_block_start") => {
                let b = &v["content_block"];
                if b["type"] == "tool_use" {
                    let index = self.tools.len();
                    self.tools.push((v["index"].as_u64().unwrap_or(0), index));
                    let call = json!({"index": index, "id": b["id"], "type": "function",
                        "function": {"name": b["name"], "arguments": ""}});
                    out.extend(openai_event(
                        &self.chunk(json!({"tool_calls": [call]}), None),
                    ));
                } else if b["type"] == "text" && b["text"].as_str().is_some_and(|t| !t.is_empty()) {
                    out.extend(openai_event(
                        &self.chunk(json!({"content": b["text"]}), None),
                    ));
                }
            }
            Some("content_block_delta") => {
                let d = &v["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => out.extend(openai_event(
                        &self.chunk(json!({"content": d["text"]}), None),
                    )),
                    Some("input_json_delta") => {
                        let block = v["index"].as_u64().unwrap_or(0);
                        if let Some(&(_, index)) = self.tools.iter().find(|(b, _)| *b == block) {
                            let call = json!({"index": index, "function": {"arguments": d["partial_json"]}});
                            out.extend(openai_event(
                                &self.chunk(json!({"tool_calls": [call]}), None),
                            ));
                        }
                    }
                    // Reasoning and its signature have no place in an OpenAI chunk.
                    _ => {}
                }
            }
            Some("message_delta") => {
                if let Some(r) = v["delta"]["stop_reason"].as_str() {
                    self.finish = Some(finish_reason(r));
                }
                merge(&mut self.usage, &v["usage"]);
            }
            Some("message_stop") => self.finish(out),
            Some("error") => {
                out.extend(openai_event(&json!({"error": {
                    "message": v["error"]["message"], "type": v["error"]["type"]}})));
            }
            _ => {}
        }
    }

    /// The last chunks (finish reason, usage, `[DONE]`), once.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.done = true;
        let finish = self.finish.unwrap_or("stop");
        out.extend(openai_event(&self.chunk(json!({}), Some(finish))));
        let mut usage = self.chunk(json!({}), None);
        usage["choices"] = json!([]);
        usage["usage"] = usage_to_openai(&self.usage);
        out.extend(openai_event(&usage));
        out.extend(b"data: [DONE]\n\n");
    }
}

/// Sets `into`'s fields from `from`'s (Anthropic sends usage in parts).
fn merge(into: &mut Value, from: &Value) {
    if let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in from {
            if !v.is_null() {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// What kind of content block is open.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Text,
    Tool(u64),
}

/// OpenAI chunks → Anthropic events (for an Anthropic client served by an OpenAI-protocol
/// provider). The input must carry the usage chunk (the router asks for it).
#[derive(Debug, Default)]
pub struct FromOpenAi {
    started: bool,
    /// Blocks opened so far, and the one open now.
    blocks: u64,
    open: Option<Open>,
    stop: Option<&'static str>,
    usage: Option<Value>,
    done: bool,
}

impl FromOpenAi {
    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open.take().is_some() {
            let index = self.blocks - 1;
            out.extend(anthropic_event(
                &json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    fn open(&mut self, kind: Open, block: Value, out: &mut Vec<u8>) {
        self.close(out);
        let index = self.blocks;
        self.blocks += 1;
        self.open = Some(kind);
        out.extend(anthropic_event(
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
    }

    /// Translates one event's payload (a chunk, `[DONE]`, or an error); appends what to send.
    pub fn event(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        if payload.trim_ascii() == b"[DONE]" {
            return self.finish(out);
        }
        let Ok(v) = serde_json::from_slice::<Value>(payload) else {
            return;
        };
        if v["error"].is_object() {
            let e = json!({"type": "error", "error": {"type": "api_error", "message": v["error"]["message"]}});
            out.extend(anthropic_event(&e));
            return;
        }
        if !self.started {
            self.started = true;
            let id = message_id(v["id"].as_str().unwrap_or(""));
            let start = json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": v["model"],
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0}}});
            out.extend(anthropic_event(&start));
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage_from_openai(u));
        }
        let Some(choice) = v["choices"].get(0) else {
            return;
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            if self.open != Some(Open::Text) {
                self.open(Open::Text, json!({"type": "text", "text": ""}), out);
            }
            let index = self.blocks - 1;
            out.extend(anthropic_event(
                &json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "text_delta", "text": text}}),
            ));
        }
        if let Some(calls) = delta["tool_calls"].as_array() {
            for c in calls {
                let k = c["index"].as_u64().unwrap_or(0);
                if self.open != Some(Open::Tool(k)) {
                    let block = json!({"type": "tool_use", "id": c["id"], "name": c["function"]["name"], "input": {}});
                    self.open(Open::Tool(k), block, out);
                }
                if let Some(args) = c["function"]["arguments"]
                    .as_str()
                    .filter(|a| !a.is_empty())
                {
                    let index = self.blocks - 1;
                    out.extend(anthropic_event(
                        &json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": args}}),
                    ));
                }
            }
        }
        if let Some(r) = choice["finish_reason"].as_str() {
            self.stop = Some(stop_reason(r));
        }
    }

    /// Closes the message (`message_delta` with the stop reason and usage, `message_stop`),
    /// once; nothing if the stream never started.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.done || !self.started {
            return;
        }
        self.done = true;
        self.close(out);
        let usage = self
            .usage
            .take()
            .unwrap_or_else(|| json!({"output_tokens": 0}));
        out.extend(anthropic_event(&json!({"type": "message_delta",
            "delta": {"stop_reason": self.stop.unwrap_or("end_turn"), "stop_sequence": null},
            "usage": usage})));
        out.extend(anthropic_event(&json!({"type": "message_stop"})));
    }
}

#[cfg(test)]
mod tests;
