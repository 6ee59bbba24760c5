//! Live price updates: reload from the sheets directory (on SIGHUP — which reloads the
//! presets too —, a file change, or
//! `POST /admin/pricing/reload`), replace one provider's sheet (`PUT /admin/pricing/{p}`),
//! and the version history (`GET /admin/pricing/history`).
//!
//! Every update is all or nothing: the new sheets are parsed, validated and built into a
//! catalog before anything changes; a rejected update changes nothing and says why (file,
//! model, field). A `PUT` writes its file (to a temporary file, then renamed over the old
//! one) only after the catalog built from it succeeded. Each accepted version is recorded
//! with its sheets' text in the store's history. Admin routes need the admin token.

use std::path::Path;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, Gateway};
use crate::pricing::{self, PriceSheet};

/// Why a price update was refused.
#[derive(Debug, thiserror::Error)]
pub enum PriceUpdateError {
    #[error(transparent)]
    Sheets(#[from] pricing::SheetErrors),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl Gateway {
    /// Reloads every sheet from the pricing directory. `trigger` says what asked.
    pub(crate) fn reload_pricing(&self, trigger: &str) -> Result<u64, PriceUpdateError> {
        let _writer = self.price_writer();
        let dir = self.0.config.server.pricing_dir.clone();
        let (sheets, texts) = read_dir(&dir)?;
        self.install(&sheets, texts, trigger)
    }

    /// Replaces one provider's sheet with `text`, after checking it and the catalog it makes.
    pub(crate) fn put_sheet(&self, provider: &str, text: &str) -> Result<u64, PriceUpdateError> {
        let _writer = self.price_writer();
        let dir = self.0.config.server.pricing_dir.clone();
        let path = dir.join(format!("{provider}.toml"));
        let sheet = PriceSheet::parse(text, &path).map_err(pricing::SheetErrors)?;
        let (mut sheets, mut texts) = read_dir(&dir)?;
        sheets.retain(|s| s.provider != provider);
        texts.retain(|(p, _)| p != provider);
        sheets.push(sheet);
        texts.push((provider.to_owned(), text.to_owned()));
        // Check the whole catalog before touching the file.
        crate::catalog::Catalog::build(&self.0.config, &sheets, &self.0.env)?;
        let tmp = dir.join(format!(".{provider}.toml.tmp"));
        let write = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path));
        write.map_err(|source| PriceUpdateError::Write {
            path: path.display().to_string(),
            source,
        })?;
        self.install(&sheets, texts, &format!("PUT {provider}"))
    }

    /// The one price writer's turn: every update reads the directory, builds, writes and
    /// installs while holding it, so none builds on a directory another is rewriting.
    pub(super) fn price_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.0
            .price_writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn install(
        &self,
        sheets: &[PriceSheet],
        texts: Texts,
        trigger: &str,
    ) -> Result<u64, PriceUpdateError> {
        let version = self.reload(sheets)?;
        self.sheets_installed(&texts, trigger);
        let at = self.unix_ms();
        let entry = json!({
            "version": version,
            "at_unix_ms": at,
            "trigger": trigger,
            "sheets": sheets.iter().map(|s| json!({
                "provider": s.provider, "effective": s.effective, "source": s.source, "models": s.models.len(),
            })).collect::<Vec<_>>(),
            "text": texts.into_iter().map(|(p, t)| (p, Value::String(t))).collect::<serde_json::Map<String, Value>>(),
        });
        if let Some(store) = &self.0.store {
            if let Err(e) = store.append_pricing(at, &entry) {
                tracing::error!(error = %e, "recording the price version failed");
            }
        }
        remember(&self.0.price_history, entry);
        Ok(version)
    }
}

/// `(provider, sheet text)` pairs, recorded with each version.
pub(super) type Texts = Vec<(String, String)>;

/// Every sheet in `dir`, parsed, with its text, or every error.
pub(super) fn read_dir(dir: &Path) -> Result<(Vec<PriceSheet>, Texts), PriceUpdateError> {
    let loaded = pricing::load_dir_with_text(dir)?;
    let texts = loaded
        .iter()
        .map(|(s, t)| (s.provider.clone(), t.clone()))
        .collect();
    Ok((loaded.into_iter().map(|(s, _)| s).collect(), texts))
}

/// `Ok` when the request carries the admin token, else the 401 to answer.
pub(crate) fn authorized(gateway: &Gateway, headers: &HeaderMap) -> Result<(), ApiError> {
    let expected = gateway.0.admin_token.as_ref();
    let given = crate::auth::bearer(headers.get("authorization"));
    if let (Some(e), Some(g)) = (expected, given) {
        if e.matches(g) {
            return Ok(());
        }
    }
    Err(ApiError::AdminUnauthorized(if expected.is_none() {
        format!(
            "admin routes are disabled: set `{}` to enable them",
            gateway.0.config.server.admin_token_env
        )
    } else {
        "a valid admin token is required: Authorization: Bearer <token>".to_owned()
    }))
}

