//! One attempt's exchange with a provider, and how it is judged (the attempt machine,
//! [`crate::plan::Attempts`], is driven by [`super::drive`]):
//! - a failure that fails over: connect errors and resets before an answer; no response
//!   headers, or (for streams) no first data event, within `first_byte_timeout`; a status the
//!   machine classifies as failing over (401, 403, 404, 408, 409, 429, every 5xx); a
//!   non-streaming 200 whose body is not JSON; a stream whose first event is not a JSON chunk;
//! - a rejection: any other 4xx is the request's own fault, relayed as it came;
//! - an answer: a complete JSON body, or a stream committed at its first data event (from
//!   then on the relay owns it and there is no failover).
//!
//! Every attempt is guarded by an [`super::meter::AttemptMeter`] so a dropped request counts
//! as cancelled.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::StatusCode;
use rust_decimal::Decimal;
use tokio::time::{timeout_at, Instant};

use super::meter::AttemptMeter;
use super::sse::{data_payload, EventSplitter};
use super::usage::AnswerFacts;
use super::Shared;
use crate::catalog::{Catalog, EndpointIdx};
use crate::dialect::Protocol;
use crate::plan::attempts::failover_class;
use crate::plan::Failure;
use crate::route::ChatBody;
use crate::stats::FailureClass;

/// What a client sent, as the attempts need it.
pub(crate) struct Outbound<'a> {
    /// The request in the router's working form, OpenAI's chat completions (the client's
    /// own, or translated from its dialect; for embeddings, a stand-in for planning).
    pub chat: &'a ChatBody<'a>,
    /// For an Anthropic client: its own body (sent to Anthropic-protocol providers with only
    /// the routing fields removed) and its `anthropic-beta` header.
    pub anthropic: Option<AnthropicClient>,
    /// For an embeddings request: the client's own body, sent to `{base_url}/embeddings`
    /// with only the routing fields removed.
    pub embeddings: Option<Bytes>,
    /// Which OpenAI route the body goes to.
    pub operation: crate::route::Operation,
}

/// What kind of client request the router serves.
pub(crate) enum ClientBody {
    /// OpenAI's chat completions.
    OpenAi,
    Anthropic(AnthropicClient),
    /// OpenAI's embeddings: the client's own body.
    Embeddings(Bytes),
    /// Legacy completions.
    Completions,
    /// The Responses API; `pinned`: the endpoint that produced `previous_response_id`.
    Responses {
        pinned: Option<String>,
    },
}

pub(crate) struct AnthropicClient {
    pub body: Bytes,
    pub beta: Option<HeaderValue>,
    /// Why the request cannot be said in OpenAI's dialect, if it cannot: then only
    /// Anthropic-protocol providers may serve it.
    pub untranslatable: Option<crate::dialect::TranslateError>,
}

/// What the chosen endpoint answered.
pub(crate) enum Answer {
    /// A complete non-streaming answer in OpenAI's form, and what it cost; `native` holds an
    /// Anthropic-protocol provider's own bytes.
    Json {
        body: Bytes,
        cost: Option<Decimal>,
        facts: AnswerFacts,
        native: Option<Bytes>,
    },
    /// A stream whose first chunk has arrived; the rest follows from `rest`. The meter
    /// goes with it: the attempt ends when the stream does.
    Stream {
        first: Bytes,
        rest: crate::upstream::BodyStream,
        meter: AttemptMeter,
        /// An Anthropic provider's own bytes for an Anthropic client.
        tap: Option<super::dialects::Tap>,
    },
    /// The provider refused the request itself (a 4xx that is the client's to fix).
    Rejected {
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    },
}

/// What one exchange with a provider produced, before it is metered.
pub(super) enum Exchange {
    /// The answer in OpenAI's form, and an Anthropic-protocol provider's own bytes.
    Json(Bytes, AnswerFacts, Option<Bytes>),
    Stream {
        first: Bytes,
        rest: crate::upstream::BodyStream,
        tap: Option<super::dialects::Tap>,
    },
    Rejected {
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    },
}

