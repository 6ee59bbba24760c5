//! Entry points for the `cargo fuzz` targets in `fuzz/` and their property-test twins: the
//! parsers that read untrusted bytes, driven whole from one byte string. A panic here is a
//! finding; the checks below turn a wrong result into one.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::relay::{relay, StreamEnd};
use crate::route::{hints, ChatBody};

/// How far a fuzzed request got, so a property test can tell that its checks ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// The body was refused (with a 400 naming the field).
    BodyRefused,
    /// The body parsed; a hint was refused.
    HintRefused,
    /// Body and hints parsed, and every check on them ran.
    Checked,
}

/// A request body, then after a `0xFF` byte (if any) a header value tried in every
/// `x-route-*` header: parsed as the router parses requests.
pub fn request(input: &[u8]) -> Reached {
    let (body, header) = match memchr::memchr(0xFF, input) {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (input, &[][..]),
    };
    let header = String::from_utf8_lossy(header);
    let Ok(chat) = ChatBody::parse(body) else {
        return Reached::BodyRefused;
    };
    let (_, suffix) = hints::split_suffix(&chat.model);
    // No header bytes: no header at all (an empty value would be refused by every one).
    let lookup = |name: &str| {
        (name.starts_with("x-route-") && !header.is_empty()).then_some(header.as_ref())
    };
    let Ok(c) = hints::parse(&chat, lookup, suffix) else {
        return Reached::HintRefused;
    };
    {
        for t in &c.latency {
            assert!(
                t.max_ms > 0.0 && t.percentile > 0.0 && t.percentile < 100.0,
                "{c:?}"
            );
        }
        // Hints never reach the provider.
        let upstream = chat.upstream_body("m");
        let v: serde_json::Value =
            serde_json::from_slice(&upstream).expect("upstream body is JSON");
        for stripped in ["route", "provider", "models"] {
            assert!(v.get(stripped).is_none(), "`{stripped}` went upstream");
        }
        // The conversation goes upstream as the client sent it.
        let sent: serde_json::Value = serde_json::from_slice(body).expect("parsed above");
        assert_eq!(
            v["messages"], sent["messages"],
            "messages changed on the way"
        );
        assert_eq!(v["model"], "m", "the upstream model replaces the client's");
    }
    Reached::Checked
}

/// An upstream event stream cut into chunks (sizes taken from the first byte), relayed as
/// the router relays streams. Returns what the client got and how the stream ended.
pub fn stream(input: &[u8]) -> (Vec<u8>, StreamEnd) {
    let Some((&seed, data)) = input.split_first() else {
        return (Vec::new(), StreamEnd::Completed);
    };
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut rest = data;
    let mut size = usize::from(seed % 13) + 1;
    while !rest.is_empty() {
        let n = size.min(rest.len());
        chunks.push(Bytes::copy_from_slice(&rest[..n]));
        rest = &rest[n..];
        size = size * 7 % 31 + 1;
    }
    let mut it = chunks.into_iter();
    let first = it.next().unwrap_or_default();
    let upstream = futures_util::stream::iter(it.map(Ok).collect::<Vec<_>>()).boxed();
    let ended = std::sync::Arc::new(std::sync::Mutex::new(None));
    let sink = ended.clone();
    let out = relay(
        first,
        upstream,
        seed & 1 == 1,
        None,
        Duration::from_secs(1),
        move |s| {
            *sink.lock().expect("end lock") = Some(s.end);
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let parts: Vec<Bytes> = runtime.block_on(out.map(|r| r.unwrap_or_default()).collect());
    let sent = parts.concat();
    let end = ended
        .lock()
        .expect("end lock")
        .clone()
        .expect("the end is always reported");
    match &end {
        StreamEnd::Completed => assert!(
            memchr::memmem::find(&sent, b"[DONE]").is_some(),
            "completed without [DONE]"
        ),
        StreamEnd::Broken(_) => assert!(
            memchr::memmem::find(&sent, b"stream_interrupted").is_some(),
            "broken without an error event"
        ),
        StreamEnd::UpstreamError | StreamEnd::ClientGone => {}
    }
    (sent, end)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_request_bytes_are_handled(input in proptest::collection::vec(any::<u8>(), 0..400)) {
            super::request(&input);
        }

        #[test]
        fn any_json_request_is_handled(
            model in "[a-z:/-]{0,12}",
            route in "\\PC{0,60}",
            header in "\\PC{0,16}",
        ) {
            let body = format!(
                r#"{{"model":"{model}","messages":[{{"role":"user","content":"x"}}],"route":{route}}}"#
            );
            let mut input = body.into_bytes();
            input.push(0xFF);
            input.extend_from_slice(header.as_bytes());
            super::request(&input);
        }

        /// Valid hints of the body's sources: the checks on the parsed result must run.
        #[test]
        fn valid_hints_reach_every_check(
            model in "[a-z][a-z/-]{0,10}(:floor|:nitro)?",
            max_ms in 1.0f64..1e6,
            percentile in 1.0f64..99.0,
            prefer in prop_oneof![Just("cost"), Just("latency"), Just("quality"), Just("throughput")],
            stream in any::<bool>(),
        ) {
            let body = format!(
                r#"{{"model":"{model}","stream":{stream},"messages":[{{"role":"user","content":"x"}}],
                "route":{{"max_latency_ms":{max_ms},"latency_percentile":{percentile},"prefer":"{prefer}"}},
                "provider":{{"sort":"price"}},"models":["{model}"]}}"#
            );
            prop_assert_eq!(super::request(body.as_bytes()), super::Reached::Checked);
        }

        #[test]
        fn any_upstream_stream_is_relayed(input in proptest::collection::vec(any::<u8>(), 0..600)) {
            super::stream(&input);
        }

        #[test]
        fn event_like_streams_are_relayed(
            events in proptest::collection::vec(
                prop_oneof![
                    Just("data: [DONE]\n\n".to_owned()),
                    Just(": keep-alive\n\n".to_owned()),
                    "[a-z{}\":, ]{0,30}".prop_map(|s| format!("data: {s}\n\n")),
                    Just("data: {\"error\":{\"message\":\"x\"}}\n\n".to_owned()),
                    Just("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\r\n\r\n".to_owned()),
                ],
                0..8,
            ),
            seed in any::<u8>(),
        ) {
            let mut input = vec![seed];
            input.extend(events.concat().into_bytes());
            super::stream(&input);
        }
    }
}
