use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().expect("an object").clone()
}

#[test]
fn an_anthropic_request_becomes_an_openai_one() {
    let a = obj(json!({
        "model": "claude-x", "max_tokens": 300, "stream": true, "temperature": 0.2,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "stop_sequences": ["END"],
        "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "-3 C"}]},
                {"type": "text", "text": "And tomorrow?"}]},
        ],
    }));
    let o = Value::Object(to_openai(&a).expect("translates"));
    assert_eq!(o["max_tokens"], 300);
    assert_eq!(o["stream_options"], json!({"include_usage": true}));
    assert_eq!(o["stop"], json!(["END"]));
    assert_eq!(o["tool_choice"], "required");
    assert_eq!(o["parallel_tool_calls"], false);
    assert_eq!(
        o["tools"][0]["function"]["parameters"],
        json!({"type": "object"})
    );
    let m = o["messages"].as_array().expect("messages");
    assert_eq!(m[0], json!({"role": "system", "content": "Be brief."}));
    assert_eq!(
        m[1]["content"][1]["image_url"]["url"],
        "data:image/png;base64,AAA"
    );
    assert_eq!(m[2]["content"], "Let me check.");
    assert_eq!(
        m[2]["tool_calls"][0]["function"]["arguments"],
        r#"{"city":"Oslo"}"#
    );
    assert_eq!(
        m[3],
        json!({"role": "tool", "tool_call_id": "toolu_1", "content": "-3 C"})
    );
    assert_eq!(m[4], json!({"role": "user", "content": "And tomorrow?"}));
}

#[test]
fn what_cannot_be_translated_is_refused_with_its_field() {
    let with = |extra: Value| {
        let mut a = obj(
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
        );
        a.extend(obj(extra));
        to_openai(&a).expect_err("refused").field
    };
    assert_eq!(with(json!({"top_k": 5})), "top_k");
    assert_eq!(
        with(json!({"thinking": {"type": "enabled", "budget_tokens": 1024}})),
        "thinking"
    );
    assert_eq!(
        with(json!({"tools": [{"type": "web_search_20250305", "name": "web"}]})),
        "tools[0].type"
    );
    let doc =
        json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]});
    assert_eq!(with(doc), "messages[0].content[0].type");

    let o = |extra: Value| {
        let mut r = obj(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
        r.extend(obj(extra));
        from_openai(&r, 100)
    };
    assert_eq!(o(json!({"n": 2})).expect_err("refused").field, "n");
    assert_eq!(
        o(json!({"logprobs": true})).expect_err("refused").field,
        "logprobs"
    );
    assert_eq!(
        o(json!({"temperature": 1.5})).expect_err("refused").field,
        "temperature"
    );
    assert_eq!(
        o(json!({"response_format": {"type": "json_object"}}))
            .expect_err("refused")
            .field,
        "response_format"
    );
    // Defaults that ask for nothing are accepted.
    let ok = o(
        json!({"n": 1, "logprobs": false, "frequency_penalty": 0, "stream_options": {"include_usage": true}}),
    );
    assert_eq!(ok.expect("accepted")["max_tokens"], 100);
}

