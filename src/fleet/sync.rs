//! The one background task per replica that talks to Redis.
//!
//! Every `sync_interval` (with ±10% jitter, so replicas do not beat in step) it publishes
//! the replica's own learned state and reads its peers', reconciles the client limits and
//! exchanges price sheets, in a few pipelined round trips bounded by a timeout. When a
//! round fails (Redis down, slow or stopped), the connection is dropped, the failure is
//! counted and the next try waits longer (doubling up to 8 intervals); requests never wait
//! for any of it.
//!
//! Keys, under `key_prefix`: `{p}:stats:{replica}` (JSON snapshot, TTL 10 intervals, at
//! least 10 s), `{p}:replicas` (set of replica ids; an id whose snapshot expired is removed),
//! `{p}:rate:{client}` (the fleet's GCRA time, µs on Redis's clock),
//! `{p}:spend:{client}:{window_start}` (hash replica → cumulative USD, exact decimal
//! string), `{p}:prices` (hash provider → sheet text) and `{p}:prices:version`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use rust_decimal::Decimal;

use super::merge::{self, Instant, ReplicaSnapshot};
use super::{FleetConfig, Status};
use crate::auth::Clients;
use crate::stats::Stats;

/// Sheet texts by provider.
pub type Texts = BTreeMap<String, String>;

/// What the sync task needs of the router it runs in.
pub trait Host: Send + Sync + 'static {
    /// Now, in statistics time and wall-clock time.
    fn instant(&self) -> Instant;
    fn stats(&self) -> &Arc<Stats>;
    fn clients(&self) -> &Clients;
    /// The sheets in force, by provider.
    fn price_texts(&self) -> Texts;
    /// Installs `texts` as the sheets, all or nothing, as a local update would (blocking:
    /// it reads and writes files).
    fn apply_prices(&self, texts: Texts) -> Result<u64, String>;
}

/// A replica's fleet link.
pub struct Fleet {
    pub config: FleetConfig,
    pub status: Arc<Status>,
    /// The Redis URL, resolved (it may hold a password: never logged).
    url: String,
    /// Set when this replica accepted a price update of its own, to publish at the next sync.
    prices_changed: AtomicBool,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("config", &self.config)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Why the fleet link cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("fleet.redis_url_env: environment variable `{0}` is not set")]
    MissingUrl(String),
    #[error("fleet.redis_url_env: `{0}` does not hold a redis:// URL")]
    BadUrl(String),
}

impl Fleet {
    pub fn new(
        config: &FleetConfig,
        replica: String,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Fleet, FleetError> {
        let url = match (&config.redis_url, &config.redis_url_env) {
            (Some(url), _) => url.clone(),
            (None, Some(var)) => {
                let url = env(var).ok_or_else(|| FleetError::MissingUrl(var.clone()))?;
                if redis::parse_redis_url(url.trim()).is_none() {
                    return Err(FleetError::BadUrl(var.clone()));
                }
                url.trim().to_owned()
            }
            (None, None) => unreachable!("validated: one of redis_url and redis_url_env"),
        };
        Ok(Fleet {
            status: Arc::new(Status::new(replica, config.on_redis_down)),
            config: config.clone(),
            url,
            prices_changed: AtomicBool::new(false),
        })
    }

    /// A local price update was accepted: publish it at the next sync.
    pub fn prices_changed(&self) {
        self.prices_changed.store(true, Ordering::Relaxed);
    }

    fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.config.key_prefix)
    }

    fn ttl_ms(&self) -> u64 {
        (self.config.sync_interval.as_millis() as u64 * 10).max(10_000)
    }

    /// Syncs until the task is aborted.
    pub async fn run(self: Arc<Self>, host: Arc<dyn Host>) {
        let interval = self.config.sync_interval;
        let client = match redis::Client::open(self.url.as_str()) {
            Ok(c) => c,
            Err(e) => {
                // The message names the problem, not the URL.
                return tracing::error!(kind = ?e.kind(), "the fleet's Redis URL cannot be used; running alone");
            }
        };
        let limit = interval.max(Duration::from_millis(200));
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(limit))
            .set_response_timeout(Some(limit))
            .set_number_of_retries(0);
        let mut conn: Option<ConnectionManager> = None;
        let mut round = Round::default();
        let mut failures = 0u32;
        loop {
            let wait = interval * (1u32 << failures.min(3));
            tokio::time::sleep(jittered(wait)).await;
            let result = tokio::time::timeout(limit * 4, async {
                if conn.is_none() {
                    let c = ConnectionManager::new_with_config(client.clone(), config.clone());
                    conn = Some(c.await?);
                }
                let c = conn.as_mut().expect("connected above");
                round.sync(c, &self, &host).await
            })
            .await;
            match result {
                Ok(Ok(replicas)) => {
                    if failures > 0 {
                        tracing::info!(replicas, "fleet: Redis reachable again");
                    }
                    failures = 0;
                    self.status.synced(replicas, host.instant().unix_ms);
                }
                Ok(Err(e)) => self.failed(&host, &mut conn, &mut failures, &e.to_string()),
                Err(_) => self.failed(&host, &mut conn, &mut failures, "timed out"),
            }
        }
    }

    fn failed(
        &self,
        host: &Arc<dyn Host>,
        conn: &mut Option<ConnectionManager>,
        failures: &mut u32,
        why: &str,
    ) {
        if *failures == 0 {
            tracing::warn!(
                error = why,
                "fleet: Redis sync failed; serving with local state"
            );
        }
        *failures += 1;
        // A hung connection is not reused; the next round connects anew.
        *conn = None;
        self.status.failed();
        for c in host.clients().all() {
            if let Some(rate) = c.fleet().and_then(|f| f.rate.as_ref()) {
                super::limits::lock(rate).forget_pending();
            }
        }
    }
}

