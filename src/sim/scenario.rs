//! A simulation scenario: simulated endpoints, a workload and timed events, as TOML.
//!
//! Parsed with unknown fields rejected and validated once; every error names the field. See
//! `simulations/*.toml` for examples and DESIGN §8 for the shape.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::workload::WorkloadHint;
use crate::config::PolicyName;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Policies to compare; the oracle is added when absent.
    #[serde(default)]
    pub policies: Vec<SimPolicy>,
    pub workload: Workload,
    pub endpoints: Vec<SimEndpoint>,
    #[serde(default)]
    pub events: Vec<Event>,
    /// Attempts per request, the first included.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// An attempt without a first token by then fails as a timeout.
    #[serde(default = "default_first_byte_timeout", with = "humantime_serde")]
    pub first_byte_timeout: Duration,
    /// Half-lives of the learned statistics, as in `[stats]`.
    #[serde(default = "default_latency_hl", with = "humantime_serde")]
    pub latency_half_life: Duration,
    #[serde(default = "default_outcome_hl", with = "humantime_serde")]
    pub outcome_half_life: Duration,
    /// Feedback's half-life and the declared quality's strength, as in `[feedback]`.
    #[serde(default = "default_quality_hl", with = "humantime_serde")]
    pub quality_half_life: Duration,
    #[serde(default = "default_quality_prior")]
    pub quality_prior_strength: f64,
    /// Deadline of a request, all attempts included (`upstream.total_timeout`).
    #[serde(default = "default_total_timeout", with = "humantime_serde")]
    pub total_timeout: Duration,
    /// Longest provider `Retry-After` honoured (`routing.max_retry_after`).
    #[serde(default = "default_max_retry_after", with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// Routers serving the workload and how they share (`[fleet]`; one router by default).
    #[serde(default)]
    pub fleet: super::fleet::SimFleet,
    /// `[hedge]`, as in the router's config: which requests are hedged by default, the
    /// defaults, and the budget (a request's own `route.hedge` still decides).
    #[serde(default)]
    pub hedge: crate::plan::hedge::HedgeConfig,
    /// The workload's request shapes, parsed by the router's own request parser when the
    /// scenario is loaded (one per `mix` entry, or the single one).
    #[serde(skip)]
    pub hints: Vec<WorkloadHint>,
}

fn default_total_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_max_retry_after() -> Duration {
    Duration::from_secs(60)
}

fn default_max_attempts() -> u32 {
    3
}
fn default_first_byte_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_latency_hl() -> Duration {
    Duration::from_secs(300)
}
fn default_outcome_hl() -> Duration {
    crate::config::default_outcome_half_life()
}
fn default_quality_hl() -> Duration {
    crate::stats::DEFAULT_QUALITY_HALF_LIFE
}
fn default_quality_prior() -> f64 {
    crate::stats::DEFAULT_QUALITY_PRIOR
}

/// A policy to simulate: every live policy, plus the oracle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimPolicy {
    Thompson,
    Cheapest,
    RoundRobin,
    Random,
    LowestLatency,
    P2cPeakEwma,
    OpenrouterPrice,
    /// Knows every endpoint's true current behaviour (simulation only).
    Oracle,
}

