//! OpenAI's other generating surfaces: legacy `POST /v1/completions` (routed like chat) and
//! the Responses API `POST /v1/responses` (only to providers marked `responses = true`).
//! Both go through the chat path (hints, selector, fallback, accounting, decision records,
//! headers); bodies go upstream with only the routing fields removed and answers come back
//! unchanged (JSON answers gain `usage.cost`).
//!
//! The router keeps no conversation state (`store: false` semantics for itself): a Responses
//! request with `previous_response_id` is pinned to the endpoint that produced that
//! response, which the router remembers for [`PIN_TTL`] (at most [`PIN_CAPACITY`] of them);
//! an id it does not know is a 400 that says why.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::Value;

use super::attempt::ClientBody;
use super::guard::Caller;
use super::handlers::serve;
use super::{ApiError, Gateway, ENDPOINT_HEADER};

/// How long a response id is remembered.
pub const PIN_TTL: Duration = Duration::from_secs(3600);
/// How many response ids are remembered at most (the oldest go first).
pub const PIN_CAPACITY: usize = 100_000;

/// Response id → the endpoint that produced it.
#[derive(Debug, Default)]
pub(crate) struct ResponsePins {
    inner: Mutex<Pins>,
}

#[derive(Debug, Default)]
struct Pins {
    by_id: HashMap<String, (String, Instant)>,
    order: VecDeque<String>,
}

impl ResponsePins {
    fn pin(&self, id: String, endpoint: String) {
        let mut p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if p.by_id
            .insert(id.clone(), (endpoint, Instant::now()))
            .is_none()
        {
            p.order.push_back(id);
        }
        while p.order.len() > PIN_CAPACITY {
            if let Some(old) = p.order.pop_front() {
                p.by_id.remove(&old);
            }
        }
    }

    fn endpoint(&self, id: &str) -> Option<String> {
        let p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        p.by_id
            .get(id)
            .filter(|(_, at)| at.elapsed() < PIN_TTL)
            .map(|(e, _)| e.clone())
    }
}

/// `POST /v1/completions`.
pub(crate) async fn completions(
    State(gateway): State<Gateway>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    serve(&gateway, caller, &headers, body, "completions", |bytes| {
        Ok((bytes, ClientBody::Completions))
    })
    .await
}

/// `POST /v1/responses`.
pub(crate) async fn responses(
    State(gateway): State<Gateway>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let response = serve(&gateway, caller, &headers, body, "responses", |bytes| {
        let pinned = match top_level_string(&bytes, "previous_response_id") {
            None => None,
            Some(id) => Some(gateway.0.response_pins.endpoint(&id).ok_or_else(|| {
                ApiError::BadField {
                    field: "previous_response_id".into(),
                    message: format!(
                        "`{id}` was not produced through this router in the last hour, so the endpoint that holds it is unknown; send the conversation in `input` instead"
                    ),
                }
            })?),
        };
        Ok((bytes, ClientBody::Responses { pinned }))
    })
    .await;
    remember(&gateway, response).await
}

/// A top-level string field of a JSON object, read without parsing the rest.
fn top_level_string(json: &[u8], name: &str) -> Option<String> {
    let fields = crate::route::body::top_level(json).ok()?;
    let (_, raw) = fields.into_iter().find(|(k, _)| k == name)?;
    serde_json::from_str::<Option<String>>(raw.get())
        .ok()
        .flatten()
}

/// Pins the id of an answered response to the endpoint that answered it: from the JSON
/// answer, or from a stream's `response.created` event as it passes.
async fn remember(gateway: &Gateway, response: Response) -> Response {
    let Some(endpoint) = response
        .headers()
        .get(ENDPOINT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return response;
    };
    if !response.status().is_success() {
        return response;
    }
    let stream = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let (parts, body) = response.into_parts();
    if !stream {
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if let Some(id) = top_level_string(&bytes, "id") {
            gateway.0.response_pins.pin(id, endpoint);
        }
        return Response::from_parts(parts, Body::from(bytes));
    }
    let g = gateway.clone();
    let mut pinned = false;
    let events = body.into_data_stream().map(move |chunk| {
        if let (false, Ok(bytes)) = (pinned, &chunk) {
            if let Some(id) = created_id(bytes) {
                g.0.response_pins.pin(id, endpoint.clone());
                pinned = true;
            }
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(events))
}

/// The response id in a stream chunk's `response.created` event, if it holds one.
fn created_id(chunk: &Bytes) -> Option<String> {
    memchr::memmem::find(chunk, b"\"response.created\"")?;
    chunk
        .split(|&b| b == b'\n')
        .filter_map(|line| line.strip_prefix(b"data:"))
        .filter_map(|data| serde_json::from_slice::<Value>(data.trim_ascii()).ok())
        .find(|v| v["type"] == "response.created")
        .and_then(|v| v["response"]["id"].as_str().map(str::to_owned))
}