/// `d` ± 10%.
fn jittered(d: Duration) -> Duration {
    d.mul_f64(0.9 + rand::random::<f64>() * 0.2)
}

/// What the sync remembers between rounds.
#[derive(Debug, Default)]
struct Round {
    /// The fleet's price version last seen or published, and its sheets.
    prices: Option<(u64, Texts)>,
}

impl Round {
    /// One round; answers how many replicas the fleet has (this one included).
    async fn sync(
        &mut self,
        conn: &mut ConnectionManager,
        fleet: &Fleet,
        host: &Arc<dyn Host>,
    ) -> redis::RedisResult<u64> {
        let replicas = self.learned(conn, fleet, host).await?;
        self.rates(conn, fleet, host).await?;
        self.spend(conn, fleet, host).await?;
        self.prices(conn, fleet, host).await?;
        Ok(replicas)
    }

    /// Publishes this replica's own learned state and takes in its peers'.
    async fn learned(
        &mut self,
        conn: &mut ConnectionManager,
        fleet: &Fleet,
        host: &Arc<dyn Host>,
    ) -> redis::RedisResult<u64> {
        let me = &fleet.status.replica;
        let stats = host.stats();
        let at = host.instant();
        let own = stats.own_figures(at.now_ns, crate::select::thompson::rest_end_ns);
        let snapshot = ReplicaSnapshot::of(me, own, at);
        let body = serde_json::to_vec(&snapshot).expect("a snapshot serialises");
        let members = fleet.key("replicas");
        let (ids,): (Vec<String>,) = redis::pipe()
            .cmd("SET")
            .arg(fleet.key(&format!("stats:{me}")))
            .arg(body)
            .arg("PX")
            .arg(fleet.ttl_ms())
            .ignore()
            .cmd("SADD")
            .arg(&members)
            .arg(me)
            .ignore()
            .cmd("SMEMBERS")
            .arg(&members)
            .query_async(conn)
            .await?;
        let peers: Vec<&String> = ids.iter().filter(|id| *id != me).collect();
        let mut snapshots = Vec::with_capacity(peers.len());
        if !peers.is_empty() {
            let keys: Vec<String> = peers
                .iter()
                .map(|id| fleet.key(&format!("stats:{id}")))
                .collect();
            let bodies: Vec<Option<Vec<u8>>> =
                redis::cmd("MGET").arg(&keys).query_async(conn).await?;
            let mut gone = Vec::new();
            for (id, body) in peers.iter().zip(bodies) {
                match body.map(|b| serde_json::from_slice::<ReplicaSnapshot>(&b)) {
                    Some(Ok(s)) => snapshots.push(s),
                    Some(Err(e)) => {
                        tracing::warn!(replica = %id, error = %e, "fleet: a peer's snapshot is unreadable")
                    }
                    None => gone.push(*id),
                }
            }
            if !gone.is_empty() {
                redis::cmd("SREM")
                    .arg(&members)
                    .arg(&gone)
                    .exec_async(conn)
                    .await?;
            }
        }
        let merged = merge::merge(&snapshots, host.instant(), &stats.half_lives());
        stats.set_peers(&merged);
        Ok(1 + snapshots.len() as u64)
    }

    /// Sends what each rate-limited key admitted since the last round to the fleet's GCRA
    /// and takes the fleet's answer.
    async fn rates(
        &mut self,
        conn: &mut ConnectionManager,
        fleet: &Fleet,
        host: &Arc<dyn Host>,
    ) -> redis::RedisResult<()> {
        let clients = host.clients();
        let limited: Vec<_> = clients
            .all()
            .iter()
            .filter_map(|c| Some((c, c.fleet()?.rate.as_ref()?)))
            .collect();
        if limited.is_empty() {
            return Ok(());
        }
        let script = redis::Script::new(super::limits::GCRA_SCRIPT);
        let mut call = script.prepare_invoke();
        let mut sent = Vec::with_capacity(limited.len());
        for (c, rate) in &limited {
            let mut r = super::limits::lock(rate);
            let pending = r.take_pending();
            call.key(fleet.key(&format!("rate:{}", c.name)))
                .arg(r.interval_us)
                .arg(pending);
            sent.push(pending);
        }
        call.arg(fleet.ttl_ms());
        let ahead: Vec<String> = match call.invoke_async(conn).await {
            Ok(a) => a,
            Err(e) => {
                // Not counted by the fleet: count it again next round.
                for ((_, rate), n) in limited.iter().zip(sent) {
                    let mut r = super::limits::lock(rate);
                    let pending = r.take_pending();
                    r.restore_pending(pending + n);
                }
                return Err(e);
            }
        };
        for ((c, rate), ahead) in limited.iter().zip(ahead) {
            let now = c.fleet().expect("limited keys are in the fleet").now_us();
            let ahead: u64 = ahead.parse().unwrap_or(0);
            super::limits::lock(rate).reconcile(ahead, now);
        }
        Ok(())
    }

