//! The gateway end to end: the real router on port 0 in front of fake providers on port 0.

mod common;

use common::{header, hello, spec, sse_content, sse_payloads, Harness};
use serde_json::{json, Value};
use switchyard::fake::{reply_text, Behavior, Fault};

fn ok() -> Behavior {
    Behavior::default()
}

fn fault(f: Fault) -> Behavior {
    Behavior {
        fault: f,
        ..Behavior::default()
    }
}

/// These tests check the gateway's mechanics in a known order of candidates, so they use the
/// static `cheapest` policy: the cheaper provider is always tried first.
const CHEAPEST: &str = "[routing]\npolicy = \"cheapest\"\n";

/// A first-byte timeout far above what a healthy local fake needs, even on a loaded machine,
/// yet short enough that the hang tests finish quickly.
const TIMEOUTS: &str = "[routing]\npolicy = \"cheapest\"\n[upstream]\nfirst_byte_timeout = \"1s\"\nidle_timeout = \"1s\"\n";

/// `cheap` is ranked first by price, `backup` second.
async fn cheap_and_backup(cheap: Behavior) -> Harness {
    Harness::start(
        vec![
            spec("cheap", cheap, &[("m", 0.1, 0.2)]),
            spec("backup", ok(), &[("m", 1.0, 2.0)]),
        ],
        TIMEOUTS,
    )
    .await
}

