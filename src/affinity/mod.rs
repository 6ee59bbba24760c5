//! Conversation affinity: the turns of one conversation stay on the endpoint that served the
//! previous one, where the provider's prompt cache is warm.
//!
//! A request's affinity key is, in this order, its `prompt_cache_key`, its `x-session-id`
//! header, its `user`, or an Anthropic request's `metadata.user_id`, namespaced by the client
//! key. [`Affinities`] remembers which endpoint last answered each key, for `idle` after its
//! last use and for at most `max_keys` keys (the least recently used go first). [`apply`] is a
//! layer over any policy's ranking: the remembered endpoint goes first while it is feasible,
//! unless the policy's first choice is expected to cost less than it even after the cache
//! discount it would give (its learned share of cached prompt tokens × this prompt × the
//! difference between its input and cached-input prices). In a fleet the map is each
//! replica's own: a load balancer should hash the same key to the same replica.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use crate::catalog::EndpointIdx;
use crate::select::{missed, Decision};

/// `[affinity]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AffinityConfig {
    /// A key not used for this long is forgotten.
    #[serde(default = "default_idle", with = "humantime_serde")]
    pub idle: Duration,
    /// Keys remembered at most; about 100 bytes each.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
}

fn default_idle() -> Duration {
    Duration::from_secs(300)
}
fn default_max_keys() -> usize {
    100_000
}

impl Default for AffinityConfig {
    fn default() -> Self {
        Self {
            idle: default_idle(),
            max_keys: default_max_keys(),
        }
    }
}

impl AffinityConfig {
    /// `(field, message)` for the first setting out of range.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.max_keys == 0 {
            return Err(("affinity.max_keys".into(), "must be at least 1".into()));
        }
        Ok(())
    }
}

/// Which endpoint answered each recent conversation.
#[derive(Debug)]
pub struct Affinities {
    idle_ns: u64,
    max: usize,
    hasher: RandomState,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Key hash → (endpoint id, last use).
    by_key: HashMap<u64, (Arc<str>, u64)>,
    /// (key hash, use time) in use order; an entry whose time is not its key's last use is
    /// stale and skipped.
    order: VecDeque<(u64, u64)>,
}