    /// Writes each spend-limited key's own spend in the window and reads the peers'.
    async fn spend(
        &mut self,
        conn: &mut ConnectionManager,
        fleet: &Fleet,
        host: &Arc<dyn Host>,
    ) -> redis::RedisResult<()> {
        let me = &fleet.status.replica;
        let clients = host.clients();
        let limited: Vec<_> = clients
            .all()
            .iter()
            .filter(|c| c.has_spend_limit() && c.fleet().is_some())
            .collect();
        if limited.is_empty() {
            return Ok(());
        }
        let now_s = host.instant().unix_ms / 1000;
        let mut pipe = redis::pipe();
        let mut own = Vec::with_capacity(limited.len());
        for c in &limited {
            let start = now_s - now_s % c.window_s();
            let s = c.spend();
            let spent = if s.window_start == start {
                s.spent_usd
            } else {
                Decimal::ZERO
            };
            let key = fleet.key(&format!("spend:{}:{start}", c.name));
            pipe.cmd("HSET")
                .arg(&key)
                .arg(me)
                .arg(spent.to_string())
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg((c.window_s() + 3_600) * 1_000)
                .ignore()
                .cmd("HGETALL")
                .arg(&key);
            own.push((start, spent));
        }
        let all: Vec<HashMap<String, String>> = pipe.query_async(conn).await?;
        let replicas = fleet.status.replicas();
        for ((c, (start, spent)), by_replica) in limited.iter().zip(own).zip(all) {
            let peers: Decimal = by_replica
                .iter()
                .filter(|(id, _)| *id != me)
                .filter_map(|(_, v)| v.parse::<Decimal>().ok())
                .sum();
            let f = c.fleet().expect("filtered above");
            *super::limits::lock(&f.spend) = super::limits::FleetSpend {
                window_start: start,
                peers_usd: peers,
                own_at_sync: spent,
                replicas,
            };
        }
        Ok(())
    }

    /// Publishes a local price update, or takes in one another replica published.
    async fn prices(
        &mut self,
        conn: &mut ConnectionManager,
        fleet: &Fleet,
        host: &Arc<dyn Host>,
    ) -> redis::RedisResult<()> {
        let version_key = fleet.key("prices:version");
        let sheets_key = fleet.key("prices");
        let version: Option<u64> = redis::cmd("GET")
            .arg(&version_key)
            .query_async(conn)
            .await?;
        let changed_here = fleet.prices_changed.swap(false, Ordering::Relaxed);
        let first = self.prices.is_none();
        if changed_here || (first && version.is_none()) {
            let local = host.price_texts();
            if self.prices.as_ref().map(|(_, t)| t) == Some(&local) {
                return Ok(());
            }
            let mut pipe = redis::pipe();
            pipe.atomic().cmd("DEL").arg(&sheets_key).ignore();
            if !local.is_empty() {
                pipe.cmd("HSET").arg(&sheets_key);
                for (provider, text) in &local {
                    pipe.arg(provider).arg(text);
                }
                pipe.ignore();
            }
            pipe.cmd("INCR").arg(&version_key);
            let published: Result<(u64,), _> = pipe.query_async(conn).await;
            match published {
                Ok((v,)) => {
                    tracing::info!(version = v, "fleet: published this replica's price sheets");
                    self.prices = Some((v, local));
                }
                Err(e) => {
                    fleet.prices_changed();
                    return Err(e);
                }
            }
            return Ok(());
        }
        let Some(version) = version else {
            return Ok(());
        };
        if self.prices.as_ref().is_some_and(|(v, _)| *v == version) {
            return Ok(());
        }
        let texts: Texts = redis::cmd("HGETALL")
            .arg(&sheets_key)
            .query_async(conn)
            .await?;
        self.prices = Some((version, texts.clone()));
        if texts.is_empty() || texts == host.price_texts() {
            return Ok(());
        }
        let host = host.clone();
        match tokio::task::spawn_blocking(move || host.apply_prices(texts)).await {
            Ok(Ok(local)) => {
                tracing::info!(
                    fleet_version = version,
                    version = local,
                    "fleet: took in price sheets from a peer"
                )
            }
            Ok(Err(e)) => tracing::warn!(
                fleet_version = version,
                error = %e,
                "fleet: a peer's price sheets were refused; the current ones keep serving"
            ),
            Err(e) => tracing::error!(error = %e, "fleet: installing price sheets failed"),
        }
        Ok(())
    }
}