#[tokio::test]
async fn non_streaming_answer_arrives_intact() {
    let h = Harness::start(
        vec![spec(
            "p",
            Behavior {
                output_tokens: 12,
                ..ok()
            },
            &[("m", 1.0, 2.0)],
        )],
        CHEAPEST,
    )
    .await;
    let req = json!({"model": "p/m", "messages": [{"role": "user", "content": "Hi \"quoted\" é"}], "temperature": 0.3, "tools": [{"type": "function", "function": {"name": "f"}}]});
    let r = h.chat(req.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-endpoint"), "p/m");
    assert_eq!(header(&r, "x-switchyard-attempts"), "1");
    assert!(header(&r, "x-request-id").starts_with("req_"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        reply_text("p", "m", 12)
    );
    assert_eq!(body["usage"]["completion_tokens"], 12);
    // Upstream got the same request, fields and all, under the endpoint's upstream model
    // name, with no stream options added.
    let mut expected = req;
    expected["model"] = json!("m");
    assert_eq!(h.fake("p").last_body().expect("received"), expected);
}

#[tokio::test]
async fn streaming_answer_arrives_intact_without_an_unasked_usage_chunk() {
    let h = Harness::start(
        vec![spec(
            "p",
            Behavior {
                output_tokens: 30,
                ..ok()
            },
            &[("m", 1.0, 2.0)],
        )],
        CHEAPEST,
    )
    .await;
    let mut req = hello("m");
    req["stream"] = json!(true);
    let r = h.chat(req).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/event-stream");
    assert_eq!(header(&r, "x-switchyard-endpoint"), "p/m");
    let text = r.text().await.expect("body");
    assert_eq!(sse_content(&text), reply_text("p", "m", 30));
    let payloads = sse_payloads(&text);
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    assert!(!text.contains("\"usage\""), "usage chunk leaked: {text}");
    // The router asked upstream for usage so it can account the request.
    let sent = h.fake("p").last_body().expect("received");
    assert_eq!(sent["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn streaming_usage_reaches_a_client_that_asked_for_it() {
    let h = Harness::start(vec![spec("p", ok(), &[("m", 1.0, 2.0)])], CHEAPEST).await;
    let mut req = hello("m");
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    let text = h.chat(req).await.text().await.expect("body");
    let usage: Vec<Value> = sse_payloads(&text)
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter(|v| v.get("usage").is_some())
        .collect();
    assert_eq!(usage.len(), 1, "{text}");
    assert_eq!(usage[0]["usage"]["completion_tokens"], 8);
}

#[tokio::test]
async fn falls_back_when_the_first_provider_returns_500() {
    let h = cheap_and_backup(fault(Fault::Status(500))).await;
    let r = h.chat(hello("m")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-endpoint"), "backup/m");
    assert_eq!(header(&r, "x-switchyard-attempts"), "2");
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        reply_text("backup", "m", 8)
    );
    assert_eq!(h.fake("cheap").requests(), 1);
}

#[tokio::test]
async fn falls_back_on_429_for_streams_too() {
    let h = cheap_and_backup(fault(Fault::Status(429))).await;
    let mut req = hello("m");
    req["stream"] = json!(true);
    let r = h.chat(req).await;
    assert_eq!(header(&r, "x-switchyard-endpoint"), "backup/m");
    let text = r.text().await.expect("body");
    assert_eq!(sse_content(&text), reply_text("backup", "m", 8));
}

#[tokio::test]
async fn falls_back_when_the_first_provider_refuses_connections() {
    let h = cheap_and_backup(ok()).await;
    h.fake("cheap").stop();
    let r = h.chat(hello("m")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-endpoint"), "backup/m");
    assert_eq!(header(&r, "x-switchyard-attempts"), "2");
}

#[tokio::test]
async fn falls_back_when_the_first_provider_hangs_past_the_first_byte_timeout() {
    for stream in [false, true] {
        let h = cheap_and_backup(fault(Fault::HangBeforeHeaders)).await;
        let mut req = hello("m");
        req["stream"] = json!(stream);
        let r = h.chat(req).await;
        assert_eq!(r.status(), 200, "stream={stream}");
        assert_eq!(
            header(&r, "x-switchyard-endpoint"),
            "backup/m",
            "stream={stream}"
        );
        assert_eq!(h.fake("cheap").requests(), 1);
    }
}

#[tokio::test]
async fn a_stream_that_sends_headers_but_no_first_byte_falls_back() {
    let h = cheap_and_backup(fault(Fault::HangAfterHeaders)).await;
    let mut req = hello("m");
    req["stream"] = json!(true);
    let r = h.chat(req).await;
    assert_eq!(header(&r, "x-switchyard-endpoint"), "backup/m");
    assert_eq!(
        sse_content(&r.text().await.expect("body")),
        reply_text("backup", "m", 8)
    );
}

#[tokio::test]
async fn a_non_json_success_body_falls_back() {
    let h = cheap_and_backup(fault(Fault::InvalidJson)).await;
    let r = h.chat(hello("m")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-endpoint"), "backup/m");
}

#[tokio::test]
async fn every_provider_failing_gives_502_with_an_openai_error_body() {
    let h = Harness::start(
        vec![
            spec("a", fault(Fault::Status(500)), &[("m", 0.1, 0.2)]),
            spec("b", fault(Fault::Status(503)), &[("m", 1.0, 2.0)]),
        ],
        CHEAPEST,
    )
    .await;
    let r = h.chat(hello("m")).await;
    assert_eq!(r.status(), 502);
    assert_eq!(header(&r, "x-switchyard-attempts"), "2");
    assert!(header(&r, "x-request-id").starts_with("req_"));
    let body: Value = r.json().await.expect("json");
    let err = &body["error"];
    assert_eq!(err["type"], "upstream_error");
    assert_eq!(err["code"], "all_attempts_failed");
    let msg = err["message"].as_str().expect("message");
    assert!(
        msg.contains("a/m: HTTP 500") && msg.contains("b/m: HTTP 503"),
        "{msg}"
    );
}

#[tokio::test]
async fn attempts_stop_at_max_attempts() {
    let h = Harness::start(
        vec![
            spec("a", fault(Fault::Status(500)), &[("m", 0.1, 0.1)]),
            spec("b", fault(Fault::Status(500)), &[("m", 0.2, 0.2)]),
            spec("c", ok(), &[("m", 0.3, 0.3)]),
        ],
        "[routing]\npolicy = \"cheapest\"\nmax_attempts = 2\n",
    )
    .await;
    let r = h.chat(hello("m")).await;
    assert_eq!(r.status(), 502);
    assert_eq!(header(&r, "x-switchyard-attempts"), "2");
    assert_eq!(h.fake("c").requests(), 0);
}

#[tokio::test]
async fn a_client_error_from_upstream_is_relayed_without_fallback() {
    let h = cheap_and_backup(fault(Fault::Status(400))).await;
    let r = h.chat(hello("m")).await;
    assert_eq!(r.status(), 400);
    assert_eq!(header(&r, "x-switchyard-endpoint"), "cheap/m");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["message"], "fake provider: injected failure");
    assert_eq!(h.fake("backup").requests(), 0);
}

#[tokio::test]
async fn a_stream_broken_after_the_first_byte_ends_with_an_error_event_and_no_failover() {
    // Tokens spaced out so the first ones are flushed to the router before the break;
    // a break before any byte reaches the router is a plain fallback case.
    let breaking = Behavior {
        fault: Fault::BreakAfter(3),
        token_interval: std::time::Duration::from_millis(30),
        ..ok()
    };
    let h = cheap_and_backup(breaking).await;
    let mut req = hello("m");
    req["stream"] = json!(true);
    let r = h.chat(req).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("the stream ends cleanly");
    assert_eq!(sse_content(&text), reply_text("cheap", "m", 3));
    let last: Value =
        serde_json::from_str(sse_payloads(&text).last().expect("an event")).expect("json");
    assert_eq!(last["error"]["code"], "stream_interrupted");
    assert!(!text.contains("[DONE]"));
    assert_eq!(h.fake("backup").requests(), 0);
}

#[tokio::test]
async fn bad_requests_get_openai_errors_naming_the_field() {
    let h = Harness::start(vec![spec("p", ok(), &[("m", 1.0, 2.0)])], CHEAPEST).await;
    let url = h.url("/v1/chat/completions");
    let post = |body: &'static str| {
        h.client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let r = post("{\"model\": \"m\", \"messages\": [")
        .await
        .expect("answer");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "invalid_json");

    for (req, field) in [
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            "model",
        ),
        (json!({"model": "m"}), "messages"),
        (
            json!({"model": "m", "messages": [{}], "stream": "yes"}),
            "stream",
        ),
        (
            json!({"model": "m", "messages": [{}], "max_tokens": "ten"}),
            "max_tokens",
        ),
    ] {
        let r = h.chat(req).await;
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"]["param"], field, "{body}");
        assert!(body["error"]["message"]
            .as_str()
            .expect("msg")
            .contains(field));
    }
    assert_eq!(h.fake("p").requests(), 0);
}

#[tokio::test]
async fn unknown_model_is_404() {
    let h = Harness::start(vec![spec("p", ok(), &[("m", 1.0, 2.0)])], CHEAPEST).await;
    let r = h.chat(hello("p/nope")).await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(body["error"]["param"], "model");
    assert_eq!(h.fake("p").requests(), 0);
}

#[tokio::test]
async fn a_wrong_method_is_an_openai_shaped_405() {
    let h = Harness::start(vec![spec("p", ok(), &[("m", 1.0, 2.0)])], CHEAPEST).await;
    for (method, path, allowed) in [
        (reqwest::Method::GET, "/v1/chat/completions", "POST"),
        (reqwest::Method::POST, "/v1/models", "GET"),
        (reqwest::Method::GET, "/admin/pricing/reload", "POST"),
        (reqwest::Method::POST, "/admin/pricing/p", "PUT"),
        (reqwest::Method::GET, "/admin/routing/x", "DELETE"),
    ] {
        let r = h
            .client
            .request(method.clone(), h.url(path))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 405, "{method} {path}");
        let allow: Vec<&str> = header(&r, "allow").split(',').map(str::trim).collect();
        assert!(allow.contains(&allowed), "{method} {path}: Allow {allow:?}");
        assert!(
            !allow.contains(&method.as_str()),
            "{method} {path}: Allow {allow:?}"
        );
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(
            body["error"]["message"]
                .as_str()
                .expect("message")
                .contains(path),
            "{body}"
        );
    }
}

#[tokio::test]
async fn oversized_body_is_413() {
    let h = Harness::start(
        vec![spec("p", ok(), &[("m", 1.0, 2.0)])],
        "max_body_bytes = 65536\n",
    )
    .await;
    let big = "x".repeat(100_000);
    let r = h
        .chat(json!({"model": "m", "messages": [{"role": "user", "content": big}]}))
        .await;
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "request_too_large");
    // Just under the limit passes.
    let fits = "x".repeat(60_000);
    let r = h
        .chat(json!({"model": "m", "messages": [{"role": "user", "content": fits}]}))
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn models_lists_endpoints_with_prices_models_groups_and_auto() {
    let h = Harness::start(
        vec![
            spec("a", ok(), &[("m", 0.5, 1.5)]),
            spec("b", ok(), &[("m", 1.0, 2.0), ("n", 3.0, 4.0)]),
        ],
        "[routing]\npolicy = \"cheapest\"\n[groups]\nmine = [\"a/m\", \"b/n\"]\n",
    )
    .await;
    let body: Value = h
        .client
        .get(h.url("/v1/models"))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(body["object"], "list");
    let data = body["data"].as_array().expect("list");
    let find = |id: &str| {
        data.iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("{id} listed"))
    };
    assert_eq!(find("a/m")["pricing"]["input_per_mtok"], 0.5);
    assert_eq!(find("b/n")["owned_by"], "b");
    assert_eq!(find("m")["endpoints"], json!(["a/m", "b/m"]));
    assert_eq!(find("mine")["endpoints"], json!(["a/m", "b/n"]));
    assert_eq!(find("auto")["endpoints"].as_array().expect("list").len(), 3);
    // A group routes to its members.
    let r = h.chat(hello("mine")).await;
    assert_eq!(header(&r, "x-switchyard-endpoint"), "a/m");
}

#[tokio::test]
async fn provider_keys_go_upstream_and_nowhere_else() {
    const KEY: &str = "sk-test-do-not-leak-8f3a";
    let h = Harness::start_with_env(
        vec![spec("p", fault(Fault::Status(500)), &[("m", 1.0, 2.0)])],
        CHEAPEST,
        |var| (var == "P_KEY").then(|| KEY.to_owned()),
    )
    .await;
    let r = h.chat(hello("m")).await;
    let headers = format!("{:?}", r.headers());
    let body = r.text().await.expect("body");
    assert_eq!(
        h.fake("p").last_authorization().as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    assert!(
        !body.contains(KEY) && !headers.contains(KEY),
        "{headers} {body}"
    );
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_stream_finish() {
    let slow = Behavior {
        output_tokens: 20,
        token_interval: std::time::Duration::from_millis(20),
        ..ok()
    };
    let mut h = Harness::start(vec![spec("p", slow, &[("m", 1.0, 2.0)])], CHEAPEST).await;
    let mut req = hello("m");
    req["stream"] = json!(true);
    let r = h.chat(req).await;
    assert_eq!(r.status(), 200);
    h.begin_shutdown();
    let text = r.text().await.expect("the stream completes");
    assert_eq!(sse_content(&text), reply_text("p", "m", 20));
    h.server
        .take()
        .expect("running")
        .await
        .expect("joined")
        .expect("clean exit");
    // After shutdown, nothing listens.
    assert!(h.client.get(h.url("/healthz")).send().await.is_err());
}

#[tokio::test]
async fn answers_carry_their_exact_cost() {
    let h = Harness::start(vec![spec("p", ok(), &[("m", 0.59, 0.79)])], CHEAPEST).await;
    let r = h.chat(hello("m")).await;
    let header_cost = header(&r, "x-switchyard-cost-usd").to_owned();
    let body: Value = r.json().await.expect("json");
    let prompt = body["usage"]["prompt_tokens"]
        .as_u64()
        .expect("prompt tokens");
    let completion = body["usage"]["completion_tokens"]
        .as_u64()
        .expect("completion tokens");
    let per_m = |tokens: u64, price: &str| {
        rust_decimal::Decimal::from(tokens) * price.parse::<rust_decimal::Decimal>().expect("price")
    };
    let expected = ((per_m(prompt, "0.59") + per_m(completion, "0.79"))
        / rust_decimal::Decimal::from(1_000_000))
    .normalize();
    assert_eq!(header_cost, expected.to_string());
    assert_eq!(body["usage"]["cost"].to_string(), expected.to_string());

    // A stream that asked for usage gets the cost in its usage chunk.
    let mut req = hello("m");
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    let text = h.chat(req).await.text().await.expect("body");
    let usage: Value = sse_payloads(&text)
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .find(|v| v.get("usage").is_some())
        .expect("a usage chunk");
    assert_eq!(usage["usage"]["cost"].to_string(), expected.to_string());
}
