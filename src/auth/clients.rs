//! The configured client keys at run time: lookup by key, rate limits, spend windows.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::{digest, parse_digest, ClientConfig};
use crate::clock::SharedClock;

/// One client key at run time.
pub struct Client {
    pub name: String,
    digest: [u8; 32],
    /// The token bucket and the sustained rate and burst it was built with.
    limiter: Option<(DefaultDirectRateLimiter, u32, u32)>,
    /// In a fleet: the limits as the whole fleet applies them (then the token bucket above
    /// is not used).
    fleet: std::sync::OnceLock<crate::fleet::ClientFleet>,
    spend_limit: Option<Decimal>,
    window_s: u64,
    spend: Mutex<SpendState>,
    requests: AtomicU64,
    refused: AtomicU64,
    /// Spend windows follow calendar time from this clock.
    clock: SharedClock,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Spend in the current window, as saved in the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendState {
    /// Unix seconds at which the window began.
    pub window_start: u64,
    #[serde(with = "rust_decimal::serde::str")]
    pub spent_usd: Decimal,
}

/// Why a client's request is refused before routing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    #[error("rate limit of client `{client}` exceeded: {per_minute} requests per minute")]
    Rate {
        client: String,
        per_minute: u32,
        retry_after: Duration,
    },
    #[error("spend limit of client `{client}` reached: ${spent} of ${limit} in this window")]
    Spend {
        client: String,
        spent: Decimal,
        limit: Decimal,
        retry_after: Duration,
    },
}

impl LimitError {
    pub fn retry_after(&self) -> Duration {
        match self {
            LimitError::Rate { retry_after, .. } | LimitError::Spend { retry_after, .. } => {
                *retry_after
            }
        }
    }
}

/// What `/admin/clients` and the metrics show of a client.
#[derive(Debug, Clone, Serialize)]
pub struct ClientReport {
    pub name: String,
    pub requests: u64,
    pub refused_by_limits: u64,
    pub requests_per_minute: Option<u32>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub spend_limit_usd: Option<Decimal>,
    pub spend_window_s: u64,
    pub window_start_unix_s: u64,
    /// This replica's spend in the window.
    #[serde(with = "rust_decimal::serde::str")]
    pub spent_usd: Decimal,
    /// In a fleet: the other replicas' spend in the window, as of the last sync.
    #[serde(
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub fleet_peers_spent_usd: Option<Decimal>,
}

/// Why a client key cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    #[error("client `{0}`: key_sha256 is not 64 hex digits")]
    BadDigest(String),
    #[error("client `{client}`: environment variable `{var}` is not set")]
    MissingKey { client: String, var: String },
    #[error("client `{0}` has no key (give key_sha256 or key_env)")]
    NoKey(String),
}

impl Client {
    fn build(
        c: &ClientConfig,
        env: &dyn Fn(&str) -> Option<String>,
        clock: SharedClock,
    ) -> Result<Client, ClientError> {
        let digest = match (&c.key_sha256, &c.key_env) {
            (Some(hex), _) => {
                parse_digest(hex).ok_or_else(|| ClientError::BadDigest(c.name.clone()))?
            }
            (None, Some(var)) => {
                let key = env(var).filter(|k| !k.trim().is_empty()).ok_or_else(|| {
                    ClientError::MissingKey {
                        client: c.name.clone(),
                        var: var.clone(),
                    }
                })?;
                digest(key.trim().as_bytes())
            }
            (None, None) => return Err(ClientError::NoKey(c.name.clone())),
        };
        let limiter = c.requests_per_minute.and_then(NonZeroU32::new).map(|rpm| {
            let burst = c.burst.and_then(NonZeroU32::new).unwrap_or(rpm);
            (
                RateLimiter::direct(Quota::per_minute(rpm).allow_burst(burst)),
                rpm.get(),
                burst.get(),
            )
        });
        Ok(Client {
            name: c.name.clone(),
            digest,
            limiter,
            fleet: std::sync::OnceLock::new(),
            spend_limit: c.spend_limit_usd,
            window_s: c.spend_window.as_secs().max(1),
            spend: Mutex::new(SpendState::default()),
            requests: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            clock,
        })
    }

    fn window_start(&self, now_s: u64) -> u64 {
        now_s - now_s % self.window_s
    }

