//! The selector end to end: "cheapest under X ms at p95" over three fake providers, an
//! outage and a recovery; hard constraints and the 422; decisions explained.

mod common;

use std::time::Duration;

use common::{hello, spec, Harness};
use serde_json::{json, Value};
use switchyard::fake::{Behavior, Fault};

const TARGET_MS: u64 = 150;

fn provider(ttft_ms: u64) -> Behavior {
    Behavior {
        ttft: Duration::from_millis(ttft_ms),
        output_tokens: 3,
        ..Behavior::default()
    }
}

/// Sends one streaming request with the latency hint; returns the answering endpoint and
/// the attempts it took.
async fn routed(h: &Harness) -> (String, u32) {
    let mut req = hello("llama");
    req["stream"] = json!(true);
    req["route"] = json!({"max_latency_ms": TARGET_MS, "latency_percentile": 95});
    let r = h.chat(req).await;
    assert_eq!(r.status(), 200);
    let endpoint = common::header(&r, "x-switchyard-endpoint").to_owned();
    let attempts = common::header(&r, "x-switchyard-attempts")
        .parse()
        .expect("a number");
    r.bytes().await.expect("the whole stream");
    (endpoint, attempts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cheapest_under_the_latency_target_learns_follows_an_outage_and_returns() {
    // The outcome half-life is short so that a recovery is believed within seconds, not the
    // minute a production router would wait; the policy and everything else are as shipped.
    let h = Harness::start(
        vec![
            spec("slow", provider(300), &[("llama", 0.10, 0.10)]),
            spec("mid", provider(30), &[("llama", 0.50, 0.50)]),
            spec("fast", provider(5), &[("llama", 2.00, 2.00)]),
        ],
        "[stats]\noutcome_half_life = \"2s\"\n",
    )
    .await;
    // Only mid (30 ms) and fast (5 ms) meet 150 ms; "meets X" below means answered by one
    // of them, whose first-token time is fixed, so the check does not depend on how loaded
    // the test machine is.
    let meets = |e: &str| e == "mid/llama" || e == "fast/llama";

    for _ in 0..20 {
        routed(&h).await; // warm-up: each endpoint gets explored
    }
    let mut to_mid = 0;
    let mut met = 0;
    for _ in 0..100 {
        let (e, _) = routed(&h).await;
        to_mid += usize::from(e == "mid/llama");
        met += usize::from(meets(&e));
    }
    eprintln!("after warm-up: {to_mid}/100 to mid, {met}/100 met the target");
    assert!(to_mid >= 90, "{to_mid}/100 went to the mid-priced endpoint");
    assert!(met >= 95, "{met}/100 met the target");

    // mid starts failing: within a few dozen requests the traffic is on fast.
    h.fake("mid").set_behavior(Behavior {
        fault: Fault::Status(500),
        ..provider(30)
    });
    let before = h.fake("mid").requests();
    let mut after = Vec::new();
    for _ in 0..40 {
        after.push(routed(&h).await.0);
    }
    // As required of the steady state: at least 95% meet X. Thompson sampling still explores
    // now and then (a rare draw makes `slow` look feasible), so not every single request.
    let met_after = after.iter().filter(|e| meets(e)).count();
    assert!(
        met_after >= 38,
        "{met_after}/40 met the target after the outage: {after:?}"
    );
    let last_20 = &after[20..];
    let tried_mid = h.fake("mid").requests() - before;
    eprintln!("outage: mid tried {tried_mid} times in the 40 requests after it broke");
    assert!(
        tried_mid <= 12,
        "mid was tried {tried_mid} times in 40 requests after it broke"
    );
    let on_fast = last_20.iter().filter(|e| *e == "fast/llama").count();
    assert!(
        on_fast >= 19,
        "requests 20..40 after the outage: {last_20:?}"
    );

    // mid recovers: after its cooldown it is probed, succeeds, and wins the traffic back.
    h.fake("mid").set_behavior(provider(30));
    let mut recent: Vec<bool> = Vec::new();
    let mut recovered = false;
    for _ in 0..600 {
        let (e, _) = routed(&h).await;
        recent.push(e == "mid/llama");
        if recent.len() >= 20 && recent[recent.len() - 20..].iter().filter(|m| **m).count() >= 15 {
            recovered = true;
            break;
        }
        // Paced so the cooldown (seconds) passes within a bounded number of requests.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    eprintln!(
        "recovery: mid back on 15 of the last 20 after {} requests",
        recent.len()
    );
    assert!(
        recovered,
        "mid never won the traffic back ({} requests)",
        recent.len()
    );
}

#[tokio::test]
async fn hard_constraints_filter_and_a_request_nothing_survives_gets_422() {
    let h = Harness::start(
        vec![
            spec("a", provider(0), &[("m", 0.5, 1.0)]),
            spec("b", provider(0), &[("m", 3.0, 15.0)]),
        ],
        "",
    )
    .await;
    // max_price keeps only a.
    let mut req = hello("m");
    req["provider"] = json!({"max_price": {"prompt": 1.0, "completion": 2.0}});
    for _ in 0..10 {
        let r = h.chat(req.clone()).await;
        assert_eq!(common::header(&r, "x-switchyard-endpoint"), "a/m");
    }
    // ignore a, and only b is left; a header cost cap below b's estimate leaves nothing.
    let mut req = hello("m");
    req["route"] = json!({"ignore": ["a"], "max_tokens_unused": null});
    let r = h.chat(req).await;
    assert_eq!(r.status(), 400, "unknown route field is refused");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["param"], "route");

    let mut req = hello("m");
    req["route"] = json!({"ignore": ["a"]});
    req["max_tokens"] = json!(1000);
    let r = h
        .client
        .post(h.url("/v1/chat/completions"))
        .header("x-route-max-cost-usd", "0.001")
        .json(&req)
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "no_candidates");
    let msg = body["error"]["message"].as_str().expect("message");
    assert!(msg.contains("`route.ignore` removed a/m"), "{msg}");
    assert!(msg.contains("`max_cost_usd` removed b/m"), "{msg}");
    assert_eq!(h.fake("a").requests() + h.fake("b").requests(), 10);

    // Names in only/ignore/order must exist.
    let mut req = hello("m");
    req["provider"] = json!({"order": ["nobody"]});
    let r = h.chat(req).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["param"], "provider.order");
}

