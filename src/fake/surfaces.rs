//! The fake provider's legacy `POST /v1/completions` and the Responses API
//! `POST /v1/responses`, JSON and SSE, in OpenAI's shapes. Usage: prompt tokens a quarter of
//! the prompt's bytes; a Responses request with `prompt_cache_key` reads half of them from
//! the cache, and one with `reasoning` spends 4 reasoning tokens (counted among the output
//! tokens, as OpenAI counts them).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use rand::Rng;
use serde_json::{json, Value};

use super::{error, reply_tokens, sleep_if, FakeState, Fault};

/// The request, recorded; or the failure the behaviour asks for.
fn take(state: &FakeState, body: &Bytes) -> Result<(Value, super::Behavior), Box<Response>> {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let behavior = state.behavior.lock().expect("behavior lock").clone();
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return Err(Box::new(error(400, "fake provider: body is not JSON")));
    };
    *state.last_body.lock().expect("body lock") = Some(request.clone());
    if let Fault::Status(code) = behavior.fault {
        return Err(Box::new(error(code, "fake provider: injected failure")));
    }
    if rand::rng().random_bool(behavior.error_rate.clamp(0.0, 1.0)) {
        return Err(Box::new(error(500, "fake provider: random failure")));
    }
    Ok((request, behavior))
}

fn sse(events: Vec<String>, first: std::time::Duration, every: std::time::Duration) -> Response {
    let body = stream::iter(events.into_iter().enumerate()).then(move |(i, text)| async move {
        sleep_if(if i == 0 { first } else { every }).await;
        Ok::<_, std::io::Error>(Bytes::from(text))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .expect("static headers are valid")
}

pub(super) async fn completions(State(state): State<Arc<FakeState>>, body: Bytes) -> Response {
    let (request, behavior) = match take(&state, &body) {
        Ok(r) => r,
        Err(e) => return *e,
    };
    let model = request["model"].as_str().unwrap_or("unknown").to_owned();
    let cap = request["max_tokens"].as_u64().unwrap_or(u64::MAX);
    let n = u32::try_from(u64::from(behavior.output_tokens).min(cap)).unwrap_or(u32::MAX);
    let prompt = request["prompt"].to_string().len().div_ceil(4) as u64;
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": n, "total_tokens": prompt + u64::from(n)});
    let tokens = reply_tokens(&state.name, &model, n);
    let id = format!("cmpl-fake{}", state.requests.load(Ordering::Relaxed));
    let choice = |text: &str, finish: Value| json!({"text": text, "index": 0, "logprobs": null, "finish_reason": finish});
    if request["stream"] != true {
        sleep_if(behavior.ttft).await;
        return axum::Json(
            json!({"id": id, "object": "text_completion", "created": 1_764_000_000,
            "model": model, "choices": [choice(&tokens.concat(), json!("stop"))], "usage": usage}),
        )
        .into_response();
    }
    let chunk = |choices: Value| json!({"id": id, "object": "text_completion", "created": 1_764_000_000, "model": model, "choices": choices});
    let mut events: Vec<String> = tokens
        .iter()
        .map(|t| format!("data: {}\n\n", chunk(json!([choice(t, Value::Null)]))))
        .collect();
    events.push(format!(
        "data: {}\n\n",
        chunk(json!([choice("", json!("stop"))]))
    ));
    if request["stream_options"]["include_usage"] == true {
        let mut last = chunk(json!([]));
        last["usage"] = usage;
        events.push(format!("data: {last}\n\n"));
    }
    events.push("data: [DONE]\n\n".into());
    sse(events, behavior.ttft, behavior.token_interval)
}

pub(super) async fn responses(State(state): State<Arc<FakeState>>, body: Bytes) -> Response {
    let (request, behavior) = match take(&state, &body) {
        Ok(r) => r,
        Err(e) => return *e,
    };
    let model = request["model"].as_str().unwrap_or("unknown").to_owned();
    let cap = request["max_output_tokens"].as_u64().unwrap_or(u64::MAX);
    let n = u32::try_from(u64::from(behavior.output_tokens).min(cap)).unwrap_or(u32::MAX);
    let input = (request["input"].to_string().len() + request["instructions"].to_string().len())
        .div_ceil(4) as u64;
    let cached = if request.get("prompt_cache_key").is_some() {
        input / 2
    } else {
        0
    };
    let reasoning = if request.get("reasoning").is_some() {
        4
    } else {
        0
    };
    let usage = json!({
        "input_tokens": input, "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": u64::from(n) + reasoning, "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input + u64::from(n) + reasoning,
    });
    let tokens = reply_tokens(&state.name, &model, n);
    let text = tokens.concat();
    let id = format!("resp_fake{}", state.requests.load(Ordering::Relaxed));
    let item_id = format!("msg_fake{}", state.requests.load(Ordering::Relaxed));
    let part = json!({"type": "output_text", "text": text, "annotations": []});
    let item = json!({"type": "message", "id": item_id, "status": "completed", "role": "assistant", "content": [part]});
    let response = |status: &str, output: Value, usage: Value| {
        json!({
            "id": id, "object": "response", "created_at": 1_764_000_000, "status": status, "model": model,
            "output": output, "usage": usage, "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
            "previous_response_id": request["previous_response_id"],
        })
    };
    if request["stream"] != true {
        sleep_if(behavior.ttft).await;
        return axum::Json(response("completed", json!([item]), usage)).into_response();
    }
    let mut seq = 0;
    let mut event = |v: Value| {
        let mut v = v;
        v["sequence_number"] = json!(seq);
        seq += 1;
        format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap_or(""))
    };
    let mut events = vec![
        event(
            json!({"type": "response.created", "response": response("in_progress", json!([]), Value::Null)}),
        ),
        event(
            json!({"type": "response.in_progress", "response": response("in_progress", json!([]), Value::Null)}),
        ),
        event(
            json!({"type": "response.output_item.added", "output_index": 0,
            "item": {"type": "message", "id": item_id, "status": "in_progress", "role": "assistant", "content": []}}),
        ),
        event(
            json!({"type": "response.content_part.added", "item_id": item_id, "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []}}),
        ),
    ];
    for t in &tokens {
        events.push(event(
            json!({"type": "response.output_text.delta", "item_id": item_id, "output_index": 0,
            "content_index": 0, "delta": t}),
        ));
    }
    events.push(event(json!({"type": "response.output_text.done", "item_id": item_id, "output_index": 0, "content_index": 0, "text": text})));
    events.push(event(json!({"type": "response.content_part.done", "item_id": item_id, "output_index": 0, "content_index": 0, "part": part})));
    events.push(event(
        json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
    ));
    events.push(event(json!({"type": "response.completed", "response": response("completed", json!([item]), usage)})));
    sse(events, behavior.ttft, behavior.token_interval)
}
