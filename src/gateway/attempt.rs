//! Attempts and fallback: trying the ranked endpoints until one answers.
//!
//! An attempt fails over to the next choice when nothing has reached the client yet:
//! - connect errors and connection resets before an answer;
//! - no response headers, or (for streams) no first body chunk, within `first_byte_timeout`;
//! - HTTP 401, 403 (the provider refuses our key), 404 (it does not serve the model), 408,
//!   409, 429 (rate limited) and every 5xx;
//! - a non-streaming 200 whose body is not JSON, or a stream that ends before any byte.
//!
//! Any other 4xx (400, 413, 422, ...) is the client's request being refused; another provider
//! would refuse it too, so it is relayed to the client as is, without spending more attempts.
//! A stream is committed once its first chunk arrived: from then on the relay owns it and
//! there is no failover. Attempts stop at `max_attempts` or at the request's deadline.

use std::fmt;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use tokio::time::{timeout_at, Instant};

use super::Shared;
use crate::catalog::{Catalog, EndpointIdx};
use crate::route::ChatBody;

/// Why one attempt failed, coarse enough to learn from and safe to show a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// No connection could be made, or it broke before an answer.
    Connect,
    /// No headers or first byte in time, or the deadline ran out.
    Timeout,
    /// HTTP 429.
    RateLimited,
    /// Any other HTTP status that moves on to the next candidate (5xx, 401, 403, 404, ...).
    Status(u16),
    /// A success status with an unusable body.
    BadResponse,
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureClass::Connect => f.write_str("connect error"),
            FailureClass::Timeout => f.write_str("timeout"),
            FailureClass::RateLimited => f.write_str("HTTP 429"),
            FailureClass::Status(code) => write!(f, "HTTP {code}"),
            FailureClass::BadResponse => f.write_str("bad response"),
        }
    }
}

/// One failed attempt, as reported to the client and the logs.
#[derive(Debug, Clone)]
pub struct AttemptFailure {
    pub endpoint: String,
    pub class: FailureClass,
}

impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.endpoint, self.class)
    }
}

/// What the chosen endpoint answered.
pub enum Answer {
    /// A complete non-streaming answer, relayed byte for byte.
    Json(Bytes),
    /// A stream whose first chunk has arrived; the rest follows from `rest`.
    Stream {
        first: Bytes,
        rest: BoxStream<'static, reqwest::Result<Bytes>>,
    },
    /// The provider refused the request itself (a 4xx that is the client's to fix).
    Rejected {
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    },
}

/// The attempt that answered.
pub struct Answered {
    pub endpoint: EndpointIdx,
    /// Attempts made, this one included.
    pub attempts: usize,
    pub answer: Answer,
}

/// Every attempt failed.
pub struct Exhausted {
    pub failures: Vec<AttemptFailure>,
    pub deadline_hit: bool,
}

/// Tries `ranked` endpoints in order, at most `max_attempts` of them, until `deadline`.
pub async fn run(
    shared: &Shared,
    catalog: &Catalog,
    body: &ChatBody<'_>,
    ranked: &[EndpointIdx],
    max_attempts: usize,
    deadline: Instant,
) -> Result<Answered, Exhausted> {
    let mut failures = Vec::new();
    for &idx in ranked.iter().take(max_attempts) {
        if Instant::now() >= deadline {
            return Err(Exhausted {
                failures,
                deadline_hit: true,
            });
        }
        match attempt(shared, catalog, idx, body, deadline).await {
            Ok(answer) => {
                return Ok(Answered {
                    endpoint: idx,
                    attempts: failures.len() + 1,
                    answer,
                })
            }
            Err(class) => {
                let endpoint = catalog.endpoint(idx).id.clone();
                tracing::warn!(%endpoint, failure = %class, "attempt failed; trying the next candidate");
                failures.push(AttemptFailure { endpoint, class });
            }
        }
    }
    let deadline_hit = Instant::now() >= deadline;
    Err(Exhausted {
        failures,
        deadline_hit,
    })
}

async fn attempt(
    shared: &Shared,
    catalog: &Catalog,
    idx: EndpointIdx,
    body: &ChatBody<'_>,
    deadline: Instant,
) -> Result<Answer, FailureClass> {
    let endpoint = catalog.endpoint(idx);
    let provider = catalog.provider_of(idx);
    let accept = if body.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    let mut request = shared
        .client
        .post(&provider.chat_url)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, accept)
        .body(body.upstream_body(&endpoint.upstream_model));
    if let Some(key) = &provider.api_key {
        request = request.header(AUTHORIZATION, key.bearer().clone());
    }
    let first_byte_deadline = deadline.min(Instant::now() + shared.upstream.first_byte_timeout);
    let response = timeout_at(first_byte_deadline, request.send())
        .await
        .map_err(|_| FailureClass::Timeout)?
        .map_err(classify)?;

    let status = response.status();
    if status.is_success() {
        if body.stream {
            let mut rest = response.bytes_stream().boxed();
            loop {
                match timeout_at(first_byte_deadline, rest.next()).await {
                    Err(_) => return Err(FailureClass::Timeout),
                    Ok(None) => return Err(FailureClass::BadResponse),
                    Ok(Some(Err(e))) => return Err(classify(e)),
                    Ok(Some(Ok(first))) if first.is_empty() => continue,
                    Ok(Some(Ok(first))) => return Ok(Answer::Stream { first, rest }),
                }
            }
        }
        let bytes = timeout_at(deadline, response.bytes())
            .await
            .map_err(|_| FailureClass::Timeout)?
            .map_err(classify)?;
        serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
            .map_err(|_| FailureClass::BadResponse)?;
        return Ok(Answer::Json(bytes));
    }
    if let Some(class) = failover_class(status) {
        return Err(class);
    }
    let content_type = response.headers().get(CONTENT_TYPE).cloned();
    let body = timeout_at(deadline, response.bytes())
        .await
        .map_err(|_| FailureClass::Timeout)?
        .map_err(classify)?;
    Ok(Answer::Rejected {
        status,
        content_type,
        body,
    })
}

/// The failure class of a status that moves on to the next candidate, `None` for a status
/// that is the client's to fix.
fn failover_class(status: StatusCode) -> Option<FailureClass> {
    match status.as_u16() {
        429 => Some(FailureClass::RateLimited),
        401 | 403 | 404 | 408 | 409 | 500..=599 => Some(FailureClass::Status(status.as_u16())),
        _ => None,
    }
}

fn classify(e: reqwest::Error) -> FailureClass {
    if e.is_timeout() {
        FailureClass::Timeout
    } else if e.is_connect() || e.is_request() {
        FailureClass::Connect
    } else {
        // A body that broke off, or a malformed HTTP response.
        FailureClass::BadResponse
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_statuses_fail_over() {
        for code in [401, 403, 404, 408, 409, 429, 500, 502, 503, 504, 529] {
            let status = StatusCode::from_u16(code).expect("valid code");
            assert!(failover_class(status).is_some(), "{code}");
        }
        for code in [400, 402, 405, 413, 415, 422] {
            let status = StatusCode::from_u16(code).expect("valid code");
            assert_eq!(failover_class(status), None, "{code}");
        }
    }
}