pub(super) async fn exchange(
    shared: &Shared,
    catalog: &Catalog,
    idx: EndpointIdx,
    out: &Outbound<'_>,
    deadline: Instant,
) -> Result<Exchange, Failure> {
    let endpoint = catalog.endpoint(idx);
    let provider = catalog.provider_of(idx);
    let body = out.chat;
    let accept = if body.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    let anthropic = provider.protocol == Protocol::Anthropic;
    let url = if out.embeddings.is_some() {
        &provider.embeddings_url
    } else {
        match out.operation {
            crate::route::Operation::Completions => &provider.completions_url,
            crate::route::Operation::Responses => &provider.responses_url,
            _ => &provider.chat_url,
        }
    };
    let upstream = if let Some(embeddings) = &out.embeddings {
        crate::route::body::without_router_fields(embeddings, &endpoint.upstream_model)
            .unwrap_or_else(|| embeddings.to_vec())
    } else if anthropic {
        match super::dialects::anthropic_body(out, &endpoint.upstream_model) {
            Ok(bytes) => bytes,
            // The request asks for what this provider's dialect cannot say.
            Err(rejected) => return Ok(*rejected),
        }
    } else {
        body.upstream_body(&endpoint.upstream_model)
    };
    let mut headers = HeaderMap::with_capacity(6);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static(accept));
    match (&provider.api_key, anthropic) {
        (Some(key), false) => {
            headers.insert(AUTHORIZATION, key.bearer().clone());
        }
        (Some(key), true) => {
            headers.insert(
                http::HeaderName::from_static("x-api-key"),
                key.x_api_key().clone(),
            );
        }
        (None, _) => {}
    }
    if anthropic {
        headers.insert(
            http::HeaderName::from_static("anthropic-version"),
            provider.anthropic_version.clone(),
        );
        if let Some(beta) = out.anthropic.as_ref().and_then(|a| a.beta.clone()) {
            headers.insert(http::HeaderName::from_static("anthropic-beta"), beta);
        }
    }
    let first_byte_deadline = deadline.min(Instant::now() + shared.upstream.first_byte_timeout);
    let response = timeout_at(
        first_byte_deadline,
        shared.client.post(url, headers, Bytes::from(upstream)),
    )
    .await
    .map_err(|_| Failure::from(FailureClass::Timeout))?
    .map_err(|e| Failure::from(classify(e)))?;

    let status = response.status();
    if status.is_success() {
        if body.stream {
            let rest = response.into_body().boxed();
            // Judged and metered in OpenAI's form; an Anthropic client still gets the
            // provider's own bytes (the tap).
            let (rest, tap) = match (anthropic, out.anthropic.is_some()) {
                (false, _) => (rest, None),
                (true, false) => (super::dialects::anthropic_to_openai_stream(rest), None),
                (true, true) => {
                    let tap = super::dialects::Tap::default();
                    (
                        super::dialects::tapped_anthropic_stream(rest, tap.clone()),
                        Some(tap),
                    )
                }
            };
            let (first, rest) = first_event(rest, first_byte_deadline).await?;
            return Ok(Exchange::Stream { first, rest, tap });
        }
        // The whole answer is bounded like its first byte: a body that drips in is a
        // provider failing, and there must be time left to try another.
        let bytes = timeout_at(first_byte_deadline, response.bytes())
            .await
            .map_err(|_| Failure::from(FailureClass::Timeout))?
            .map_err(|e| Failure::from(classify(e)))?;
        let (bytes, native) = if anthropic {
            let openai = super::dialects::anthropic_answer_to_openai(&bytes)
                .ok_or_else(|| Failure::from(FailureClass::BadResponse))?;
            (openai, Some(bytes))
        } else {
            (bytes, None)
        };
        // One read: the answer is JSON, its usage, and where a cost would go.
        let facts =
            AnswerFacts::read(&bytes).ok_or_else(|| Failure::from(FailureClass::BadResponse))?;
        return Ok(Exchange::Json(bytes, facts, native));
    }
    if let Some(class) = failover_class(status.as_u16()) {
        let wait = retry_after(response.headers());
        return Err(Failure::status(class, status.as_u16(), wait));
    }
    let content_type = response.headers().get(CONTENT_TYPE).cloned();
    let body = timeout_at(deadline, response.bytes())
        .await
        .map_err(|_| Failure::from(FailureClass::Timeout))?
        .map_err(|e| Failure::from(classify(e)))?;
    // Relayed to the client: a provider that quotes the key it got must not leak it.
    let body = match &provider.api_key {
        Some(key) => key.redact(body),
        None => body,
    };
    Ok(Exchange::Rejected {
        status,
        content_type,
        body,
    })
}

/// Most bytes read while waiting for a stream's first data event.
const MAX_PREAMBLE_BYTES: usize = 1 << 20;

