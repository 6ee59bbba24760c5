//! Simulated fleets: N replicas behind a round-robin balancer, each with its own statistics,
//! sharing through an in-memory store with the live fleet's own snapshot and merge code
//! ([`crate::fleet::merge`]), at a sync interval, with store outages as events.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::fleet::merge::{merge, Instant, ReplicaSnapshot};
use crate::stats::Stats;

/// A scenario's `[fleet]`: how many routers serve it and how they share.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimFleet {
    /// Routers behind a round-robin balancer (1: one router).
    #[serde(default = "one")]
    pub replicas: u32,
    /// Whether they share what they learn (`false`: each learns alone).
    #[serde(default = "yes")]
    pub share: bool,
    #[serde(default = "default_sync_interval", with = "humantime_serde")]
    pub sync_interval: Duration,
    /// Times the store is unreachable: nothing is published or read.
    #[serde(default)]
    pub outages: Vec<Outage>,
}

impl Default for SimFleet {
    fn default() -> Self {
        SimFleet {
            replicas: 1,
            share: true,
            sync_interval: default_sync_interval(),
            outages: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    #[serde(with = "humantime_serde")]
    pub until: Duration,
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn default_sync_interval() -> Duration {
    Duration::from_secs(1)
}

impl SimFleet {
    /// Whether the replicas sync at all.
    pub(crate) fn syncs(&self) -> bool {
        self.replicas > 1 && self.share
    }

    fn store_up(&self, t_ns: u64) -> bool {
        !self
            .outages
            .iter()
            .any(|o| (o.at.as_nanos() as u64..o.until.as_nanos() as u64).contains(&t_ns))
    }

    /// The field at fault and why, if any.
    pub(crate) fn check(&self) -> Result<(), (String, &'static str)> {
        if !(1..=64).contains(&self.replicas) {
            return Err(("fleet.replicas".into(), "must be between 1 and 64"));
        }
        if self.sync_interval < Duration::from_millis(10) {
            return Err(("fleet.sync_interval".into(), "must be at least 10ms"));
        }
        for (i, o) in self.outages.iter().enumerate() {
            if o.until <= o.at {
                return Err((format!("fleet.outages[{i}].until"), "must be after `at`"));
            }
        }
        Ok(())
    }
}

/// The in-memory store: each replica's last published snapshot.
#[derive(Debug)]
pub(crate) struct Store {
    snapshots: Vec<Option<ReplicaSnapshot>>,
}

impl Store {
    pub fn new(replicas: usize) -> Store {
        Store {
            snapshots: vec![None; replicas],
        }
    }

    /// One sync of every replica at `t_ns`: each publishes its own figures, then takes in
    /// the sum of its peers'. While the store is down nothing happens; peers' figures
    /// already taken in keep decaying where they are.
    pub fn sync(&mut self, fleet: &SimFleet, stats: &[Arc<Stats>], t_ns: u64) {
        if !fleet.store_up(t_ns) {
            return;
        }
        // Virtual time serves as both clocks.
        let at = Instant {
            now_ns: t_ns,
            unix_ms: t_ns / 1_000_000,
        };
        for (r, s) in stats.iter().enumerate() {
            let own = s.own_figures(t_ns, crate::select::thompson::rest_end_ns);
            self.snapshots[r] = Some(ReplicaSnapshot::of(&format!("r{r}"), own, at));
        }
        for (r, s) in stats.iter().enumerate() {
            let peers = self
                .snapshots
                .iter()
                .enumerate()
                .filter(|(p, _)| *p != r)
                .filter_map(|(_, snap)| snap.as_ref());
            s.set_peers(&merge(peers, at, &s.half_lives()));
        }
    }
}
