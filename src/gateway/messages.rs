//! Anthropic's Messages API for clients: `POST /v1/messages` and
//! `POST /v1/messages/count_tokens`, answered as Anthropic answers.
//!
//! A Messages request is translated into the router's working form (OpenAI's chat
//! completions, routing hints included) for the parser, the planner and OpenAI-protocol
//! providers; Anthropic-protocol providers get the client's own body with only the routing
//! fields removed, and their complete answers come back byte for byte. Every error on these
//! routes — the router's own, the guard's, a provider's — is in Anthropic's shape
//! (`{"type":"error","error":{"type","message"}}`).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};

use super::attempt::{AnthropicClient, ClientBody};
use super::guard::Caller;
use super::handlers::{read_request, serve};
use super::{ApiError, Gateway};
use crate::dialect::anthropic::{answer, request};
use crate::dialect::TranslateError;
use crate::route::body::BodyError;

/// A request body that must be one JSON object.
pub(super) fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Body(BodyError::Json(e.to_string())))?;
    match v {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::Body(BodyError::NotAnObject)),
    }
}

/// Reads a Messages request: a JSON object with `model`, `max_tokens` and `messages`.
fn parse(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let map = json_object(bytes)?;
    if !map.get("model").is_some_and(Value::is_string) {
        return Err(TranslateError::new("model", "is required and must be a string").into());
    }
    Ok(map)
}

/// What the planner needs of a Messages request it cannot translate: its model, messages
/// (for their size), stream flag, output cap and routing hints.
fn planning_stand_in(map: &Map<String, Value>) -> Map<String, Value> {
    [
        "model",
        "messages",
        "stream",
        "max_tokens",
        "route",
        "provider",
        "models",
    ]
    .iter()
    .filter_map(|k| Some(((*k).to_owned(), map.get(*k)?.clone())))
    .collect()
}

/// `POST /v1/messages`.
pub(crate) async fn messages(
    State(gateway): State<Gateway>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let beta = headers.get("anthropic-beta").cloned();
    serve(&gateway, caller, &headers, body, "messages", |bytes| {
        let map = parse(&bytes)?;
        if !map.get("max_tokens").is_some_and(Value::is_u64) {
            return Err(TranslateError::new(
                "max_tokens",
                "is required and must be a non-negative integer",
            )
            .into());
        }
        // What an OpenAI-protocol provider would get; if the request cannot be said that
        // way, only Anthropic-protocol providers may serve it, and the planner reads a
        // stand-in with the request's model, size, stream and hints.
        let (openai, untranslatable) = match request::to_openai(&map) {
            Ok(o) => (o, None),
            Err(e) => (planning_stand_in(&map), Some(e)),
        };
        let openai = serde_json::to_vec(&openai).expect("a JSON map serialises");
        let client = AnthropicClient {
            body: bytes,
            beta,
            untranslatable,
        };
        Ok((Bytes::from(openai), ClientBody::Anthropic(client)))
    })
    .await
}

/// `POST /v1/messages/count_tokens`: the router's estimate of the prompt's input tokens
/// (the bytes of `system`, `messages` and `tools` over the model's learned bytes per token,
/// 4 before it has learned any).
pub(crate) async fn count_tokens(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_request(&gateway, &headers, body).await?;
    let map = parse(&bytes)?;
    let model = map["model"].as_str().unwrap_or_default();
    let live = gateway.live();
    let idx = live
        .catalog
        .endpoints()
        .iter()
        .position(|e| e.id == model || e.model == model)
        .ok_or_else(|| ApiError::ModelNotFound(model.to_owned(), "model".to_owned()))?;
    let per_token = live.table.with_model(idx, |m| m.bytes_per_token());
    let size: usize = ["system", "messages", "tools"]
        .iter()
        .filter_map(|k| map.get(*k))
        .map(|v| v.to_string().len())
        .sum();
    let tokens = (size as f64 / per_token).ceil() as u64;
    Ok(axum::Json(json!({"input_tokens": tokens})).into_response())
}

/// Gives every error answer of the Anthropic routes Anthropic's shape, headers kept.
pub(crate) async fn anthropic_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() && !status.is_server_error() || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let converted = answer::error_to_anthropic(status.as_u16(), &bytes);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(converted.to_string()))
}
