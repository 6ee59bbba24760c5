//! Service configuration: the shape of `switchyard.toml`, its defaults and its validation.
//!
//! The file is parsed once at start with unknown fields rejected (a typo is an error, not a
//! silently ignored setting) and validated before anything listens. Every error names the
//! file and the field. Relative paths (`state_dir`, `pricing_dir`) are resolved against the
//! directory of the config file, so the router behaves the same from any working directory.
//! Durations are human strings (`"250ms"`, `"30s"`); sizes are bytes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Everything `switchyard serve` needs besides the price sheets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    #[serde(default)]
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub routing: RoutingConfig,
    #[serde(default)]
    pub stats: StatsConfig,
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// Named lists of endpoint ids (`provider/model`) or model names.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// `[[clients]]`: the keys callers must present; none configured = no authentication.
    #[serde(default)]
    pub clients: Vec<crate::auth::ClientConfig>,
    /// `[fleet]`: replicas sharing through Redis; absent = this router alone.
    pub fleet: Option<crate::fleet::FleetConfig>,
    /// `[feedback]`: client scores of answers and the quality they teach.
    #[serde(default)]
    pub feedback: crate::feedback::FeedbackConfig,
    /// `[affinity]`: how long a conversation's endpoint is remembered.
    #[serde(default)]
    pub affinity: crate::affinity::AffinityConfig,
    /// `[hedge]`: hedged attempts, off unless enabled here, per group or per request.
    #[serde(default)]
    pub hedge: crate::plan::hedge::HedgeConfig,
    /// `[log]`: the request log and its retention.
    #[serde(default)]
    pub log: crate::log::LogConfig,
}

/// `[server]`: where the router listens and keeps its files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Serving threads, each with its own listener on `listen` and its own runtime;
    /// 0 (the default) is one per core the process may use.
    #[serde(default)]
    pub threads: usize,
    /// Directory of the router's embedded store.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Directory holding one `<provider>.toml` price sheet per provider.
    #[serde(default = "default_pricing_dir")]
    pub pricing_dir: PathBuf,
    /// Largest accepted request body, in bytes; larger bodies get a 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// How long in-flight requests may run on after a shutdown signal.
    #[serde(default = "default_shutdown_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Environment variable holding the admin token for `/admin/*`; while it is unset,
    /// admin routes answer 401.
    #[serde(default = "default_admin_token_env")]
    pub admin_token_env: String,
    /// Reload the price sheets when a file in `pricing_dir` changes.
    #[serde(default = "default_true")]
    pub watch_pricing: bool,
    /// Directory holding one `<name>.toml` per preset (`"model": "@preset/NAME"`); a missing
    /// directory holds none. Watched for changes when `watch_pricing` is on.
    #[serde(default = "default_routing_dir")]
    pub routing_dir: PathBuf,
    /// Time a client has to send a request's headers; slower connections are closed.
    #[serde(default = "default_header_read_timeout", with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body once its headers arrived (408 after).
    #[serde(default = "default_body_read_timeout", with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Chat completions served at once; beyond it requests are shed with a 503 and
    /// `Retry-After` rather than queued behind each other.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// Serve on a non-loopback address although no `[[clients]]` key is configured. Without
    /// it such a config is refused: an open router spends its owner's provider credit.
    #[serde(default)]
    pub allow_unauthenticated: bool,
}

fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_body_read_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_concurrent_requests() -> usize {
    1024
}

fn default_admin_token_env() -> String {
    "SWITCHYARD_ADMIN_TOKEN".into()
}
fn default_true() -> bool {
    true
}

