//! How the fake provider paces what it sends: an event stream with its first event after the
//! first-token delay and the rest one interval apart (breaking where a fault says, counting
//! streams whose client left before the end), a body that drips, one that hangs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{stream, StreamExt};

use super::{sleep_if, FakeState};

/// `texts` (whole SSE events) as a streamed response: the first after `ttft`, the rest
/// `interval` apart; with `break_after`, the connection breaks after that event's pause.
pub(super) fn paced(
    state: &Arc<FakeState>,
    texts: Vec<String>,
    ttft: Duration,
    interval: Duration,
    break_after: Option<usize>,
) -> Response {
    let last = texts.len() - 1;
    // Counts a stream dropped before its end: its client closed the connection.
    let watch = Disconnects {
        state: state.clone(),
        finished: Arc::new(AtomicBool::new(false)),
    };
    let finished = watch.finished.clone();
    let items = texts.into_iter().enumerate();
    let body = stream::iter(items).then(move |(i, text)| {
        let finished = finished.clone();
        async move {
            sleep_if(if i == 0 { ttft } else { interval }).await;
            if i == last {
                finished.store(true, Ordering::Relaxed);
            }
            // Break only after a pause, so the tokens before it have been flushed.
            if break_after == Some(i) {
                return Err(std::io::Error::other(
                    "fake provider: injected stream break",
                ));
            }
            Ok::<_, std::io::Error>(Bytes::from(text))
        }
    });
    // The watch lives as long as the body does.
    let body = body.map(move |item| {
        let _ = &watch;
        item
    });
    event_stream(body)
}

/// An event stream response of `body`, ended at its first error so the connection breaks
/// right there.
pub(super) fn event_stream(
    body: impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Response {
    let body = body.scan(false, |broke, item| {
        let out = if *broke { None } else { Some(item) };
        if matches!(out, Some(Err(_))) {
            *broke = true;
        }
        futures_util::future::ready(out)
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .expect("static headers are valid")
}

/// Counts a stream dropped before its last event was produced.
struct Disconnects {
    state: Arc<FakeState>,
    finished: Arc<AtomicBool>,
}

impl Drop for Disconnects {
    fn drop(&mut self) {
        if !self.finished.load(Ordering::Relaxed) {
            self.state.disconnects.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A body sent one byte at a time, `interval` apart.
pub(super) fn drip(text: String, interval: Duration, content_type: &'static str) -> Response {
    let bytes = Bytes::from(text);
    let body = stream::iter(0..bytes.len()).then(move |i| {
        let byte = bytes.slice(i..i + 1);
        async move {
            tokio::time::sleep(interval).await;
            Ok::<_, std::io::Error>(byte)
        }
    });
    Response::builder()
        .header("content-type", content_type)
        .body(Body::from_stream(body))
        .expect("static headers are valid")
}

/// Sends `text`, then stays silent with the connection open.
pub(super) fn then_hang(text: String, content_type: &'static str) -> Response {
    let body = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(text)) })
        .chain(stream::pending());
    Response::builder()
        .header("content-type", content_type)
        .body(Body::from_stream(body))
        .expect("static headers are valid")
}