/// `GET /admin/clients`: requests, limits and spend per client key.
pub async fn clients(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorized(&gateway, &headers)?;
    let reports: Vec<_> = gateway.0.clients.all().iter().map(|c| c.report()).collect();
    Ok(Json(json!({"clients": reports})).into_response())
}

/// Runs an update (prices or presets) off the async threads and answers with its version or
/// why not; the error's conversion into [`ApiError`] logs what the client is not told.
pub(super) async fn apply<E>(
    gateway: &Gateway,
    update: impl FnOnce(&Gateway) -> Result<u64, E> + Send + 'static,
) -> Result<Response, ApiError>
where
    E: Send + 'static,
    ApiError: From<E>,
{
    let g = gateway.clone();
    match tokio::task::spawn_blocking(move || update(&g)).await {
        Ok(Ok(version)) => Ok(Json(json!({"version": version})).into_response()),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "the update task failed");
            Err(ApiError::Internal("the update did not complete"))
        }
    }
}

/// The newest versions kept: from the store, else the in-memory list.
pub(super) fn versions(
    gateway: &Gateway,
    stored: fn(
        &crate::stats::store::Store,
        usize,
    ) -> Result<Vec<Value>, crate::stats::store::StoreError>,
    recent: &std::sync::Mutex<Vec<Value>>,
) -> Result<Response, ApiError> {
    let versions = match &gateway.0.store {
        Some(store) => stored(store, 64).map_err(|e| {
            tracing::error!(error = %e, "reading a version history failed");
            ApiError::Internal("the version history could not be read")
        })?,
        None => {
            let recent = recent.lock().unwrap_or_else(|p| p.into_inner());
            recent.iter().rev().cloned().collect()
        }
    };
    Ok(Json(json!({"object": "list", "data": versions})).into_response())
}

/// Keeps `entry` in an in-memory history of at most 64 versions.
pub(super) fn remember(recent: &std::sync::Mutex<Vec<Value>>, entry: Value) {
    let mut recent = recent.lock().unwrap_or_else(|p| p.into_inner());
    if recent.len() == 64 {
        recent.remove(0);
    }
    recent.push(entry);
}

pub async fn reload(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorized(&gateway, &headers)?;
    apply(&gateway, |g| g.reload_pricing("POST /admin/pricing/reload")).await
}

pub async fn put(
    State(gateway): State<Gateway>,
    UrlPath(provider): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorized(&gateway, &headers)?;
    if !crate::config::is_valid_name(&provider) {
        return Err(ApiError::InvalidProvider(provider));
    }
    let text = String::from_utf8(body.to_vec()).map_err(|_| ApiError::SheetNotText)?;
    apply(&gateway, move |g| g.put_sheet(&provider, &text)).await
}

pub async fn history(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorized(&gateway, &headers)?;
    versions(
        &gateway,
        crate::stats::store::Store::pricing_history,
        &gateway.0.price_history,
    )
}

/// Reloads on SIGHUP, until the process ends.
pub(crate) async fn reload_on_sighup(gateway: Gateway) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            let g = gateway.clone();
            let result = tokio::task::spawn_blocking(move || g.reload_pricing("SIGHUP")).await;
            if let Ok(Err(e)) = result {
                tracing::warn!(error = %e, "SIGHUP reload refused; the previous prices keep serving");
            }
            let g = gateway.clone();
            let result = tokio::task::spawn_blocking(move || g.reload_routing("SIGHUP")).await;
            if let Ok(Err(e)) = result {
                tracing::warn!(error = %e, "SIGHUP presets reload refused; the previous presets keep serving");
            }
        }
    }
}

/// Reloads when a file in the pricing directory changes (debounced: one reload per burst).
pub async fn watch_dir(gateway: Gateway) {
    let dir = gateway.0.config.server.pricing_dir.clone();
    watch(gateway, dir, |g| {
        g.reload_pricing("file change")
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
}

/// Calls `reload` after each burst of changes to files in `dir`, until aborted; a refused
/// reload is logged with its reason and changes nothing.
pub(super) async fn watch(
    gateway: Gateway,
    dir: std::path::PathBuf,
    reload: fn(&Gateway) -> Result<(), String>,
) {
    use notify::{RecursiveMode, Watcher};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = match notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
        if e.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    }) {
        Ok(w) => w,
        Err(e) => {
            return tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the directory")
        }
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        return tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the directory");
    }
    while rx.recv().await.is_some() {
        // Editors write in several steps; wait for the burst to end.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        while rx.try_recv().is_ok() {}
        let g = gateway.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || reload(&g)).await {
            tracing::warn!(error = %e, dir = %dir.display(), "reload after a file change refused; the previous version keeps serving");
        }
    }
    drop(watcher);
}
