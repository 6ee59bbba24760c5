//! Upstream event streams, cut into chunks: the SSE splitter and the streaming relay.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = switchyard::gateway::fuzzing::stream(data);
});
