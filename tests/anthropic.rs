//! Anthropic's Messages API through the router: the four dialect pairs (OpenAI and
//! Anthropic clients, OpenAI- and Anthropic-protocol providers), JSON and streams, fallback
//! across dialects, errors in the client's shape, `x-api-key`, `count_tokens`, tools.

mod common;

use common::{anthropic_spec, header, spec, sse_content, Harness};
use serde_json::{json, Value};
use switchyard::fake::{reply_text, Behavior, Fault};

/// Providers `oa` (OpenAI protocol) and `an` (Anthropic protocol), both serving `m`; `an`
/// is cheaper and needs a key (`AN_KEY`).
async fn harness(an: Behavior) -> Harness {
    Harness::start_with_env(
        vec![
            spec("oa", Behavior::default(), &[("m", 2.0, 2.0)]),
            anthropic_spec("an", an, &[("m", 1.0, 1.0)]),
        ],
        "[routing]\npolicy = \"cheapest\"\n",
        |var| (var == "AN_KEY").then(|| "sk-ant-test".to_owned()),
    )
    .await
}

async fn messages(h: &Harness, body: Value) -> reqwest::Response {
    h.client
        .post(h.url("/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("router answers")
}

fn hello(model: &str) -> Value {
    json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": "Hello"}]})
}

/// `(event name, data)` of an Anthropic event stream, checking its grammar; and the text.
fn anthropic_events(body: &str) -> (Vec<(String, Value)>, String) {
    let mut events = Vec::new();
    let mut text = String::new();
    for block in body.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .expect("an event name")
            .to_owned();
        let data: Value = serde_json::from_str(
            block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("data"),
        )
        .expect("JSON data");
        assert_eq!(data["type"], name.as_str(), "{block}");
        if name == "content_block_delta" && data["delta"]["type"] == "text_delta" {
            text.push_str(data["delta"]["text"].as_str().expect("text"));
        }
        events.push((name, data));
    }
    assert_eq!(events.first().map(|e| e.0.as_str()), Some("message_start"));
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("message_stop"));
    (events, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_client_is_served_by_either_protocol_json_and_stream() {
    let h = harness(Behavior::default()).await;
    for (model, provider) in [("an/m", "an"), ("oa/m", "oa")] {
        // JSON.
        let mut body = hello(model);
        body["route"] = json!({"prefer": "cost"});
        let r = messages(&h, body).await;
        assert_eq!(r.status(), 200, "{model}");
        assert_eq!(header(&r, "x-switchyard-endpoint"), format!("{provider}/m"));
        assert!(!header(&r, "x-switchyard-cost-usd").is_empty());
        let a: Value = r.json().await.expect("json");
        assert_eq!(a["type"], "message", "{a}");
        assert_eq!(a["role"], "assistant");
        assert_eq!(a["content"][0]["text"], reply_text(provider, "m", 8));
        assert_eq!(a["stop_reason"], "end_turn");
        assert!(a["usage"]["input_tokens"].as_u64() > Some(0), "{a}");
        assert_eq!(a["usage"]["output_tokens"], 8);
        let seen = h.fake(provider).last_body().expect("the provider got it");
        assert!(
            seen.get("route").is_none(),
            "routing fields stay home: {seen}"
        );
        assert_eq!(seen["model"], "m");
        if provider == "an" {
            // The client's own body: Anthropic's shape, its max_tokens.
            assert_eq!(seen["max_tokens"], 100);
            assert_eq!(
                seen["messages"],
                json!([{"role": "user", "content": "Hello"}])
            );
            assert!(
                a["id"].as_str().expect("id").starts_with("msg_fake"),
                "relayed as is"
            );
        } else {
            assert_eq!(
                seen["messages"],
                json!([{"role": "user", "content": "Hello"}])
            );
            assert_eq!(seen["max_tokens"], 100);
        }
        // Stream.
        let mut body = hello(model);
        body["stream"] = json!(true);
        let r = messages(&h, body).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-type"), "text/event-stream");
        let text = r.text().await.expect("body");
        let (events, content) = anthropic_events(&text);
        assert_eq!(content, reply_text(provider, "m", 8), "{text}");
        let delta = events
            .iter()
            .find(|(n, _)| n == "message_delta")
            .expect("message_delta");
        assert_eq!(delta.1["delta"]["stop_reason"], "end_turn");
        assert_eq!(delta.1["usage"]["output_tokens"], 8);
    }
    assert_eq!(
        h.fake("an").last_authorization().as_deref(),
        Some("x-api-key sk-ant-test")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_client_is_served_by_an_anthropic_provider_json_and_stream() {
    let h = harness(Behavior::default()).await;
    let r = h
        .chat(json!({"model": "an/m", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"}]}))
        .await;
    assert_eq!(r.status(), 200);
    let o: Value = r.json().await.expect("json");
    assert_eq!(o["object"], "chat.completion", "{o}");
    assert_eq!(
        o["choices"][0]["message"]["content"],
        reply_text("an", "m", 8)
    );
    assert_eq!(o["choices"][0]["finish_reason"], "stop");
    assert_eq!(o["usage"]["completion_tokens"], 8);
    assert!(o["usage"]["cost"].as_f64() > Some(0.0), "{o}");
    let seen = h.fake("an").last_body().expect("sent");
    assert_eq!(seen["system"], "Be brief.");
    assert_eq!(
        seen["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Hello"}]}])
    );
    assert_eq!(seen["max_tokens"], 4096, "the documented default");

    let r = h
        .chat(json!({"model": "an/m", "stream": true, "messages": [{"role": "user", "content": "Hello"}]}))
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("body");
    assert_eq!(sse_content(&text), reply_text("an", "m", 8), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(
        !text.contains("\"usage\""),
        "the client did not ask for usage: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_anthropic_provider_falls_back_to_an_openai_one() {
    let failing = Behavior {
        fault: Fault::Status(529),
        ..Behavior::default()
    };
    let h = harness(failing).await;
    for stream in [false, true] {
        let mut body = hello("m");
        body["stream"] = json!(stream);
        let r = messages(&h, body).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-switchyard-attempts"), "2");
        assert_eq!(header(&r, "x-switchyard-endpoint"), "oa/m");
        let text = r.text().await.expect("body");
        if stream {
            assert_eq!(anthropic_events(&text).1, reply_text("oa", "m", 8));
        } else {
            let a: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(a["content"][0]["text"], reply_text("oa", "m", 8));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_cross_both_ways() {
    let h = harness(Behavior::default()).await;
    let tools = json!([{"name": "get_weather", "description": "Weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    for model in ["oa/m", "an/m"] {
        let mut body = hello(model);
        body["tools"] = tools.clone();
        body["tool_choice"] = json!({"type": "any"});
        let a: Value = messages(&h, body).await.json().await.expect("json");
        assert_eq!(a["stop_reason"], "tool_use", "{model}: {a}");
        let call = &a["content"][0];
        assert_eq!(call["type"], "tool_use");
        assert_eq!(call["name"], "get_weather");
        assert_eq!(call["input"], json!({"city": "Oslo"}));
        // The result goes back in the next turn.
        let mut next = hello(model);
        next["tools"] = tools.clone();
        next["messages"] = json!([
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": [call]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "-3 C"}]},
        ]);
        let r = messages(&h, next).await;
        assert_eq!(r.status(), 200);
        let seen = h.fake(&model[..2]).last_body().expect("sent");
        if model == "oa/m" {
            assert_eq!(
                seen["messages"][1]["tool_calls"][0]["function"]["name"],
                "get_weather"
            );
            assert_eq!(
                seen["messages"][2],
                json!({"role": "tool", "tool_call_id": call["id"], "content": "-3 C"})
            );
        } else {
            assert_eq!(seen["messages"][2]["content"][0]["type"], "tool_result");
        }
    }
    // An OpenAI client's tools at an Anthropic provider.
    let r = h
        .chat(json!({"model": "an/m", "tool_choice": "required", "messages": [{"role": "user", "content": "Weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]}))
        .await;
    let o: Value = r.json().await.expect("json");
    assert_eq!(o["choices"][0]["finish_reason"], "tool_calls", "{o}");
    let call = &o["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().expect("string"))
            .expect("JSON"),
        json!({"city": "Oslo"})
    );
    assert_eq!(
        h.fake("an").last_body().expect("sent")["tool_choice"],
        json!({"type": "any"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_in_the_clients_shape() {
    let h = harness(Behavior::default()).await;
    let error_of = |v: &Value| (v["type"].clone(), v["error"]["type"].clone());
    let r = messages(&h, hello("no-such-model")).await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        error_of(&v),
        (json!("error"), json!("not_found_error")),
        "{v}"
    );
    let mut body = hello("m");
    body.as_object_mut().expect("object").remove("max_tokens");
    let r = messages(&h, body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        error_of(&v),
        (json!("error"), json!("invalid_request_error"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("message")
            .contains("max_tokens"),
        "{v}"
    );
    // What an OpenAI-protocol provider cannot take is refused, naming the field.
    let mut body = hello("oa/m");
    body["top_k"] = json!(5);
    let r = messages(&h, body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("message")
            .contains("top_k"),
        "{v}"
    );
    // And what an Anthropic-protocol provider cannot take, for an OpenAI client.
    let r = h
        .chat(json!({"model": "an/m", "n": 3, "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["param"], "n", "{v}");
    // Malformed JSON.
    let r = h
        .client
        .post(h.url("/v1/messages"))
        .body("{not json")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["type"], "error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_key_may_come_as_x_api_key_and_tokens_are_counted() {
    let key = "sy-client-key";
    let h = Harness::start_with_env(
        vec![anthropic_spec(
            "an",
            Behavior::default(),
            &[("m", 1.0, 1.0)],
        )],
        "[[clients]]\nname = \"cc\"\nkey_env = \"CC_KEY\"\n",
        move |var| (var == "CC_KEY").then(|| key.to_owned()),
    )
    .await;
    let r = messages(&h, hello("m")).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["type"], "authentication_error", "{v}");
    let r = h
        .client
        .post(h.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .json(&hello("m"))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    assert_eq!(
        h.fake("an").last_anthropic_beta().as_deref(),
        Some("prompt-caching-2024-07-31"),
        "the client's anthropic-beta is forwarded"
    );
    // The decision is kept and explained as for any request.
    let id = header(&r, "x-request-id").to_owned();
    let d = h
        .client
        .get(h.url(&format!("/v1/decisions/{id}")))
        .header("x-api-key", key)
        .send()
        .await
        .expect("answer");
    assert_eq!(d.status(), 200);
    let d: Value = d.json().await.expect("json");
    assert_eq!(d["attempts"][0]["endpoint"], "an/m", "{d}");
    assert_eq!(d["client"], "cc");
    let r = h
        .client
        .post(h.url("/v1/messages/count_tokens"))
        .header("x-api-key", key)
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "Hello, how are you today?"}]}))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert!(v["input_tokens"].as_u64() > Some(0), "{v}");
}

/// Cost with cache reads and writes, exact: uncached input × input + cache reads × cached
/// input + cache writes × cache write + output × output, for both clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_reads_and_writes_are_priced_exactly() {
    let mut an = anthropic_spec("an", Behavior::default(), &[("m", 3.0, 15.0)]);
    an.cache = Some((0.3, 3.75));
    let h = Harness::start(vec![an], "").await;
    let cached_system = json!([{"type": "text", "text": "A long shared prefix.", "cache_control": {"type": "ephemeral"}}]);
    let mut body = hello("m");
    body["system"] = cached_system;
    let r = messages(&h, body).await;
    assert_eq!(r.status(), 200);
    let cost: rust_decimal::Decimal = header(&r, "x-switchyard-cost-usd").parse().expect("a cost");
    let a: Value = r.json().await.expect("json");
    let u = &a["usage"];
    assert_eq!(
        (
            u["cache_read_input_tokens"].as_u64(),
            u["cache_creation_input_tokens"].as_u64()
        ),
        (Some(100), Some(50))
    );
    let input = u["input_tokens"].as_u64().expect("input");
    let micro = rust_decimal::Decimal::from(input) * rust_decimal::Decimal::new(3, 0)
        + rust_decimal::Decimal::from(100) * rust_decimal::Decimal::new(3, 1)
        + rust_decimal::Decimal::from(50) * rust_decimal::Decimal::new(375, 2)
        + rust_decimal::Decimal::from(8) * rust_decimal::Decimal::new(15, 0);
    let expected = (micro / rust_decimal::Decimal::from(1_000_000)).normalize();
    assert_eq!(cost, expected, "usage {u}");
    // The same for an OpenAI client: the translated usage keeps the cache counts.
    let r = h
        .chat(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "cache_control": null}))
        .await;
    assert_eq!(
        r.status(),
        400,
        "an unknown field for an Anthropic provider is refused"
    );
}

/// Same dialect in and out: an Anthropic provider's stream reaches an Anthropic client
/// byte for byte (pings included), metered all the same; a break ends it with an Anthropic
/// error event after what came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_stream_is_relayed_byte_for_byte() {
    let h = harness(Behavior::default()).await;
    let mut body = hello("an/m");
    body["stream"] = json!(true);
    let r = messages(&h, body.clone()).await;
    assert_eq!(r.status(), 200);
    let got = r.text().await.expect("body");
    let sent = h.fake("an").last_sent_stream().expect("the fake streamed");
    assert_eq!(got, sent);
    assert!(got.contains("event: ping"));
    // Metered: the endpoint's statistics saw a success with its usage.
    let report = common::get_json(&h.client, h.url("/v1/endpoints")).await;
    let an = report["data"]
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["id"] == "an/m")
        .expect("an/m")
        .clone();
    assert_eq!(an["successes"], 1, "{an}");
    assert_eq!(an["output_tokens"], 8, "{an}");

    h.fake("an").set_behavior(Behavior {
        fault: Fault::BreakAfter(5),
        // A pause before the break, so what came before it is flushed.
        token_interval: std::time::Duration::from_millis(20),
        ..Behavior::default()
    });
    let r = messages(&h, body).await;
    assert_eq!(r.status(), 200);
    let got = r.text().await.expect("body");
    let sent = h.fake("an").last_sent_stream().expect("streamed");
    let (before_error, error) = got.split_once("event: error\n").expect("an error event");
    assert!(sent.starts_with(before_error), "what came, as it came");
    assert!(error.contains("\"type\":\"error\""), "{error}");
}

/// A request one dialect cannot carry goes to a provider of the other, not to a 400: an
/// Anthropic client's `thinking` and `top_k` to the Anthropic provider though the OpenAI one is
/// cheaper; an OpenAI client's `n` to the OpenAI provider though the Anthropic one is cheaper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_dialect_cannot_carry_goes_to_the_other() {
    let h = Harness::start(
        vec![
            spec("oa", Behavior::default(), &[("m", 1.0, 1.0)]),
            anthropic_spec("an", Behavior::default(), &[("m", 2.0, 2.0)]),
        ],
        "[routing]\npolicy = \"cheapest\"\n",
    )
    .await;
    let mut body = hello("m");
    body["top_k"] = json!(5);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    let r = messages(&h, body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-endpoint"), "an/m");
    assert_eq!(header(&r, "x-switchyard-attempts"), "1");
    assert_eq!(
        h.fake("an").last_body().expect("sent")["top_k"],
        5,
        "sent as the client wrote it"
    );
    // Plain requests still go to the cheaper OpenAI-protocol provider.
    let r = messages(&h, hello("m")).await;
    assert_eq!(header(&r, "x-switchyard-endpoint"), "oa/m");

    let h = harness(Behavior::default()).await;
    let r = h
        .chat(json!({"model": "m", "n": 2, "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-switchyard-endpoint"),
        "oa/m",
        "an is cheaper but cannot answer twice"
    );
    let r = h
        .client
        .post(h.url("/v1/messages/count_tokens"))
        .json(
            &json!({"model": "m", "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "Hello"}]}),
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200, "counting needs no translation");
}