impl SimPolicy {
    pub fn live(self) -> Option<PolicyName> {
        Some(match self {
            SimPolicy::Thompson => PolicyName::Thompson,
            SimPolicy::Cheapest => PolicyName::Cheapest,
            SimPolicy::RoundRobin => PolicyName::RoundRobin,
            SimPolicy::Random => PolicyName::Random,
            SimPolicy::LowestLatency => PolicyName::LowestLatency,
            SimPolicy::P2cPeakEwma => PolicyName::P2cPeakEwma,
            SimPolicy::OpenrouterPrice => PolicyName::OpenrouterPrice,
            SimPolicy::Oracle => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SimPolicy::Thompson => "thompson",
            SimPolicy::Cheapest => "cheapest",
            SimPolicy::RoundRobin => "round-robin",
            SimPolicy::Random => "random",
            SimPolicy::LowestLatency => "lowest-latency",
            SimPolicy::P2cPeakEwma => "p2c-peak-ewma",
            SimPolicy::OpenrouterPrice => "openrouter-price",
            SimPolicy::Oracle => "oracle",
        }
    }

    pub fn parse(name: &str) -> Option<SimPolicy> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

/// A log-normal, by its median and the spread of its logarithm.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogNormal {
    pub median: f64,
    #[serde(default)]
    pub sigma: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Poisson arrivals per second.
    pub rate_rps: f64,
    #[serde(default = "default_model")]
    pub model: String,
    pub prompt_tokens: LogNormal,
    pub output_tokens: LogNormal,
    /// Requests stream (TTFT is then the default latency metric).
    #[serde(default = "default_true")]
    pub stream: bool,
    /// The hints every request carries, as a client would send them (see [`Hints`])...
    pub route: Option<serde_json::Value>,
    pub provider: Option<serde_json::Value>,
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// ...or a weighted mix of request shapes.
    #[serde(default)]
    pub mix: Vec<WeightedHint>,
    /// Share of answered requests whose client scores them (`POST /v1/feedback`): good with
    /// the answering endpoint's true quality as probability.
    #[serde(default)]
    pub feedback_rate: f64,
    /// Conversations: requests belong to sessions whose prompts grow turn by turn.
    pub sessions: Option<Sessions>,
}

/// `[workload.sessions]`: `concurrent` conversations at a time, each `turns` long; request
/// `i` is a turn of conversation `i mod concurrent` (a new one every `turns` turns), and a
/// turn's prompt is the conversation so far (the sizes drawn for its turns, added up). The
/// router keys affinity on the conversation (as a `prompt_cache_key`) unless `affinity` is
/// false; an endpoint that served a conversation's previous turn reads that turn's prompt
/// from its cache, at its `cached_input_per_mtok`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sessions {
    pub concurrent: u32,
    pub turns: u32,
    #[serde(default = "default_true")]
    pub affinity: bool,
}

impl Workload {
    /// The single request shape (when there is no `mix`).
    pub fn hints(&self) -> Hints {
        Hints {
            model: None,
            route: self.route.clone(),
            provider: self.provider.clone(),
            models: self.models.clone(),
            headers: self.headers.clone(),
            needs: crate::pricing::Capabilities::NONE,
        }
    }
}

fn default_model() -> String {
    "auto".into()
}
fn default_true() -> bool {
    true
}

/// What a simulated request asks for, in the shapes a client sends: the `route` object,
/// OpenRouter's `provider` object and `models` list, and `x-route-*` headers. They go through
/// the router's own parser, so every hint the gateway takes can be simulated.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// Overrides the workload's `model` (in a mix entry).
    pub model: Option<String>,
    pub route: Option<serde_json::Value>,
    pub provider: Option<serde_json::Value>,
    pub models: Option<Vec<String>>,
    /// Header name → value, e.g. `{ "x-route-max-cost-usd" = "0.002" }`.
    pub headers: BTreeMap<String, String>,
    /// What the requests need of a model (`["tools", "vision"]`): written into the body the
    /// way a client asks for it, and read back by the router.
    pub needs: crate::pricing::Capabilities,
}

