//! What a request needs of a model, end to end: a request with `tools` never reaches an
//! endpoint whose sheet says it has none; when nothing can serve it the 422 names `tools`;
//! OpenRouter's `provider.require_parameters: true` also removes models whose sheet lists
//! nothing.

mod common;

use common::{header, spec, Harness, Spec};
use serde_json::{json, Value};
use switchyard::fake::Behavior;

fn listed(name: &'static str, price: f64, supports: Option<&'static str>) -> Spec {
    Spec {
        supports,
        ..spec(name, Behavior::default(), &[("m", price, price)])
    }
}

fn with_tools(model: &str, extra: Value) -> Value {
    let mut body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [{"type": "function", "function": {"name": "weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

async fn start() -> Harness {
    Harness::start(
        vec![
            // Cheapest, but its sheet says it calls no tools.
            listed("plain", 0.1, Some("[\"json_object\"]")),
            // Its sheet says nothing.
            listed("unlisted", 0.2, None),
            listed("tooled", 1.0, Some("[\"tools\", \"tool_choice\"]")),
        ],
        "[routing]\nseed = 3\n",
    )
    .await
}

#[tokio::test]
async fn a_tools_request_never_reaches_a_model_without_tools() {
    let h = start().await;
    for _ in 0..20 {
        let r = h.chat(with_tools("m", json!({}))).await;
        assert_eq!(r.status(), 200);
        let endpoint = header(&r, "x-switchyard-endpoint").to_owned();
        assert_ne!(endpoint, "plain/m", "plain/m lists no tools");
    }
    // Without tools the cheapest serves it, as before (an endpoint never tried is now and
    // then drawn unlikely to succeed, so most of the time).
    let mut at_plain = 0;
    for _ in 0..10 {
        let r = h.chat(common::hello("m")).await;
        at_plain += usize::from(header(&r, "x-switchyard-endpoint") == "plain/m");
    }
    assert!(at_plain >= 7, "{at_plain} of 10 at plain/m");

    // Only the tool-less endpoint allowed: a 422 that names the capability.
    let r = h.chat(with_tools("plain/m", json!({}))).await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["param"], "tools", "{v}");
    let message = v["error"]["message"].as_str().expect("message");
    assert!(message.contains("`tools` removed plain/m"), "{message}");

    // require_parameters: the model whose sheet lists nothing goes too.
    let strict = json!({"provider": {"require_parameters": true}, "tool_choice": "required"});
    for _ in 0..10 {
        let r = h.chat(with_tools("m", strict.clone())).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-switchyard-endpoint"), "tooled/m");
    }
    let r = h.chat(with_tools("unlisted/m", strict)).await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["param"], "provider.require_parameters", "{v}");
}

#[tokio::test]
async fn unknown_capabilities_can_count_as_missing() {
    let h = Harness::start(
        vec![
            listed("unlisted", 0.1, None),
            listed("tooled", 1.0, Some("[\"tools\"]")),
        ],
        "[routing]\nseed = 3\nunknown_capabilities = \"incapable\"\n",
    )
    .await;
    for _ in 0..10 {
        let r = h.chat(with_tools("m", json!({}))).await;
        assert_eq!(header(&r, "x-switchyard-endpoint"), "tooled/m");
    }
    let mut at_unlisted = 0;
    for _ in 0..10 {
        let r = h.chat(common::hello("m")).await;
        at_unlisted += usize::from(header(&r, "x-switchyard-endpoint") == "unlisted/m");
    }
    assert!(at_unlisted >= 7, "{at_unlisted} of 10 at unlisted/m");
}

/// A 1 MB base64 photo is about a thousand tokens to a provider, not 250,000: the
/// context-window filter keeps a 128k-token model for it.
#[tokio::test]
async fn a_large_inline_image_does_not_fill_the_context_window() {
    let h = Harness::start(
        vec![Spec {
            context_window: Some(128_000),
            supports: Some("[\"vision\"]"),
            ..spec("seeing", Behavior::default(), &[("m", 1.0, 1.0)])
        }],
        "",
    )
    .await;
    let photo = format!("data:image/jpeg;base64,{}", "A".repeat(1_000_000));
    let body = json!({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this photo?"},
        {"type": "image_url", "image_url": {"url": photo}}]}]});
    let r = h.chat(body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    // A text of the same size is too long for the window, as it should be.
    let text =
        json!({"model": "m", "messages": [{"role": "user", "content": "A".repeat(1_000_000)}]});
    let r = h.chat(text).await;
    assert_eq!(r.status(), 422);
}

/// A provider's "unsupported parameter" 400 is failed over when another candidate remains,
/// counted as `unsupported` (not against the endpoint's health), and relayed as it came
/// when none does.
#[tokio::test]
async fn an_unsupported_parameter_refusal_fails_over() {
    let refuses_tools = Behavior {
        unsupported: Some("tools"),
        ..Behavior::default()
    };
    let h = Harness::start(
        vec![
            spec("cheap", refuses_tools, &[("m", 0.1, 0.1)]),
            spec("dear", Behavior::default(), &[("m", 1.0, 1.0)]),
        ],
        "[routing]\nseed = 4\n",
    )
    .await;
    // Warm: both answer plain requests, the cheap one first.
    for _ in 0..10 {
        let r = h.chat(common::hello("m")).await;
        assert_eq!(r.status(), 200);
    }
    let r = h.chat(with_tools("m", json!({}))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-endpoint"), "dear/m");
    assert_eq!(header(&r, "x-switchyard-attempts"), "2");
    let report = common::get_json(&h.client, h.url("/v1/endpoints")).await;
    let cheap = common::endpoint_in(&report, "cheap/m").clone();
    assert_eq!(cheap["failures"]["unsupported"], 1, "{cheap}");
    assert_eq!(
        cheap["success_rate"], 1.0,
        "not a failure of its health: {cheap}"
    );
    // Only the refusing endpoint: its 400 reaches the client as it came.
    let r = h.chat(with_tools("cheap/m", json!({}))).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "unsupported_parameter", "{v}");
}