/// `[upstream]`: how the router talks to providers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Time allowed to open a TCP (and TLS) connection to a provider.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time allowed from sending an attempt to its first data event (streams) or to the end
    /// of its whole answer (non-streaming: most providers send nothing until the answer is
    /// ready, so this bounds the generation time). Past it the next candidate is tried.
    #[serde(default = "default_first_byte_timeout", with = "humantime_serde")]
    pub first_byte_timeout: Duration,
    /// Longest silence allowed between two chunks of a stream once it has started.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Deadline for the whole request, all attempts included.
    #[serde(default = "default_total_timeout", with = "humantime_serde")]
    pub total_timeout: Duration,
    /// Idle keep-alive connections kept per provider host.
    #[serde(default = "default_pool_max_idle_per_host")]
    pub pool_max_idle_per_host: usize,
}

/// `[routing]`: how candidates are ranked and how often the router tries again.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// The policy that ranks candidates.
    #[serde(default)]
    pub policy: PolicyName,
    /// A different policy for requests naming a group: group name → policy.
    #[serde(default)]
    pub group_policies: BTreeMap<String, PolicyName>,
    /// Upstream attempts per request, the first included.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Longest `Retry-After` from a provider's 429 or 503 that is honoured: the endpoint
    /// rests that long (at most this) before it is tried again.
    #[serde(default = "default_max_retry_after", with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// Seeds the router's random draws (Thompson samples, tie breaks, request ids), so a
    /// test or a benchmark can repeat a run; unset: a fresh seed from the OS at each start.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Whether a model whose sheet lists no `supports` counts as able to do what a request
    /// needs (`capable`, the default) or not (`incapable`).
    #[serde(default)]
    pub unknown_capabilities: UnknownCapabilities,
}

/// `[routing] unknown_capabilities`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownCapabilities {
    /// A sheet without `supports` serves any request (as before sheets listed any).
    #[default]
    Capable,
    /// A sheet without `supports` serves only requests that need nothing.
    Incapable,
}

fn default_max_retry_after() -> Duration {
    Duration::from_secs(60)
}

/// `[stats]`: how fast learned statistics forget, how often they are saved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsConfig {
    /// Half-life of the latency and decode-speed fits: long enough to smooth noise, short
    /// enough to follow a provider that slows down.
    #[serde(default = "default_latency_half_life", with = "humantime_serde")]
    pub latency_half_life: Duration,
    /// Half-life of the success and failure counts. Change detection notices an abrupt
    /// change within seconds whatever this is; this sets how soon an endpoint left for a
    /// bad regime is drawn again and its recovery seen (30 s: back within about 10-20 s
    /// of a brownout's end in the shipped scenario, against 15-30 s with 1 min).
    #[serde(default = "default_outcome_half_life", with = "humantime_serde")]
    pub outcome_half_life: Duration,
    /// How often the learned state is saved to the store; a killed router loses at most
    /// this much.
    #[serde(default = "default_flush_interval", with = "humantime_serde")]
    pub flush_interval: Duration,
    /// How often the dashboard's history (`/dashboard`) takes a point.
    #[serde(default = "default_sample_interval", with = "humantime_serde")]
    pub sample_interval: Duration,
}

fn default_sample_interval() -> Duration {
    Duration::from_secs(2)
}

fn default_latency_half_life() -> Duration {
    Duration::from_secs(300)
}
pub(crate) fn default_outcome_half_life() -> Duration {
    Duration::from_secs(30)
}
fn default_flush_interval() -> Duration {
    Duration::from_secs(1)
}

impl Default for StatsConfig {
    fn default() -> Self {
        Self {
            latency_half_life: default_latency_half_life(),
            outcome_half_life: default_outcome_half_life(),
            flush_interval: default_flush_interval(),
            sample_interval: default_sample_interval(),
        }
    }
}

/// The policies that can be named in `[routing] policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyName {
    /// Constrained Thompson sampling with discounting (learns from live statistics).
    #[default]
    Thompson,
    /// Lowest estimated cost first (static prices).
    Cheapest,
    RoundRobin,
    Random,
    /// LiteLLM's: lowest mean of the last ten latencies.
    LowestLatency,
    /// Power of two choices over peak-EWMA latency.
    P2cPeakEwma,
    /// OpenRouter's default: weights 1/price², recently failed providers last.
    OpenrouterPrice,
}