impl Hints {
    fn is_empty(&self) -> bool {
        self.model.is_none()
            && self.route.is_none()
            && self.provider.is_none()
            && self.models.is_none()
            && self.headers.is_empty()
            && self.needs.is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedHint {
    pub weight: f64,
    pub model: Option<String>,
    pub route: Option<serde_json::Value>,
    pub provider: Option<serde_json::Value>,
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub needs: crate::pricing::Capabilities,
}

impl WeightedHint {
    pub fn hints(&self) -> Hints {
        Hints {
            model: self.model.clone(),
            route: self.route.clone(),
            provider: self.provider.clone(),
            models: self.models.clone(),
            headers: self.headers.clone(),
            needs: self.needs,
        }
    }
}

/// A simulated endpoint's true behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimEndpoint {
    /// `provider/model`.
    pub id: String,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// USD per million prompt tokens read from its prompt cache (none: no cache).
    pub cached_input_per_mtok: Option<f64>,
    /// What its sheet says it supports (none: unknown, so capable).
    pub supports: Option<crate::pricing::Capabilities>,
    /// The quality its sheet declares (what routing starts from)...
    pub quality: Option<f64>,
    /// ...and the quality its answers really have (default: as declared): the share of
    /// feedback that is good, what the oracle and the report's quality count.
    pub true_quality: Option<f64>,
    pub ttft: TtftSpec,
    /// Prompt tokens prefilled per second: a request's first token comes this much later for
    /// its prompt (`TTFT = the drawn base + prompt tokens / rate`); none: prompt size does
    /// not matter.
    pub prefill_tokens_per_s: Option<f64>,
    pub tokens_per_s: f64,
    #[serde(default)]
    pub error_rate: f64,
    /// How long a failed attempt takes to fail, ms (a gateway timing out upstream answers
    /// late); default half the first-token time drawn for it.
    pub error_after_ms: Option<f64>,
    /// The HTTP status of its errors (default 500): 429 and 503 may carry `retry_after`; a
    /// 4xx such as 400 is the request's own fault and ends the attempts, as live.
    pub error_status: Option<u16>,
    /// The `Retry-After` its 429s and 503s carry (capacity 429s included).
    #[serde(default, with = "humantime_serde")]
    pub retry_after: Option<Duration>,
    /// Concurrent requests it serves at full speed; beyond, latency grows and 429s appear.
    pub capacity: Option<u32>,
    /// Not in the catalog before this time (a new entrant).
    #[serde(default, with = "humantime_serde")]
    pub appears_at: Option<Duration>,
}

impl SimEndpoint {
    /// The quality its answers really have: `true_quality`, else the declared one.
    pub fn real_quality(&self) -> Option<f64> {
        self.true_quality.or(self.quality)
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtftSpec {
    pub median_ms: f64,
    #[serde(default)]
    pub sigma: f64,
    /// A heavy tail: this share of first tokens stalls, for about `stall_ms` more (a
    /// log-normal with spread 0.5 around it): a queue, a cold replica, a slow shard.
    #[serde(default)]
    pub stall_rate: f64,
    #[serde(default)]
    pub stall_ms: f64,
}

/// A change to one endpoint's behaviour for a while.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// Back to the previous behaviour then; forever when absent.
    #[serde(default, with = "humantime_serde")]
    pub until: Option<Duration>,
    pub endpoint: String,
    pub set: Changes,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    pub error_rate: Option<f64>,
    pub ttft_median_ms: Option<f64>,
    pub ttft_sigma: Option<f64>,
    pub tokens_per_s: Option<f64>,
    pub input_per_mtok: Option<f64>,
    pub output_per_mtok: Option<f64>,
    pub capacity: Option<u32>,
    pub error_status: Option<u16>,
    pub error_after_ms: Option<f64>,
    pub prefill_tokens_per_s: Option<f64>,
}

/// Why a scenario was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Not TOML, or a field of the wrong type or unknown (toml's message names it).
    #[error("{0}")]
    Format(#[from] toml::de::Error),
    /// A value out of range, or a hint the router's parser refuses.
    #[error("`{field}`: {message}")]
    Field { field: String, message: String },
    /// Any of the above, in the file at `path`.
    #[error("{path}: {source}")]
    In {
        path: String,
        source: Box<ScenarioError>,
    },
}

impl ScenarioError {
    /// The field at fault, when one is known.
    pub fn field(&self) -> Option<&str> {
        match self {
            ScenarioError::Field { field, .. } => Some(field),
            ScenarioError::In { source, .. } => source.field(),
            _ => None,
        }
    }
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let at = || path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Read { path: at(), source })?;
        Scenario::parse(&text).map_err(|e| ScenarioError::In {
            path: at(),
            source: Box::new(e),
        })
    }

    /// A scenario built as JSON (a replayed log's), validated as a file would be.
    pub fn from_json(value: serde_json::Value) -> Result<Scenario, ScenarioError> {
        let mut s: Scenario = serde_json::from_value(value).map_err(|e| ScenarioError::Field {
            field: "scenario".into(),
            message: e.to_string(),
        })?;
        s.validate()?;
        s.hints = super::workload::parse_hints(&s)?;
        Ok(s)
    }

    /// Parses and validates; the error names the field.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let mut s: Scenario = toml::from_str(text)?;
        s.validate()?;
        s.hints = super::workload::parse_hints(&s)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests;
mod validate;
