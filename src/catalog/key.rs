//! A provider API key: read from the environment, sent upstream, shown nowhere else.
//!
//! The key lives only inside a ready-made `Authorization` header value marked sensitive
//! (so hyper's own debugging does not print it either); `Debug` prints a fixed placeholder.
//! There is deliberately no `Display`, `Serialize` or accessor to the plain text.

use http::HeaderValue;

#[derive(Clone)]
pub struct ApiKey {
    bearer: HeaderValue,
    /// The key alone, for Anthropic's `x-api-key`.
    plain: HeaderValue,
}

impl ApiKey {
    /// `None` when the key holds characters no HTTP header can carry.
    pub fn new(key: &str) -> Option<ApiKey> {
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", key.trim())).ok()?;
        bearer.set_sensitive(true);
        let mut plain = HeaderValue::from_str(key.trim()).ok()?;
        plain.set_sensitive(true);
        Some(ApiKey { bearer, plain })
    }

    /// The `x-api-key` header value for this key (Anthropic's API).
    pub fn x_api_key(&self) -> &HeaderValue {
        &self.plain
    }

    /// The `Authorization` header value for this key.
    pub fn bearer(&self) -> &HeaderValue {
        &self.bearer
    }

    /// `text` with every occurrence of the key replaced by `[redacted]`: for provider error
    /// bodies that are relayed to the client and may quote the key they were sent.
    pub(crate) fn redact(&self, text: bytes::Bytes) -> bytes::Bytes {
        let key = &self.bearer.as_bytes()["Bearer ".len()..];
        if key.is_empty() || memchr::memmem::find(&text, key).is_none() {
            return text;
        }
        let mut out = Vec::with_capacity(text.len());
        let mut rest = &text[..];
        while let Some(at) = memchr::memmem::find(rest, key) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(b"[redacted]");
            rest = &rest[at + key.len()..];
        }
        out.extend_from_slice(rest);
        bytes::Bytes::from(out)
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_shows_nowhere_but_the_header() {
        let key = ApiKey::new("sk-secret-123").expect("valid");
        assert_eq!(format!("{key:?}"), "ApiKey(redacted)");
        assert!(key.bearer().is_sensitive());
        let echoed = bytes::Bytes::from_static(
            b"{\"error\": \"bad key sk-secret-123, really sk-secret-123\"}",
        );
        assert_eq!(
            &key.redact(echoed)[..],
            b"{\"error\": \"bad key [redacted], really [redacted]\"}"
        );
        let clean = bytes::Bytes::from_static(b"nothing here");
        assert_eq!(&key.redact(clean)[..], b"nothing here");
    }
}
