//! OpenAI's other generating surfaces: legacy completions and the Responses API, JSON and
//! streams, with `previous_response_id` pinning and exact cost.

mod common;

use common::{header, spec, Harness, Spec};
use serde_json::{json, Value};
use switchyard::fake::{reply_text, Behavior};

fn responses_spec(name: &'static str, price: f64) -> Spec {
    let mut s = spec(name, Behavior::default(), &[("m", price, price * 4.0)]);
    s.responses = true;
    s.cache = Some((price / 10.0, price));
    s
}

/// `x` and `y` serve the Responses API (`y` cheaper); `z` does not.
async fn harness() -> Harness {
    Harness::start(
        vec![
            responses_spec("x", 2.0),
            responses_spec("y", 1.0),
            spec("z", Behavior::default(), &[("m", 0.5, 0.5)]),
        ],
        "[routing]\npolicy = \"cheapest\"\n",
    )
    .await
}

async fn post(h: &Harness, path: &str, body: Value) -> reqwest::Response {
    h.client
        .post(h.url(path))
        .json(&body)
        .send()
        .await
        .expect("router answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_completions_route_like_chat_json_and_stream() {
    let h = harness().await;
    let r = post(
        &h,
        "/v1/completions",
        json!({"model": "m", "prompt": "Say hi", "max_tokens": 5}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-switchyard-endpoint"),
        "z/m",
        "the cheapest serves completions"
    );
    let cost: rust_decimal::Decimal = header(&r, "x-switchyard-cost-usd").parse().expect("a cost");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["object"], "text_completion");
    // z: $0.5 per million tokens in and out.
    let d = |k: &str| rust_decimal::Decimal::from(v["usage"][k].as_u64().expect("count"));
    let micro = (d("prompt_tokens") + d("completion_tokens")) * rust_decimal::Decimal::new(5, 1);
    assert_eq!(
        cost,
        (micro / rust_decimal::Decimal::from(1_000_000)).normalize(),
        "exact"
    );
    assert_eq!(v["choices"][0]["text"], reply_text("z", "m", 5));
    assert!(v["usage"]["cost"].as_f64() > Some(0.0), "{v}");
    let seen = h.fake("z").last_body().expect("sent");
    assert_eq!(seen["prompt"], "Say hi");

    let r = post(
        &h,
        "/v1/completions",
        json!({"model": "m", "prompt": ["Say hi"], "stream": true}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("body");
    let mut got = String::new();
    for data in text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")) {
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).expect("JSON chunk");
        assert!(
            v.get("usage").is_none(),
            "the client did not ask for usage: {v}"
        );
        got.push_str(v["choices"][0]["text"].as_str().unwrap_or(""));
    }
    assert_eq!(got, reply_text("z", "m", 8));
    assert!(text.ends_with("data: [DONE]\n\n"));
    // TTFT was measured on the legacy chunks' text.
    let report = common::get_json(&h.client, h.url("/v1/endpoints")).await;
    let z = report["data"]
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["id"] == "z/m")
        .expect("z")
        .clone();
    assert!(z["learned"]["ttft_median_ms"].is_number(), "{z}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_go_only_where_the_api_is_served_json_and_stream() {
    let h = harness().await;
    let r = post(
        &h,
        "/v1/responses",
        json!({"model": "m", "input": "Hello", "route": {"prefer": "cost"}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-switchyard-endpoint"),
        "y/m",
        "z is cheaper but has no Responses API"
    );
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["object"], "response");
    assert_eq!(
        v["output"][0]["content"][0]["text"],
        reply_text("y", "m", 8)
    );
    assert!(h
        .fake("y")
        .last_body()
        .expect("sent")
        .get("route")
        .is_none());
    let r = post(
        &h,
        "/v1/responses",
        json!({"model": "z/m", "input": "Hello"}),
    )
    .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["param"], "operation", "{v}");

    let r = post(
        &h,
        "/v1/responses",
        json!({"model": "m", "input": "Hello", "stream": true}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("body");
    let mut got = String::new();
    let mut kinds = Vec::new();
    for event in text.split("\n\n").filter(|e| !e.is_empty()) {
        let data = event
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("data");
        let v: Value = serde_json::from_str(data).expect("JSON");
        kinds.push(v["type"].as_str().expect("type").to_owned());
        if v["type"] == "response.output_text.delta" {
            got.push_str(v["delta"].as_str().expect("delta"));
        }
    }
    assert_eq!(got, reply_text("y", "m", 8));
    assert_eq!(kinds.first().map(String::as_str), Some("response.created"));
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("response.completed"),
        "relayed to its end, no error appended"
    );
    let report = common::get_json(&h.client, h.url("/v1/endpoints")).await;
    let y = report["data"]
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["id"] == "y/m")
        .expect("y")
        .clone();
    assert_eq!(y["successes"], 2, "{y}");
    assert!(
        y["learned"]["ttft_median_ms"].is_number(),
        "TTFT at the first output delta: {y}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_response_is_continued_where_it_lives() {
    let h = harness().await;
    for stream in [false, true] {
        // The first turn goes to x (the dearer one) because the client says so.
        let r = post(
            &h,
            "/v1/responses",
            json!({"model": "m", "input": "Hello", "stream": stream, "provider": {"only": ["x"]}}),
        )
        .await;
        assert_eq!(header(&r, "x-switchyard-endpoint"), "x/m");
        let id = if stream {
            let text = r.text().await.expect("body");
            let created = text
                .split("\n\n")
                .find(|e| e.contains("response.created"))
                .expect("created");
            let v: Value = serde_json::from_str(
                created
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .expect("data"),
            )
            .expect("JSON");
            v["response"]["id"].as_str().expect("id").to_owned()
        } else {
            let v: Value = r.json().await.expect("json");
            v["id"].as_str().expect("id").to_owned()
        };
        // The next turn, without the hint, still goes to x: y does not hold the response.
        let r = post(
            &h,
            "/v1/responses",
            json!({"model": "m", "input": "And then?", "previous_response_id": id}),
        )
        .await;
        assert_eq!(r.status(), 200, "stream {stream}");
        assert_eq!(
            header(&r, "x-switchyard-endpoint"),
            "x/m",
            "stream {stream}"
        );
        assert_eq!(
            h.fake("x").last_body().expect("sent")["previous_response_id"],
            id.as_str()
        );
    }
    let r = post(
        &h,
        "/v1/responses",
        json!({"model": "m", "input": "Hi", "previous_response_id": "resp_unknown"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["param"], "previous_response_id", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_cost_is_exact_with_cached_input_and_reasoning() {
    let h = harness().await;
    let r = post(
        &h,
        "/v1/responses",
        json!({"model": "y/m", "input": "A long shared prompt prefix, cached.",
        "prompt_cache_key": "k1", "reasoning": {"effort": "low"}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let cost: rust_decimal::Decimal = header(&r, "x-switchyard-cost-usd").parse().expect("a cost");
    let v: Value = r.json().await.expect("json");
    let u = &v["usage"];
    let input = u["input_tokens"].as_u64().expect("input");
    let cached = u["input_tokens_details"]["cached_tokens"]
        .as_u64()
        .expect("cached");
    let output = u["output_tokens"].as_u64().expect("output");
    assert!(
        cached > 0 && u["output_tokens_details"]["reasoning_tokens"] == 4,
        "{u}"
    );
    // y: input $1, cached $0.1, output $4 per million; reasoning tokens are output tokens.
    let d = |n: u64| rust_decimal::Decimal::from(n);
    let micro =
        d(input - cached) * d(1) + d(cached) * rust_decimal::Decimal::new(1, 1) + d(output) * d(4);
    assert_eq!(cost, (micro / d(1_000_000)).normalize(), "usage {u}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_surface() {
    let h = harness().await;
    post(&h, "/v1/responses", json!({"model": "m", "input": "Hi"})).await;
    post(&h, "/v1/completions", json!({"model": "m", "prompt": "Hi"})).await;
    post(
        &h,
        "/v1/completions",
        json!({"model": "nope", "prompt": "Hi"}),
    )
    .await;
    let text = h.metrics().await;
    for line in [
        "switchyard_surface_requests_total{operation=\"responses\",outcome=\"answered\"} 1",
        "switchyard_surface_requests_total{operation=\"completions\",outcome=\"answered\"} 1",
        "switchyard_surface_requests_total{operation=\"completions\",outcome=\"refused\"} 1",
        "switchyard_surface_requests_total{operation=\"embeddings\",outcome=\"answered\"} 0",
    ] {
        assert!(text.contains(line), "{line} missing in\n{text}");
    }
}