#[test]
fn an_openai_request_becomes_an_anthropic_one() {
    let r = obj(json!({
        "model": "claude-x", "max_completion_tokens": 50, "stop": "END", "user": "u1",
        "parallel_tool_calls": false,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Look"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
            {"role": "user", "content": "Thanks"},
        ],
    }));
    let a = Value::Object(from_openai(&r, 4096).expect("translates"));
    assert_eq!(a["max_tokens"], 50);
    assert_eq!(a["system"], "Be brief.");
    assert_eq!(a["stop_sequences"], json!(["END"]));
    assert_eq!(a["metadata"], json!({"user_id": "u1"}));
    assert_eq!(
        a["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(a["tools"][0]["input_schema"], json!({"type": "object"}));
    let m = a["messages"].as_array().expect("turns");
    assert_eq!(
        m.len(),
        3,
        "the tool result and the next user turn are one turn: {m:?}"
    );
    assert_eq!(
        m[0]["content"][1]["source"],
        json!({"type": "url", "url": "https://example.com/a.png"})
    );
    assert_eq!(
        m[1]["content"][0],
        json!({"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}})
    );
    assert_eq!(
        m[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "call_1", "content": "42"})
    );
    assert_eq!(
        m[2]["content"][1],
        json!({"type": "text", "text": "Thanks"})
    );
}

/// A conversation in Anthropic's form: alternating turns of text, images, tool calls and
/// their results.
fn conversation() -> impl Strategy<Value = Map<String, Value>> {
    let text = "[a-zA-Z0-9 .,!?é]{1,20}";
    let turn = (
        text,
        prop::option::of(("[a-z_]{1,8}", 0u32..100)),
        prop::bool::ANY,
    );
    (
        prop::option::of(text),
        prop::collection::vec(turn, 1..6),
        prop::bool::ANY,
    )
        .prop_map(|(system, turns, stream)| {
            let mut messages = Vec::new();
            for (i, (t, call, image)) in turns.into_iter().enumerate() {
                let mut user = vec![json!({"type": "text", "text": t})];
                if image {
                    user.push(json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}}));
                }
                messages.push(json!({"role": "user", "content": user}));
                let mut assistant = vec![json!({"type": "text", "text": format!("answer {i}")})];
                if let Some((name, x)) = &call {
                    assistant.push(json!({"type": "tool_use", "id": format!("toolu_{i}"), "name": name, "input": {"x": x}}));
                }
                messages.push(json!({"role": "assistant", "content": assistant}));
                if call.is_some() {
                    messages.push(json!({"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": format!("toolu_{i}"), "content": format!("result {i}")}]}));
                }
            }
            let mut req = obj(json!({"model": "m", "max_tokens": 64, "stream": stream, "messages": messages}));
            if let Some(s) = system {
                req.insert("system".into(), json!(s));
            }
            req
        })
}

/// What a conversation says, dialect aside: per turn, its role, texts, images, tool calls
/// and tool results, in order.
fn essence(anthropic: &Map<String, Value>) -> Vec<(String, Vec<Value>)> {
    let mut out = Vec::new();
    if let Some(s) = anthropic.get("system") {
        out.push(("system".to_owned(), vec![s.clone()]));
    }
    for m in anthropic["messages"].as_array().expect("turns") {
        let role = m["role"].as_str().expect("role").to_owned();
        let blocks: Vec<Value> = match &m["content"] {
            Value::String(s) => vec![json!(["text", s])],
            Value::Array(b) => b
                .iter()
                .map(|b| match b["type"].as_str() {
                    Some("text") => json!(["text", b["text"]]),
                    Some("image") => json!(["image", b["source"]["data"]]),
                    Some("tool_use") => json!(["call", b["id"], b["name"], b["input"]]),
                    Some("tool_result") => json!(["result", b["tool_use_id"], b["content"]]),
                    _ => json!(["?"]),
                })
                .collect(),
            _ => vec![],
        };
        match out.last_mut() {
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    out
}

proptest! {
    #[test]
    fn any_conversation_survives_the_round_trip(a in conversation()) {
        let o = to_openai(&a).expect("an Anthropic conversation translates");
        // A valid OpenAI request: roles known, tool messages answer earlier calls.
        let mut called = std::collections::HashSet::new();
        for m in o["messages"].as_array().expect("messages") {
            match m["role"].as_str() {
                Some("assistant") => for c in m["tool_calls"].as_array().into_iter().flatten() {
                    called.insert(c["id"].as_str().expect("id").to_owned());
                    serde_json::from_str::<Value>(c["function"]["arguments"].as_str().expect("string")).expect("JSON arguments");
                },
                Some("tool") => prop_assert!(called.contains(m["tool_call_id"].as_str().expect("id"))),
                Some("system" | "user") => {}
                other => prop_assert!(false, "role {other:?}"),
            }
        }
        let back = from_openai(&o, 1).expect("and back");
        prop_assert_eq!(essence(&back), essence(&a));
        prop_assert_eq!(&back["max_tokens"], &a["max_tokens"]);
    }
}