/// Reads a stream up to and including its first data event and judges it: the stream is
/// committed only if that event is a JSON chunk. Comments and keep-alives before it are
/// kept and relayed; a first event that is `[DONE]`, not JSON, or an error object, a stream
/// that ends or breaks first, and one that dribbles past the deadline, all fail over.
async fn first_event(
    mut rest: crate::upstream::BodyStream,
    deadline: Instant,
) -> Result<(Bytes, crate::upstream::BodyStream), Failure> {
    let mut splitter = EventSplitter::default();
    let mut seen = BytesMut::new();
    loop {
        let chunk = match timeout_at(deadline, rest.next()).await {
            Err(_) => return Err(FailureClass::Timeout.into()),
            Ok(None) => return Err(FailureClass::BadResponse.into()),
            Ok(Some(Err(e))) => return Err(classify(e).into()),
            Ok(Some(Ok(chunk))) => chunk,
        };
        seen.extend_from_slice(&chunk);
        splitter.push(&chunk);
        while let Some(event) = splitter.next_event() {
            if let Some(verdict) = judge_first_event(&event) {
                return verdict
                    .map(|()| (seen.freeze(), rest))
                    .map_err(Failure::from);
            }
        }
        if seen.len() > MAX_PREAMBLE_BYTES {
            return Err(FailureClass::BadResponse.into());
        }
    }
}

/// `None` for an event without data (read on); else whether the stream may be committed.
fn judge_first_event(event: &[u8]) -> Option<Result<(), FailureClass>> {
    #[derive(serde::Deserialize)]
    struct Probe {
        error: Option<serde::de::IgnoredAny>,
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    let payload = data_payload(event)?;
    if payload.trim_ascii() == b"[DONE]" {
        return Some(Err(FailureClass::BadResponse));
    }
    Some(match serde_json::from_slice::<Probe>(&payload) {
        Ok(Probe { error: Some(_), .. }) => Err(FailureClass::ServerError),
        // The Responses API's failures as a first event.
        Ok(Probe { kind: Some(k), .. }) if k == "error" || k == "response.failed" => {
            Err(FailureClass::ServerError)
        }
        Ok(Probe { .. }) => Ok(()),
        Err(_) => Err(FailureClass::BadResponse),
    })
}

/// A provider's requested pause: `retry-after-ms` (OpenAI's) or `retry-after` in seconds.
/// HTTP dates are not used by LLM APIs and are ignored.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        let v: f64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
        (v.is_finite() && v >= 0.0).then_some(v)
    };
    number("retry-after-ms")
        .map(|ms| Duration::from_secs_f64((ms / 1000.0).min(86_400.0)))
        .or_else(|| number("retry-after").map(|s| Duration::from_secs_f64(s.min(86_400.0))))
}

fn classify(e: crate::upstream::Error) -> FailureClass {
    use crate::upstream::Error;
    match e {
        Error::ConnectTimeout => FailureClass::Timeout,
        // No answer began: nothing was relayed, so another provider may take it.
        Error::Connect(_) | Error::Request(_) => FailureClass::Connect,
        // A body that broke off, or a malformed one.
        Error::Body(_) => FailureClass::BadResponse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_events_are_judged() {
        assert_eq!(judge_first_event(b": keep-alive\n\n"), None);
        assert_eq!(
            judge_first_event(b"data: {\"id\":\"x\",\"choices\":[]}\n\n"),
            Some(Ok(()))
        );
        assert_eq!(
            judge_first_event(b"data: [DONE]\n\n"),
            Some(Err(FailureClass::BadResponse))
        );
        assert_eq!(
            judge_first_event(b"data: {not json\n\n"),
            Some(Err(FailureClass::BadResponse))
        );
        assert_eq!(
            judge_first_event(b"data: \"a string\"\n\n"),
            Some(Err(FailureClass::BadResponse))
        );
        assert_eq!(
            judge_first_event(b"data: {\"error\":{\"message\":\"overloaded\"}}\n\n"),
            Some(Err(FailureClass::ServerError))
        );
    }

    #[test]
    fn retry_after_reads_milliseconds_then_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        h.insert("retry-after-ms", HeaderValue::from_static("-3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        h.remove("retry-after-ms");
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn which_statuses_fail_over() {
        for code in [401, 403, 404, 408, 409, 429, 500, 502, 503, 504, 529] {
            assert!(failover_class(code).is_some(), "{code}");
        }
        for code in [400, 402, 405, 413, 415, 422] {
            assert_eq!(failover_class(code), None, "{code}");
        }
    }
}
