//! Prometheus exposition, produced at scrape time from the statistics themselves.
//!
//! A `prometheus-client` [`Collector`] reads the lifetime totals and the cumulative latency
//! buckets each endpoint already keeps, so the request path does no second bookkeeping for
//! metrics and the numbers always agree with `/v1/endpoints`. Counters restart from the
//! saved totals after a restart, which Prometheus handles as it does any counter.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::catalog::Catalog;
use crate::stats::endpoint::{PromHistogram, PROM_BOUNDS};
use crate::stats::{EndpointStats, FailureClass, StatsTable};

/// Router-level request counts by how the request ended, and per client key.
#[derive(Debug, Default, serde::Serialize)]
pub struct RequestCounts {
    pub answered: u64,
    pub refused: u64,
    pub failed: u64,
    pub unauthorized: u64,
    pub limited: u64,
    pub shed: u64,
    /// Feedback scores taken and refused.
    pub feedback: [u64; 2],
    #[serde(skip)]
    pub clients: Vec<crate::auth::ClientReport>,
    /// In a fleet: whether Redis is reachable, replicas seen, failed syncs.
    #[serde(skip)]
    pub fleet: Option<FleetGauges>,
    /// Answers whose provider-reported cost differed from the router's.
    #[serde(skip)]
    pub cost_disagreements: u64,
    /// Per client surface: answered, refused, failed.
    pub by_surface: std::collections::BTreeMap<&'static str, [u64; 3]>,
    /// What hedging did.
    pub hedges: HedgeCounts,
    /// The request log's lines written, dropped (queue full) and failed, when it is kept.
    #[serde(skip)]
    pub log: Option<[u64; 3]>,
}

/// Hedges started, won (the hedge answered first), paused by the budget, and what the
/// losers were estimated to cost.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct HedgeCounts {
    pub started: u64,
    pub won: u64,
    pub paused: u64,
    pub wasted_usd: f64,
}

/// The fleet link's figures for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FleetGauges {
    pub connected: bool,
    pub replicas: u64,
    pub sync_failures: u64,
}

#[derive(Debug)]
struct Snapshot {
    requests: RequestCounts,
    /// `(endpoint id, state)`.
    endpoints: Vec<(String, EndpointStats)>,
    /// Per endpoint: declared quality, and learned from feedback.
    qualities: Vec<(Option<f64>, Option<f64>)>,
}

