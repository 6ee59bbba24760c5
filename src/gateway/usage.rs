//! Token usage as providers report it (`usage` in an answer or in the last stream chunk).

use serde::Deserialize;

/// The token counts of one answer; absent counts read as zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: u64,
}

#[derive(Deserialize)]
struct Envelope {
    usage: Option<Usage>,
}

impl Usage {
    /// What these tokens cost at `rates`.
    pub fn cost(&self, rates: &crate::pricing::Rates) -> rust_decimal::Decimal {
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .map_or(0, |d| d.cached_tokens);
        rates.cost(self.prompt_tokens, cached, self.completion_tokens)
    }

    /// The usage of a non-streaming answer body, if it reports one.
    pub fn from_answer(body: &[u8]) -> Option<Usage> {
        serde_json::from_slice::<Envelope>(body).ok()?.usage
    }
}

/// `json` with `"cost": <cost>` added to its top-level `usage` object, every other byte as
/// it was; `None` when there is no usage object to add it to.
pub fn with_cost(json: &[u8], cost: rust_decimal::Decimal) -> Option<Vec<u8>> {
    let fields = crate::route::body::top_level(json).ok()?;
    let (_, usage) = fields.iter().find(|(k, _)| k == "usage")?;
    let raw = usage.get().trim_end();
    let inner = raw.strip_prefix('{')?.strip_suffix('}')?;
    let start = usage.get().as_ptr() as usize - json.as_ptr() as usize;
    let end = start + raw.len();
    let mut out = Vec::with_capacity(json.len() + 32);
    out.extend_from_slice(&json[..end - 1]);
    if !inner.trim().is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(format!("\"cost\":{cost}").as_bytes());
    out.extend_from_slice(&json[end - 1..]);
    Some(out)
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
    }
}
