//! A provider API key: read from the environment, sent upstream, shown nowhere else.
//!
//! The key lives only inside a ready-made `Authorization` header value marked sensitive
//! (so hyper's own debugging does not print it either); `Debug` prints a fixed placeholder.
//! There is deliberately no `Display`, `Serialize` or accessor to the plain text.

use reqwest::header::HeaderValue;

#[derive(Clone)]
pub struct ApiKey {
    bearer: HeaderValue,
}

impl ApiKey {
    /// `None` when the key holds characters no HTTP header can carry.
    pub fn new(key: &str) -> Option<ApiKey> {
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", key.trim())).ok()?;
        bearer.set_sensitive(true);
        Some(ApiKey { bearer })
    }

    /// The `Authorization` header value for this key.
    pub fn bearer(&self) -> &HeaderValue {
        &self.bearer
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(redacted)")
    }
}
