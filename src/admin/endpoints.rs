//! The per-endpoint report: traffic, outcomes, latency quantiles per window, learned fits.

use serde_json::{json, Map, Value};

use crate::catalog::Catalog;
use crate::stats::window::{Window, VIEWS};
use crate::stats::{EndpointStats, FailureClass, HalfLives, Snapshot, Stats, StatsTable};

/// `GET /v1/endpoints`: every endpoint of the catalog with what was seen of it.
pub fn report(catalog: &Catalog, table: &StatsTable, now_ns: u64) -> Value {
    let hl = table.half_lives();
    let endpoints: Vec<Value> = catalog
        .endpoints()
        .iter()
        .enumerate()
        .map(|(i, ep)| {
            let s = table.read(i);
            let mut entry = endpoint_entry(&s, now_ns, &hl);
            let obj = entry.as_object_mut().expect("an object");
            obj.insert("id".into(), json!(ep.id));
            obj.insert("provider".into(), json!(catalog.provider_of(i).name));
            obj.insert("model".into(), json!(ep.model));
            obj.insert(
                "price".into(),
                json!({"input_per_mtok": ep.price.input_per_mtok, "output_per_mtok": ep.price.output_per_mtok}),
            );
            obj.insert("quality".into(), quality(catalog, table, i, now_ns));
            entry
        })
        .collect();
    json!({ "object": "list", "data": endpoints })
}

/// An endpoint's quality: as its sheet declares it, and as clients' feedback taught (the
/// posterior's mean around the declared prior, with the decayed number of scores; `null`
/// before any feedback, when the declared value is what routing uses).
pub fn quality(catalog: &Catalog, table: &StatsTable, idx: usize, now_ns: u64) -> Value {
    let (declared, posterior) = qualities(catalog, table, idx, now_ns);
    json!({
        "declared": declared,
        "learned": posterior.map(|p| round3(p.mean())),
        "feedback": posterior.map_or(0.0, |p| round3(p.weight)),
    })
}

/// An endpoint's declared quality and its feedback posterior (`None` before any feedback).
pub fn qualities(
    catalog: &Catalog,
    table: &StatsTable,
    idx: usize,
    now_ns: u64,
) -> (Option<f64>, Option<crate::stats::QualityPosterior>) {
    let declared = catalog.endpoint(idx).price.quality;
    let view = table.view(idx, now_ns);
    let posterior = view.quality.posterior(
        declared,
        table.quality_prior(),
        now_ns,
        table.half_lives().quality,
    );
    (declared, posterior)
}

/// One endpoint's numbers, without its catalog identity (shared with `switchyard stats`).
pub fn endpoint_entry(s: &EndpointStats, now_ns: u64, hl: &HalfLives) -> Value {
    let t = &s.totals;
    let failures: Map<String, Value> = FailureClass::ALL
        .iter()
        .map(|c| (c.name().to_owned(), json!(t.failures[c.index()])))
        .collect();
    let view = s.local_view(now_ns, hl);
    let median = |m: Option<crate::stats::LogSummary>| m.map(|m| round1(m.median()));
    // In a fleet: what the selector reads, this replica's figures and its peers' together.
    let fleet = s.peers.map(|p| {
        let v = s.view(now_ns, hl);
        json!({
            "peer_replicas": p.replicas,
            "attempts": v.attempts,
            "ttft_median_ms": median(v.ttft_ms),
            "total_median_ms": median(v.total_ms),
            "tokens_per_s_median": median(v.tokens_per_s),
            "decayed_successes": round3(v.successes),
            "decayed_failures": round3(v.failures),
            "resting_s": (v.retry_after_ns > 0).then(|| round1(v.retry_after_ns as f64 / 1e9)),
        })
    });
    json!({
        "fleet": fleet,
        "attempts": t.attempts,
        "successes": t.successes,
        "failures": failures,
        "cancelled": t.cancelled,
        "rejected": t.rejected,
        "in_flight": s.in_flight,
        "prompt_tokens": t.prompt_tokens,
        "output_tokens": t.output_tokens,
        "spend_usd": t.spend_usd.to_string(),
        "success_rate": s.success_rate(now_ns, hl).map(round3),
        // Detected regime changes (see `stats::change`), newest first.
        "changes": changes(s, now_ns),
        "last_failure": s.last_failure.map(|(at, class)| json!({
            "class": class.name(),
            "seconds_ago": round1(now_ns.saturating_sub(at) as f64 / 1e9),
        })),
        "ttft_ms": windows(&s.ttft_window, now_ns),
        "total_ms": windows(&s.total_window, now_ns),
        "tokens_per_s": windows(&s.speed_window, now_ns),
        "learned": {
            "ttft_median_ms": median(view.ttft_ms),
            "total_median_ms": median(view.total_ms),
            "tokens_per_s_median": median(view.tokens_per_s),
            "decayed_successes": round3(view.successes),
            "decayed_failures": round3(view.failures),
            // What a failure before the first byte costs the fallback in time: the mean
            // the selector prices (see `select::thompson`).
            "failure_mean_ms": view.failure_ms.mean_value().map(round1),
            "prefill": view.prefill.map(prefill),
        },
    })
}