    /// Admits one request, or says which limit refuses it and for how long.
    pub(crate) fn admit(&self) -> Result<(), LimitError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let refused = |e: LimitError| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Err(e)
        };
        if let Some(limit) = self.spend_limit {
            let now = self.clock.unix_s();
            let start = self.window_start(now);
            let spent = {
                let s = self.spend.lock().expect("spend lock");
                if s.window_start == start {
                    s.spent_usd
                } else {
                    Decimal::ZERO
                }
            };
            let (allowance, peers) = match self.fleet.get() {
                Some(f) => f.spend_allowance(start, limit),
                None => (limit, Decimal::ZERO),
            };
            if spent >= allowance {
                return refused(LimitError::Spend {
                    client: self.name.clone(),
                    spent: spent + peers,
                    limit,
                    retry_after: Duration::from_secs(start + self.window_s - now),
                });
            }
        }
        if let Some(rate) = self.fleet.get().and_then(|f| Some((f, f.rate.as_ref()?))) {
            if let Err(wait_us) = rate.0.admit_rate(rate.1) {
                return refused(LimitError::Rate {
                    client: self.name.clone(),
                    per_minute: self.limiter.as_ref().map_or(0, |l| l.1),
                    retry_after: Duration::from_micros(wait_us),
                });
            }
        } else if let Some((limiter, per_minute, _)) = &self.limiter {
            if let Err(not_until) = limiter.check() {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let per_minute = *per_minute;
                return refused(LimitError::Rate {
                    client: self.name.clone(),
                    per_minute,
                    retry_after: wait,
                });
            }
        }
        Ok(())
    }

    /// Adds what an answer cost to the current window.
    pub fn charge(&self, cost: Decimal) {
        let start = self.window_start(self.clock.unix_s());
        let mut s = self.spend.lock().expect("spend lock");
        if s.window_start != start {
            *s = SpendState {
                window_start: start,
                spent_usd: Decimal::ZERO,
            };
        }
        s.spent_usd += cost;
    }

    /// The key's fleet limits, in a fleet.
    pub fn fleet(&self) -> Option<&crate::fleet::ClientFleet> {
        self.fleet.get()
    }

    /// The spend window's length in seconds.
    pub fn window_s(&self) -> u64 {
        self.window_s
    }

    /// Whether the key has a spend limit.
    pub fn has_spend_limit(&self) -> bool {
        self.spend_limit.is_some()
    }

    pub fn spend(&self) -> SpendState {
        *self.spend.lock().expect("spend lock")
    }

    fn restore(&self, saved: SpendState) {
        *self.spend.lock().expect("spend lock") = saved;
    }

    pub fn report(&self) -> ClientReport {
        let s = self.spend();
        let start = self.window_start(self.clock.unix_s());
        let spent = if s.window_start == start {
            s.spent_usd
        } else {
            Decimal::ZERO
        };
        ClientReport {
            name: self.name.clone(),
            requests: self.requests.load(Ordering::Relaxed),
            refused_by_limits: self.refused.load(Ordering::Relaxed),
            requests_per_minute: self.limiter.as_ref().map(|l| l.1),
            fleet_peers_spent_usd: self
                .fleet
                .get()
                .map(|f| f.spend_allowance(start, Decimal::ZERO).1),
            spend_limit_usd: self.spend_limit,
            spend_window_s: self.window_s,
            window_start_unix_s: start,
            spent_usd: spent,
        }
    }
}

/// Every configured client key.
#[derive(Debug, Default)]
pub struct Clients {
    clients: Vec<Arc<Client>>,
}

impl Clients {
    /// Builds the keys from validated config; `env` supplies `key_env` variables.
    pub fn build(
        configs: &[ClientConfig],
        env: &dyn Fn(&str) -> Option<String>,
        clock: SharedClock,
    ) -> Result<Clients, ClientError> {
        let clients = configs
            .iter()
            .map(|c| Client::build(c, env, clock.clone()).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(Clients { clients })
    }

    /// Whether any key is configured (else the router is open).
    pub fn required(&self) -> bool {
        !self.clients.is_empty()
    }

    /// The client whose key this is. Every configured digest is compared, in constant time,
    /// whatever matches.
    pub fn find(&self, key: &[u8]) -> Option<Arc<Client>> {
        let given = digest(key);
        let mut found = 0u32;
        let mut any = subtle::Choice::from(0);
        for (i, c) in self.clients.iter().enumerate() {
            let hit = c.digest.ct_eq(&given);
            found.conditional_assign(&(i as u32), hit);
            any |= hit;
        }
        bool::from(any).then(|| self.clients[found as usize].clone())
    }

    /// Makes every key's limits hold for the fleet whose link is `status`.
    pub fn join_fleet(&self, status: &Arc<crate::fleet::Status>) {
        for c in &self.clients {
            let rate = c.limiter.as_ref().map(|l| (l.1, l.2));
            let _ = c
                .fleet
                .set(crate::fleet::ClientFleet::new(rate, status.clone()));
        }
    }

    pub fn all(&self) -> &[Arc<Client>] {
        &self.clients
    }

    /// The spend windows to save.
    pub(crate) fn spend_states(&self) -> Vec<(String, SpendState)> {
        self.clients
            .iter()
            .map(|c| (c.name.clone(), c.spend()))
            .collect()
    }

    /// Takes over saved spend windows (unknown names are ignored).
    pub(crate) fn restore(&self, saved: &[(String, SpendState)]) {
        for (name, state) in saved {
            if let Some(c) = self.clients.iter().find(|c| &c.name == name) {
                c.restore(*state);
            }
        }
    }
}
