use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};

fn parse(v: &Value) -> Result<Value, BodyError> {
    let bytes = v.to_string().into_bytes();
    let body = ChatBody::parse(&bytes)?;
    Ok(serde_json::from_slice(&body.upstream_body("up-model")).expect("upstream is JSON"))
}

#[test]
fn upstream_body_swaps_model_and_keeps_everything_else() {
    let req = json!({"model": "groq/llama", "messages": [{"role": "user", "content": "hi \"there\" \u{e9}"}], "temperature": 0.2, "tools": [{"type": "function"}]});
    let up = parse(&req).expect("valid");
    let mut expected = req.clone();
    expected["model"] = json!("up-model");
    assert_eq!(up, expected);
}

#[test]
fn routing_fields_never_go_upstream() {
    let req = json!({"model": "m", "messages": [{}], "route": {"prefer": "latency"}, "provider": {"order": ["a"]}, "models": ["x"], "top_p": 1});
    let up = parse(&req).expect("valid");
    assert_eq!(
        up,
        json!({"model": "up-model", "messages": [{}], "top_p": 1})
    );
    let only_models = br#"{"models": ["first", "second"], "messages": [{}]}"#;
    assert_eq!(ChatBody::parse(only_models).expect("valid").model, "first");
}

#[test]
fn streams_ask_upstream_for_usage_and_keep_other_options() {
    let up = parse(&json!({"model": "m", "messages": [{}], "stream": true})).expect("valid");
    assert_eq!(up["stream_options"], json!({"include_usage": true}));
    let req = json!({"model": "m", "messages": [{}], "stream": true, "stream_options": {"include_usage": false, "x": 1}});
    let up = parse(&req).expect("valid");
    assert_eq!(up["stream_options"], json!({"include_usage": true, "x": 1}));
    let bytes = req.to_string();
    assert!(
        !ChatBody::parse(bytes.as_bytes())
            .expect("valid")
            .client_wants_usage
    );
}

#[test]
fn refusals_name_the_field() {
    let cases = [
        (json!({"messages": [{}]}), "model"),
        (json!({"model": 3, "messages": [{}]}), "model"),
        (json!({"model": " ", "messages": [{}]}), "model"),
        (json!({"model": "m"}), "messages"),
        (json!({"model": "m", "messages": "hi"}), "messages"),
        (json!({"model": "m", "messages": []}), "messages"),
        (
            json!({"model": "m", "messages": [{}], "stream": "yes"}),
            "stream",
        ),
        (
            json!({"model": "m", "messages": [{}], "max_tokens": -1}),
            "max_tokens",
        ),
        (
            json!({"model": "m", "messages": [{}], "stream_options": 1}),
            "stream_options",
        ),
    ];
    for (req, name) in cases {
        let err = parse(&req).unwrap_err();
        assert_eq!(err.field(), Some(name), "{req}: {err}");
    }
}

#[test]
fn malformed_json_and_non_objects_are_refused() {
    assert!(matches!(
        ChatBody::parse(b"{\"model\": "),
        Err(BodyError::Json(_))
    ));
    assert!(matches!(
        ChatBody::parse(b"[1]"),
        Err(BodyError::NotAnObject)
    ));
    assert!(matches!(ChatBody::parse(b"{} x"), Err(BodyError::Json(_))));
    let dup = br#"{"model": "a", "model": "b", "messages": [{}]}"#;
    assert!(ChatBody::parse(dup)
        .unwrap_err()
        .to_string()
        .contains("duplicate"));
}

#[test]
fn escaped_keys_and_model_names_are_decoded() {
    let req = br#"{"mod\u0065l": "gr\u006fq/x", "messages": [{}]}"#;
    let body = ChatBody::parse(req).expect("valid");
    assert_eq!(body.model, "groq/x");
}

#[test]
fn inline_images_count_as_a_thousand_tokens_of_text() {
    let image = format!("data:image/png;base64,{}", "A".repeat(100_000));
    let messages = json!([{"role": "user", "content": [
        {"type": "text", "text": "hi"},
        {"type": "image_url", "image_url": {"url": image}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}}]}])
    .to_string();
    let image_len = image.len() + 2;
    assert_eq!(
        prompt_bytes(&messages),
        messages.len() - image_len + 2 + IMAGE_TEXT_BYTES
    );
    // Text that mentions a data URI is text.
    let text = json!([{"role": "user", "content": "see \"data:image/png;base64,AAAA\""}]);
    assert_eq!(prompt_bytes(&text.to_string()), text.to_string().len());
}

proptest! {
    /// The prompt's estimated size never exceeds its length and never panics.
    #[test]
    fn prompt_bytes_is_at_most_the_length(text in ".{0,200}", image in "[A-Za-z0-9+/=]{0,9000}") {
        let raw = json!([{"content": text.clone()}, {"url": format!("data:image/png;base64,{image}")}]).to_string();
        prop_assert!(prompt_bytes(&raw) <= raw.len());
        prop_assert!(prompt_bytes(&text) <= text.len());
    }

    /// Whatever bytes arrive, parsing returns (never panics), and a body that parses
    /// always yields valid JSON upstream with the same fields.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(body) = ChatBody::parse(&bytes) {
            let up: Value = serde_json::from_slice(&body.upstream_body("u")).expect("JSON");
            prop_assert_eq!(&up["model"], &json!("u"));
        }
    }

    #[test]
    fn any_extra_fields_pass_through(extra in proptest::collection::btree_map("[a-z_]{1,8}", any::<i64>(), 0..8)) {
        let mut req = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        for (k, v) in &extra {
            let router_field = ROUTER_FIELDS.contains(&k.as_str());
            if k != "model" && k != "messages" && !router_field && !k.starts_with("max_") && !k.starts_with("stream") {
                req[k] = json!(v);
            }
        }
        let up = parse(&req).expect("valid");
        req["model"] = json!("up-model");
        prop_assert_eq!(up, req);
    }
}

#[test]
fn tools_and_schemas_count_in_the_prompt_size() {
    let messages = json!([{"role": "user", "content": "hi"}]);
    let plain = json!({"model": "m", "messages": messages}).to_string();
    let tools = json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]);
    let format = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}});
    let with =
        json!({"model": "m", "messages": messages, "tools": tools, "response_format": format})
            .to_string();
    let (a, b) = (
        ChatBody::parse(plain.as_bytes())
            .expect("valid")
            .messages_bytes,
        ChatBody::parse(with.as_bytes())
            .expect("valid")
            .messages_bytes,
    );
    assert_eq!(b - a, tools.to_string().len() + format.to_string().len());
}
