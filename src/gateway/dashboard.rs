//! `GET /dashboard`: the page and its assets, and `GET /dashboard/data`, the JSON it polls
//! (behind the admin token when one is configured), plus the task that samples its history.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Gateway;
use crate::admin::dashboard;

/// Scripts and styles from this origin only: the page loads nothing from elsewhere.
const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (CONTENT_SECURITY_POLICY, CSP),
        ],
        body,
    )
        .into_response()
}

pub async fn page() -> Response {
    asset("text/html; charset=utf-8", dashboard::INDEX_HTML)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", dashboard::APP_JS)
}

pub async fn console_script() -> Response {
    asset("text/javascript; charset=utf-8", dashboard::CONSOLE_JS)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", dashboard::STYLE_CSS)
}

pub async fn data(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
) -> Result<Response, super::ApiError> {
    let shared = &*gateway.0;
    if shared.admin_token.is_some() {
        super::prices::authorized(&gateway, &headers)?;
    }
    let live = shared.live.load_full();
    let now_ns = gateway.now_ns();
    let body = json!({
        "now_ms": gateway.unix_ms(),
        "prices_version": live.version,
        "policy": shared.planner.policy_for("").name(),
        "sample_interval_ms": shared.config.stats.sample_interval.as_millis() as u64,
        "requests": shared.request_counts(),
        "endpoints": dashboard::endpoints(&live.catalog, &live.table, now_ns),
        "endpoint_count": live.catalog.endpoints().len(),
        "timeline": shared.timeline.to_json(),
        "decisions": shared.decisions.recent(25).iter().map(|r| r.summary()).collect::<Vec<_>>(),
        "prices": dashboard::prices(&live.catalog),
        "clients": shared.clients.all().iter().map(|c| c.report()).collect::<Vec<_>>(),
    });
    Ok(([(CACHE_CONTROL, "no-store")], axum::Json(body)).into_response())
}

/// Samples the dashboard's history every `interval` until aborted.
pub(crate) async fn sample(gateway: Gateway, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let live = gateway.0.live.load_full();
        gateway.0.timeline.sample(
            &live.catalog,
            &live.table,
            gateway.now_ns(),
            gateway.unix_ms(),
        );
    }
}
