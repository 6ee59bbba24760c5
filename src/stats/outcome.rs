//! What one attempt at an endpoint came to.

use serde::{Deserialize, Serialize};

/// Why an attempt failed, coarse enough to learn from and safe to show a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// No headers or first byte in time, or the deadline ran out.
    Timeout,
    /// No connection could be made, or it broke before an answer.
    Connect,
    /// HTTP 429.
    RateLimited,
    /// HTTP 5xx.
    ServerError,
    /// The provider refused us rather than the request: 401, 403, 404, 408, 409.
    Refused,
    /// A success status with an unusable body.
    BadResponse,
    /// A stream that broke, went silent or reported an error after its first byte.
    MidStream,
    /// A 400 saying a parameter is not supported by the model (see
    /// `gateway::refusal`): the next candidate is tried. Counted, but not against the
    /// endpoint's health: it answers other requests as well as before.
    Unsupported,
}

impl FailureClass {
    pub(crate) const COUNT: usize = 8;
    pub(crate) const ALL: [FailureClass; Self::COUNT] = [
        FailureClass::Timeout,
        FailureClass::Connect,
        FailureClass::RateLimited,
        FailureClass::ServerError,
        FailureClass::Refused,
        FailureClass::BadResponse,
        FailureClass::MidStream,
        FailureClass::Unsupported,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            FailureClass::Timeout => "timeout",
            FailureClass::Connect => "connect",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::ServerError => "server_error",
            FailureClass::Refused => "refused",
            FailureClass::BadResponse => "bad_response",
            FailureClass::MidStream => "mid_stream",
            FailureClass::Unsupported => "unsupported",
        }
    }
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Reads a per-class array saved when there were fewer classes: the missing ones are zero.
/// (Serde's own arrays take exactly their length, and a store written before a class was
/// added must still load.)
pub(crate) fn per_class<'de, D, T>(d: D) -> Result<[T; FailureClass::COUNT], D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default + Copy,
{
    let values: Vec<T> = Vec::deserialize(d)?;
    if values.len() > FailureClass::COUNT {
        return Err(serde::de::Error::invalid_length(
            values.len(),
            &"at most one value per failure class",
        ));
    }
    let mut out = [T::default(); FailureClass::COUNT];
    out[..values.len()].copy_from_slice(&values);
    Ok(out)
}

/// A successful attempt, as measured by the gateway (or the simulator).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Success {
    /// Time to the first content token, for streams.
    pub ttft_ms: Option<f64>,
    /// Time to the end of the answer.
    pub total_ms: f64,
    /// Prompt tokens, as the provider reported them.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens, as the provider reported them.
    pub output_tokens: Option<u64>,
    /// Size of the request's `messages` in bytes, to learn bytes per prompt token.
    pub prompt_bytes: Option<u64>,
    /// What the answer cost, exactly, at the prices in force when the request started.
    pub cost_usd: Option<rust_decimal::Decimal>,
}

impl Success {
    /// Decode speed in output tokens per second, when it can be told: a stream with a
    /// first-token time and more than one token.
    pub fn tokens_per_s(&self) -> Option<f64> {
        let ttft = self.ttft_ms?;
        let tokens = self.output_tokens? as f64;
        let decode_ms = self.total_ms - ttft;
        (tokens > 1.0 && decode_ms > 0.0).then(|| (tokens - 1.0) * 1000.0 / decode_ms)
    }
}
