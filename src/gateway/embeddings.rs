//! `POST /v1/embeddings`: routed only among endpoints serving the *same* embedding model
//! (vectors of different models must never mix in one index), by the same hints, selector,
//! fallback and accounting as chat. The client's body goes upstream with only the routing
//! fields removed; the answer comes back byte for byte with `usage.cost` added.
//!
//! The planner reads a stand-in chat request built from the body (its `input` as the
//! prompt, so the prompt-size estimate and `max_cost_usd` work as for chat); the request is
//! marked as asking for embeddings, which removes every chat endpoint (and every endpoint of
//! a provider that does not speak OpenAI's protocol).

use std::collections::BTreeSet;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::attempt::ClientBody;
use super::guard::Caller;
use super::handlers::serve;
use super::{ApiError, Gateway};

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::BadField {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The stand-in chat request the planner reads: `model`, the routing fields, and `input` as
/// the one message.
fn stand_in(body: &Map<String, Value>) -> Result<Vec<u8>, ApiError> {
    let model = body
        .get("model")
        .filter(|m| m.as_str().is_some_and(|s| !s.trim().is_empty()));
    let Some(model) = model else {
        return Err(bad("model", "is required and must be a non-empty string"));
    };
    let input = match body.get("input") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Array(items)) if !items.is_empty() => Value::Array(items.clone()).to_string(),
        _ => {
            return Err(bad(
                "input",
                "is required: a non-empty string or array (of strings or token ids)",
            ))
        }
    };
    let mut chat = Map::new();
    chat.insert("model".into(), model.clone());
    chat.insert(
        "messages".into(),
        json!([{"role": "user", "content": input}]),
    );
    for key in crate::route::body::ROUTER_FIELDS {
        if let Some(v) = body.get(key) {
            chat.insert(key.into(), v.clone());
        }
    }
    Ok(serde_json::to_vec(&chat).expect("a JSON map serialises"))
}

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(
    State(gateway): State<Gateway>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let live = gateway.live();
    serve(&gateway, caller, &headers, body, "embeddings", |bytes| {
        let map = super::messages::json_object(&bytes)?;
        let planning = stand_in(&map)?;
        // One embedding model per request, whatever `model` names.
        let name = map["model"].as_str().unwrap_or_default();
        let (name, _) = name.split_once(':').unwrap_or((name, ""));
        if let Some(idxs) = live.catalog.resolve(name) {
            let models: BTreeSet<&str> = idxs
                .iter()
                .map(|&i| live.catalog.endpoint(i))
                .filter(|e| !e.kind.is_chat())
                .map(|e| e.model.as_str())
                .collect();
            if models.len() > 1 {
                let list: Vec<&str> = models.into_iter().collect();
                return Err(bad(
                    "model",
                    format!(
                        "`{name}` names endpoints of several embedding models ({}): vectors of different models must never mix",
                        list.join(", ")
                    ),
                ));
            }
        }
        Ok((Bytes::from(planning), ClientBody::Embeddings(bytes)))
    })
    .await
}