impl Affinities {
    pub fn new(config: &AffinityConfig) -> Affinities {
        Affinities {
            idle_ns: u64::try_from(config.idle.as_nanos()).unwrap_or(u64::MAX),
            max: config.max_keys,
            hasher: RandomState::new(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The endpoint that last answered `key`, if it was used within the idle time.
    pub fn get(&self, key: &str, now_ns: u64) -> Option<Arc<str>> {
        let h = self.hasher.hash_one(key);
        let mut inner = self.lock();
        self.expire(&mut inner, now_ns);
        inner.by_key.get(&h).map(|(e, _)| e.clone())
    }

    /// `endpoint` answered `key` at `now_ns`.
    pub fn set(&self, key: &str, endpoint: &str, now_ns: u64) {
        let h = self.hasher.hash_one(key);
        let mut inner = self.lock();
        self.expire(&mut inner, now_ns);
        let endpoint: Arc<str> = match inner.by_key.get(&h) {
            Some((e, _)) if **e == *endpoint => e.clone(),
            _ => Arc::from(endpoint),
        };
        inner.by_key.insert(h, (endpoint, now_ns));
        inner.order.push_back((h, now_ns));
        // Least recently used first, past the bound.
        while inner.by_key.len() > self.max {
            let Some((old, at)) = inner.order.pop_front() else {
                break;
            };
            if inner.by_key.get(&old).is_some_and(|(_, last)| *last == at) {
                inner.by_key.remove(&old);
            }
        }
        // Stale queue entries are dropped as they reach the front; keep the queue from
        // growing past a few times the keys when one key is used over and over.
        if inner.order.len() > 4 * self.max.max(inner.by_key.len()) {
            let by_key = &inner.by_key;
            let live: VecDeque<(u64, u64)> = inner
                .order
                .iter()
                .filter(|(k, at)| by_key.get(k).is_some_and(|(_, last)| last == at))
                .copied()
                .collect();
            inner.order = live;
        }
    }

    fn expire(&self, inner: &mut Inner, now_ns: u64) {
        while let Some(&(h, at)) = inner.order.front() {
            let live = inner.by_key.get(&h).is_some_and(|(_, last)| *last == at);
            if live && now_ns.saturating_sub(at) <= self.idle_ns {
                break;
            }
            inner.order.pop_front();
            if live {
                inner.by_key.remove(&h);
            }
        }
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A request's affinity key, from the first of its `prompt_cache_key`, `x-session-id`
/// header, `user` and Anthropic `metadata.user_id` that is a non-empty string, namespaced by
/// the client key's name (two clients' users never share an entry).
pub fn key_of(sources: [Option<&str>; 4], client: Option<&str>) -> Option<String> {
    const KINDS: [&str; 4] = ["prompt_cache_key", "session", "user", "user"];
    let (kind, value) = KINDS
        .into_iter()
        .zip(sources)
        .find_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))?;
    Some(format!("{}\u{0}{kind}\u{0}{value}", client.unwrap_or("")))
}

/// What endpoint `idx`'s warm cache would save on a prompt of `prompt_tokens`, USD: its
/// learned share of cached prompt tokens × the prompt × its input price minus its
/// cached-input price (nothing without a cache price or a usage report yet).
pub fn discount(
    catalog: &crate::catalog::Catalog,
    table: &crate::stats::StatsTable,
    idx: EndpointIdx,
    prompt_tokens: f64,
    now_ns: u64,
) -> f64 {
    let price = &catalog.endpoint(idx).price;
    let saved_per_mtok =
        price.input_per_mtok - price.cached_input_per_mtok.unwrap_or(price.input_per_mtok);
    if saved_per_mtok <= 0.0 {
        return 0.0;
    }
    let hl = table.half_lives();
    let share = table
        .with(idx, |s| s.cached_share(now_ns, &hl))
        .unwrap_or(0.0);
    share * prompt_tokens * saved_per_mtok / 1e6
}

/// The remembered endpoint of `key` put first in `decision` where [`apply`] says so.
pub fn apply_remembered(
    affinities: &Affinities,
    catalog: &crate::catalog::Catalog,
    table: &crate::stats::StatsTable,
    key: Option<&str>,
    decision: &mut Decision,
    now_ns: u64,
) -> Outcome {
    let Some(endpoint) = key.and_then(|k| affinities.get(k, now_ns)) else {
        return Outcome::None;
    };
    let Some(idx) = catalog.index_of(&endpoint) else {
        return Outcome::Moved("no longer in the catalog".into());
    };
    // Its provider asked for a rest (`Retry-After`): whatever a policy's scores say.
    if table.resting(idx, now_ns) {
        return Outcome::Moved("its provider asked for a rest".into());
    }
    let discount = decision
        .ranked
        .iter()
        .position(|&i| i == idx)
        .map_or(0.0, |pos| {
            let prompt = decision.scores[pos].estimate.prompt_tokens;
            discount(catalog, table, idx, prompt, now_ns)
        });
    apply(decision, Some(idx), discount)
}

/// What affinity did to a ranking.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// No key, or no endpoint remembered for it.
    None,
    /// The remembered endpoint goes first.
    Kept,
    /// The remembered endpoint does not, and why.
    Moved(String),
}

impl Outcome {
    /// How a decision record shows it.
    pub fn describe(&self) -> String {
        match self {
            Outcome::None => "none".into(),
            Outcome::Kept => "kept".into(),
            Outcome::Moved(why) => format!("moved ({why})"),
        }
    }
}

/// Puts `pinned` (the remembered endpoint, `None` when there is none) first in `decision`
/// while it is ranked and feasible, unless the first choice costs less than it after
/// `discount_usd` (what its warm cache would save on this request).
pub fn apply(decision: &mut Decision, pinned: Option<EndpointIdx>, discount_usd: f64) -> Outcome {
    let Some(pinned) = pinned else {
        return Outcome::None;
    };
    let Some(pos) = decision.ranked.iter().position(|&i| i == pinned) else {
        return Outcome::Moved("no longer a candidate".into());
    };
    let score = decision.scores[pos];
    if !score.feasible {
        let why = missed::names(score.missed).join(", ");
        return Outcome::Moved(format!("infeasible: {why}"));
    }
    if pos == 0 {
        return Outcome::Kept;
    }
    let first = decision.scores[0];
    let with_cache = score.estimate.cost_usd - discount_usd.max(0.0);
    if first.feasible && first.estimate.cost_usd < with_cache {
        return Outcome::Moved(format!(
            "another endpoint costs less: {:.6} < {:.6} USD with the cache",
            first.estimate.cost_usd, with_cache
        ));
    }
    decision.ranked[..=pos].rotate_right(1);
    decision.scores[..=pos].rotate_right(1);
    Outcome::Kept
}

#[cfg(test)]
mod tests;
