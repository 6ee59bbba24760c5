//! The request log's lines (pure): one compact record per request, and the catalog's prices
//! whenever they change, as JSON lines.
//!
//! A record holds sizes, never content: the prompt's size and token counts, the routing
//! hints (`route`, `provider`, `models` and `x-route-*` headers, which the parser has already
//! checked hold nothing else), the candidates, each attempt with its endpoint, outcome and
//! latencies, what the answer cost and what hedging did. Never a prompt, an answer, or a key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Line {
    Request(Box<Record>),
    /// The prices in force from `at_ms` (written when they change, and atop every segment).
    Catalog(Box<CatalogLine>),
}

impl Line {
    /// When the line was written about (unix ms).
    pub fn at_ms(&self) -> u64 {
        match self {
            Line::Request(r) => r.at_ms,
            Line::Catalog(c) => c.at_ms,
        }
    }
}

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The router's request id (`x-request-id`).
    pub id: String,
    /// Arrival, unix ms.
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// `chat.completions`, `messages`, `responses`, `completions`, `embeddings`.
    pub surface: String,
    /// The model asked for.
    pub model: String,
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Hints::is_empty")]
    pub hints: Hints,
    /// Size of the prompt, bytes, and the tokens estimated from it.
    pub prompt_bytes: u64,
    pub est_prompt_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Candidates ranked, and the first few of them.
    pub candidates: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranked: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptLine>,
    pub outcome: Outcome,
    /// The HTTP status the client got.
    pub status: u16,
    /// From arrival, for an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
    /// The provider's usage report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge: Option<HedgeLine>,
}

/// The routing hints as the client sent them (never anything else of the body).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RawJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<RawJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<RawJson>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// A JSON value kept as the text it came as: a request's hints are copied into its line, not
/// parsed again (the router's hint parser has read them already). Read back through a
/// `Value`: a line's internal `kind` tag makes serde buffer it, and a raw value cannot be
/// taken from the buffer.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct RawJson(pub Box<serde_json::value::RawValue>);

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawJson, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(RawJson::from(&value))
    }
}

impl RawJson {
    /// `raw` copied.
    pub fn of(raw: &serde_json::value::RawValue) -> RawJson {
        RawJson(raw.to_owned())
    }

    /// The value, parsed (off the request path: replay, tests).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).unwrap_or(serde_json::Value::Null)
    }
}

impl From<&serde_json::Value> for RawJson {
    fn from(v: &serde_json::Value) -> RawJson {
        RawJson(serde_json::value::to_raw_value(v).expect("a JSON value serializes"))
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &RawJson) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Hints {
    pub fn is_empty(&self) -> bool {
        self.route.is_none()
            && self.provider.is_none()
            && self.models.is_none()
            && self.headers.is_empty()
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An endpoint answered (a stream that completed).
    Answered,
    /// A stream that broke after its first byte.
    Broken,
    /// The client went away mid-answer.
    ClientGone,
    /// The provider refused the request itself (relayed 4xx).
    Rejected,
    /// Every attempt failed.
    Failed,
    /// The router refused it before any attempt (no candidate, bad hint).
    Refused,
}

/// One attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptLine {
    pub endpoint: String,
    /// When it started, from the request's arrival.
    pub start_ms: f64,
    /// `answered`, `cancelled`, `rejected`, `unsupported`, or a failure class.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// How long it ran until it failed or was cancelled, or (answered) until its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_ms: Option<f64>,
    /// The answering attempt's own time to first token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hedge: bool,
}

impl AttemptLine {
    /// The `outcome` and `status` of an attempt that ended so.
    pub fn outcome_of(end: crate::plan::End) -> (String, Option<u16>) {
        use crate::plan::End;
        match end {
            End::Running | End::Answered => ("answered".to_owned(), None),
            End::Failed(class, status) => (class.to_string(), status),
            End::Unsupported(status) => ("unsupported".to_owned(), Some(status)),
            End::Rejected => ("rejected".to_owned(), None),
            End::Cancelled => ("cancelled".to_owned(), None),
        }
    }
}

/// What hedging did for the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HedgeLine {
    /// When the hedge was due, ms after its attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<f64>,
    pub started: bool,
    pub won: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub wasted_usd: f64,
}

/// The prices of every endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogLine {
    pub at_ms: u64,
    pub endpoints: Vec<EndpointPrice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointPrice {
    pub id: String,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<f64>,
}

impl CatalogLine {
    pub fn of(catalog: &crate::catalog::Catalog, at_ms: u64) -> CatalogLine {
        CatalogLine {
            at_ms,
            endpoints: catalog
                .endpoints()
                .iter()
                .map(|e| EndpointPrice {
                    id: e.id.clone(),
                    input_per_mtok: e.price.input_per_mtok,
                    output_per_mtok: e.price.output_per_mtok,
                    cached_input_per_mtok: e.price.cached_input_per_mtok,
                    quality: e.price.quality,
                })
                .collect(),
        }
    }
}
