//! The streaming relay: upstream SSE to the client, event by event, bytes unchanged.
//!
//! Each upstream chunk is cut into whole events ([`EventSplitter`]); the complete events of
//! a chunk go out together as one chunk, as they came. The relay looks inside events only
//! to read `usage`, to notice `[DONE]` and upstream error events, and to drop the usage-only
//! chunk the router asked for when the client did not. After the first byte there is no
//! failover: if the upstream breaks, goes silent past `idle_timeout`, or ends without
//! `[DONE]`, the client gets an OpenAI-style error event and the stream ends cleanly.
//!
//! How the stream ended is reported once through a callback, also when the client goes away
//! mid-stream (the relay is dropped unfinished), so nothing is left uncounted.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{Stream, StreamExt};
use serde::de::IgnoredAny;
use serde::Deserialize;
use tokio::time::Instant;

use super::sse::{data_payload, EventSplitter};
use super::usage::{with_cost, Usage};
use crate::pricing::Rates;
use rust_decimal::Decimal;

/// How a relayed stream ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEnd {
    /// Upstream sent `[DONE]` and closed.
    Completed,
    /// Upstream broke, went silent, or ended without `[DONE]`.
    Broken(&'static str),
    /// Upstream sent an error event of its own.
    UpstreamError,
    /// The client went away first.
    ClientGone,
}

/// What the relay learned from a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSummary {
    pub end: StreamEnd,
    pub usage: Option<Usage>,
    /// When the first content (text, reasoning or a tool call) arrived from upstream.
    pub first_token: Option<Instant>,
}

type OnEnd = Box<dyn FnOnce(StreamSummary) + Send>;

struct Relay {
    upstream: crate::upstream::BodyStream,
    first: Option<Bytes>,
    splitter: EventSplitter,
    events: Vec<Bytes>,
    strip_usage: bool,
    /// Rates to price the usage chunk the client asked for (`usage.cost`).
    rates: Option<Rates>,
    idle: Duration,
    /// When upstream last sent something; the idle timer is moved on from it only when it
    /// fires, not on every chunk.
    last_heard: Instant,
    /// Set when upstream first keeps the relay waiting.
    idle_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    saw_done: bool,
    upstream_error: bool,
    usage: Option<Usage>,
    first_token: Option<Instant>,
    finished: bool,
    on_end: Option<OnEnd>,
}

/// Builds the client-facing stream from an answer's first chunk and the rest of its body.
pub fn relay(
    first: Bytes,
    upstream: crate::upstream::BodyStream,
    strip_usage: bool,
    rates: Option<Rates>,
    idle: Duration,
    on_end: impl FnOnce(StreamSummary) + Send + 'static,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    Relay {
        upstream,
        first: Some(first),
        splitter: EventSplitter::default(),
        events: Vec::with_capacity(4),
        strip_usage,
        rates,
        idle,
        last_heard: Instant::now(),
        idle_timer: None,
        saw_done: false,
        upstream_error: false,
        usage: None,
        first_token: None,
        finished: false,
        on_end: Some(Box::new(on_end)),
    }
}

impl Stream for Relay {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_output(cx).map(|out| out.map(Ok))
    }
}

