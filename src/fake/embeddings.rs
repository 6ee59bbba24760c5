//! The fake provider's `POST /v1/embeddings`: one deterministic vector per input (derived
//! from the provider's name, the model and the input), `usage.prompt_tokens` a quarter of
//! the input's bytes. Faults and the error rate apply as for chat.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::{json, Value};

use super::{error, FakeState, Fault};

/// The vector a fake provider gives `input` for `model`: 8 numbers in [-1, 1).
pub fn vector(provider: &str, model: &str, input: &str) -> Vec<f64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (provider, model, input).hash(&mut h);
    let mut seed = h.finish();
    (0..8)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// Standard base64 with padding (a fake's needs do not justify a dependency).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(super) async fn embeddings(State(state): State<Arc<FakeState>>, body: Bytes) -> Response {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let behavior = state.behavior.lock().expect("behavior lock").clone();
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "fake provider: body is not JSON");
    };
    *state.last_body.lock().expect("body lock") = Some(request.clone());
    if let Fault::Status(code) = behavior.fault {
        return error(code, "fake provider: injected failure");
    }
    if rand::rng().random_bool(behavior.error_rate.clamp(0.0, 1.0)) {
        return error(500, "fake provider: random failure");
    }
    let model = request["model"].as_str().unwrap_or("unknown");
    let inputs: Vec<String> = match &request["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect(),
        _ => return error(400, "fake provider: `input` is required"),
    };
    super::sleep_if(behavior.ttft).await;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let v = vector(&state.name, model, text);
            // As OpenAI does: little-endian f32s in base64 when asked (the SDK's default).
            let embedding = if request["encoding_format"] == "base64" {
                let bytes: Vec<u8> = v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect();
                json!(base64(&bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens = inputs
        .iter()
        .map(|t| t.len().div_ceil(4) as u64)
        .sum::<u64>();
    axum::Json(json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response()
}
