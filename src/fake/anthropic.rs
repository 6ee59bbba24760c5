//! The fake provider's Anthropic side: `POST /v1/messages` answered as Anthropic's Messages
//! API does (a `message`, or `message_start` … `message_stop` events, one text delta per
//! token), checking what a real one would refuse (no `x-api-key` when one is expected is
//! the router's business; a missing `anthropic-version`, `max_tokens` or `messages` is a
//! 400). A request with `tools` and `tool_choice` `any` or `tool` is answered with a
//! `tool_use` of the first (or named) tool. Faults and the error rate apply as on the
//! OpenAI side; errors are Anthropic-shaped.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::{reply_tokens, sleep_if, FakeState, Fault};

fn error(status: u16, kind: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// The tool a request forces, if it forces one: `(name, input)`.
pub(super) fn forced_tool(
    tools: &Value,
    choice_kind: Option<&str>,
    named: Option<&str>,
) -> Option<String> {
    let first = tools.as_array()?.first()?;
    match choice_kind? {
        "any" | "required" => first["name"]
            .as_str()
            .or(first["function"]["name"].as_str())
            .map(str::to_owned),
        "tool" | "function" => named.map(str::to_owned),
        _ => None,
    }
}

pub(super) async fn messages(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let behavior = state.behavior.lock().expect("behavior lock").clone();
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    *state.last_auth.lock().expect("auth lock") = key.map(|k| format!("x-api-key {k}"));
    let beta = headers.get("anthropic-beta").and_then(|v| v.to_str().ok());
    *state.last_beta.lock().expect("beta lock") = beta.map(str::to_owned);
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(
            400,
            "invalid_request_error",
            "fake provider: body is not JSON",
        );
    };
    *state.last_body.lock().expect("body lock") = Some(request.clone());
    if headers.get("anthropic-version").is_none() {
        return error(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    if !request["max_tokens"].is_u64() {
        return error(400, "invalid_request_error", "max_tokens: Field required");
    }
    if !request["messages"].is_array() {
        return error(400, "invalid_request_error", "messages: Field required");
    }
    match behavior.fault {
        Fault::Status(code) => return error(code, "api_error", "fake provider: injected failure"),
        Fault::RateLimited { retry_after_s } => {
            let mut r = error(429, "rate_limit_error", "fake provider: rate limited");
            r.headers_mut().insert("retry-after", retry_after_s.into());
            return r;
        }
        Fault::HangBeforeHeaders => std::future::pending::<()>().await,
        _ => {}
    }
    let (ttft, failed) = super::draw(&behavior);
    if failed {
        tokio::time::sleep(ttft / 2).await;
        return error(529, "overloaded_error", "fake provider: random failure");
    }
    let model = request["model"].as_str().unwrap_or("unknown").to_owned();
    let cap = request["max_tokens"].as_u64().unwrap_or(u64::MAX);
    let n = u32::try_from(u64::from(behavior.output_tokens).min(cap)).unwrap_or(u32::MAX);
    let input = (request["messages"].to_string().len() + request["system"].to_string().len())
        .div_ceil(4) as u64;
    let id = format!("msg_fake{}", state.requests.load(Ordering::Relaxed));
    let choice = &request["tool_choice"];
    let tool = forced_tool(
        &request["tools"],
        choice["type"].as_str(),
        choice["name"].as_str(),
    );
    let tokens = reply_tokens(&state.name, &model, n);
    let stop = if tool.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    // A request that marks a cache breakpoint reads 100 prompt tokens from the cache and
    // writes 50 to it, beside its uncached input (as Anthropic reports them).
    let (read, written) = if body.windows(13).any(|w| w == b"cache_control") {
        (100, 50)
    } else {
        (0, 0)
    };
    let usage = json!({"input_tokens": input, "output_tokens": n, "cache_read_input_tokens": read, "cache_creation_input_tokens": written});

    if request["stream"] != true {
        sleep_if(ttft + behavior.token_interval * n.saturating_sub(1)).await;
        let content = match &tool {
            Some(name) => {
                json!([{"type": "tool_use", "id": "toolu_fake1", "name": name, "input": {"city": "Oslo"}}])
            }
            None => json!([{"type": "text", "text": tokens.concat()}]),
        };
        return axum::Json(json!({
            "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop, "stop_sequence": null, "usage": usage,
        }))
        .into_response();
    }
    let event = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap_or(""));
    let mut events = vec![
        event(
            json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": 1,
                "cache_read_input_tokens": read, "cache_creation_input_tokens": written}}}),
        ),
        event(json!({"type": "ping"})),
    ];
    match &tool {
        Some(name) => {
            events.push(event(json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_fake1", "name": name, "input": {}}})));
            for part in ["{\"city\":", " \"Oslo\"}"] {
                events.push(event(json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": part}})));
            }
        }
        None => {
            events.push(event(json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}})));
            for t in &tokens {
                events.push(event(json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": t}})));
            }
        }
    }
    events.push(event(json!({"type": "content_block_stop", "index": 0})));
    events.push(event(
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"output_tokens": n}}),
    ));
    events.push(event(json!({"type": "message_stop"})));
    *state.last_sent.lock().expect("sent lock") = Some(events.concat());
    let break_after = match behavior.fault {
        Fault::BreakAfter(k) => Some(k as usize),
        _ => None,
    };
    let interval = behavior.token_interval;
    let body = stream::iter(events.into_iter().enumerate()).then(move |(i, text)| async move {
        sleep_if(if i == 0 {
            ttft
        } else if i > 2 {
            interval
        } else {
            Default::default()
        })
        .await;
        if break_after == Some(i) {
            return Err(std::io::Error::other(
                "fake provider: injected stream break",
            ));
        }
        Ok::<_, std::io::Error>(Bytes::from(text))
    });
    super::sse::event_stream(body)
}
