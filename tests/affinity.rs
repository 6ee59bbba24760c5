//! Conversation affinity, end to end: the turns of a conversation with one
//! `prompt_cache_key` stay on one of two equal-priced endpoints (even under round robin), where the fake provider's
//! prompt cache makes each turn cheaper; the conversation moves when that endpoint fails,
//! and stays where it moved.

mod common;

use common::{get_json, header, spec, Harness, Spec};
use serde_json::{json, Value};
use switchyard::fake::{Behavior, Fault};

/// Input 1 USD per million tokens, cached input 0.1.
fn cached(name: &'static str) -> Spec {
    Spec {
        cache: Some((0.1, 1.0)),
        ..spec(name, Behavior::default(), &[("m", 1.0, 2.0)])
    }
}

/// Turn `k` of the conversation: its earlier turns and one new question.
fn turn(k: usize, key: Option<&str>) -> Value {
    let mut messages = Vec::new();
    for i in 0..=k {
        messages
            .push(json!({"role": "user", "content": format!("question {i}: {}", "x".repeat(400))}));
        if i < k {
            messages.push(json!({"role": "assistant", "content": format!("answer {i}")}));
        }
    }
    let mut body = json!({"model": "m", "messages": messages});
    if let Some(key) = key {
        body["prompt_cache_key"] = json!(key);
    }
    body
}

struct Turn {
    endpoint: String,
    id: String,
    cached_tokens: u64,
    prompt_tokens: u64,
    cost: f64,
}

async fn ask(h: &Harness, body: Value) -> Turn {
    let r = h.chat(body).await;
    assert_eq!(r.status(), 200);
    let endpoint = header(&r, "x-switchyard-endpoint").to_owned();
    let id = header(&r, "x-request-id").to_owned();
    let cost: f64 = header(&r, "x-switchyard-cost-usd").parse().expect("a cost");
    let v: Value = r.json().await.expect("json");
    Turn {
        endpoint,
        id,
        cached_tokens: v["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0),
        prompt_tokens: v["usage"]["prompt_tokens"].as_u64().expect("usage"),
        cost,
    }
}

#[tokio::test]
async fn a_conversation_stays_on_its_endpoint_until_it_fails() {
    // Round robin: without affinity the turns alternate between the two endpoints.
    let h = Harness::start(
        vec![cached("a"), cached("b")],
        "[routing]\nseed = 9\npolicy = \"round-robin\"\n",
    )
    .await;
    let mut at_a = 0;
    for k in 0..10 {
        at_a += usize::from(ask(&h, turn(k, None)).await.endpoint == "a/m");
    }
    assert_eq!(at_a, 5, "without a key the turns alternate");

    let mut turns = Vec::new();
    for k in 0..20 {
        turns.push(ask(&h, turn(k, Some("conv-1"))).await);
    }
    let home = turns[0].endpoint.clone();
    let stayed = turns.iter().filter(|t| t.endpoint == home).count();
    eprintln!("{stayed} of 20 turns at {home}");
    assert!(stayed >= 19, "{stayed} of 20 turns at {home}");
    // The cache shows in the accounting: later turns read their earlier turns from it and
    // cost less than the same prompt uncached would (1 USD/Mtok in, 0.1 cached, 2 out).
    let last = turns.last().expect("turns");
    assert!(
        last.cached_tokens > last.prompt_tokens / 2,
        "{} of {}",
        last.cached_tokens,
        last.prompt_tokens
    );
    let uncached = last.prompt_tokens as f64 * 1e-6 + 8.0 * 2e-6;
    assert!(last.cost < 0.5 * uncached, "{} vs {uncached}", last.cost);
    let decision = get_json(&h.client, h.url(&format!("/v1/decisions/{}", last.id))).await;
    assert_eq!(decision["affinity"], "kept", "{}", decision["affinity"]);

    // Its endpoint fails: the next turn falls back, and the conversation stays there.
    h.fake(&home[..1]).set_behavior(Behavior {
        fault: Fault::Status(500),
        ..Behavior::default()
    });
    let mut after = Vec::new();
    for k in 20..30 {
        after.push(ask(&h, turn(k, Some("conv-1"))).await.endpoint);
    }
    let other = if home.starts_with('a') { "b/m" } else { "a/m" };
    assert!(after.iter().all(|e| e == other), "{after:?}");
}