impl Relay {
    /// The next bytes for the client, `None` when the stream is over.
    fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            if self.finished {
                return Poll::Ready(None);
            }
            let next = match self.first.take() {
                Some(first) => Ok(Some(first)),
                None => match self.upstream.poll_next_unpin(cx) {
                    Poll::Ready(None) => Ok(None),
                    Poll::Ready(Some(Ok(chunk))) => {
                        self.last_heard = Instant::now();
                        Ok(Some(chunk))
                    }
                    Poll::Ready(Some(Err(_))) => Err("upstream connection broke mid-stream"),
                    Poll::Pending => {
                        let due = self.last_heard + self.idle;
                        let timer = self
                            .idle_timer
                            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                        match timer.as_mut().poll(cx) {
                            Poll::Pending => return Poll::Pending,
                            // Heard from since the timer was set: wait from then on.
                            Poll::Ready(()) if due > Instant::now() => {
                                timer.as_mut().reset(due);
                                continue;
                            }
                            Poll::Ready(()) => Err("upstream went silent mid-stream"),
                        }
                    }
                },
            };
            match next {
                Ok(Some(chunk)) => {
                    let out = self.process(chunk);
                    if !out.is_empty() {
                        return Poll::Ready(Some(out));
                    }
                }
                Ok(None) => {
                    let rest = self.splitter.take_rest();
                    if self.saw_done || self.upstream_error {
                        let end = if self.saw_done {
                            StreamEnd::Completed
                        } else {
                            StreamEnd::UpstreamError
                        };
                        self.finish(end);
                        return Poll::Ready((!rest.is_empty()).then_some(rest));
                    }
                    let out = self.fail(rest, "upstream ended the stream before [DONE]");
                    return Poll::Ready(Some(out));
                }
                Err(why) => {
                    let rest = self.splitter.take_rest();
                    return Poll::Ready(Some(self.fail(rest, why)));
                }
            }
        }
    }

    /// Forwards the complete events of a chunk, minus a usage chunk the client did not want.
    /// Events passed on unchanged that are the whole of what the chunk completed go out as
    /// that part of the chunk, without a copy.
    fn process(&mut self, chunk: Bytes) -> Bytes {
        let mut events = std::mem::take(&mut self.events);
        let prefix = self.splitter.feed_bytes(chunk, &mut events);
        // Built only once an event is dropped or changed.
        let mut changed: Option<BytesMut> = None;
        for (i, event) in events.iter().enumerate() {
            let keep = self.inspect(event);
            if changed.is_none() && !matches!(keep, Keep::As) {
                let mut out = BytesMut::new();
                events[..i].iter().for_each(|e| out.extend_from_slice(e));
                changed = Some(out);
            }
            if let Some(out) = changed.as_mut() {
                match keep {
                    Keep::Drop => {}
                    Keep::As => out.extend_from_slice(event),
                    Keep::Priced(cost) => match priced(event, cost) {
                        Some(p) => out.extend_from_slice(&p),
                        None => out.extend_from_slice(event),
                    },
                }
            }
        }
        let out = match (changed, prefix) {
            (Some(out), _) => out.freeze(),
            (None, Some(prefix)) => prefix,
            (None, None) if events.len() == 1 => events[0].clone(),
            (None, None) => events.concat().into(),
        };
        events.clear();
        self.events = events;
        out
    }

    /// Reads what the relay needs from one event, and says what to do with it.
    fn inspect(&mut self, event: &[u8]) -> Keep {
        let Some(data) = data_payload(event) else {
            return Keep::As;
        };
        if data.as_ref() == b"[DONE]" {
            self.saw_done = true;
            return Keep::As;
        }
        let [response, type_error, usage, error] = &*NEEDLES;
        let mentions = |needle: &memchr::memmem::Finder<'_>| needle.find(&data).is_some();
        if mentions(response) || mentions(type_error) {
            return self.inspect_response_event(&data);
        }
        if self.first_token.is_none() && has_content(&data) {
            self.first_token = Some(Instant::now());
        }
        if mentions(usage) || mentions(error) {
            if let Ok(probe) = serde_json::from_slice::<Probe>(&data) {
                if probe.error.is_some() {
                    self.upstream_error = true;
                }
                if let Some(usage) = probe.usage {
                    let usage_only = probe.choices.is_some_and(|c| c.is_empty());
                    let cost = self.rates.map(|r| usage.cost(&r));
                    self.usage = Some(usage);
                    if self.strip_usage && usage_only {
                        return Keep::Drop;
                    }
                    if let Some(cost) = cost {
                        return Keep::Priced(cost);
                    }
                }
            }
        }
        Keep::As
    }

    /// An event of the Responses API: it ends with `response.completed` (or
    /// `response.incomplete`) carrying the usage, fails with `response.failed` or an `error`
    /// event, and its first token is the first output delta. Relayed unchanged.
    fn inspect_response_event(&mut self, data: &[u8]) -> Keep {
        #[derive(Deserialize)]
        struct Event {
            #[serde(rename = "type")]
            kind: String,
            response: Option<ResponseProbe>,
        }
        #[derive(Deserialize)]
        struct ResponseProbe {
            usage: Option<Usage>,
        }
        let Ok(event) = serde_json::from_slice::<Event>(data) else {
            return Keep::As;
        };
        match event.kind.as_str() {
            "response.completed" | "response.incomplete" => {
                self.saw_done = true;
                if let Some(usage) = event.response.and_then(|r| r.usage) {
                    self.usage = Some(usage);
                }
            }
            "response.failed" | "error" => self.upstream_error = true,
            k if k.ends_with(".delta") && self.first_token.is_none() => {
                self.first_token = Some(Instant::now());
            }
            _ => {}
        }
        Keep::As
    }

    /// Ends the stream with an error event after whatever whole events were pending.
    fn fail(&mut self, rest: Bytes, why: &'static str) -> Bytes {
        self.finish(StreamEnd::Broken(why));
        let mut out = BytesMut::with_capacity(rest.len() + 160);
        if !rest.is_empty() {
            // An unterminated event cannot be completed honestly; drop it rather than
            // glue it to the error event.
            tracing::debug!(
                bytes = rest.len(),
                "dropping an unterminated upstream event"
            );
        }
        let event = serde_json::json!({
            "error": {"message": why, "type": "upstream_error", "param": null, "code": "stream_interrupted"}
        });
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(event.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
        out.freeze()
    }

    fn finish(&mut self, end: StreamEnd) {
        self.finished = true;
        if let Some(on_end) = self.on_end.take() {
            on_end(StreamSummary {
                end,
                usage: self.usage.clone(),
                first_token: self.first_token,
            });
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if self.on_end.is_some() {
            self.finish(StreamEnd::ClientGone);
        }
    }
}

/// What [`Relay::inspect`] looks for in every event, searchers built once (building one
/// per search showed in the profile of 2,000 concurrent streams).
static NEEDLES: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 4]> =
    std::sync::LazyLock::new(|| {
        [
            &b"\"response."[..],
            b"\"type\":\"error\"",
            b"\"usage\"",
            b"\"error\"",
        ]
        .map(memchr::memmem::Finder::new)
    });

