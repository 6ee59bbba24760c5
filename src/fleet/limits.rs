//! Client limits that hold for the whole fleet, decided locally.
//!
//! **Rate.** Each replica admits against its own GCRA (Generic Cell Rate Algorithm) state: a
//! request is admitted while the theoretical arrival time `tat` is at most `tolerance` ahead
//! of now, and moves `tat` one emission interval on. At each sync the replica sends how many
//! requests it admitted since the last one to one atomic script on Redis, which advances the
//! fleet's `tat` on Redis's clock and answers how far ahead of now it is; the replica takes
//! the later of its own `tat` and the fleet's. So what the other replicas admitted is seen
//! within one sync interval: the fleet admits at most the limit plus what the *other*
//! replicas admit in one sync interval (at most `(N - 1) × burst`). While Redis is down,
//! `on_redis_down = "share"` stretches the interval by the last known number of replicas
//! (each takes its share); `"local"` applies the full limit per replica.
//!
//! **Spend.** Each replica writes its own cumulative spend of the window (an exact decimal)
//! into a hash per window; the fleet's spend is the hash's sum. A request is refused once
//! its own spend plus the peers' (as of the last sync) reaches the limit. While Redis is
//! down, `"share"` lets each replica spend its share of what was left at the last sync.
//!
//! Pure: times are passed in, Redis is the caller's (`super::sync`).

use std::sync::{Arc, Mutex};

use rust_decimal::Decimal;

use super::config::OnRedisDown;
use super::status::Status;

/// The fleet's side of one client's rate limit, on this replica.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FleetRate {
    /// Microseconds between requests at the sustained rate.
    pub interval_us: u64,
    /// How far ahead of now `tat` may be for a request to be admitted: `(burst - 1) ×
    /// interval`.
    pub tolerance_us: u64,
    /// Theoretical arrival time, in the replica's monotonic microseconds.
    tat_us: u64,
    /// Admitted since the count was last taken for a sync.
    pending: u64,
}

impl FleetRate {
    pub fn new(per_minute: u32, burst: u32) -> FleetRate {
        let interval_us = 60_000_000 / u64::from(per_minute.max(1));
        FleetRate {
            interval_us,
            tolerance_us: interval_us * u64::from(burst.max(1) - 1),
            tat_us: 0,
            pending: 0,
        }
    }

    /// Admits one request at `now_us`, or says how long until one would be admitted.
    /// `share` is how many replicas split the limit (1 while the fleet is connected).
    pub fn admit(&mut self, now_us: u64, share: u64) -> Result<(), u64> {
        let interval = self.interval_us * share.max(1);
        let tat = self.tat_us.max(now_us);
        let ahead = tat - now_us;
        if ahead > self.tolerance_us {
            return Err(ahead - self.tolerance_us);
        }
        self.tat_us = tat + interval;
        self.pending += 1;
        Ok(())
    }

    /// The requests admitted since the last call, to send to the fleet.
    pub fn take_pending(&mut self) -> u64 {
        std::mem::take(&mut self.pending)
    }

    /// Takes the fleet's answer: its `tat` is `ahead_us` past now (counting what was
    /// sent); requests admitted here since then are added on top.
    pub fn reconcile(&mut self, ahead_us: u64, now_us: u64) {
        let fleet = now_us + ahead_us + self.pending * self.interval_us;
        self.tat_us = self.tat_us.max(fleet);
    }

    /// Puts back counts a failed sync did not deliver.
    pub fn restore_pending(&mut self, pending: u64) {
        self.pending = pending;
    }

    /// Redis is unreachable: what was admitted is not sent later (a burst of old counts
    /// would block the key long after the outage).
    pub fn forget_pending(&mut self) {
        self.pending = 0;
    }
}

/// The fleet's side of one client's spend limit, on this replica.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FleetSpend {
    /// The window the figures below belong to (Unix seconds of its start).
    pub window_start: u64,
    /// The other replicas' spend in that window, as of the last sync.
    pub peers_usd: Decimal,
    /// This replica's own spend at the last sync.
    pub own_at_sync: Decimal,
    /// Replicas at the last sync (this one included).
    pub replicas: u64,
}

