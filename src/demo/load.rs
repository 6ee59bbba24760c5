//! The demo's built-in load: a few requests a second through the router itself, so the
//! dashboard and `/v1/endpoints` show live traffic from the first minute. A fixed rotation
//! of realistic requests: plain and streamed, a model served by three providers, a group,
//! `auto` with a quality floor, and latency and cost targets.

use std::time::Duration;

use serde_json::{json, Value};

fn rotation() -> Vec<Value> {
    let msg = json!([{"role": "user", "content": "Summarise the last deploy in one line."}]);
    vec![
        json!({"model": "llama-3.3-70b", "messages": msg}),
        json!({"model": "llama-3.3-70b", "stream": true, "messages": msg,
               "route": {"max_latency_ms": 400, "latency_percentile": 95}}),
        json!({"model": "fast-70b", "stream": true, "messages": msg}),
        json!({"model": "llama-3.1-8b", "messages": msg}),
        json!({"model": "auto", "messages": msg, "route": {"min_quality": 0.9}}),
        json!({"model": "llama-3.3-70b:nitro", "stream": true, "messages": msg}),
        json!({"model": "llama-3.3-70b", "messages": msg, "route": {"max_cost_usd": 0.0001}}),
        // Served by the Anthropic-protocol provider, translated both ways.
        json!({"model": "claude-haiku-4-5", "stream": true, "messages": msg}),
    ]
}

/// Sends `per_second` requests a second to the routers at `bases` (`http://host:port`),
/// round robin, until the task is dropped. Answers are read to the end and otherwise
/// ignored.
pub async fn run(bases: Vec<String>, per_second: f64) {
    if per_second <= 0.0 || bases.is_empty() {
        return;
    }
    let client = reqwest::Client::new();
    let urls: Vec<String> = bases
        .iter()
        .map(|b| format!("{b}/v1/chat/completions"))
        .collect();
    let bodies = rotation();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    for i in 0usize.. {
        tick.tick().await;
        let body = bodies[i % bodies.len()].clone();
        let (client, url) = (client.clone(), urls[i % urls.len()].clone());
        tokio::spawn(async move {
            let sent = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await;
            if let Ok(r) = sent {
                let _ = r.bytes().await;
            }
        });
    }
}
