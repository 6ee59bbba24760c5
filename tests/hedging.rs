//! Hedging, end to end against fake providers: the cheap provider stalls its first token
//! on every fifth request (a heavy tail), the dearer one never does. With `route.hedge`, a
//! stalled attempt gets the dearer candidate beside it; the hedge's answer is relayed, the
//! stalled stream is closed upstream, at most one hedge starts per request, and the budget
//! holds hedging's waste to its share of spend.

mod common;

use std::time::{Duration, Instant};

use common::{header, spec, sse_content, Harness};
use futures_util::StreamExt;
use serde_json::{json, Value};
use switchyard::fake::{reply_text, Behavior};

/// How long a stalled first token waits: far beyond the hedge's delay.
const STALL: Duration = Duration::from_secs(3);
const HEDGE_AFTER_MS: u64 = 400;

async fn harness(extra: &str) -> Harness {
    let stalling = Behavior {
        stall_every: Some((5, STALL)),
        ..Behavior::default()
    };
    Harness::start(
        vec![
            spec("a", stalling, &[("m", 1.0, 2.0)]),
            spec("b", Behavior::default(), &[("m", 2.0, 4.0)]),
        ],
        &format!("[routing]\npolicy = \"cheapest\"\n{extra}"),
    )
    .await
}

struct Streamed {
    endpoint: String,
    hedged: String,
    /// Client-side time to the first content chunk.
    ttft: Duration,
    content: String,
    cost: f64,
}

async fn stream(h: &Harness, hedge: Option<Value>) -> Streamed {
    let mut body = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Hello!"}]});
    if let Some(hedge) = hedge {
        body["route"] = json!({ "hedge": hedge });
    }
    let started = Instant::now();
    let r = h.chat(body).await;
    assert_eq!(r.status(), 200);
    let endpoint = header(&r, "x-switchyard-endpoint").to_owned();
    let hedged = header(&r, "x-switchyard-hedged").to_owned();
    let mut chunks = r.bytes_stream();
    let mut text = String::new();
    let mut ttft = None;
    while let Some(chunk) = chunks.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        if ttft.is_none() && !sse_content(&text).is_empty() {
            ttft = Some(started.elapsed());
        }
    }
    let cost = common::sse_payloads(&text)
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .find_map(|v| v["usage"]["cost"].as_f64())
        .unwrap_or(0.0);
    Streamed {
        endpoint,
        hedged,
        ttft: ttft.expect("content came"),
        content: sse_content(&text),
        cost,
    }
}