impl FleetSpend {
    /// What this replica may spend in the window before refusing: the limit less the
    /// peers' spend; while Redis is down (`connected` false), per `mode`.
    pub fn allowance(
        &self,
        window_start: u64,
        limit: Decimal,
        connected: bool,
        mode: OnRedisDown,
    ) -> Decimal {
        if self.window_start != window_start {
            // Nothing known of the peers in this window yet.
            return match (connected, mode) {
                (false, OnRedisDown::Share) => limit / Decimal::from(self.replicas.max(1)),
                _ => limit,
            };
        }
        match (connected, mode) {
            (true, _) => limit - self.peers_usd,
            (false, OnRedisDown::Local) => limit,
            (false, OnRedisDown::Share) => {
                let left = (limit - self.peers_usd - self.own_at_sync).max(Decimal::ZERO);
                self.own_at_sync + left / Decimal::from(self.replicas.max(1))
            }
        }
    }
}

/// One client key's fleet limits on this replica: the request path reads and updates them
/// under short locks; the sync task reconciles them with Redis.
#[derive(Debug)]
pub struct ClientFleet {
    pub rate: Option<Mutex<FleetRate>>,
    pub spend: Mutex<FleetSpend>,
    pub status: Arc<Status>,
    /// The origin of the rate limit's monotonic microseconds.
    origin: std::time::Instant,
}

impl ClientFleet {
    pub fn new(per_minute: Option<(u32, u32)>, status: Arc<Status>) -> ClientFleet {
        ClientFleet {
            rate: per_minute.map(|(rpm, burst)| Mutex::new(FleetRate::new(rpm, burst))),
            spend: Mutex::new(FleetSpend::default()),
            status,
            origin: std::time::Instant::now(),
        }
    }

    pub fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }

    /// Admits one request against the fleet's rate, or says how long to wait (µs).
    pub fn admit_rate(&self, rate: &Mutex<FleetRate>) -> Result<(), u64> {
        let share = self.status.rate_share();
        lock(rate).admit(self.now_us(), share)
    }

    /// What this replica may spend in the window starting at `window_start`, and the
    /// peers' spend in it as of the last sync.
    pub fn spend_allowance(&self, window_start: u64, limit: Decimal) -> (Decimal, Decimal) {
        let s = *lock(&self.spend);
        let peers = if s.window_start == window_start {
            s.peers_usd
        } else {
            Decimal::ZERO
        };
        let allowance = s.allowance(
            window_start,
            limit,
            self.status.connected(),
            self.status.mode,
        );
        (allowance, peers)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Advances one client's fleet `tat` per key by `count × interval` on Redis's clock and
/// answers, per key, how many microseconds ahead of now it is. KEYS: one per client;
/// ARGV: interval_us and count per key, then the TTL floor in milliseconds.
pub const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local floor_ms = tonumber(ARGV[#ARGV])
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local count = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  tat = tat + count * interval
  local ttl = math.floor((tat - now) / 1000) + floor_ms
  redis.call('SET', key, string.format('%.0f', tat), 'PX', ttl)
  out[i] = string.format('%.0f', tat - now)
end
return out
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        // 60 a minute, burst 3: three at once, then one a second.
        let mut r = FleetRate::new(60, 3);
        for _ in 0..3 {
            assert!(r.admit(0, 1).is_ok());
        }
        assert_eq!(r.admit(0, 1), Err(1_000_000));
        assert!(r.admit(1_000_000, 1).is_ok());
        assert_eq!(r.take_pending(), 4);
    }

    #[test]
    fn the_fleets_admissions_hold_this_replica_back() {
        let mut r = FleetRate::new(60, 3);
        assert!(r.admit(0, 1).is_ok());
        let sent = r.take_pending();
        assert_eq!(sent, 1);
        // Peers admitted 2 more: the fleet's tat is 3 s ahead.
        r.reconcile(3_000_000, 0);
        assert_eq!(r.admit(0, 1), Err(1_000_000));
        assert!(r.admit(1_000_000, 1).is_ok());
    }

    #[test]
    fn sharing_while_down_stretches_the_interval() {
        let mut r = FleetRate::new(60, 1);
        assert!(r.admit(0, 2).is_ok());
        assert_eq!(r.admit(1_000_000, 2), Err(1_000_000));
        assert!(r.admit(2_000_000, 2).is_ok());
    }

    #[test]
    fn spend_allowance_by_mode() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let s = FleetSpend {
            window_start: 100,
            peers_usd: d("4"),
            own_at_sync: d("2"),
            replicas: 2,
        };
        assert_eq!(s.allowance(100, d("10"), true, OnRedisDown::Share), d("6"));
        assert_eq!(s.allowance(100, d("10"), false, OnRedisDown::Share), d("4"));
        assert_eq!(
            s.allowance(100, d("10"), false, OnRedisDown::Local),
            d("10")
        );
        assert_eq!(s.allowance(200, d("10"), false, OnRedisDown::Share), d("5"));
        assert_eq!(s.allowance(200, d("10"), true, OnRedisDown::Share), d("10"));
    }
}
