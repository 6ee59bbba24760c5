//! `POST /v1/embeddings`: price routing among endpoints of one embedding model, fallback,
//! accounting, and the walls between chat and embedding models.

mod common;

use common::{embedding_spec, header, spec, Harness};
use serde_json::{json, Value};
use switchyard::fake::{embedding_vector, Behavior, Fault};

async fn harness(cheap: Behavior) -> Harness {
    Harness::start(
        vec![
            embedding_spec(
                "e1",
                Behavior::default(),
                &[("embed-a", 0.02, 0.0), ("embed-b", 0.01, 0.0)],
            ),
            embedding_spec("e2", cheap, &[("embed-a", 0.01, 0.0)]),
            spec("chat", Behavior::default(), &[("m", 0.1, 0.2)]),
        ],
        "[routing]\npolicy = \"cheapest\"\n[groups]\nmixed = [\"e1/embed-a\", \"e1/embed-b\"]\n",
    )
    .await
}

/// Whether a JSON vector is `expected` (within the JSON parser's last-digit rounding).
fn same_vector(got: &Value, expected: &[f64]) -> bool {
    let got = got.as_array().expect("a vector");
    got.len() == expected.len()
        && got
            .iter()
            .zip(expected)
            .all(|(g, e)| (g.as_f64().expect("a number") - e).abs() < 1e-12)
}

async fn embed(h: &Harness, body: Value) -> reqwest::Response {
    h.client
        .post(h.url("/v1/embeddings"))
        .json(&body)
        .send()
        .await
        .expect("router answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_go_to_the_cheapest_endpoint_of_the_same_model() {
    let h = harness(Behavior::default()).await;
    let r = embed(
        &h,
        json!({"model": "embed-a", "input": ["hello", "world"], "route": {"prefer": "cost"}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-endpoint"), "e2/embed-a");
    assert_eq!(header(&r, "x-switchyard-attempts"), "1");
    let cost: f64 = header(&r, "x-switchyard-cost-usd").parse().expect("a cost");
    let v: Value = r.json().await.expect("json");
    assert!(same_vector(
        &v["data"][0]["embedding"],
        &embedding_vector("e2", "embed-a", "hello")
    ));
    assert!(same_vector(
        &v["data"][1]["embedding"],
        &embedding_vector("e2", "embed-a", "world")
    ));
    // 2 + 2 prompt tokens at $0.01 per million.
    assert_eq!(v["usage"]["prompt_tokens"], 4);
    assert!((cost - 4.0 * 0.01 / 1e6).abs() < 1e-15, "{cost}");
    assert_eq!(v["usage"]["cost"].as_f64(), Some(cost));
    let seen = h.fake("e2").last_body().expect("sent");
    assert_eq!(
        seen,
        json!({"model": "embed-a", "input": ["hello", "world"]}),
        "routing fields stay home"
    );
    // Learned like chat: the endpoint's statistics saw a success.
    let report = common::get_json(&h.client, h.url("/v1/endpoints")).await;
    let e2 = report["data"]
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["id"] == "e2/embed-a")
        .expect("e2")
        .clone();
    assert_eq!(e2["successes"], 1, "{e2}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_falls_back_to_the_same_model_elsewhere() {
    let h = harness(Behavior {
        fault: Fault::Status(503),
        ..Behavior::default()
    })
    .await;
    let r = embed(&h, json!({"model": "embed-a", "input": "hello"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-attempts"), "2");
    assert_eq!(header(&r, "x-switchyard-endpoint"), "e1/embed-a");
    let v: Value = r.json().await.expect("json");
    assert!(same_vector(
        &v["data"][0]["embedding"],
        &embedding_vector("e1", "embed-a", "hello")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_embedding_models_never_cross() {
    let h = harness(Behavior::default()).await;
    // A chat request to an embedding model.
    let r = h
        .chat(json!({"model": "embed-a", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["param"], "operation", "{v}");
    // An embeddings request to a chat model, or to `auto`.
    for model in ["m", "auto"] {
        let r = embed(&h, json!({"model": model, "input": "hi"})).await;
        assert_eq!(r.status(), 422, "{model}");
    }
    // `auto` chat never reaches an embedding model.
    for _ in 0..5 {
        let r = h
            .chat(json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(header(&r, "x-switchyard-endpoint"), "chat/m");
    }
    // A group of two embedding models would mix vectors.
    let r = embed(&h, json!({"model": "mixed", "input": "hi"})).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["param"], "model", "{v}");
    let r = embed(&h, json!({"model": "embed-a"})).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["param"], "input", "{v}");
    // The model list says which endpoint serves what.
    let models = common::get_json(&h.client, h.url("/v1/models")).await;
    let ops = |id: &str| {
        models["data"]
            .as_array()
            .expect("list")
            .iter()
            .find(|m| m["id"] == id)
            .expect("listed")["operations"]
            .clone()
    };
    assert_eq!(ops("e2/embed-a"), json!(["embeddings"]));
    assert_eq!(
        ops("chat/m"),
        json!(["chat.completions", "messages", "completions"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_whose_only_endpoint_fails_gets_a_502_not_another_models_vectors() {
    let failing = Behavior {
        fault: Fault::Status(500),
        ..Behavior::default()
    };
    let h = Harness::start(
        vec![
            embedding_spec("e1", failing, &[("embed-b", 0.01, 0.0)]),
            embedding_spec("e2", Behavior::default(), &[("embed-a", 0.01, 0.0)]),
        ],
        "",
    )
    .await;
    let r = embed(&h, json!({"model": "embed-b", "input": "hello"})).await;
    assert_eq!(r.status(), 502);
    assert_eq!(h.fake("e2").requests(), 0, "embed-a was never asked");
}
