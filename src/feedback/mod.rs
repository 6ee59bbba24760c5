//! Client feedback on answers: the `[feedback]` settings and the ledger of recent answers a
//! score may still be given for.
//!
//! `POST /v1/feedback` names a request by the id the router gave it (`x-request-id`); the
//! ledger says which endpoint answered it, when, and for which client key, so a score is
//! credited to the right endpoint and only its own client (or the admin) may give it, once.
//! The ledger is bounded twice: entries older than `window` are dropped, and past
//! `max_pending` the oldest go first. It is one short mutex around a map and a queue in
//! arrival order (never held across an await); an answer costs one insert.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

/// `[feedback]`: how long after a request its score is taken, and what a score weighs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackConfig {
    /// How long after its answer a request can be scored.
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
    /// Answers remembered for feedback at most (the oldest are forgotten first); about 80
    /// bytes each.
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// Half-life of the feedback in each endpoint's quality posterior.
    #[serde(default = "default_quality_half_life", with = "humantime_serde")]
    pub quality_half_life: Duration,
    /// How many scores a sheet's declared `quality` is worth: the prior's strength.
    #[serde(default = "default_prior_strength")]
    pub prior_strength: f64,
}

fn default_window() -> Duration {
    Duration::from_secs(3600)
}
fn default_max_pending() -> usize {
    200_000
}
fn default_quality_half_life() -> Duration {
    crate::stats::DEFAULT_QUALITY_HALF_LIFE
}
fn default_prior_strength() -> f64 {
    crate::stats::DEFAULT_QUALITY_PRIOR
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        Self {
            window: default_window(),
            max_pending: default_max_pending(),
            quality_half_life: default_quality_half_life(),
            prior_strength: default_prior_strength(),
        }
    }
}

impl FeedbackConfig {
    /// `(field, message)` for the first setting out of range.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, m: &str| Err((format!("feedback.{f}"), m.to_owned()));
        if self.window.is_zero() {
            return bad("window", "must be above zero");
        }
        if self.max_pending == 0 {
            return bad("max_pending", "must be at least 1");
        }
        if self.quality_half_life.is_zero() {
            return bad("quality_half_life", "must be above zero");
        }
        if !(self.prior_strength.is_finite() && self.prior_strength > 0.0) {
            return bad("prior_strength", "must be a number above zero");
        }
        Ok(())
    }
}

/// One answered request, as the ledger keeps it.
#[derive(Debug, Clone)]
struct Answered {
    at_ns: u64,
    /// The client key's name (`None` without client keys).
    client: Option<Arc<str>>,
    /// The endpoint id that answered.
    endpoint: Arc<str>,
    /// Scored already.
    scored: bool,
}

/// Why a score is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedbackError {
    /// Never answered here, or forgotten (past the window or the ledger's bound). A
    /// request of another client key reads the same, so ids of others cannot be probed.
    #[error(
        "no answered request `{0}` to score: unknown, not answered, or past the feedback window"
    )]
    Unknown(String),
    #[error("request `{0}` was scored already")]
    AlreadyScored(String),
}

/// What a score is credited to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub endpoint: Arc<str>,
    pub answered_at_ns: u64,
}

/// Who gives a score.
#[derive(Debug, Clone, Copy)]
pub enum Scorer<'a> {
    /// A client key, by name (`None` when the router runs without keys).
    Client(Option<&'a str>),
    /// The admin token: may score any request.
    Admin,
}

/// Recent answers that may still be scored.
#[derive(Debug)]
pub struct Ledger {
    window_ns: u64,
    max: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<u64, Answered>,
    /// Ids in answer order, for expiry.
    order: VecDeque<(u64, u64)>,
}

/// A request id's number: the router's ids are `req_` and 16 hex digits.
pub fn id_number(request_id: &str) -> Option<u64> {
    let hex = request_id.strip_prefix("req_")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

impl Ledger {
    pub fn new(config: &FeedbackConfig) -> Ledger {
        Ledger {
            window_ns: u64::try_from(config.window.as_nanos()).unwrap_or(u64::MAX),
            max: config.max_pending,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that `endpoint` answered `request_id` for `client` at `now_ns`.
    pub fn answered(&self, request_id: &str, client: Option<&str>, endpoint: &str, now_ns: u64) {
        let Some(id) = id_number(request_id) else {
            return;
        };
        let entry = Answered {
            at_ns: now_ns,
            client: client.map(Arc::from),
            endpoint: Arc::from(endpoint),
            scored: false,
        };
        let mut inner = self.lock();
        self.expire(&mut inner, now_ns);
        while inner.order.len() >= self.max {
            let Some((old, _)) = inner.order.pop_front() else {
                break;
            };
            inner.by_id.remove(&old);
        }
        inner.by_id.insert(id, entry);
        inner.order.push_back((id, now_ns));
    }

    fn expire(&self, inner: &mut Inner, now_ns: u64) {
        while let Some(&(id, at)) = inner.order.front() {
            if now_ns.saturating_sub(at) <= self.window_ns {
                break;
            }
            inner.order.pop_front();
            inner.by_id.remove(&id);
        }
    }

    /// Takes a score for `request_id` from `scorer` at `now_ns`: the endpoint to credit, or
    /// why not. A request is scored once.
    pub fn score(
        &self,
        request_id: &str,
        scorer: Scorer<'_>,
        now_ns: u64,
    ) -> Result<Credit, FeedbackError> {
        let unknown = || FeedbackError::Unknown(request_id.to_owned());
        let id = id_number(request_id).ok_or_else(unknown)?;
        let mut inner = self.lock();
        self.expire(&mut inner, now_ns);
        let entry = inner.by_id.get_mut(&id).ok_or_else(unknown)?;
        let allowed = match scorer {
            Scorer::Admin => true,
            Scorer::Client(name) => entry.client.as_deref() == name,
        };
        if !allowed {
            return Err(unknown());
        }
        if entry.scored {
            return Err(FeedbackError::AlreadyScored(request_id.to_owned()));
        }
        entry.scored = true;
        Ok(Credit {
            endpoint: entry.endpoint.clone(),
            answered_at_ns: entry.at_ns,
        })
    }

    /// Answers remembered now.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
