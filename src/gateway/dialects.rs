//! Where the gateway meets the dialects ([`crate::dialect`]): the body an Anthropic-protocol
//! provider gets, its answers and streams in the router's working form (OpenAI's), and what
//! an Anthropic client gets back.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::stream::{Stream, StreamExt};
use http::StatusCode;
use serde_json::{Map, Value};

use super::attempt::{Exchange, Outbound};
use super::sse::{data_payload, EventSplitter};
use crate::dialect::anthropic::{self, answer, request, stream};

fn unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The body for an Anthropic-protocol provider: an Anthropic client's own (routing fields
/// removed), or an OpenAI request translated; a request that cannot be translated is
/// refused as the client's fault, naming the field.
pub(super) fn anthropic_body(
    out: &Outbound<'_>,
    upstream_model: &str,
) -> Result<Vec<u8>, Box<Exchange>> {
    if let Some(client) = &out.anthropic {
        if let Some(body) = crate::route::body::without_router_fields(&client.body, upstream_model)
        {
            return Ok(body);
        }
    }
    let openai = out.chat.upstream_body(upstream_model);
    let refused = |field: &str, message: &str| {
        let body = serde_json::json!({"error": {
            "message": format!("`{field}`: {message} (the chosen endpoint speaks Anthropic's Messages API)"),
            "type": "invalid_request_error", "param": field, "code": "untranslatable"}});
        Box::new(Exchange::Rejected {
            status: StatusCode::BAD_REQUEST,
            content_type: Some(http::HeaderValue::from_static("application/json")),
            body: Bytes::from(body.to_string()),
        })
    };
    let map: Map<String, Value> =
        serde_json::from_slice(&openai).map_err(|_| refused("messages", "is not valid JSON"))?;
    match request::from_openai(&map, anthropic::DEFAULT_MAX_TOKENS) {
        Ok(a) => Ok(serde_json::to_vec(&a).expect("a JSON map serialises")),
        Err(e) => Err(refused(&e.field, &e.message)),
    }
}

/// Why an OpenAI chat request cannot go to an Anthropic-protocol provider, if it cannot.
pub(super) fn anthropic_refusal(
    chat: &crate::route::ChatBody<'_>,
) -> Option<crate::dialect::TranslateError> {
    let map: Map<String, Value> = serde_json::from_slice(&chat.upstream_body("m")).ok()?;
    request::from_openai(&map, anthropic::DEFAULT_MAX_TOKENS).err()
}

/// An Anthropic `message` answer in OpenAI's form; `None` if it is not one.
pub(super) fn anthropic_answer_to_openai(bytes: &[u8]) -> Option<Bytes> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    (v["type"] == "message").then(|| Bytes::from(answer::to_openai(&v, unix_s()).to_string()))
}

/// Re-frames an SSE byte stream event by event through `translate` (payload in, events
/// out); what does not end an event yet waits for the next chunk.
fn translated<E: Send + 'static>(
    upstream: impl Stream<Item = Result<Bytes, E>> + Send + 'static,
    mut translate: impl FnMut(&[u8], &mut Vec<u8>) + Send + 'static,
) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static {
    let mut splitter = EventSplitter::default();
    upstream.map(move |chunk| {
        chunk.map(|c| {
            splitter.push(&c);
            let mut out = Vec::new();
            while let Some(event) = splitter.next_event() {
                if let Some(payload) = data_payload(&event) {
                    translate(&payload, &mut out);
                }
            }
            Bytes::from(out)
        })
    })
}

/// An Anthropic-protocol provider's event stream as OpenAI chunks.
pub(super) fn anthropic_to_openai_stream(
    upstream: crate::upstream::BodyStream,
) -> crate::upstream::BodyStream {
    let mut t = stream::ToOpenAi::new(unix_s());
    translated(upstream, move |payload, out| t.event(payload, out)).boxed()
}

/// The relay's OpenAI chunks as Anthropic events, for an Anthropic client.
pub(super) fn openai_to_anthropic_stream(
    relayed: impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let mut t = stream::FromOpenAi::default();
    translated(relayed, move |payload, out| t.event(payload, out))
}

/// A complete answer for an Anthropic client: an Anthropic provider's own bytes as they
/// came, else the OpenAI answer translated.
pub(super) fn json_for_anthropic(openai: &[u8], native: Option<Bytes>) -> Bytes {
    if let Some(native) = native {
        return native;
    }
    let v: Value = serde_json::from_slice(openai).unwrap_or(Value::Null);
    Bytes::from(answer::from_openai(&v).to_string())
}

/// A provider's refusal in the client's dialect.
pub(super) fn rejection_for(anthropic_client: bool, status: u16, body: &[u8]) -> Bytes {
    let v = if anthropic_client {
        answer::error_to_anthropic(status, body)
    } else {
        answer::error_to_openai(body)
    };
    Bytes::from(v.to_string())
}

/// A native stream's own bytes (Anthropic provider → Anthropic client), kept while their
/// translation feeds the relay, which meters the stream (usage, first token, how it ended);
/// the client gets these bytes, unchanged, in step with the relay.
#[derive(Clone, Default)]
pub(super) struct Tap(std::sync::Arc<std::sync::Mutex<TapState>>);

#[derive(Default)]
struct TapState {
    raw: bytes::BytesMut,
    /// Why the stream broke off, once the relay knows.
    broken: Option<&'static str>,
}

impl Tap {
    fn state(&self) -> std::sync::MutexGuard<'_, TapState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The relay saw the stream break: the client gets an Anthropic error event after what
    /// came.
    pub(super) fn broke(&self, why: &'static str) {
        self.state().broken = Some(why);
    }

    /// Everything received since the last drain, and an error event if the stream broke.
    fn drain(&self) -> Bytes {
        let mut s = self.state();
        let mut out = s.raw.split();
        if let Some(why) = s.broken.take() {
            let event = serde_json::json!({"type": "error", "error": {"type": "api_error", "message": why}});
            out.extend_from_slice(format!("event: error\ndata: {event}\n\n").as_bytes());
        }
        out.freeze()
    }
}

/// An Anthropic provider's stream for an Anthropic client: its bytes go into `tap`, its
/// translation to the relay.
pub(super) fn tapped_anthropic_stream(
    upstream: crate::upstream::BodyStream,
    tap: Tap,
) -> crate::upstream::BodyStream {
    let seen = upstream.map(move |chunk| {
        if let Ok(bytes) = &chunk {
            tap.state().raw.extend_from_slice(bytes);
        }
        chunk
    });
    anthropic_to_openai_stream(seen.boxed())
}

/// The client side of a tapped stream: for each output of the relay, the provider's own
/// bytes received by then (the relay's translated output is only its metering).
pub(super) fn native_stream(
    relayed: impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
    tap: Tap,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let last = tap.clone();
    relayed
        .map(move |_| Ok(tap.drain()))
        .chain(futures_util::stream::once(async move { Ok(last.drain()) }))
        .filter(|b| futures_util::future::ready(b.as_ref().is_ok_and(|b| !b.is_empty())))
}
