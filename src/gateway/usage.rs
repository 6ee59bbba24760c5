//! Token usage as providers report it (`usage` in an answer or in the last stream chunk).

use std::ops::Range;

use serde::Deserialize;

/// The token counts of one answer; absent counts read as zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// `input_tokens` in the Responses API.
    #[serde(default, alias = "input_tokens")]
    pub prompt_tokens: u64,
    /// `output_tokens` in the Responses API (reasoning tokens included: priced as output).
    #[serde(default, alias = "output_tokens")]
    pub completion_tokens: u64,
    #[serde(default, alias = "input_tokens_details")]
    pub prompt_tokens_details: Option<PromptDetails>,
    /// A cost the provider reported itself (OpenRouter does), USD.
    #[serde(default)]
    pub cost: Option<serde_json::Number>,
}

/// Answers whose provider-reported `usage.cost` differed from the router's own figure by
/// more than rounding (for `/metrics`).
pub(crate) static COST_DISAGREEMENTS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's cache (Anthropic's
    /// `cache_creation_input_tokens`, carried here when its answers are translated).
    #[serde(default)]
    pub cache_write_tokens: u64,
}

impl Usage {
    /// What these tokens cost at `rates`.
    pub fn cost(&self, rates: &crate::pricing::Rates) -> rust_decimal::Decimal {
        let d = self.prompt_tokens_details.clone().unwrap_or_default();
        rates.cost_with_writes(
            self.prompt_tokens,
            d.cached_tokens,
            d.cache_write_tokens,
            self.completion_tokens,
        )
    }
}

/// What the router reads from a non-streaming answer, in one pass over its bytes: that it
/// is one JSON object, its `usage`, and where the `usage` object sits (to add `cost`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AnswerFacts {
    pub usage: Option<Usage>,
    usage_object: Option<Range<usize>>,
}

impl AnswerFacts {
    /// Reads an answer body; `None` when it is not one well-formed JSON object.
    pub fn read(json: &[u8]) -> Option<AnswerFacts> {
        let fields = crate::route::body::top_level(json).ok()?;
        let Some((_, raw)) = fields.iter().find(|(k, _)| k == "usage") else {
            return Some(AnswerFacts::default());
        };
        let usage = serde_json::from_str::<Option<Usage>>(raw.get())
            .ok()
            .flatten();
        let text = raw.get().trim_end();
        let start = text.as_ptr() as usize - json.as_ptr() as usize;
        let usage_object =
            (text.starts_with('{') && text.ends_with('}')).then_some(start..start + text.len());
        Some(AnswerFacts {
            usage,
            usage_object,
        })
    }

    /// `json` (the body these facts were read from) with `"cost": <cost>` added to its
    /// top-level `usage` object, every other byte as it was; `None` without a usage object.
    pub(crate) fn with_cost(&self, json: &[u8], cost: rust_decimal::Decimal) -> Option<Vec<u8>> {
        if let Some(theirs) = self.usage.as_ref().and_then(|u| u.cost.as_ref()) {
            // One `cost` key, never two: the provider's stays; the router's figure is in
            // the header. A difference beyond rounding is worth knowing.
            let ours = rust_decimal::prelude::ToPrimitive::to_f64(&cost).unwrap_or(0.0);
            let theirs = theirs.as_f64().unwrap_or(0.0);
            if (ours - theirs).abs() > 1e-6_f64.max(ours.abs() * 1e-3) {
                COST_DISAGREEMENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    ours,
                    theirs,
                    "the provider's usage.cost differs from the router's"
                );
            }
            return None;
        }
        let span = self.usage_object.clone()?;
        let inner = json.get(span.start + 1..span.end - 1)?;
        let mut out = Vec::with_capacity(json.len() + 32);
        out.extend_from_slice(&json[..span.end - 1]);
        if !inner.iter().all(u8::is_ascii_whitespace) {
            out.push(b',');
        }
        out.extend_from_slice(format!("\"cost\":{cost}").as_bytes());
        out.extend_from_slice(&json[span.end - 1..]);
        Some(out)
    }
}

/// `json` with `"cost": <cost>` added to its top-level `usage` object, every other byte as
/// it was; `None` when there is no usage object to add it to.
pub(crate) fn with_cost(json: &[u8], cost: rust_decimal::Decimal) -> Option<Vec<u8>> {
    AnswerFacts::read(json)?.with_cost(json, cost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn cost_is_added_to_usage_and_nothing_else_moves() {
        let body = br#"{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":1},"choices":[]}"#;
        let cost = rust_decimal::Decimal::from_str("0.00012").expect("literal");
        let out = with_cost(body, cost).expect("has usage");
        assert_eq!(
            std::str::from_utf8(&out).expect("utf8"),
            r#"{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":1,"cost":0.00012},"choices":[]}"#
        );
        let empty = with_cost(br#"{"usage":{}}"#, cost).expect("has usage");
        assert_eq!(&empty, br#"{"usage":{"cost":0.00012}}"#);
        assert!(with_cost(br#"{"usage":null}"#, cost).is_none());
        assert!(with_cost(b"not json", cost).is_none());
        assert!(with_cost(br#"{"usage":{"prompt_tokens":3}} trailing"#, cost).is_none());
    }

    #[test]
    fn a_cost_the_provider_reported_is_kept_and_never_doubled() {
        let body = br#"{"usage":{"prompt_tokens":3,"completion_tokens":1,"cost":0.5}}"#;
        let before = COST_DISAGREEMENTS.load(std::sync::atomic::Ordering::Relaxed);
        let same = rust_decimal::Decimal::from_str("0.5").expect("literal");
        assert!(
            with_cost(body, same).is_none(),
            "the body keeps its one cost"
        );
        let other = rust_decimal::Decimal::from_str("0.7").expect("literal");
        assert!(with_cost(body, other).is_none());
        let after = COST_DISAGREEMENTS.load(std::sync::atomic::Ordering::Relaxed);
        assert!(after > before, "a disagreement is counted");
    }

    #[test]
    fn one_read_gives_the_usage_and_where_to_add_the_cost() {
        let body = br#"{"id":"x", "usage" : {"prompt_tokens":3,"completion_tokens":5,
            "prompt_tokens_details":{"cached_tokens":2}} ,"choices":[]}"#;
        let facts = AnswerFacts::read(body).expect("an object");
        let usage = facts.usage.clone().expect("usage");
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (3, 5));
        assert_eq!(
            usage.prompt_tokens_details.map(|d| d.cached_tokens),
            Some(2)
        );
        let cost = rust_decimal::Decimal::from_str("0.5").expect("literal");
        let out = String::from_utf8(facts.with_cost(body, cost).expect("usage")).expect("utf8");
        assert!(
            out.contains(r#""cached_tokens":2},"cost":0.5} ,"choices":[]}"#),
            "{out}"
        );
        serde_json::from_str::<serde_json::Value>(&out).expect("still JSON");
        // No usage, or usage that is not an object: the facts say so, the body stays.
        let bare = AnswerFacts::read(br#"{"choices":[]}"#).expect("an object");
        assert_eq!(bare, AnswerFacts::default());
        assert!(bare.with_cost(br#"{"choices":[]}"#, cost).is_none());
        let odd = AnswerFacts::read(br#"{"usage":"n/a"}"#).expect("an object");
        assert!(odd.usage.is_none() && odd.with_cost(br#"{"usage":"n/a"}"#, cost).is_none());
        // What is not one JSON object is not an answer.
        for bad in [&b"[1]"[..], b"{\"a\":", b"{} {}", b"", b"null"] {
            assert!(AnswerFacts::read(bad).is_none(), "{bad:?}");
        }
    }
}
