//! Conversation affinity at the HTTP edge: a request's key from its body and headers (the
//! map and the layer over the ranking are [`crate::affinity`]).

use std::borrow::Cow;

use axum::http::HeaderMap;
use serde_json::value::RawValue;

use crate::affinity;
use crate::route::ChatBody;

/// A top-level string field of a JSON body.
fn string_field(raw: Option<&RawValue>) -> Option<String> {
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
}

/// The request's affinity key: `prompt_cache_key`, the `x-session-id` header, `user`, or an
/// Anthropic client's `metadata.user_id` (from its own body's top-level fields), for
/// `client`.
pub(super) fn key(
    chat: &ChatBody<'_>,
    headers: &HeaderMap,
    anthropic: Option<&[(Cow<'_, str>, &RawValue)]>,
    client: Option<&str>,
) -> Option<String> {
    let cache_key = string_field(chat.field("prompt_cache_key"));
    let session = headers.get("x-session-id").and_then(|v| v.to_str().ok());
    let user = string_field(chat.field("user"));
    let anthropic_user = anthropic.and_then(|fields| {
        let (_, metadata) = fields.iter().find(|(k, _)| k == "metadata")?;
        let v: serde_json::Value = serde_json::from_str(metadata.get()).ok()?;
        v["user_id"].as_str().map(str::to_owned)
    });
    affinity::key_of(
        [
            cache_key.as_deref(),
            session,
            user.as_deref(),
            anthropic_user.as_deref(),
        ],
        client,
    )
}
