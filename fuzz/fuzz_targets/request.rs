//! Request bodies and `x-route-*` header values: the body parser and every hint source.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    switchyard::gateway::fuzzing::request(data);
});
