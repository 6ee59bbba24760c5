//! Conversation affinity at the HTTP edge: a request's key from its body and headers, and
//! the remembered endpoint put first (see [`crate::affinity`]).

use axum::http::HeaderMap;

use super::attempt::AnthropicClient;
use super::Shared;
use crate::affinity::{self, Outcome};
use crate::catalog::Catalog;
use crate::route::ChatBody;
use crate::select::Decision;
use crate::stats::StatsTable;

/// A top-level string field of a JSON body.
fn string_field(raw: Option<&serde_json::value::RawValue>) -> Option<String> {
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
}

/// The request's affinity key: `prompt_cache_key`, the `x-session-id` header, `user`, or an
/// Anthropic client's `metadata.user_id`, for `client`.
pub(super) fn key(
    chat: &ChatBody<'_>,
    headers: &HeaderMap,
    anthropic: Option<&AnthropicClient>,
    client: Option<&str>,
) -> Option<String> {
    let cache_key = string_field(chat.field("prompt_cache_key"));
    let session = headers.get("x-session-id").and_then(|v| v.to_str().ok());
    let user = string_field(chat.field("user"));
    let anthropic_user = anthropic.and_then(|a| {
        let fields = crate::route::body::top_level(&a.body).ok()?;
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

/// Puts the endpoint remembered for `key` first in `decision` where [`affinity::apply`]
/// says so, weighing what its warm cache would save on this request.
pub(super) fn apply(
    shared: &Shared,
    catalog: &Catalog,
    table: &StatsTable,
    key: Option<&str>,
    decision: &mut Decision,
    now_ns: u64,
) -> Outcome {
    affinity::apply_remembered(&shared.affinities, catalog, table, key, decision, now_ns)
}
