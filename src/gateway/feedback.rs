//! `POST /v1/feedback`: a client's score of an answer, credited to the endpoint that gave it.
//!
//! The body is `{"request_id": "req_…", "score": 0.0–1.0}` or `{"request_id": "req_…",
//! "good": true|false}` (`good` is a score of 1 or 0). The request id is the one the router
//! stamped on the answer (`x-request-id`). Only the client key that made the request may
//! score it, or the admin token; with no client keys configured, anyone may. A request is
//! scored once, within `feedback.window` of its answer (see [`crate::feedback`]). The answer
//! says which endpoint was credited and its quality, declared and learned.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

use super::{ApiError, Gateway};
use crate::auth::Client;
use crate::feedback::{FeedbackError, Scorer};

/// A parsed feedback body: the request id and a score in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Score {
    pub request_id: String,
    pub score: f64,
}

fn bad(field: &str, message: &str) -> ApiError {
    ApiError::BadField {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// Reads a feedback body; a 400 names the field that is wrong.
pub(crate) fn parse(bytes: &[u8]) -> Result<Score, ApiError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| bad("body", &format!("not valid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("body", "must be a JSON object"))?;
    let request_id = match obj.get("request_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(bad("request_id", "must be a non-empty string")),
        None => return Err(bad("request_id", "is required (the answer's x-request-id)")),
    };
    let score = match (obj.get("score"), obj.get("good")) {
        (Some(_), Some(_)) => return Err(bad("score", "give `score` or `good`, not both")),
        (Some(s), None) => match s.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => x,
            _ => return Err(bad("score", "must be a number from 0 to 1")),
        },
        (None, Some(Value::Bool(g))) => f64::from(u8::from(*g)),
        (None, Some(_)) => return Err(bad("good", "must be true or false")),
        (None, None) => return Err(bad("score", "is required: `score` (0 to 1) or `good`")),
    };
    Ok(Score { request_id, score })
}

pub(crate) async fn feedback(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match score(&gateway, &headers, body).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Who is scoring.
enum Who {
    Admin,
    /// A client key (`None` on a router without keys, where anyone may score).
    Client(Option<Arc<Client>>),
}

impl Who {
    fn scorer(&self) -> Scorer<'_> {
        match self {
            Who::Admin => Scorer::Admin,
            Who::Client(c) => Scorer::Client(c.as_deref().map(|c| c.name.as_str())),
        }
    }
}

/// The admin token, else the client key the scored request must have come with (a 401
/// without one, when keys are configured).
fn caller(gateway: &Gateway, headers: &HeaderMap) -> Result<Who, ApiError> {
    let shared = &*gateway.0;
    if super::prices::authorized(gateway, headers).is_ok() {
        return Ok(Who::Admin);
    }
    if !shared.clients.required() {
        return Ok(Who::Client(None));
    }
    match super::guard::presented_key(headers).and_then(|k| shared.clients.find(k)) {
        Some(c) => Ok(Who::Client(Some(c))),
        None => {
            shared.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
            Err(ApiError::Unauthorized)
        }
    }
}

async fn score(gateway: &Gateway, headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let shared = &*gateway.0;
    let who = caller(gateway, headers)?;
    let bytes = super::handlers::read_request(gateway, headers, body).await?;
    let parsed = parse(&bytes)?;
    let now_ns = gateway.now_ns();
    let credit = shared
        .feedback
        .score(&parsed.request_id, who.scorer(), now_ns)
        .inspect_err(|_| {
            shared
                .counters
                .feedback_refused
                .fetch_add(1, Ordering::Relaxed);
        })?;
    shared
        .stats
        .feedback(&credit.endpoint, parsed.score, now_ns);
    shared.counters.feedback.fetch_add(1, Ordering::Relaxed);
    let live = shared.live.load_full();
    let quality = live
        .catalog
        .index_of(&credit.endpoint)
        .map(|idx| crate::admin::endpoints::quality(&live.catalog, &live.table, idx, now_ns));
    Ok(json!({
        "request_id": parsed.request_id,
        "endpoint": &*credit.endpoint,
        "score": parsed.score,
        "quality": quality,
    }))
}

impl From<FeedbackError> for ApiError {
    fn from(e: FeedbackError) -> ApiError {
        ApiError::Feedback(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_body_names_its_field() {
        let field = |body: &str| match parse(body.as_bytes()) {
            Err(ApiError::BadField { field, .. }) => field,
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(field("[]"), "body");
        assert_eq!(field("{"), "body");
        assert_eq!(field(r#"{"score": 1}"#), "request_id");
        assert_eq!(field(r#"{"request_id": 7, "score": 1}"#), "request_id");
        assert_eq!(field(r#"{"request_id": "req_1"}"#), "score");
        assert_eq!(field(r#"{"request_id": "req_1", "score": 1.5}"#), "score");
        assert_eq!(
            field(r#"{"request_id": "req_1", "score": "high"}"#),
            "score"
        );
        assert_eq!(field(r#"{"request_id": "req_1", "good": "yes"}"#), "good");
        assert_eq!(
            field(r#"{"request_id": "req_1", "good": true, "score": 1}"#),
            "score"
        );
    }

    #[test]
    fn good_is_a_score_of_one_or_zero() {
        let s = |body: &str| parse(body.as_bytes()).map(|s| s.score).ok();
        assert_eq!(s(r#"{"request_id": "req_1", "good": true}"#), Some(1.0));
        assert_eq!(s(r#"{"request_id": "req_1", "good": false}"#), Some(0.0));
        assert_eq!(s(r#"{"request_id": "req_1", "score": 0.25}"#), Some(0.25));
    }
}