fn p99(mut ttfts: Vec<Duration>) -> Duration {
    ttfts.sort();
    ttfts[(ttfts.len() * 99).div_ceil(100) - 1]
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

#[tokio::test]
async fn a_hedge_cuts_the_tail_relays_only_the_winner_and_closes_the_loser() {
    let h = harness("[hedge]\nbudget_share = 0.5\n").await;
    // Without hedging, every fifth answer waits out the stall.
    let mut plain = Vec::new();
    for _ in 0..10 {
        let s = stream(&h, None).await;
        assert_eq!((s.endpoint.as_str(), s.hedged.as_str()), ("a/m", ""));
        plain.push(s.ttft);
    }
    assert!(p99(plain.clone()) >= STALL, "the tail: {plain:?}");

    // With it, a stalled attempt gets `b` beside it.
    let mut hedged_ttfts = Vec::new();
    let (mut hedges, mut spend) = (0, 0.0);
    for i in 11..=30u64 {
        let s = stream(&h, Some(json!({"after": HEDGE_AFTER_MS}))).await;
        hedged_ttfts.push(s.ttft);
        spend += s.cost;
        // The relayed bytes are one provider's answer, the one that answered.
        let provider = s.endpoint.split('/').next().expect("an id");
        assert_eq!(s.content, reply_text(provider, "m", 8), "request {i}");
        if i % 5 == 0 {
            assert_eq!(
                (s.endpoint.as_str(), s.hedged.as_str()),
                ("b/m", "won"),
                "request {i} stalled at a: b's hedge answers first"
            );
        }
        if !s.hedged.is_empty() {
            hedges += 1;
        }
    }
    assert!(hedges >= 4, "every stalled request was hedged: {hedges}");
    // The stalled attempts did not hold their answers back.
    assert!(
        p99(hedged_ttfts.clone()) < STALL,
        "p99 with hedging: {hedged_ttfts:?}"
    );
    // At most one hedge per request: b saw only hedges, a every request once.
    assert_eq!(h.fake("a").requests(), 30);
    assert_eq!(h.fake("b").requests(), hedges);
    // Each lost race closed the stalled stream upstream (dropping it may take a moment).
    let lost = hedges;
    for _ in 0..100 {
        if h.fake("a").disconnects() >= lost {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(h.fake("a").disconnects(), lost);

    let m = h.metrics().await;
    assert_eq!(
        metric(&m, "switchyard_hedges_total{result=\"started\"}"),
        hedges as f64
    );
    assert_eq!(
        metric(&m, "switchyard_hedges_total{result=\"won\"}"),
        hedges as f64
    );
    let wasted = metric(&m, "switchyard_hedge_wasted_usd_total");
    assert!(wasted > 0.0);
    assert!(
        wasted <= 0.5 * spend,
        "waste {wasted} within half the spend {spend}"
    );
    // The stalled attempt is counted cancelled, not failed.
    let endpoints = common::get_json(&h.client, h.url("/v1/endpoints")).await;
    let a = common::endpoint_in(&endpoints, "a/m");
    assert_eq!(a["cancelled"].as_u64(), Some(hedges));
    let failures: u64 = a["failures"]
        .as_object()
        .map_or(0, |f| f.values().filter_map(Value::as_u64).sum());
    assert_eq!(failures, 0, "{a}");
}

#[tokio::test]
async fn a_spent_budget_pauses_hedging() {
    // A share of zero: the first hedge finds nothing wasted yet; after it, none may start.
    let h = harness("[hedge]\nenabled = true\nafter = 400\nbudget_share = 0.0\n").await;
    let mut hedged = 0;
    for _ in 0..15 {
        let s = stream(&h, None).await;
        if !s.hedged.is_empty() {
            hedged += 1;
        }
    }
    assert_eq!(hedged, 1, "one hedge, then the budget is spent");
    let m = h.metrics().await;
    assert_eq!(
        metric(&m, "switchyard_hedges_total{result=\"started\"}"),
        1.0
    );
    assert!(metric(&m, "switchyard_hedges_total{result=\"paused\"}") >= 2.0);
    // A request may still refuse hedging outright.
    let s = stream(&h, Some(json!(false))).await;
    assert_eq!(s.hedged, "");
}

#[tokio::test]
async fn a_json_answer_is_hedged_and_the_decision_says_so() {
    let h = harness("").await;
    for _ in 0..4 {
        let r = h
            .chat(json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}))
            .await;
        assert_eq!(header(&r, "x-switchyard-endpoint"), "a/m");
    }
    let r = h
        .chat(
            json!({"model": "m", "route": {"hedge": {"after": HEDGE_AFTER_MS}},
            "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-endpoint"), "b/m");
    assert_eq!(header(&r, "x-switchyard-hedged"), "won");
    assert_eq!(header(&r, "x-switchyard-attempts"), "1");
    let id = header(&r, "x-request-id").to_owned();
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        reply_text("b", "m", 8)
    );
    let d = common::get_json(&h.client, h.url(&format!("/v1/decisions/{id}"))).await;
    assert_eq!(d["hedge"]["started"], "b/m", "{d}");
    assert_eq!(d["hedge"]["won"], true);
    assert_eq!(d["hedge"]["after_ms"], HEDGE_AFTER_MS as f64);
    // A bad hedge hint is refused, naming the field.
    let r = h
        .chat(json!({"model": "m", "route": {"hedge": {"after": "p100"}},
            "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.expect("json");
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("route.hedge.after")),
        "{e}"
    );
}
