//! Server-sent-event framing for the streaming relay.
//!
//! [`EventSplitter`] cuts an upstream byte stream into whole events (the bytes up to and
//! including the blank line that ends each one) without copying or changing them, so the
//! relay can forward events byte for byte and still look inside each one. Lines may end in
//! `\n` or `\r\n` (both occur in the wild). A partial event waits for its next chunk.

use bytes::{Bytes, BytesMut};

/// Accumulates chunks and yields complete events, unchanged.
#[derive(Debug, Default)]
pub(crate) struct EventSplitter {
    buf: BytesMut,
    /// Bytes of `buf` already searched for an event end without finding one.
    scanned: usize,
}

impl EventSplitter {
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, terminator included.
    pub(crate) fn next_event(&mut self) -> Option<Bytes> {
        let end = find_event_end(&self.buf, self.scanned)?;
        self.scanned = 0;
        Some(self.buf.split_to(end).freeze())
    }

    /// Everything not yet returned (an unterminated last event), leaving the splitter empty.
    pub(crate) fn take_rest(&mut self) -> Bytes {
        self.scanned = 0;
        self.buf.split().freeze()
    }

    /// Remembers how far the buffer has been searched so a long event is not rescanned.
    fn note_scanned(&mut self) {
        // Step back two bytes: a terminator may straddle the old end and the next chunk.
        self.scanned = self.buf.len().saturating_sub(2);
    }
}

/// The end (exclusive) of the first event in `buf`: the position after a line break that is
/// followed directly by another line break. Searching starts at `from`.
fn find_event_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        if buf[i] == b'\n' {
            // A blank line at the very start ends an (empty) event too.
            if i == 0 {
                return Some(1);
            }
            match buf.get(i + 1) {
                Some(b'\n') => return Some(i + 2),
                Some(b'\r') if buf.get(i + 2) == Some(&b'\n') => return Some(i + 3),
                _ => {}
            }
        } else if i == 0 && buf[0] == b'\r' && buf.get(1) == Some(&b'\n') {
            return Some(2);
        }
        i += 1;
    }
    None
}

impl EventSplitter {
    /// Collects every event `chunk` completes. When nothing was pending, the events are
    /// slices of the chunk, and their span (the chunk up to the last event's end) is returned
    /// too, so that it can be passed on without a copy.
    pub(crate) fn feed_bytes(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Option<Bytes> {
        if !self.buf.is_empty() {
            self.feed(&chunk, out);
            return None;
        }
        let mut start = 0;
        while let Some(len) = find_event_end(&chunk[start..], 0) {
            out.push(chunk.slice(start..start + len));
            start += len;
        }
        if start < chunk.len() {
            self.buf.extend_from_slice(&chunk[start..]);
            self.note_scanned();
        }
        Some(chunk.slice(..start))
    }

    /// Pushes a chunk and collects every event it completes.
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut Vec<Bytes>) {
        self.push(chunk);
        while let Some(event) = self.next_event() {
            out.push(event);
        }
        self.note_scanned();
    }
}

/// The payload of an event's `data:` lines (joined by `\n` when there are several), or
/// `None` for an event without data (a comment or keep-alive).
pub(crate) fn data_payload(event: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    let mut found: Option<std::borrow::Cow<'_, [u8]>> = None;
    for line in event.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(rest) = line.strip_prefix(b"data:") else {
            continue;
        };
        let rest = rest.strip_prefix(b" ").unwrap_or(rest);
        found = Some(match found {
            None => std::borrow::Cow::Borrowed(rest),
            Some(prev) => {
                let mut joined = prev.into_owned();
                joined.push(b'\n');
                joined.extend_from_slice(rest);
                std::borrow::Cow::Owned(joined)
            }
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split_all(chunks: &[&[u8]]) -> (Vec<Bytes>, Bytes) {
        let mut s = EventSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            let before = out.len();
            // When nothing was pending, the events are the chunk's prefix that is returned.
            if let Some(prefix) = s.feed_bytes(Bytes::copy_from_slice(c), &mut out) {
                assert_eq!(prefix, out[before..].concat());
            }
        }
        (out, s.take_rest())
    }

    #[test]
    fn splits_lf_and_crlf_events() {
        let (events, rest) =
            split_all(&[b"data: a\n\ndata: b\r\n\r\ndata: c\n", b"\ndata: partial"]);
        let events: Vec<&[u8]> = events.iter().map(|e| e.as_ref()).collect();
        assert_eq!(
            events,
            [&b"data: a\n\n"[..], b"data: b\r\n\r\n", b"data: c\n\n"]
        );
        assert_eq!(rest.as_ref(), b"data: partial");
    }

    #[test]
    fn payload_of_data_lines() {
        assert_eq!(
            data_payload(b"data: {\"a\":1}\n\n").as_deref(),
            Some(&b"{\"a\":1}"[..])
        );
        assert_eq!(
            data_payload(b"data:[DONE]\r\n\r\n").as_deref(),
            Some(&b"[DONE]"[..])
        );
        assert_eq!(data_payload(b": keep-alive\n\n"), None);
        assert_eq!(
            data_payload(b"event: x\ndata: 1\ndata: 2\n\n").as_deref(),
            Some(&b"1\n2"[..])
        );
    }

    fn event_strategy() -> impl Strategy<Value = Vec<u8>> {
        (
            "[a-z{}\":, ]{0,40}",
            prop_oneof![Just("\n\n"), Just("\r\n\r\n"), Just("\n\r\n")],
        )
            .prop_map(|(body, end)| format!("data: {body}{end}").into_bytes())
    }

    proptest! {
        /// However the stream is cut into chunks, the same events come out, byte for byte,
        /// and nothing is lost or added.
        #[test]
        fn chunking_does_not_change_events(
            events in proptest::collection::vec(event_strategy(), 0..12),
            tail in "[a-z ]{0,10}",
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let mut stream: Vec<u8> = events.concat();
            stream.extend_from_slice(tail.as_bytes());
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            points.push(0);
            points.push(stream.len());
            points.sort_unstable();
            let chunks: Vec<&[u8]> = points.windows(2).map(|w| &stream[w[0]..w[1]]).collect();
            let (got, rest) = split_all(&chunks);
            let got: Vec<Vec<u8>> = got.iter().map(|b| b.to_vec()).collect();
            prop_assert_eq!(got, events);
            prop_assert_eq!(rest.as_ref(), tail.as_bytes());
        }

        #[test]
        fn arbitrary_bytes_are_conserved(data in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..300) {
            let cut = cut.min(data.len());
            let (events, rest) = split_all(&[&data[..cut], &data[cut..]]);
            let mut joined: Vec<u8> = events.iter().flat_map(|e| e.to_vec()).collect();
            joined.extend_from_slice(&rest);
            prop_assert_eq!(joined, data);
        }
    }
}