#[tokio::test]
async fn routing_fields_are_removed_before_the_request_goes_upstream() {
    let h = Harness::start(vec![spec("a", provider(0), &[("m", 0.5, 1.0)])], "").await;
    let mut req = hello("m:floor");
    req["route"] = json!({"prefer": "latency"});
    req["provider"] = json!({"sort": "price", "allow_fallbacks": true});
    req["models"] = json!(["a/m"]);
    req["temperature"] = json!(0.1);
    let r = h.chat(req).await;
    assert_eq!(r.status(), 200);
    let sent = h.fake("a").last_body().expect("received");
    assert_eq!(
        sent,
        json!({"model": "m", "messages": hello("m")["messages"], "temperature": 0.1})
    );
}

#[tokio::test]
async fn models_fallback_list_is_tried_in_order() {
    let failing = Behavior {
        fault: Fault::Status(503),
        ..Behavior::default()
    };
    let h = Harness::start(
        vec![
            spec("a", failing, &[("big", 0.1, 0.1)]),
            spec("b", provider(0), &[("small", 5.0, 5.0)]),
        ],
        "",
    )
    .await;
    let req = json!({"models": ["big", "small"], "messages": [{"role": "user", "content": "hi"}]});
    let r = h.chat(req).await;
    assert_eq!(r.status(), 200);
    assert_eq!(common::header(&r, "x-switchyard-endpoint"), "b/small");
    assert_eq!(common::header(&r, "x-switchyard-attempts"), "2");
    let mut bad = hello("big");
    bad["models"] = json!(["nope"]);
    let r = h.chat(bad).await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["param"], "models[0]");
}

#[tokio::test]
async fn a_decision_is_explained_by_request_id() {
    let h = Harness::start(
        vec![
            spec("a", provider(0), &[("m", 0.5, 1.0)]),
            spec("b", provider(0), &[("m", 3.0, 15.0)]),
        ],
        "",
    )
    .await;
    let mut req = hello("m");
    req["route"] = json!({"max_latency_ms": 900, "prefer": "cost"});
    req["provider"] = json!({"max_price": {"completion": 10}});
    let r = h.chat(req).await;
    let id = common::header(&r, "x-request-id").to_owned();
    let answered = common::header(&r, "x-switchyard-endpoint").to_owned();
    let d: Value = h
        .client
        .get(h.url(&format!("/v1/decisions/{id}")))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(d["id"], id.as_str());
    assert_eq!(d["policy"], "thompson");
    assert_eq!(d["constraints"]["latency"][0]["max_ms"], 900.0);
    assert_eq!(
        d["removed_by_constraints"],
        json!([{"endpoint": "b/m", "constraint": "provider.max_price.completion"}])
    );
    let c = &d["candidates"][0];
    assert_eq!(c["endpoint"], "a/m");
    assert!(
        c["sampled_latency_ms"].as_f64().is_some() && c["estimated_cost_usd"].as_f64().is_some()
    );
    assert_eq!(
        d["attempts"],
        json!([{"endpoint": answered, "answered": true}])
    );
    assert!(d["why"].as_str().expect("why").contains("a/m"));

    let r = h
        .client
        .get(h.url("/v1/decisions/req_nope"))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 404);
}