/// Whether a chunk carries content: a non-empty `"content"` or `"reasoning_content"`
/// string, or a tool call. OpenAI's first chunk often has `"content": ""` with the role only;
/// that is not a token yet. A byte scan, run only until the first content is seen.
fn has_content(data: &[u8]) -> bool {
    if memchr::memmem::find(data, b"\"tool_calls\"").is_some() {
        return true;
    }
    // `content` in chat chunks, `text` in legacy completion chunks.
    [&b"content\":"[..], b"\"text\":"].iter().any(|key| {
        memchr::memmem::find_iter(data, key).any(|at| {
            let mut value = data[at + key.len()..]
                .iter()
                .copied()
                .skip_while(u8::is_ascii_whitespace);
            value.next() == Some(b'"') && value.next().is_some_and(|b| b != b'"')
        })
    })
}

/// What the relay does with an event.
enum Keep {
    As,
    Drop,
    /// Forward it with `usage.cost` added.
    Priced(Decimal),
}

/// A `data:` event with `usage.cost` added to its JSON, or `None` if it has no usage object.
fn priced(event: &[u8], cost: Decimal) -> Option<Bytes> {
    let data = data_payload(event)?;
    let json = with_cost(&data, cost)?;
    let mut out = BytesMut::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&json);
    out.extend_from_slice(b"\n\n");
    Some(out.freeze())
}