/// `[[providers]]`: one OpenAI-compatible API.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Short name, the first half of every endpoint id (`groq` in `groq/llama-3.3-70b`).
    pub name: String,
    /// Base URL of the OpenAI-compatible API, e.g. `https://api.groq.com/openai/v1`.
    pub base_url: String,
    /// Environment variable holding the API key; omit for local providers without auth.
    pub api_key_env: Option<String>,
    /// The API it speaks: `openai` (chat completions, the default) or `anthropic` (the
    /// Messages API; `base_url` includes the version path, e.g. `https://api.anthropic.com/v1`).
    #[serde(default)]
    pub protocol: crate::dialect::Protocol,
    /// `anthropic-version` sent to an `anthropic` provider (default `2023-06-01`).
    pub anthropic_version: Option<String>,
    /// Whether it serves OpenAI's Responses API (`{base_url}/responses`).
    #[serde(default)]
    pub responses: bool,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Holds no secret (only the variable's name), but keep the shape explicit.
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key_env", &self.api_key_env)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("switchyard-data")
}
fn default_routing_dir() -> PathBuf {
    PathBuf::from("routing")
}

fn default_pricing_dir() -> PathBuf {
    PathBuf::from("pricing")
}
/// 8 MiB: long multi-turn prompts with inline images fit; a runaway upload does not.
fn default_max_body_bytes() -> usize {
    8 * 1024 * 1024
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(10)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_first_byte_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_total_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_pool_max_idle_per_host() -> usize {
    64
}
fn default_max_attempts() -> u32 {
    3
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            connect_timeout: default_connect_timeout(),
            first_byte_timeout: default_first_byte_timeout(),
            idle_timeout: default_idle_timeout(),
            total_timeout: default_total_timeout(),
            pool_max_idle_per_host: default_pool_max_idle_per_host(),
        }
    }
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            policy: PolicyName::default(),
            group_policies: BTreeMap::new(),
            max_attempts: default_max_attempts(),
            max_retry_after: default_max_retry_after(),
            seed: None,
            unknown_capabilities: UnknownCapabilities::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            threads: 0,
            state_dir: default_state_dir(),
            pricing_dir: default_pricing_dir(),
            routing_dir: default_routing_dir(),
            max_body_bytes: default_max_body_bytes(),
            shutdown_grace: default_shutdown_grace(),
            admin_token_env: default_admin_token_env(),
            watch_pricing: true,
            header_read_timeout: default_header_read_timeout(),
            body_read_timeout: default_body_read_timeout(),
            max_concurrent_requests: default_max_concurrent_requests(),
            allow_unauthenticated: false,
        }
    }
}

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: `{field}`: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

/// Upper bound on `max_attempts`: beyond this a request is retrying, not routing.
const MAX_ATTEMPTS_LIMIT: u32 = 10;

