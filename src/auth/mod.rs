//! Who may call the router: client keys, their limits, and the admin token.
//!
//! Client keys are configured as `[[clients]]` entries holding the SHA-256 of the key (or the
//! name of an environment variable holding the key), never the key itself in the file. A
//! request presents `Authorization: Bearer <key>`; the router hashes what it got and compares
//! the digest with every configured one in constant time, without stopping at a match, so
//! neither the position of a key nor how much of it was right shows in the timing.
//!
//! A key may carry a name (it shows in metrics and decision records), a rate limit (a token
//! bucket from `governor`) and a spend limit per window. Without any `[[clients]]` entry the
//! router is open, which config validation allows only on a loopback address (see
//! `server.allow_unauthenticated`). The admin token for `/admin/*` and `/dashboard` is a
//! separate secret, read from the environment and compared the same way.

mod clients;

use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use clients::{Client, ClientError, ClientReport, Clients, LimitError, SpendState};

/// `[[clients]]`: one key that may call the router.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Shown in metrics, logs and decision records instead of the key.
    pub name: String,
    /// SHA-256 of the key, 64 hex digits (`printf %s "$KEY" | sha256sum`).
    pub key_sha256: Option<String>,
    /// Or: the environment variable holding the key itself.
    pub key_env: Option<String>,
    /// Sustained request rate allowed to this key.
    pub requests_per_minute: Option<u32>,
    /// Requests allowed at once above the sustained rate (defaults to one minute's worth).
    pub burst: Option<u32>,
    /// Largest spend in USD per `spend_window`; once reached, requests get a 429 until the
    /// window turns. The request that crosses the limit is completed and charged.
    pub spend_limit_usd: Option<Decimal>,
    /// The window the spend limit applies to, aligned to the Unix epoch (`"1d"`: UTC days).
    #[serde(default = "default_spend_window", with = "humantime_serde")]
    pub spend_window: Duration,
}

fn default_spend_window() -> Duration {
    Duration::from_secs(86_400)
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The digest is not the key, but there is no reason to print it either.
        f.debug_struct("ClientConfig")
            .field("name", &self.name)
            .field("key_env", &self.key_env)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("burst", &self.burst)
            .field("spend_limit_usd", &self.spend_limit_usd)
            .field("spend_window", &self.spend_window)
            .finish_non_exhaustive()
    }
}

/// A `[[clients]]` entry that cannot be taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{field}`: {message}")]
pub(crate) struct ClientConfigError {
    /// The config field at fault, e.g. `clients[2].key_sha256`.
    pub field: String,
    pub message: String,
}

/// Checks the `[[clients]]` entries.
pub(crate) fn validate_clients(clients: &[ClientConfig]) -> Result<(), ClientConfigError> {
    let mut names = std::collections::HashSet::new();
    let mut digests = std::collections::HashSet::new();
    for (i, c) in clients.iter().enumerate() {
        let field = |f: &str| format!("clients[{i}].{f}");
        let bad = |field: String, message: String| ClientConfigError { field, message };
        if !crate::config::is_valid_name(&c.name) {
            return Err(bad(
                field("name"),
                format!(
                    "`{}` must be non-empty and use only a-z, 0-9, '-', '_' or '.'",
                    c.name
                ),
            ));
        }
        if !names.insert(c.name.as_str()) {
            return Err(bad(
                field("name"),
                format!("client `{}` is listed twice", c.name),
            ));
        }
        match (&c.key_sha256, &c.key_env) {
            (Some(hex), None) => {
                let digest = parse_digest(hex).ok_or_else(|| {
                    bad(
                        field("key_sha256"),
                        "must be 64 hex digits (the SHA-256 of the key, not the key)".to_owned(),
                    )
                })?;
                if !digests.insert(digest) {
                    return Err(bad(
                        field("key_sha256"),
                        "the same key is listed twice".into(),
                    ));
                }
            }
            (None, Some(var)) if !var.is_empty() => {}
            (None, Some(_)) => return Err(bad(field("key_env"), "must not be empty".into())),
            _ => {
                return Err(bad(
                    field("key_sha256"),
                    "give exactly one of `key_sha256` and `key_env`".into(),
                ))
            }
        }
        if c.requests_per_minute == Some(0) {
            return Err(bad(
                field("requests_per_minute"),
                "must be at least 1".into(),
            ));
        }
        if c.burst == Some(0) {
            return Err(bad(field("burst"), "must be at least 1".into()));
        }
        if c.burst.is_some() && c.requests_per_minute.is_none() {
            return Err(bad(field("burst"), "needs `requests_per_minute`".into()));
        }
        if c.spend_limit_usd.is_some_and(|l| l <= Decimal::ZERO) {
            return Err(bad(field("spend_limit_usd"), "must be above zero".into()));
        }
        if c.spend_window < Duration::from_secs(1) {
            return Err(bad(field("spend_window"), "must be at least 1s".into()));
        }
    }
    Ok(())
}

/// The SHA-256 digest of a secret.
pub fn digest(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Parses 64 hex digits into a digest.
pub(crate) fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Lower-case hex of a digest.
pub fn to_hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key of an `Authorization: Bearer <key>` header value.
pub fn bearer(value: Option<&axum::http::HeaderValue>) -> Option<&[u8]> {
    let v = value?.as_bytes();
    let rest = v
        .strip_prefix(b"Bearer ")
        .or_else(|| v.strip_prefix(b"bearer "))?;
    let key = rest.trim_ascii();
    (!key.is_empty()).then_some(key)
}

/// The admin token, kept only as its digest.
pub(crate) struct AdminToken([u8; 32]);

impl AdminToken {
    pub fn new(token: &str) -> AdminToken {
        AdminToken(digest(token.as_bytes()))
    }

    /// Whether `given` is the token; constant time in the token's content and length.
    pub fn matches(&self, given: &[u8]) -> bool {
        bool::from(self.0.ct_eq(&digest(given)))
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// A fresh random client key and its SHA-256 digest, for `switchyard keygen`.
pub fn generate_key() -> (String, String) {
    use rand::TryRngCore;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the OS random source works");
    let key: String = format!(
        "sy-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let hex = to_hex(&digest(key.as_bytes()));
    (key, hex)
}

#[cfg(test)]
mod tests;
