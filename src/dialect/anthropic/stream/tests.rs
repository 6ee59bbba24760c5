//! SSE translation never splits, merges or reorders content.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

/// A piece of streamed content: text, or a fragment of tool call `k`'s arguments.
#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Args(usize, String),
}

fn pieces() -> impl Strategy<Value = Vec<Piece>> {
    let piece = prop_oneof![
        3 => "[a-z é\\n\"{}]{1,6}".prop_map(Piece::Text),
        1 => (0usize..3, "[a-z0-9:,\"{}]{1,5}").prop_map(|(k, s)| Piece::Args(k, s)),
    ];
    // Tool calls come after the text and in index order, as providers send them.
    prop::collection::vec(piece, 0..30).prop_map(|mut v| {
        v.sort_by_key(|p| match p {
            Piece::Text(_) => 0,
            Piece::Args(k, _) => 1 + *k,
        });
        v
    })
}

/// Splits SSE bytes into `(event name, JSON payload)`.
fn events(bytes: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(bytes).expect("utf8");
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = String::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.to_owned();
                }
            }
            let v = if data == "[DONE]" {
                json!("[DONE]")
            } else {
                serde_json::from_str(&data).expect("JSON data")
            };
            (name, v)
        })
        .collect()
}

/// Text and per-call arguments, as an OpenAI client would put them together.
fn from_chunks(bytes: &[u8]) -> (String, Vec<String>, Option<String>) {
    let (mut text, mut args, mut finish) = (String::new(), Vec::<String>::new(), None);
    for (_, v) in events(bytes) {
        let Some(c) = v["choices"].get(0) else {
            continue;
        };
        if let Some(t) = c["delta"]["content"].as_str() {
            text.push_str(t);
        }
        for call in c["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let k = call["index"].as_u64().expect("index") as usize;
            while args.len() <= k {
                args.push(String::new());
            }
            args[k].push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(f) = c["finish_reason"].as_str() {
            finish = Some(f.to_owned());
        }
    }
    (text, args, finish)
}

/// Text and per-tool-block arguments, as an Anthropic client would put them together;
/// checks the event grammar on the way.
fn from_events(bytes: &[u8]) -> (String, Vec<String>, Option<String>) {
    let (mut text, mut args, mut stop) = (String::new(), Vec::new(), None);
    let mut kinds: Vec<String> = Vec::new();
    let mut open: Option<u64> = None;
    for (name, v) in events(bytes) {
        assert_eq!(
            name,
            v["type"].as_str().expect("type"),
            "event name matches its type"
        );
        kinds.push(name.clone());
        match name.as_str() {
            "content_block_start" => {
                assert!(open.is_none(), "a block starts while another is open");
                open = v["index"].as_u64();
                if v["content_block"]["type"] == "tool_use" {
                    args.push(String::new());
                }
            }
            "content_block_delta" => {
                assert_eq!(v["index"].as_u64(), open, "a delta outside its block");
                match v["delta"]["type"].as_str() {
                    Some("text_delta") => text.push_str(v["delta"]["text"].as_str().expect("text")),
                    Some("input_json_delta") => args
                        .last_mut()
                        .expect("a tool block")
                        .push_str(v["delta"]["partial_json"].as_str().expect("json")),
                    other => panic!("delta {other:?}"),
                }
            }
            "content_block_stop" => {
                assert_eq!(v["index"].as_u64(), open);
                open = None;
            }
            "message_delta" => stop = v["delta"]["stop_reason"].as_str().map(str::to_owned),
            _ => {}
        }
    }
    if !kinds.is_empty() {
        assert_eq!(kinds.first().map(String::as_str), Some("message_start"));
        assert_eq!(kinds.last().map(String::as_str), Some("message_stop"));
    }
    (text, args, stop)
}

fn openai_stream(pieces: &[Piece]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut started = std::collections::BTreeSet::new();
    for p in pieces {
        let delta = match p {
            Piece::Text(t) => json!({"content": t}),
            Piece::Args(k, s) if started.insert(*k) => {
                json!({"tool_calls": [{"index": k, "id": format!("call_{k}"), "type": "function", "function": {"name": "f", "arguments": s}}]})
            }
            Piece::Args(k, s) => {
                json!({"tool_calls": [{"index": k, "function": {"arguments": s}}]})
            }
        };
        out.push(serde_json::to_vec(&json!({"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})).expect("json"));
    }
    let finish = if started.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    out.push(serde_json::to_vec(&json!({"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})).expect("json"));
    out.push(serde_json::to_vec(&json!({"id": "chatcmpl-1", "model": "m", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}})).expect("json"));
    out.push(b"[DONE]".to_vec());
    out
}

fn expected(pieces: &[Piece]) -> (String, Vec<String>) {
    let text = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let mut args: Vec<(usize, String)> = Vec::new();
    for p in pieces {
        if let Piece::Args(k, s) = p {
            match args.iter_mut().find(|(i, _)| i == k) {
                Some((_, a)) => a.push_str(s),
                None => args.push((*k, s.clone())),
            }
        }
    }
    (text, args.into_iter().map(|(_, a)| a).collect())
}

proptest! {
    #[test]
    fn openai_chunks_become_anthropic_events_with_the_same_content(p in pieces()) {
        let mut t = FromOpenAi::default();
        let mut out = Vec::new();
        for payload in openai_stream(&p) {
            t.event(&payload, &mut out);
        }
        t.finish(&mut out);
        let (text, args, stop) = from_events(&out);
        let (want_text, want_args) = expected(&p);
        prop_assert_eq!(text, want_text);
        prop_assert_eq!(args, want_args.clone());
        let want_stop = if want_args.is_empty() { "end_turn" } else { "tool_use" };
        prop_assert_eq!(stop.as_deref(), Some(want_stop));
    }

    #[test]
    fn and_back_to_openai_chunks_with_the_same_content(p in pieces()) {
        let mut there = FromOpenAi::default();
        let mut anthropic = Vec::new();
        for payload in openai_stream(&p) {
            there.event(&payload, &mut anthropic);
        }
        let mut back = ToOpenAi::new(1);
        let mut openai = Vec::new();
        for (_, v) in events(&anthropic) {
            back.event(v.to_string().as_bytes(), &mut openai);
        }
        let (text, args, finish) = from_chunks(&openai);
        let (want_text, want_args) = expected(&p);
        prop_assert_eq!(text, want_text);
        prop_assert_eq!(args, want_args.clone());
        let want_finish = if want_args.is_empty() { "stop" } else { "tool_calls" };
        prop_assert_eq!(finish.as_deref(), Some(want_finish));
        prop_assert!(openai.ends_with(b"data: [DONE]\n\n"));
    }
}

#[test]
fn usage_and_errors_cross_over() {
    let mut t = ToOpenAi::new(7);
    let mut out = Vec::new();
    t.event(br#"{"type":"message_start","message":{"id":"msg_1","model":"claude","usage":{"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":1}}}"#, &mut out);
    t.event(br#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":33}}"#, &mut out);
    t.event(br#"{"type":"message_stop"}"#, &mut out);
    let all = events(&out);
    let usage = &all[all.len() - 2].1["usage"];
    assert_eq!(usage["prompt_tokens"], 100);
    assert_eq!(usage["completion_tokens"], 33);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 90);
    assert_eq!(
        all[all.len() - 3].1["choices"][0]["finish_reason"],
        "length"
    );

    let mut f = FromOpenAi::default();
    let mut out = Vec::new();
    f.event(br#"{"error":{"message":"overloaded"}}"#, &mut out);
    let (name, v) = &events(&out)[0];
    assert_eq!(name, "error");
    assert_eq!(v["error"]["message"], "overloaded");
}