impl Config {
    /// Reads, parses and validates a config file; relative paths become relative to it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::parse(&text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.server.state_dir = base.join(&config.server.state_dir);
        config.server.pricing_dir = base.join(&config.server.pricing_dir);
        config.server.routing_dir = base.join(&config.server.routing_dir);
        Ok(config)
    }

    /// Parses and validates config text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks what serde cannot: ranges, uniqueness, URL shapes.
    pub(crate) fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: String, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            field,
            message,
        };
        if self.server.max_body_bytes < 1024 {
            return Err(invalid(
                "server.max_body_bytes".into(),
                "must be at least 1024".into(),
            ));
        }
        for (name, d) in [
            ("header_read_timeout", self.server.header_read_timeout),
            ("body_read_timeout", self.server.body_read_timeout),
        ] {
            if d.is_zero() {
                return Err(invalid(
                    format!("server.{name}"),
                    "must be above zero".into(),
                ));
            }
        }
        if self.server.max_concurrent_requests == 0 {
            return Err(invalid(
                "server.max_concurrent_requests".into(),
                "must be at least 1".into(),
            ));
        }
        crate::auth::validate_clients(&self.clients).map_err(|e| invalid(e.field, e.message))?;
        if self.clients.is_empty()
            && !self.server.listen.ip().is_loopback()
            && !self.server.allow_unauthenticated
        {
            return Err(invalid(
                "server.listen".into(),
                format!(
                    "{} is reachable from other machines but no [[clients]] key is configured; \
                     add client keys, listen on a loopback address, or set \
                     server.allow_unauthenticated = true",
                    self.server.listen
                ),
            ));
        }
        let up = &self.upstream;
        for (name, d) in [
            ("connect_timeout", up.connect_timeout),
            ("first_byte_timeout", up.first_byte_timeout),
            ("idle_timeout", up.idle_timeout),
            ("total_timeout", up.total_timeout),
        ] {
            if d.is_zero() {
                return Err(invalid(
                    format!("upstream.{name}"),
                    "must be above zero".into(),
                ));
            }
        }
        for (name, d) in [
            ("latency_half_life", self.stats.latency_half_life),
            ("outcome_half_life", self.stats.outcome_half_life),
            ("flush_interval", self.stats.flush_interval),
            ("sample_interval", self.stats.sample_interval),
        ] {
            if d.is_zero() {
                return Err(invalid(
                    format!("stats.{name}"),
                    "must be above zero".into(),
                ));
            }
        }
        self.feedback
            .validate()
            .map_err(|(field, m)| invalid(field, m))?;
        self.affinity
            .validate()
            .map_err(|(field, m)| invalid(field, m))?;
        self.hedge
            .validate()
            .map_err(|(field, m)| invalid(field, m))?;
        self.log
            .validate()
            .map_err(|(field, m)| invalid(field, m))?;
        if let Some(fleet) = &self.fleet {
            crate::fleet::config::validate(fleet).map_err(|(field, m)| invalid(field, m))?;
        }
        let attempts = self.routing.max_attempts;
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&attempts) {
            return Err(invalid(
                "routing.max_attempts".into(),
                format!("must be between 1 and {MAX_ATTEMPTS_LIMIT}, got {attempts}"),
            ));
        }
        if self.providers.is_empty() {
            return Err(invalid(
                "providers".into(),
                "at least one [[providers]] entry is needed".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            let field = |f: &str| format!("providers[{i}].{f}");
            if !is_valid_name(&p.name) {
                return Err(invalid(
                    field("name"),
                    format!(
                        "`{}` must be non-empty and use only a-z, 0-9, '-', '_' or '.'",
                        p.name
                    ),
                ));
            }
            if !seen.insert(p.name.as_str()) {
                return Err(invalid(
                    field("name"),
                    format!("provider `{}` is listed twice", p.name),
                ));
            }
            let url = reqwest::Url::parse(&p.base_url)
                .map_err(|e| invalid(field("base_url"), format!("`{}`: {e}", p.base_url)))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid(
                    field("base_url"),
                    format!("`{}` must be an http or https URL", p.base_url),
                ));
            }
            if let Some(var) = &p.api_key_env {
                if var.is_empty() {
                    return Err(invalid(field("api_key_env"), "must not be empty".into()));
                }
            }
            if let Some(v) = &p.anthropic_version {
                if p.protocol != crate::dialect::Protocol::Anthropic {
                    return Err(invalid(
                        field("anthropic_version"),
                        "applies only to protocol = \"anthropic\"".into(),
                    ));
                }
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(invalid(
                        field("anthropic_version"),
                        "must be a version like 2023-06-01".into(),
                    ));
                }
            }
        }
        for (group, members) in &self.groups {
            if group.contains('/') || group == "auto" || group.is_empty() {
                return Err(invalid(
                    format!("groups.{group}"),
                    "a group name must be non-empty, not `auto` and contain no '/'".into(),
                ));
            }
            if members.is_empty() {
                return Err(invalid(
                    format!("groups.{group}"),
                    "lists no members".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Provider names become the first segment of endpoint ids and of price sheet file names.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests;
