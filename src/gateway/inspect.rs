//! What the router tells about itself: the model list, a request's decision (from the
//! in-memory ring, else the request log), the endpoint report, `/metrics`, health, and the
//! answers to unknown routes and methods.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use serde_json::json;

use super::guard::Caller;
use super::{ApiError, Gateway};
use crate::admin;
use crate::catalog::Catalog;

/// The client routes an endpoint serves.
fn operations(catalog: &Catalog, idx: usize) -> Vec<&'static str> {
    let provider = catalog.provider_of(idx);
    let openai = provider.protocol == crate::dialect::Protocol::Openai;
    match (catalog.endpoint(idx).kind.is_chat(), openai) {
        (true, true) if provider.responses => {
            vec!["chat.completions", "messages", "completions", "responses"]
        }
        (true, true) => vec!["chat.completions", "messages", "completions"],
        (true, false) => vec!["chat.completions", "messages"],
        (false, true) => vec!["embeddings"],
        (false, false) => vec![],
    }
}

pub async fn models(State(gateway): State<Gateway>) -> Response {
    let body = gateway.0.live.load().models_json.clone();
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}

/// The OpenAI model list, extended: every endpoint with its prices and limits, every model
/// served by several providers, every group, every preset, and `auto`, each with what it
/// covers.
pub(crate) fn models_json(catalog: &Catalog, presets: &crate::presets::Presets) -> Bytes {
    let ids = |idxs: &[usize]| -> Vec<&str> {
        idxs.iter()
            .map(|&i| catalog.endpoint(i).id.as_str())
            .collect()
    };
    let mut data = Vec::new();
    for (i, ep) in catalog.endpoints().iter().enumerate() {
        let p = &ep.price;
        data.push(json!({
            "id": ep.id, "object": "model", "created": 0,
            "owned_by": catalog.provider_of(i).name,
            "kind": "endpoint",
            "model_kind": ep.kind,
            "operations": operations(catalog, i),
            "upstream_model": ep.upstream_model,
            "pricing": {
                "input_per_mtok": p.input_per_mtok,
                "output_per_mtok": p.output_per_mtok,
                "cached_input_per_mtok": p.cached_input_per_mtok,
                "per_request": p.per_request,
            },
            "context_window": p.context_window,
            "max_output_tokens": p.max_output_tokens,
            "quality": p.quality,
        }));
    }
    let mut shared: Vec<_> = catalog.shared_models().collect();
    shared.sort_by_key(|(name, _)| *name);
    for (name, idxs) in shared {
        data.push(
            json!({"id": name, "object": "model", "created": 0, "owned_by": "switchyard",
            "kind": "model", "endpoints": ids(idxs)}),
        );
    }
    for (name, idxs) in catalog.groups() {
        data.push(
            json!({"id": name, "object": "model", "created": 0, "owned_by": "switchyard",
            "kind": "group", "endpoints": ids(idxs)}),
        );
    }
    // The default preset is not a model to ask for: it applies to every other request.
    for p in presets.all().filter(|p| p.name != crate::presets::DEFAULT) {
        data.push(
            json!({"id": format!("{}{}", crate::presets::PREFIX, p.name), "object": "model",
            "created": 0, "owned_by": "switchyard", "kind": "preset", "models": p.models,
            "policy": p.policy, "description": p.description, "presets_version": presets.version}),
        );
    }
    let all = catalog.resolve("auto").unwrap_or(&[]);
    data.push(
        json!({"id": "auto", "object": "model", "created": 0, "owned_by": "switchyard",
        "kind": "auto", "endpoints": ids(all)}),
    );
    Bytes::from(json!({"object": "list", "data": data}).to_string())
}

