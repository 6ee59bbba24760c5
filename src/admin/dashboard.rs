//! The dashboard: a self-contained page (HTML, CSS and JavaScript compiled into the binary,
//! nothing fetched from elsewhere) and the one JSON document it polls.
//!
//! The page draws, per endpoint, latency quantiles over time (first token and whole answer),
//! success rate and traffic share per interval, price and spend, quality as declared and as
//! learned from client feedback; the recent decisions with
//! their reasons; and the price sheets in force. The assets hold no data, so they are served
//! to anyone; the data (`GET /dashboard/data`) needs the admin token when one is configured.

use serde_json::{json, Value};

use crate::catalog::Catalog;
use crate::stats::StatsTable;

pub(crate) const INDEX_HTML: &str = include_str!("dashboard/index.html");
pub(crate) const APP_JS: &str = include_str!("dashboard/app.js");
pub(crate) const STYLE_CSS: &str = include_str!("dashboard/style.css");
/// The presets console (list, edit, create, delete, history, preview; admin token).
pub(crate) const CONSOLE_JS: &str = include_str!("dashboard/console.js");

/// The current state of every endpoint with traffic, with its price.
pub fn endpoints(catalog: &Catalog, table: &StatsTable, now_ns: u64) -> Value {
    let hl = table.half_lives();
    let rows: Vec<Value> = catalog
        .endpoints()
        .iter()
        .enumerate()
        .filter_map(|(i, ep)| {
            // Read before taking the endpoint's lock (the view may need it).
            let quality = crate::admin::endpoints::quality(catalog, table, i, now_ns);
            table.with(i, |s| {
                let t = &s.totals;
                (t.attempts > 0).then(|| {
                    json!({
                        "id": ep.id,
                        "provider": catalog.provider_of(i).name,
                        "model": ep.model,
                        "input_per_mtok": ep.price.input_per_mtok,
                        "output_per_mtok": ep.price.output_per_mtok,
                        "attempts": t.attempts,
                        "successes": t.successes,
                        "failures": t.failures.iter().sum::<u64>(),
                        "in_flight": s.in_flight,
                        "spend_usd": t.spend_usd.to_string(),
                        // Regime changes detected (see `stats::change`), newest first.
                        "changes": crate::admin::endpoints::changes(s, now_ns),
                        "success_rate": s.success_rate(now_ns, &hl),
                        // Declared by the sheet, learned from client feedback.
                        "quality": quality,
                        "ttft_5m": s.ttft_window.quantiles(now_ns, 5),
                        "total_5m": s.total_window.quantiles(now_ns, 5),
                    })
                })
            })
        })
        .collect();
    Value::Array(rows)
}

/// Every provider's prices in force, grouped by provider.
pub fn prices(catalog: &Catalog) -> Value {
    let mut by_provider: std::collections::BTreeMap<&str, Vec<Value>> = Default::default();
    for (i, ep) in catalog.endpoints().iter().enumerate() {
        let p = &ep.price;
        by_provider
            .entry(catalog.provider_of(i).name.as_str())
            .or_default()
            .push(json!({
                "model": ep.model,
                "input_per_mtok": p.input_per_mtok,
                "output_per_mtok": p.output_per_mtok,
                "cached_input_per_mtok": p.cached_input_per_mtok,
                "quality": p.quality,
            }));
    }
    Value::Array(
        by_provider
            .into_iter()
            .map(|(provider, models)| json!({"provider": provider, "models": models}))
            .collect(),
    )
}
