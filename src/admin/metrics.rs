//! Prometheus exposition, produced at scrape time from the statistics themselves.
//!
//! A `prometheus-client` [`Collector`] reads the lifetime totals and the cumulative latency
//! buckets each endpoint already keeps, so the request path does no second bookkeeping for
//! metrics and the numbers always agree with `/v1/endpoints`. Counters restart from the
//! saved totals after a restart, which Prometheus handles as it does any counter.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::catalog::Catalog;
use crate::stats::endpoint::{PromHistogram, PROM_BOUNDS};
use crate::stats::{EndpointStats, FailureClass, StatsTable};

/// Router-level request counts by how the request ended.
#[derive(Debug, Default)]
pub struct RequestCounts {
    pub answered: u64,
    pub refused: u64,
    pub failed: u64,
}

impl RequestCounts {
    pub fn load(answered: &AtomicU64, refused: &AtomicU64, failed: &AtomicU64) -> Self {
        RequestCounts {
            answered: answered.load(Ordering::Relaxed),
            refused: refused.load(Ordering::Relaxed),
            failed: failed.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug)]
struct Snapshot {
    requests: RequestCounts,
    /// `(endpoint id, state)`.
    endpoints: Vec<(String, EndpointStats)>,
}

/// Renders the exposition text for the catalog's endpoints.
pub fn render(catalog: &Catalog, table: &StatsTable, requests: RequestCounts) -> String {
    let endpoints = catalog
        .endpoints()
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.clone(), table.read(i)))
        .collect();
    let mut registry = Registry::with_prefix("switchyard");
    registry.register_collector(Box::new(Snapshot {
        requests,
        endpoints,
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
            "Client requests by how they ended: answered by an endpoint, refused by the router (4xx), or failed on every attempt (502)",
            None,
            MetricType::Counter,
        )?;
        for (outcome, n) in [
            ("answered", self.requests.answered),
            ("refused", self.requests.refused),
            ("failed", self.requests.failed),
        ] {
            ConstCounter::new(n).encode(m.encode_family(&[("outcome", outcome)])?)?;
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
