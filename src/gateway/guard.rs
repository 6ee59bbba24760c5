//! What a request passes before it is routed: the client key, the key's limits, and the
//! router's own capacity.
//!
//! [`client_auth`] guards every `/v1/*` route: with client keys configured, a request needs
//! `Authorization: Bearer <key>` of one of them (401 otherwise); the caller goes into the
//! request's extensions as a [`Caller`]. [`chat_limits`] guards chat completions only: the
//! key's rate and spend limits (429 with `Retry-After`), then a permit from the concurrency
//! cap (503 with `Retry-After` when it is used up). The permit is held by the response body,
//! so a stream counts until its last byte, and returned whatever way the request ends.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::{ApiError, Gateway};
use crate::auth::{self, Client};

/// Who sent the request: `None` when the router runs without client keys.
#[derive(Debug, Clone, Default)]
pub(crate) struct Caller(pub Option<Arc<Client>>);

impl Caller {
    pub fn name(&self) -> Option<&str> {
        self.0.as_deref().map(|c| c.name.as_str())
    }
}

/// The client key a request presents: `Authorization: Bearer <key>`, or Anthropic's
/// `x-api-key: <key>`.
pub(crate) fn presented_key(headers: &axum::http::HeaderMap) -> Option<&[u8]> {
    auth::bearer(headers.get(AUTHORIZATION)).or_else(|| {
        let k = headers.get("x-api-key")?.as_bytes().trim_ascii();
        (!k.is_empty()).then_some(k)
    })
}

pub(crate) async fn client_auth(
    State(gateway): State<Gateway>,
    mut req: Request,
    next: Next,
) -> Response {
    let clients = &gateway.0.clients;
    let caller = if clients.required() {
        let found = presented_key(req.headers()).and_then(|k| clients.find(k));
        match found {
            Some(client) => Caller(Some(client)),
            None => {
                gateway
                    .0
                    .counters
                    .unauthorized
                    .fetch_add(1, Ordering::Relaxed);
                return ApiError::Unauthorized.into_response();
            }
        }
    } else {
        Caller(None)
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

pub(crate) async fn chat_limits(
    State(gateway): State<Gateway>,
    req: Request,
    next: Next,
) -> Response {
    let shared = &*gateway.0;
    if let Some(Caller(Some(client))) = req.extensions().get::<Caller>() {
        if let Err(e) = client.admit() {
            shared.counters.limited.fetch_add(1, Ordering::Relaxed);
            return ApiError::Limited(e).into_response();
        }
    }
    let Ok(permit) = shared.capacity.clone().try_acquire_owned() else {
        shared.counters.shed.fetch_add(1, Ordering::Relaxed);
        return ApiError::Overloaded.into_response();
    };
    let (parts, body) = next.run(req).await.into_parts();
    // The permit lives as long as the body: returned when the last byte is sent or the
    // client goes away.
    let body = Body::new(body.map_frame(move |frame| {
        let _held = &permit;
        frame
    }));
    Response::from_parts(parts, body)
}