#[derive(Deserialize)]
struct Probe {
    choices: Option<Vec<IgnoredAny>>,
    usage: Option<Usage>,
    error: Option<IgnoredAny>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn run(
        chunks: Vec<Result<Bytes, crate::upstream::Error>>,
        strip_usage: bool,
    ) -> (Vec<u8>, Option<StreamSummary>) {
        let seen = Arc::new(Mutex::new(None));
        let sink = seen.clone();
        let mut it = chunks.into_iter();
        let first = it.next().expect("one chunk").expect("ok chunk");
        let rest = futures_util::stream::iter(it.collect::<Vec<_>>()).boxed();
        let stream = relay(
            first,
            rest,
            strip_usage,
            None,
            Duration::from_secs(5),
            move |s| {
                *sink.lock().expect("not poisoned") = Some(s);
            },
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let parts: Vec<Bytes> = rt.block_on(stream.map(|r| r.expect("infallible")).collect());
        let summary = seen.lock().expect("not poisoned").clone();
        (parts.concat(), summary)
    }

    const CONTENT: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n";
    const USAGE: &str = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    #[test]
    fn forwards_bytes_unchanged_and_reads_usage() {
        let text = format!("{CONTENT}{USAGE}{DONE}");
        let (mid, end) = text.split_at(17);
        let chunks = vec![
            Ok(Bytes::from(mid.to_owned())),
            Ok(Bytes::from(end.to_owned())),
        ];
        let (out, summary) = run(chunks, false);
        assert_eq!(String::from_utf8(out).expect("utf8"), text);
        let summary = summary.expect("reported");
        assert_eq!(summary.end, StreamEnd::Completed);
        assert_eq!(summary.usage.expect("usage").completion_tokens, 1);
    }

    #[test]
    fn strips_the_usage_chunk_the_client_did_not_ask_for() {
        let chunks = vec![Ok(Bytes::from(format!("{CONTENT}{USAGE}{DONE}")))];
        let (out, summary) = run(chunks, true);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            format!("{CONTENT}{DONE}")
        );
        assert_eq!(
            summary
                .expect("reported")
                .usage
                .expect("usage")
                .prompt_tokens,
            3
        );
    }

    #[test]
    fn a_stream_without_done_ends_with_an_error_event() {
        let chunks = vec![Ok(Bytes::from(format!("{CONTENT}data: {{\"partial")))];
        let (out, summary) = run(chunks, false);
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.starts_with(CONTENT), "{text}");
        assert!(
            text.ends_with("\n\n") && text.contains("\"code\":\"stream_interrupted\""),
            "{text}"
        );
        assert!(!text.contains("partial"), "partial event leaked: {text}");
        assert!(matches!(
            summary.expect("reported").end,
            StreamEnd::Broken(_)
        ));
    }

    #[test]
    fn content_detection_skips_role_only_chunks() {
        assert!(!has_content(
            br#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#
        ));
        assert!(!has_content(br#"{"choices":[{"delta":{"content":null}}]}"#));
        assert!(has_content(br#"{"choices":[{"delta":{"content": "Hi"}}]}"#));
        assert!(has_content(
            br#"{"choices":[{"delta":{"reasoning_content":"x"}}]}"#
        ));
        assert!(has_content(
            br#"{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}"#
        ));
        assert!(!has_content(
            br#"{"choices":[],"usage":{"prompt_tokens":3}}"#
        ));
    }

    #[test]
    fn the_first_content_time_is_reported() {
        let (_, summary) = run(vec![Ok(Bytes::from(format!("{CONTENT}{DONE}")))], false);
        assert!(summary.expect("reported").first_token.is_some());
        let role_only =
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
        let (_, summary) = run(vec![Ok(Bytes::from(format!("{role_only}{DONE}")))], false);
        assert_eq!(summary.expect("reported").first_token, None);
    }

    #[test]
    fn dropping_the_stream_reports_the_client_gone() {
        let seen = Arc::new(Mutex::new(None));
        let sink = seen.clone();
        let rest = futures_util::stream::pending().boxed();
        let stream = relay(
            Bytes::from(CONTENT),
            rest,
            false,
            None,
            Duration::from_secs(5),
            move |s| {
                *sink.lock().expect("not poisoned") = Some(s.end);
            },
        );
        drop(stream);
        assert_eq!(
            *seen.lock().expect("not poisoned"),
            Some(StreamEnd::ClientGone)
        );
    }
}
