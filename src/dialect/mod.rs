//! API dialects: what a client speaks and what a provider speaks, and the translation
//! between them. The router's own working form is OpenAI's chat completions; an Anthropic
//! Messages request is translated into it on the way in and out of it on the way to an
//! Anthropic-protocol provider, and answers (JSON and streams) the other way. Same dialect
//! in and out is never translated: the bytes are relayed as they came.
//!
//! Pure: JSON values in, JSON values out; what cannot be translated is a
//! [`TranslateError`] naming the field, never silently dropped.

pub mod anthropic;

/// A field of a request that has no equivalent in the other dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct TranslateError {
    /// The field at fault, as the client wrote it (e.g. `messages[2].content[0].type`).
    pub field: String,
    pub message: String,
}

impl TranslateError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> TranslateError {
        TranslateError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Which protocol a provider speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OpenAI's chat completions (`{base_url}/chat/completions`, `Authorization: Bearer`).
    #[default]
    Openai,
    /// Anthropic's Messages API (`{base_url}/messages`, `x-api-key`, `anthropic-version`).
    Anthropic,
}