/// Renders the exposition text for the catalog's endpoints.
pub fn render(
    catalog: &Catalog,
    table: &StatsTable,
    requests: RequestCounts,
    now_ns: u64,
) -> String {
    let endpoints = catalog
        .endpoints()
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.clone(), table.read(i)))
        .collect();
    let mut registry = Registry::with_prefix("switchyard");
    let qualities = (0..catalog.endpoints().len())
        .map(|i| {
            let (declared, learned) = super::endpoints::qualities(catalog, table, i, now_ns);
            (declared, learned.map(|p| p.mean()))
        })
        .collect();
    registry.register_collector(Box::new(Snapshot {
        requests,
        endpoints,
        qualities,
    }));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut m = enc.encode_descriptor(
            "requests",
            "Client requests by how they ended: answered by an endpoint, refused by the router (4xx), failed on every attempt (502), without a valid key (401), over a key's limits (429), or shed at the concurrency cap (503)",
            None,
            MetricType::Counter,
        )?;
        for (outcome, n) in [
            ("answered", self.requests.answered),
            ("refused", self.requests.refused),
            ("failed", self.requests.failed),
            ("unauthorized", self.requests.unauthorized),
            ("limited", self.requests.limited),
            ("shed", self.requests.shed),
        ] {
            ConstCounter::new(n).encode(m.encode_family(&[("outcome", outcome)])?)?;
        }
        let mut m = enc.encode_descriptor(
            "surface_requests",
            "Requests by client surface (operation) and how they ended",
            None,
            MetricType::Counter,
        )?;
        for (surface, counts) in &self.requests.by_surface {
            for (outcome, n) in ["answered", "refused", "failed"].iter().zip(counts) {
                ConstCounter::new(*n)
                    .encode(m.encode_family(&[("operation", *surface), ("outcome", *outcome)])?)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "feedback",
            "Client scores by POST /v1/feedback: accepted, or refused (unknown, foreign, expired or already scored request id)",
            None,
            MetricType::Counter,
        )?;
        for (result, n) in [
            ("accepted", self.requests.feedback[0]),
            ("refused", self.requests.feedback[1]),
        ] {
            ConstCounter::new(n).encode(m.encode_family(&[("result", result)])?)?;
        }
        let mut m = enc.encode_descriptor(
            "hedges",
            "Hedged attempts: started beside a silent attempt, won (answered first), or paused because hedging's waste reached its budget",
            None,
            MetricType::Counter,
        )?;
        let h = &self.requests.hedges;
        for (result, n) in [("started", h.started), ("won", h.won), ("paused", h.paused)] {
            ConstCounter::new(n).encode(m.encode_family(&[("result", result)])?)?;
        }
        let m = enc.encode_descriptor(
            "hedge_wasted_usd",
            "Estimated cost of hedge races' losing attempts (their prompts), USD",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(h.wasted_usd).encode(m)?;
        if let Some([written, dropped, failed]) = self.requests.log {
            let mut m = enc.encode_descriptor(
                "request_log_lines",
                "Request log lines: written, dropped because the writer's queue was full, or lost to a failed write",
                None,
                MetricType::Counter,
            )?;
            for (result, n) in [
                ("written", written),
                ("dropped", dropped),
                ("failed", failed),
            ] {
                ConstCounter::new(n).encode(m.encode_family(&[("result", result)])?)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "endpoint_quality",
            "Answer quality per endpoint: as its price sheet declares it, and as client feedback taught (posterior mean; absent before any feedback)",
            None,
            MetricType::Gauge,
        )?;
        for ((id, _), (declared, learned)) in self.endpoints.iter().zip(&self.qualities) {
            for (kind, v) in [("declared", declared), ("learned", learned)] {
                if let Some(v) = v {
                    ConstGauge::new(*v)
                        .encode(m.encode_family(&[("endpoint", id.as_str()), ("kind", kind)])?)?;
                }
            }
        }
        let m = enc.encode_descriptor(
            "upstream_cost_disagreements",
            "Answers whose provider-reported usage.cost differed from the router's own figure beyond rounding",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.requests.cost_disagreements).encode(m)?;
        if let Some(f) = self.requests.fleet {
            for (name, help, v) in [
                (
                    "fleet_connected",
                    "1 while the fleet's Redis is reachable",
                    u64::from(f.connected),
                ),
                (
                    "fleet_replicas",
                    "Replicas of the fleet seen at the last sync, this one included",
                    f.replicas,
                ),
            ] {
                let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
                ConstGauge::new(v as i64).encode(m)?;
            }
            let m = enc.encode_descriptor(
                "fleet_sync_failures",
                "Syncs with the fleet's Redis that failed (down, slow or stopped)",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(f.sync_failures).encode(m)?;
        }
        if !self.requests.clients.is_empty() {
            let mut m = enc.encode_descriptor(
                "client_requests",
                "Chat requests per client key, and how many its limits refused",
                None,
                MetricType::Counter,
            )?;
            for c in &self.requests.clients {
                for (kind, n) in [("received", c.requests), ("limited", c.refused_by_limits)] {
                    ConstCounter::new(n)
                        .encode(m.encode_family(&[("client", c.name.as_str()), ("kind", kind)])?)?;
                }
            }
            let mut m = enc.encode_descriptor(
                "client_window_spend_usd",
                "Spend per client key in its current spend window, USD",
                None,
                MetricType::Gauge,
            )?;
            for c in &self.requests.clients {
                let usd = rust_decimal::prelude::ToPrimitive::to_f64(&c.spent_usd).unwrap_or(0.0);
                ConstGauge::new(usd).encode(m.encode_family(&[("client", c.name.as_str())])?)?;
            }
        }
        counter(
            &mut enc,
            &self.endpoints,
            "attempts",
            "Upstream attempts per endpoint",
            |s| s.totals.attempts,
        )?;
        counter(
            &mut enc,
            &self.endpoints,
            "successes",
            "Successful upstream attempts per endpoint",
            |s| s.totals.successes,
        )?;
        counter(
            &mut enc,
            &self.endpoints,
            "cancelled",
            "Attempts abandoned because the client went away",
            |s| s.totals.cancelled,
        )?;
        counter(
            &mut enc,
            &self.endpoints,
            "rejected",
            "Attempts whose request the provider refused as the client's own fault (4xx)",
            |s| s.totals.rejected,
        )?;

        let mut m = enc.encode_descriptor(
            "failures",
            "Failed upstream attempts per endpoint and failure class",
            None,
            MetricType::Counter,
        )?;
        for (id, s) in &self.endpoints {
            for c in FailureClass::ALL {
                let labels = [("endpoint", id.as_str()), ("class", c.name())];
                ConstCounter::new(s.totals.failures[c.index()])
                    .encode(m.encode_family(&labels)?)?;
            }
        }

        let mut m = enc.encode_descriptor(
            "tokens",
            "Tokens reported by providers",
            None,
            MetricType::Counter,
        )?;
        for (id, s) in &self.endpoints {
            for (kind, n) in [
                ("prompt", s.totals.prompt_tokens),
                ("completion", s.totals.output_tokens),
            ] {
                ConstCounter::new(n)
                    .encode(m.encode_family(&[("endpoint", id.as_str()), ("kind", kind)])?)?;
            }
        }

        let mut m = enc.encode_descriptor(
            "in_flight",
            "Attempts in flight per endpoint",
            None,
            MetricType::Gauge,
        )?;
        for (id, s) in &self.endpoints {
            ConstGauge::new(i64::from(s.in_flight))
                .encode(m.encode_family(&[("endpoint", id.as_str())])?)?;
        }

        histogram(
            &mut enc,
            &self.endpoints,
            "ttft",
            "Time to first token of streamed answers",
            |s| &s.prom_ttft,
        )?;
        histogram(
            &mut enc,
            &self.endpoints,
            "attempt_duration",
            "Duration of successful attempts, to the end of the answer",
            |s| &s.prom_total,
        )?;
        Ok(())
    }
}

fn counter(
    enc: &mut DescriptorEncoder,
    endpoints: &[(String, EndpointStats)],
    name: &str,
    help: &str,
    value: impl Fn(&EndpointStats) -> u64,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (id, s) in endpoints {
        ConstCounter::new(value(s)).encode(m.encode_family(&[("endpoint", id.as_str())])?)?;
    }
    Ok(())
}

fn histogram(
    enc: &mut DescriptorEncoder,
    endpoints: &[(String, EndpointStats)],
    name: &str,
    help: &str,
    hist: impl Fn(&EndpointStats) -> &PromHistogram,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for (id, s) in endpoints {
        let h = hist(s);
        let buckets: Vec<(f64, u64)> = PROM_BOUNDS.iter().copied().zip(h.counts).collect();
        m.encode_family(&[("endpoint", id.as_str())])?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                h.sum_s, h.count, &buckets, None,
            )?;
    }
    Ok(())
}
