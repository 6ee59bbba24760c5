//! Live presets: reload from the routing directory (on SIGHUP, a file change, or
//! `POST /admin/routing/reload`), create or replace one (`PUT /admin/routing/{name}`, TOML
//! body), delete one (`DELETE /admin/routing/{name}`), list them (`GET /admin/routing`) and
//! their versions (`GET /admin/routing/history`). All behind the admin token.
//!
//! As with prices, every change is all or nothing: the new set is parsed and checked against
//! the catalog in force before anything changes; a refused change names the file and the
//! field and the previous presets keep serving. The one writer (shared with price updates)
//! serialises changes, so concurrent edits never lose one. The new set is swapped in whole:
//! a request keeps the presets it started with. Each accepted version is kept in the store.

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::prices::{apply, authorized, remember, versions};
use super::{ApiError, Gateway, Live};
use crate::presets::{self, Preset, PresetErrors, Presets};

/// Why a presets change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RoutingUpdateError {
    #[error(transparent)]
    Presets(#[from] PresetErrors),
    #[error("no preset `{0}`")]
    NotFound(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl Gateway {
    /// Reloads every preset from the routing directory. `trigger` says what asked.
    pub fn reload_routing(&self, trigger: &str) -> Result<u64, RoutingUpdateError> {
        let _writer = self.price_writer();
        let dir = self.0.config.server.routing_dir.clone();
        let loaded = presets::load_dir(&dir)?;
        self.install_presets(loaded, trigger)
    }

    /// Creates or replaces one preset with `text`, after checking it and the catalog.
    pub fn put_preset(&self, name: &str, text: &str) -> Result<u64, RoutingUpdateError> {
        let _writer = self.price_writer();
        let dir = self.0.config.server.routing_dir.clone();
        let path = dir.join(format!("{name}.toml"));
        let preset = Preset::parse(text, &path).map_err(PresetErrors::from)?;
        let mut all: Vec<Preset> = self.live().presets.all().cloned().collect();
        all.retain(|p| p.name != name);
        all.push(preset);
        let candidate = Presets::new(all.clone(), 0);
        candidate.check(&self.live().catalog, &dir)?;
        write_file(&dir, &path, Some(text))?;
        self.install_presets(all, &format!("PUT {name}"))
    }

    /// Deletes one preset (its file too).
    pub fn delete_preset(&self, name: &str) -> Result<u64, RoutingUpdateError> {
        let _writer = self.price_writer();
        let dir = self.0.config.server.routing_dir.clone();
        let mut all: Vec<Preset> = self.live().presets.all().cloned().collect();
        let before = all.len();
        all.retain(|p| p.name != name);
        if all.len() == before {
            return Err(RoutingUpdateError::NotFound(name.to_owned()));
        }
        write_file(&dir, &dir.join(format!("{name}.toml")), None)?;
        self.install_presets(all, &format!("DELETE {name}"))
    }

    /// Checks `all` against the catalog in force and swaps it in; returns its version.
    /// The caller holds the writer.
    fn install_presets(&self, all: Vec<Preset>, trigger: &str) -> Result<u64, RoutingUpdateError> {
        let shared = &*self.0;
        let dir = &shared.config.server.routing_dir;
        let mut version = 0;
        let mut refused = None;
        shared.live.rcu(|old| {
            let next = Presets::new(all.clone(), old.presets.version + 1);
            if let Err(e) = next.check(&old.catalog, dir) {
                refused = Some(e);
                return old.clone();
            }
            refused = None;
            version = next.version;
            Arc::new(Live::new(
                old.catalog.clone(),
                &shared.stats,
                old.version,
                Arc::new(next),
            ))
        });
        if let Some(e) = refused {
            return Err(e.into());
        }
        let at = self.unix_ms();
        let entry = json!({
            "version": version,
            "at_unix_ms": at,
            "trigger": trigger,
            "presets": all.iter().map(|p| (p.name.clone(), Value::String(p.text.clone()))).collect::<serde_json::Map<String, Value>>(),
        });
        if let Some(store) = &shared.store {
            if let Err(e) = store.append_routing(at, &entry) {
                tracing::error!(error = %e, "recording the presets version failed");
            }
        }
        remember(&shared.routing_history, entry);
        tracing::info!(version, presets = all.len(), trigger, "presets changed");
        Ok(version)
    }
}

/// Writes (or, with `None`, removes) a preset file: to a temporary file, then renamed.
fn write_file(dir: &Path, path: &Path, text: Option<&str>) -> Result<(), RoutingUpdateError> {
    let failed = |source: std::io::Error| RoutingUpdateError::Write {
        path: path.display().to_string(),
        source,
    };
    match text {
        Some(text) => {
            std::fs::create_dir_all(dir).map_err(failed)?;
            let tmp = path.with_extension("toml.tmp");
            std::fs::write(&tmp, text)
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(failed)
        }
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(failed(e)),
            _ => Ok(()),
        },
    }
}

/// `GET /admin/routing`: every preset with its text, and the version.
pub async fn list(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorized(&gateway, &headers)?;
    let presets = gateway.live().presets.clone();
    let data: Vec<Value> = presets
        .all()
        .map(|p| {
            json!({"name": p.name, "model": format!("{}{}", presets::PREFIX, p.name),
                "models": p.models, "policy": p.policy, "description": p.description, "text": p.text})
        })
        .collect();
    Ok(Json(json!({"object": "list", "version": presets.version, "data": data})).into_response())
}

pub async fn reload(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorized(&gateway, &headers)?;
    apply(&gateway, |g| g.reload_routing("POST /admin/routing/reload")).await
}

pub async fn put(
    State(gateway): State<Gateway>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorized(&gateway, &headers)?;
    if !crate::config::is_valid_name(&name) {
        return Err(ApiError::InvalidProvider(name));
    }
    let text = String::from_utf8(body.to_vec()).map_err(|_| ApiError::SheetNotText)?;
    apply(&gateway, move |g| g.put_preset(&name, &text)).await
}

pub async fn delete(
    State(gateway): State<Gateway>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorized(&gateway, &headers)?;
    apply(&gateway, move |g| g.delete_preset(&name)).await
}

pub async fn history(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorized(&gateway, &headers)?;
    versions(
        &gateway,
        crate::stats::store::Store::routing_history,
        &gateway.0.routing_history,
    )
}

/// Reloads when a file in the routing directory changes (debounced: one reload per burst).
pub async fn watch_dir(gateway: Gateway) {
    let dir = gateway.0.config.server.routing_dir.clone();
    if !dir.is_dir() {
        // No presets directory: nothing to watch (a PUT creates it and installs directly).
        return tracing::debug!(dir = %dir.display(), "no routing directory to watch");
    }
    super::prices::watch(gateway, dir, |g| {
        g.reload_routing("file change")
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
}

/// `POST /admin/routing/{name}/preview`: what the preset would do now for a sample request
/// (the body, a chat request without `model`; a one-line greeting when empty), against the
/// statistics in force, without sending anything upstream.
pub async fn preview(
    State(gateway): State<Gateway>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorized(&gateway, &headers)?;
    let mut sample = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(crate::route::BodyError::NotAnObject.into()),
            Err(e) => return Err(crate::route::BodyError::Json(e.to_string()).into()),
        }
    };
    sample.insert(
        "model".into(),
        Value::String(format!("{}{name}", presets::PREFIX)),
    );
    sample
        .entry("messages")
        .or_insert_with(|| json!([{"role": "user", "content": "Hello!"}]));
    let bytes = serde_json::to_vec(&sample).expect("JSON values serialize");
    let chat = crate::route::ChatBody::parse(&bytes)?;
    let shared = &*gateway.0;
    let live = gateway.live();
    let parsed = crate::plan::Parsed::with_presets(&chat, |_| None, &live.presets)?;
    let mut rng = shared.rng.for_request();
    let plan = shared.planner.plan(
        &live.catalog,
        &live.table,
        &parsed,
        gateway.now_ns(),
        &mut rng,
    )?;
    let id = |i: usize| live.catalog.endpoint(i).id.clone();
    let first = plan.decision.ranked.first().map(|&i| id(i));
    let record = super::decisions::Record {
        request_id: "preview".into(),
        at_unix_ms: gateway.unix_ms(),
        client: None,
        model: chat.model.to_string(),
        preset: parsed.preset.clone(),
        catalog: live.catalog.clone(),
        request: parsed.request,
        decision: plan.decision,
        removed: plan.removed,
        max_attempts: plan.max_attempts,
        failures: Vec::new(),
        answered_by: None,
        candidates_total: 0,
        removed_total: 0,
        affinity: crate::affinity::Outcome::None,
        hedge: None,
    };
    Ok(
        Json(json!({"would_pick": first, "decision": record.to_json(|_, _| Vec::new(), |_| Value::Null)}))
            .into_response(),
    )
}
