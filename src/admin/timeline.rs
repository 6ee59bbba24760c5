//! A short history for the dashboard: every few seconds, each active endpoint's lifetime
//! counts and its latency quantiles over the trailing minutes, kept in a bounded ring.
//!
//! Sampling reads the statistics the router keeps anyway (one short lock per endpoint with
//! traffic), so the request path does nothing extra. Rates, success ratios and traffic shares
//! per interval are the differences between consecutive points, computed by the page.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::catalog::Catalog;
use crate::stats::window::Quantiles;
use crate::stats::StatsTable;

/// Minute buckets the quantiles of a point merge: the current one and the one before, so a
/// point never rests on a bucket only seconds old.
const TRAILING_BUCKETS: usize = 2;

/// One endpoint at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub t_unix_ms: u64,
    pub attempts: u64,
    pub successes: u64,
    pub failures: u64,
    pub ttft: Option<Quantiles>,
    pub total: Option<Quantiles>,
    pub spend_usd: f64,
}

/// The last `capacity` points of every endpoint that has seen traffic.
#[derive(Debug)]
pub(crate) struct Timeline {
    capacity: usize,
    series: Mutex<BTreeMap<String, VecDeque<Point>>>,
}

impl Timeline {
    pub fn new(capacity: usize) -> Timeline {
        Timeline {
            capacity: capacity.max(2),
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Takes one point of every endpoint with traffic.
    pub(crate) fn sample(
        &self,
        catalog: &Catalog,
        table: &StatsTable,
        now_ns: u64,
        t_unix_ms: u64,
    ) {
        let mut points = Vec::new();
        for (idx, ep) in catalog.endpoints().iter().enumerate() {
            let point = table.with(idx, |s| {
                let t = &s.totals;
                (t.attempts > 0).then(|| Point {
                    t_unix_ms,
                    attempts: t.attempts,
                    successes: t.successes,
                    failures: t.failures.iter().sum(),
                    ttft: s.ttft_window.quantiles(now_ns, TRAILING_BUCKETS),
                    total: s.total_window.quantiles(now_ns, TRAILING_BUCKETS),
                    spend_usd: rust_decimal::prelude::ToPrimitive::to_f64(&t.spend_usd)
                        .unwrap_or(0.0),
                })
            });
            if let Some(p) = point {
                points.push((ep.id.as_str(), p));
            }
        }
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        for (id, p) in points {
            let ring = series.entry(id.to_owned()).or_default();
            if ring.len() == self.capacity {
                ring.pop_front();
            }
            ring.push_back(p);
        }
        // Endpoints gone from the catalog (a price reload) fade out with their last point.
        series.retain(|_, ring| {
            ring.back()
                .is_some_and(|p| p.t_unix_ms + 600_000 > t_unix_ms)
        });
    }

    /// `{id: [[t, attempts, successes, failures, ttft p50, ttft p99, total p50, total p99,
    /// spend], ...]}`, compact for the page.
    pub(crate) fn to_json(&self) -> Value {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let q = |q: Option<Quantiles>, f: fn(&Quantiles) -> u64| q.as_ref().map(f);
        let map: serde_json::Map<String, Value> = series
            .iter()
            .map(|(id, ring)| {
                let rows: Vec<Value> = ring
                    .iter()
                    .map(|p| {
                        json!([
                            p.t_unix_ms,
                            p.attempts,
                            p.successes,
                            p.failures,
                            q(p.ttft, |q| q.p50),
                            q(p.ttft, |q| q.p99),
                            q(p.total, |q| q.p50),
                            q(p.total, |q| q.p99),
                            (p.spend_usd * 1e6).round() / 1e6,
                        ])
                    })
                    .collect();
                (id.clone(), Value::Array(rows))
            })
            .collect();
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{FailureClass, Stats, Success};
    use std::time::Duration;

    #[test]
    fn points_follow_traffic_and_the_ring_is_bounded() {
        let config = crate::config::Config::parse(
            "[server]\n[[providers]]\nname = \"p\"\nbase_url = \"http://x\"\n",
            std::path::Path::new("t.toml"),
        )
        .expect("config");
        let sheet = crate::pricing::PriceSheet::parse(
            "provider = \"p\"\neffective = \"2026-11-01\"\nsource = \"t\"\n[models.a]\ninput_per_mtok = 1.0\noutput_per_mtok = 1.0\n[models.b]\ninput_per_mtok = 1.0\noutput_per_mtok = 1.0\n",
            std::path::Path::new("p.toml"),
        )
        .expect("sheet");
        let catalog = Catalog::build(&config, &[sheet], &|_| None).expect("catalog");
        let stats = Stats::new(Duration::from_secs(300), Duration::from_secs(60));
        let table = stats.table(&catalog);
        let timeline = Timeline::new(3);
        for i in 0..5u64 {
            let now = i * 1_000_000_000;
            table.begin(0);
            table.success(
                0,
                &Success {
                    ttft_ms: Some(100.0),
                    total_ms: 400.0,
                    ..Success::default()
                },
                now,
            );
            table.begin(0);
            table.failure(0, FailureClass::Timeout, now);
            timeline.sample(&catalog, &table, now, 1_000 + i * 1000);
        }
        let json = timeline.to_json();
        let a = json["p/a"]
            .as_array()
            .expect("series of the endpoint with traffic");
        assert_eq!(a.len(), 3, "bounded to the capacity");
        assert_eq!(a[2][0], 5_000);
        assert_eq!(
            (a[2][1].clone(), a[2][2].clone(), a[2][3].clone()),
            (json!(10), json!(5), json!(5))
        );
        let p50 = a[2][4].as_u64().expect("ttft p50");
        assert!((99..=101).contains(&p50), "{p50}");
        assert!(json.get("p/b").is_none(), "no traffic, no series");
    }
}
