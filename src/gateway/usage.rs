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
    /// The usage of a non-streaming answer body, if it reports one.
    pub fn from_answer(body: &[u8]) -> Option<Usage> {
        serde_json::from_slice::<Envelope>(body).ok()?.usage
    }
}
