//! Fault injection: one fake provider misbehaving in each way a real one does, a healthy one
//! beside it (or not), and the router in front.
//!
//! For each fault: with a healthy candidate the client gets that candidate's answer; without
//! one it gets an OpenAI-style error; the failure is counted under the right class; in-flight
//! counts return to zero; and nothing panics anywhere in the process.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use common::{header, spec, sse_content, sse_payloads, Harness};
use serde_json::{json, Value};
use switchyard::fake::{reply_text, Behavior, Fault};

static PANICS: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

/// Counts every panic in the process (router tasks included) while still printing it.
fn count_panics() {
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

const CONFIG: &str = r#"
[upstream]
first_byte_timeout = "400ms"
idle_timeout = "400ms"
total_timeout = "10s"
[routing]
policy = "cheapest"
max_attempts = 2
max_retry_after = "1s"
"#;

fn faulty(fault: Fault) -> Behavior {
    Behavior {
        fault,
        ..Behavior::default()
    }
}

async fn start(fault: Fault, with_healthy: bool) -> Harness {
    let mut specs = vec![spec("bad", faulty(fault), &[("m", 0.1, 0.1)])];
    if with_healthy {
        specs.push(spec("good", Behavior::default(), &[("m", 1.0, 1.0)]));
    }
    Harness::start(specs, CONFIG).await
}

fn request(stream: bool) -> Value {
    json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

async fn endpoint(h: &Harness, id: &str) -> Value {
    let report: Value = h
        .client
        .get(h.url("/v1/endpoints"))
        .send()
        .await
        .expect("endpoints")
        .json()
        .await
        .expect("json");
    report["data"]
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
        .expect("endpoint listed")
}

/// Waits until no attempt is in flight (a stream's end is recorded just after its last byte).
async fn assert_settles(h: &Harness) {
    for _ in 0..100 {
        let report: Value = h
            .client
            .get(h.url("/v1/endpoints"))
            .send()
            .await
            .expect("endpoints")
            .json()
            .await
            .expect("json");
        let busy: u64 = report["data"]
            .as_array()
            .expect("list")
            .iter()
            .map(|e| e["in_flight"].as_u64().expect("count"))
            .sum();
        if busy == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("attempts still in flight after 5 s");
}

/// A fault that strikes before anything reaches the client: fallback, error, stats.
async fn fails_over(fault: Fault, class: &str) {
    count_panics();
    let h = start(fault, true).await;
    for stream in [false, true] {
        let r = h.chat(request(stream)).await;
        assert_eq!(r.status(), 200, "{fault:?} stream={stream}");
        assert_eq!(header(&r, "x-switchyard-endpoint"), "good/m", "{fault:?}");
        assert_eq!(header(&r, "x-switchyard-attempts"), "2", "{fault:?}");
        let body = r.text().await.expect("body");
        let text = if stream {
            assert_eq!(
                sse_payloads(&body).last().map(String::as_str),
                Some("[DONE]")
            );
            sse_content(&body)
        } else {
            let v: Value = serde_json::from_str(&body).expect("JSON answer");
            v["choices"][0]["message"]["content"]
                .as_str()
                .expect("content")
                .to_owned()
        };
        assert_eq!(
            text,
            reply_text("good", "m", 8),
            "{fault:?} stream={stream}"
        );
    }
    assert_settles(&h).await;
    let bad = endpoint(&h, "bad/m").await;
    assert_eq!(bad["failures"][class], 2, "{fault:?}: {bad}");
    assert_eq!(bad["successes"], 0, "{fault:?}");
    let good = endpoint(&h, "good/m").await;
    assert_eq!(good["successes"], 2, "{fault:?}: {good}");

    // Alone, the faulty provider's failure reaches the client as an OpenAI-style error.
    let alone = start(fault, false).await;
    for stream in [false, true] {
        let r = alone.chat(request(stream)).await;
        assert_eq!(r.status(), 502, "{fault:?} stream={stream}");
        let v: Value = r.json().await.expect("error JSON");
        assert_eq!(v["error"]["code"], "all_attempts_failed", "{v}");
        assert_eq!(v["error"]["type"], "upstream_error", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .expect("message")
                .contains("bad/m"),
            "{v}"
        );
    }
    assert_settles(&alone).await;
    assert_eq!(endpoint(&alone, "bad/m").await["failures"][class], 2);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}

#[tokio::test]
async fn server_errors_fail_over() {
    for code in [500, 502, 503] {
        fails_over(Fault::Status(code), "server_error").await;
    }
}

#[tokio::test]
async fn a_hang_before_the_headers_fails_over() {
    fails_over(Fault::HangBeforeHeaders, "timeout").await;
}

#[tokio::test]
async fn a_hang_after_the_headers_fails_over() {
    fails_over(Fault::HangAfterHeaders, "timeout").await;
}

#[tokio::test]
async fn a_connection_reset_fails_over() {
    fails_over(Fault::Reset, "connect").await;
}

#[tokio::test]
async fn invalid_json_fails_over() {
    fails_over(Fault::InvalidJson, "bad_response").await;
}

#[tokio::test]
async fn a_malformed_event_stream_fails_over() {
    // Non-streaming requests get a body that is not JSON either.
    fails_over(Fault::MalformedSse, "bad_response").await;
}

#[tokio::test]
async fn a_truncated_event_stream_fails_over() {
    fails_over(Fault::TruncatedSse, "bad_response").await;
}

#[tokio::test]
async fn bytes_dripping_slowly_fail_over() {
    // 20 ms a byte: the first event (or whole answer) cannot arrive within 400 ms.
    fails_over(Fault::Drip(Duration::from_millis(20)), "timeout").await;
}

/// After the first token reached the client no other answer can be spliced in: the stream
/// ends with an error event, the failure counts as mid-stream.
async fn breaks_mid_stream(fault: Fault) {
    count_panics();
    let behavior = Behavior {
        token_interval: Duration::from_millis(20),
        ..faulty(fault)
    };
    let specs = vec![
        spec("bad", behavior, &[("m", 0.1, 0.1)]),
        spec("good", Behavior::default(), &[("m", 1.0, 1.0)]),
    ];
    let h = Harness::start(specs, CONFIG).await;
    let r = h.chat(request(true)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-endpoint"), "bad/m");
    let body = r.text().await.expect("body");
    let payloads = sse_payloads(&body);
    let last: Value = serde_json::from_str(payloads.last().expect("events")).expect("JSON");
    assert_eq!(last["error"]["code"], "stream_interrupted", "{body}");
    assert!(sse_content(&body).starts_with("[bad/m]"), "{body}");
    assert_settles(&h).await;
    assert_eq!(endpoint(&h, "bad/m").await["failures"]["mid_stream"], 1);
    // The next request is not held back by the broken one.
    let r = h.chat(request(false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}

#[tokio::test]
async fn a_hang_mid_stream_ends_with_an_error_event() {
    breaks_mid_stream(Fault::HangMidStream(2)).await;
}

#[tokio::test]
async fn a_break_mid_stream_ends_with_an_error_event() {
    breaks_mid_stream(Fault::BreakAfter(2)).await;
}

#[tokio::test]
async fn retry_after_is_honoured_and_capped() {
    count_panics();
    // The provider asks for an hour; `max_retry_after` caps the rest at one second.
    let h = start(
        Fault::RateLimited {
            retry_after_s: 3600,
        },
        true,
    )
    .await;
    let r = h.chat(request(false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-attempts"), "2");
    // Resting: the cheaper endpoint is not tried first again.
    for _ in 0..3 {
        let r = h.chat(request(false)).await;
        assert_eq!(header(&r, "x-switchyard-endpoint"), "good/m");
        assert_eq!(
            header(&r, "x-switchyard-attempts"),
            "1",
            "the rest was ignored"
        );
    }
    assert_eq!(h.fake("bad").requests(), 1);
    // Past the cap it is tried again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = h.chat(request(false)).await;
    assert_eq!(
        header(&r, "x-switchyard-attempts"),
        "2",
        "the rest was not capped"
    );
    assert_eq!(h.fake("bad").requests(), 2);
    assert_eq!(endpoint(&h, "bad/m").await["failures"]["rate_limited"], 2);

    // Alone: a 502 that passes the (capped) wait on to the client.
    let alone = start(
        Fault::RateLimited {
            retry_after_s: 3600,
        },
        false,
    )
    .await;
    let r = alone.chat(request(false)).await;
    assert_eq!(r.status(), 502);
    assert_eq!(header(&r, "retry-after"), "1");
    assert_settles(&alone).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}
