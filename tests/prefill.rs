//! First-token time predicted for the request's prompt, end to end: two fake providers whose
//! first token grows differently with the prompt; short prompts go to the cheap one whose
//! prefill is slow, long prompts to the one that still meets the target.

mod common;

use std::time::Duration;

use common::{get_json, header, spec, Harness};
use serde_json::{json, Value};
use switchyard::fake::Behavior;

/// A streamed request with a prompt of about `tokens` tokens (4 bytes each, as the fake
/// counts them) and a 250 ms p95 first-token target.
fn request(tokens: usize) -> Value {
    json!({
        "model": "m",
        "stream": true,
        "messages": [{"role": "user", "content": "x".repeat(tokens * 4)}],
        "route": {"max_latency_ms": 250, "latency_percentile": 95, "latency_metric": "ttft"},
    })
}

async fn first_endpoint(h: &Harness, tokens: usize) -> String {
    let r = h.chat(request(tokens)).await;
    assert_eq!(r.status(), 200);
    let endpoint = header(&r, "x-switchyard-endpoint").to_owned();
    r.bytes().await.expect("whole answer");
    endpoint
}

#[tokio::test]
async fn short_prompts_go_to_the_slow_prefill_long_ones_to_the_fast() {
    let ms = Duration::from_millis;
    // 20,000-token prompts: 400 ms more at the cheap provider, 4 ms at the dear one.
    let slow_prefill = Behavior {
        ttft: ms(20),
        prefill_tokens_per_s: Some(50_000.0),
        ..Behavior::default()
    };
    let fast_prefill = Behavior {
        ttft: ms(30),
        prefill_tokens_per_s: Some(5_000_000.0),
        ..Behavior::default()
    };
    let h = Harness::start(
        vec![
            spec("cheap", slow_prefill, &[("m", 0.1, 0.1)]),
            spec("dear", fast_prefill, &[("m", 1.0, 1.0)]),
        ],
        "[routing]\nseed = 17\n",
    )
    .await;
    let (short, long) = (100, 20_000);
    // Learning: both sizes, alternately.
    for k in 0..40 {
        first_endpoint(&h, if k % 2 == 0 { short } else { long }).await;
    }
    let mut cheap_short = 0;
    let mut dear_long = 0;
    for _ in 0..20 {
        cheap_short += usize::from(first_endpoint(&h, short).await == "cheap/m");
        dear_long += usize::from(first_endpoint(&h, long).await == "dear/m");
    }
    let report = get_json(&h.client, h.url("/v1/endpoints")).await;
    let cheap = common::endpoint_in(&report, "cheap/m").clone();
    eprintln!(
        "short prompts at cheap/m {cheap_short}/20, long at dear/m {dear_long}/20; {}",
        cheap["learned"]["prefill"]
    );
    assert!(
        cheap_short >= 16,
        "short prompts at cheap/m: {cheap_short} of 20"
    );
    assert!(dear_long >= 16, "long prompts at dear/m: {dear_long} of 20");
    // What was learned is shown: the cheap one's first token grows with the prompt.
    let at = |k: &str| cheap["learned"]["prefill"]["ttft_median_ms_at"][k].as_f64();
    let (at_1k, at_32k) = (at("1k").expect("1k"), at("32k").expect("32k"));
    assert!(at_32k > 5.0 * at_1k, "{}", cheap["learned"]["prefill"]);
    // A decision record shows it per candidate too.
    let r = h.chat(request(short)).await;
    let id = header(&r, "x-request-id").to_owned();
    r.bytes().await.expect("whole answer");
    let decision = get_json(&h.client, h.url(&format!("/v1/decisions/{id}"))).await;
    let candidate = decision["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .find(|c| c["endpoint"] == "cheap/m")
        .expect("cheap/m ranked")
        .clone();
    let per_1k = candidate["prefill_now"]["ms_per_1k_prompt_tokens"].as_f64();
    assert!(per_1k.is_some_and(|ms| ms > 5.0), "{candidate}");
}
