//! `[fleet]`: how a replica finds the shared Redis and what it does when it cannot.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// `[fleet]`: several routers sharing what they learn, their client limits and their prices.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// `redis://host:port/db` (may carry a password: it is never logged or shown).
    pub redis_url: Option<String>,
    /// Or: the environment variable holding the URL.
    pub redis_url_env: Option<String>,
    /// This replica's name in the fleet, stable across restarts. Default: an id kept in
    /// `state_dir/replica-id`, made on first start.
    pub replica_id: Option<String>,
    /// How often the replica publishes its own state and reads its peers'.
    #[serde(default = "default_sync_interval", with = "humantime_serde")]
    pub sync_interval: Duration,
    /// What client limits do while Redis cannot be reached.
    #[serde(default)]
    pub on_redis_down: OnRedisDown,
    /// Prefix of every Redis key, so several fleets can share one Redis.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
}

impl std::fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("FleetConfig")
            .field("redis_url_env", &self.redis_url_env)
            .field("replica_id", &self.replica_id)
            .field("sync_interval", &self.sync_interval)
            .field("on_redis_down", &self.on_redis_down)
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

/// Client limits while the fleet's Redis is down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRedisDown {
    /// Each replica takes its share (limit / the last known number of replicas), so the
    /// fleet stays within the limit.
    #[default]
    Share,
    /// Each replica applies the full limit alone (the fleet may admit N times it).
    Local,
}

fn default_sync_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_key_prefix() -> String {
    "switchyard".to_owned()
}

/// A `[fleet]` setting that cannot be taken: the field and why.
pub(crate) fn validate(f: &FleetConfig) -> Result<(), (String, String)> {
    let err = |field: &str, m: &str| Err((format!("fleet.{field}"), m.to_owned()));
    match (&f.redis_url, &f.redis_url_env) {
        (None, None) => return err("redis_url", "give redis_url or redis_url_env"),
        (Some(_), Some(_)) => return err("redis_url", "give redis_url or redis_url_env, not both"),
        (Some(url), None) if redis::parse_redis_url(url).is_none() => {
            return err("redis_url", "is not a redis:// URL")
        }
        _ => {}
    }
    if f.sync_interval < Duration::from_millis(50) || f.sync_interval > Duration::from_secs(60) {
        return err("sync_interval", "must be between 50ms and 60s");
    }
    if let Some(id) = &f.replica_id {
        if !crate::config::is_valid_name(id) {
            return err(
                "replica_id",
                "must be non-empty and use only a-z, 0-9, '-', '_' or '.'",
            );
        }
    }
    if f.key_prefix.is_empty() || f.key_prefix.contains(char::is_whitespace) {
        return err("key_prefix", "must be non-empty, without spaces");
    }
    Ok(())
}

/// The replica's id: the configured one, else the one kept in `state_dir/replica-id`
/// (created with a random id on first start), else — when the directory cannot be
/// written — one derived from the host name and the directory's path.
pub(crate) fn replica_id(f: &FleetConfig, state_dir: &Path) -> String {
    if let Some(id) = &f.replica_id {
        return id.clone();
    }
    let file = state_dir.join("replica-id");
    if let Ok(id) = std::fs::read_to_string(&file) {
        let id = id.trim();
        if crate::config::is_valid_name(id) {
            return id.to_owned();
        }
    }
    let random = format!("r-{:016x}", rand::random::<u64>());
    let written = std::fs::create_dir_all(state_dir).and_then(|()| std::fs::write(&file, &random));
    if written.is_ok() {
        return random;
    }
    use sha2::Digest;
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let digest = sha2::Sha256::digest(format!("{}|{}", host.trim(), state_dir.display()));
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("r-{hex}")
}