/// The learned relation of first-token time to prompt size (see `stats::prefill`): the
/// least-squares median at three sizes, the average growth between 1k and 32k tokens, the
/// slope of log TTFT against `ln(1 + tokens / 1000)` (`null` while one size was seen).
pub(crate) fn prefill(p: crate::stats::PrefillSummary) -> Value {
    let (at_1k, at_8k, at_32k) = (p.median_at(1e3), p.median_at(8e3), p.median_at(32e3));
    json!({
        "observations": round3(p.weight()),
        "slope": p.slope().map(round3),
        "ttft_median_ms_at": {"1k": round1(at_1k), "8k": round1(at_8k), "32k": round1(at_32k)},
        "ms_per_1k_prompt_tokens": round1((at_32k - at_1k) / 31.0),
    })
}

/// An endpoint's detected regime changes (when, which stream, old → new), newest first.
pub fn changes(s: &EndpointStats, now_ns: u64) -> Value {
    s.changes
        .newest_first()
        .map(|c| {
            json!({
                "stream": c.stream,
                "seconds_ago": round1(now_ns.saturating_sub(c.at_ns) as f64 / 1e9),
                "old": round3(c.old),
                "new": round3(c.new),
            })
        })
        .collect()
}

fn windows(w: &Window, now_ns: u64) -> Value {
    let views: Map<String, Value> = VIEWS
        .iter()
        .map(|(label, buckets)| (label.to_string(), json!(w.quantiles(now_ns, *buckets))))
        .collect();
    Value::Object(views)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `switchyard stats`: a saved snapshot, aged to now, as JSON (the `/v1/endpoints` fields
/// a snapshot keeps) and as a table for the terminal.
pub fn stored_report(snapshot: Snapshot, age_ns: u64, hl: HalfLives) -> (Value, String) {
    let ids: Vec<String> = snapshot.endpoints.keys().cloned().collect();
    let stats = Stats::new_with(hl, crate::stats::DEFAULT_QUALITY_PRIOR);
    stats.restore(snapshot, age_ns, 0);
    let mut rows = Vec::new();
    let mut table = format!(
        "{:<40} {:>9} {:>9} {:>8} {:>9} {:>10} {:>11} {:>9}\n",
        "endpoint",
        "attempts",
        "failures",
        "success",
        "ttft p50",
        "total p50",
        "tokens/s",
        "cancel"
    );
    for id in ids {
        let s = stats.read(&id).expect("restored above");
        let mut entry = endpoint_entry(&s, 0, &hl);
        let learned = entry["learned"].clone();
        let obj = entry.as_object_mut().expect("an object");
        obj.insert("id".into(), json!(id));
        for window_only in [
            "ttft_ms",
            "total_ms",
            "tokens_per_s",
            "in_flight",
            "last_failure",
        ] {
            obj.remove(window_only);
        }
        let t = &s.totals;
        let fmt = |v: &Value, unit: &str| match v.as_f64() {
            Some(x) => format!("{x:.0}{unit}"),
            None => "-".into(),
        };
        let rate = match entry["success_rate"].as_f64() {
            Some(r) => format!("{:.1}%", r * 100.0),
            None => "-".into(),
        };
        table.push_str(&format!(
            "{:<40} {:>9} {:>9} {:>8} {:>9} {:>10} {:>11} {:>9}\n",
            id,
            t.attempts,
            t.failures.iter().sum::<u64>(),
            rate,
            fmt(&learned["ttft_median_ms"], " ms"),
            fmt(&learned["total_median_ms"], " ms"),
            fmt(&learned["tokens_per_s_median"], ""),
            t.cancelled,
        ));
        rows.push(entry);
    }
    (json!({ "object": "list", "data": rows }), table)
}