/// `GET /v1/decisions/{id}`: why a recent request was routed as it was.
/// A client key sees only its own decisions.
pub async fn decision(
    State(gateway): State<Gateway>,
    caller: Option<Extension<Caller>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let caller = caller.map(|Extension(c)| c).unwrap_or_default();
    match gateway.0.decisions.find(&id) {
        Some(record) if record.client.as_deref() == caller.name() => {
            let (now_ns, now_ms) = (gateway.now_ns(), gateway.unix_ms());
            // Changes detected at most ten minutes before the decision, as then known.
            let changes = |endpoint: &str, decided_ms: u64| -> Vec<serde_json::Value> {
                let Some(s) = gateway.0.stats.read(endpoint) else {
                    return Vec::new();
                };
                s.changes
                    .newest_first()
                    .filter_map(|c| {
                        let at_ms =
                            now_ms.saturating_sub(now_ns.saturating_sub(c.at_ns) / 1_000_000);
                        let before = decided_ms.checked_sub(at_ms)?;
                        (before <= 600_000).then(|| {
                            json!({"stream": c.stream, "seconds_before": before as f64 / 1000.0,
                                "old": c.old, "new": c.new})
                        })
                    })
                    .collect()
            };
            // The prompt-size relation as learned now (it moves slowly).
            let prefill = |endpoint: &str| {
                let hl = gateway.0.stats.half_lives();
                gateway
                    .0
                    .stats
                    .read(endpoint)
                    .and_then(|s| s.view(now_ns, &hl).prefill)
                    .map_or(serde_json::Value::Null, admin::endpoints::prefill)
            };
            axum::Json(record.to_json(changes, prefill)).into_response()
        }
        Some(_) => ApiError::DecisionNotFound(id).into_response(),
        None => from_log(&gateway, caller.name(), id).await,
    }
}

/// A decision the ring has moved past, as the request log recorded it.
async fn from_log(gateway: &Gateway, client: Option<&str>, id: String) -> Response {
    let Some(dir) = gateway.0.log.as_ref().map(|l| l.dir.clone()) else {
        return ApiError::DecisionNotFound(id).into_response();
    };
    let wanted = id.clone();
    let found = tokio::task::spawn_blocking(move || crate::log::read::find(&dir, &wanted)).await;
    match found {
        Ok(Ok(Some(record))) if record.client.as_deref() == client => {
            let mut value = serde_json::to_value(&record).unwrap_or_default();
            value["source"] = json!("request_log");
            axum::Json(value).into_response()
        }
        _ => ApiError::DecisionNotFound(id).into_response(),
    }
}

/// `GET /v1/endpoints`: what the router has seen of every endpoint.
pub async fn endpoints(State(gateway): State<Gateway>) -> Response {
    let shared = &*gateway.0;
    let live = shared.live.load_full();
    let report = admin::endpoints::report(&live.catalog, &live.table, gateway.now_ns());
    axum::Json(report).into_response()
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics(State(gateway): State<Gateway>) -> Response {
    let shared = &*gateway.0;
    let requests = admin::metrics::RequestCounts {
        clients: shared.clients.all().iter().map(|c| c.report()).collect(),
        cost_disagreements: super::usage::COST_DISAGREEMENTS.load(Ordering::Relaxed),
        fleet: shared.fleet.as_ref().map(|f| admin::metrics::FleetGauges {
            connected: f.status.connected(),
            replicas: f.status.replicas(),
            sync_failures: f.status.sync_failures(),
        }),
        ..shared.request_counts()
    };
    let live = shared.live.load_full();
    let text = admin::metrics::render(&live.catalog, &live.table, requests, gateway.now_ns());
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

pub async fn healthz(State(gateway): State<Gateway>) -> Response {
    let shared = &*gateway.0;
    let live = shared.live.load_full();
    let endpoints = live.catalog.endpoints().len();
    let state = shared.store.as_ref().map(|store| {
        let last = &shared.last_save;
        let at = last.at_unix_ms.load(Ordering::Relaxed);
        json!({
            "path": store.path().display().to_string(),
            "saved_at_unix_ms": (at > 0).then_some(at),
            "saved_attempts": last.attempts.load(Ordering::Relaxed),
        })
    });
    (
        StatusCode::OK,
        axum::Json(json!({
            "status": "ok",
            "endpoints": endpoints,
            "prices_version": live.version,
            "state": state,
            "fleet": shared.fleet.as_ref().map(|f| f.status.report()),
        })),
    )
        .into_response()
}

pub(crate) async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

/// A known route asked with a method it does not answer: 405, OpenAI-shaped. axum adds the
/// `Allow` header with the route's methods to this answer (it knows them; a table here would
/// drift from the routes).
pub async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}
