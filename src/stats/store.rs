//! The embedded store: learned statistics saved in sled under the state directory.
//!
//! One sled database at `<state_dir>/stats.sled`. A save writes the whole [`Snapshot`] as
//! one JSON value plus the wall-clock time of saving, in one atomic batch, then flushes to
//! disk: a process killed at any moment leaves the previous save or this one, never a mix.
//! The store carries a format tag; a store written by an incompatible version, one sled
//! cannot open, or a snapshot that does not decode is reported with its path and what to do,
//! never silently replaced. `reset` starts afresh deliberately. A second tree keeps every
//! price-sheet version served, with the sheets' text, so a cost can be recomputed at the
//! price in force at the time.

use std::path::{Path, PathBuf};

use super::Snapshot;
use crate::auth::SpendState;

/// Written at creation; a store with another tag is refused.
const FORMAT: &[u8] = b"switchyard-stats/1";
const KEY_FORMAT: &[u8] = b"format";
const KEY_SNAPSHOT: &[u8] = b"snapshot";
const KEY_SAVED_AT: &[u8] = b"saved_at_unix_ms";
/// Every price-sheet version the router served, with the sheets' text.
const TREE_PRICING: &str = "pricing_history";
const TREE_ROUTING: &str = "routing_history";
const KEY_CLIENT_SPEND: &[u8] = b"client_spend";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "state store {path}: in use by another process (is a switchyard router running on it?)"
    )]
    Locked { path: PathBuf },
    #[error("state store {path}: cannot open: {source}. If it is damaged, move it aside or start with --reset-state")]
    Open { path: PathBuf, source: sled::Error },
    #[error("state store {path}: the files are damaged ({detail}). Move it aside or start with --reset-state")]
    Damaged { path: PathBuf, detail: String },
    #[error("state store {path}: written by an incompatible version (format `{found}`, this build reads `{}`). Move it aside or start with --reset-state", String::from_utf8_lossy(FORMAT))]
    Incompatible { path: PathBuf, found: String },
    #[error("state store {path}: the saved snapshot is damaged ({detail}). Move it aside or start with --reset-state")]
    Corrupt { path: PathBuf, detail: String },
    #[error("state store {path}: {source}")]
    Io { path: PathBuf, source: sled::Error },
    #[error("state store {path}: cannot remove it for --reset-state: {source}")]
    Reset {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An open store.
#[derive(Debug, Clone)]
pub struct Store {
    pub(super) db: sled::Db,
    path: PathBuf,
    /// Beside the store: the time of the last save known to have reached the disk. sled
    /// treats a damaged log entry as the end of its log and silently drops what follows;
    /// a store older than this marker has lost saves and is refused instead.
    marker: PathBuf,
}

impl Store {
    /// Opens (or creates) the store in `state_dir`; `reset` deletes an existing one first.
    pub fn open(state_dir: &Path, reset: bool) -> Result<Store, StoreError> {
        let path = state_dir.join("stats.sled");
        let marker = state_dir.join("stats.saved");
        if reset && path.exists() {
            std::fs::remove_dir_all(&path).map_err(|source| StoreError::Reset {
                path: path.clone(),
                source,
            })?;
        }
        if reset && marker.exists() {
            std::fs::remove_file(&marker).map_err(|source| StoreError::Reset {
                path: marker.clone(),
                source,
            })?;
        }
        // A store dropped a moment ago in this process (a restart in tests, `--reset-state`)
        // releases its file lock from sled's background thread: give it a second.
        let mut tries = 0;
        let db = loop {
            match sled::Config::new().path(&path).open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    tries += 1;
                    if tries == 20 {
                        return Err(StoreError::Locked { path });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(sled::Error::Corruption { .. }) => {
                    return Err(StoreError::Damaged {
                        path,
                        detail: "a checksum did not match".into(),
                    })
                }
                Err(source) => return Err(StoreError::Open { path, source }),
            }
        };
        let store = Store { db, path, marker };
        match store.db.get(KEY_FORMAT).map_err(|e| store.io(e))? {
            Some(found) if found.as_ref() == FORMAT => {}
            Some(found) => {
                return Err(StoreError::Incompatible {
                    path: store.path,
                    found: String::from_utf8_lossy(&found).into_owned(),
                })
            }
            None if store.db.is_empty() => {
                store
                    .db
                    .insert(KEY_FORMAT, FORMAT)
                    .map_err(|e| store.io(e))?;
                store.db.flush().map_err(|e| store.io(e))?;
            }
            None => {
                return Err(StoreError::Incompatible {
                    path: store.path,
                    found: "none".into(),
                })
            }
        }
        Ok(store)
    }

    fn io(&self, source: sled::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Saves a snapshot taken at `saved_at_unix_ms` and waits until it is on disk.
    pub fn save(&self, snapshot: &Snapshot, saved_at_unix_ms: u64) -> Result<(), StoreError> {
        let json = serde_json::to_vec(snapshot).expect("a snapshot always serializes");
        let mut batch = sled::Batch::default();
        batch.insert(KEY_SNAPSHOT, json);
        batch.insert(KEY_SAVED_AT, &saved_at_unix_ms.to_be_bytes());
        self.db.apply_batch(batch).map_err(|e| self.io(e))?;
        self.db.flush().map_err(|e| self.io(e))?;
        // Only after the flush: the marker never claims more than the store holds.
        let tmp = self.marker.with_extension("saved.tmp");
        std::fs::write(&tmp, format!("{}\n", saved_at_unix_ms))
            .and_then(|()| std::fs::rename(&tmp, &self.marker))
            .map_err(|e| self.io(sled::Error::Io(e)))?;
        Ok(())
    }

    /// The save time the marker file vouches for, if it is there and readable.
    fn marker_time(&self) -> Option<u64> {
        let text = std::fs::read_to_string(&self.marker).ok()?;
        text.trim().parse().ok()
    }

    /// Saves the client keys' spend windows (by client name, never by key).
    pub(crate) fn save_spend(&self, spend: &[(String, SpendState)]) -> Result<(), StoreError> {
        let json = serde_json::to_vec(spend).expect("spend states always serialize");
        self.db
            .insert(KEY_CLIENT_SPEND, json)
            .map_err(|e| self.io(e))?;
        self.db.flush().map_err(|e| self.io(e))?;
        Ok(())
    }

    /// The saved spend windows; none in a new store.
    pub(crate) fn load_spend(&self) -> Result<Vec<(String, SpendState)>, StoreError> {
        let Some(json) = self.db.get(KEY_CLIENT_SPEND).map_err(|e| self.io(e))? else {
            return Ok(Vec::new());
        };
        serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("client spend: {e}"),
        })
    }

    /// Appends one price-sheet version (JSON) to the history, keyed by time.
    pub(crate) fn append_pricing(
        &self,
        at_unix_ms: u64,
        version: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.append_history(TREE_PRICING, at_unix_ms, version)
    }

    /// Appends one presets version (JSON) to their history, keyed by time.
    pub(crate) fn append_routing(
        &self,
        at_unix_ms: u64,
        version: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.append_history(TREE_ROUTING, at_unix_ms, version)
    }

    /// The newest `limit` presets versions, newest first.
    pub(crate) fn routing_history(
        &self,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        self.history(TREE_ROUTING, limit)
    }

    fn append_history(
        &self,
        tree: &str,
        at_unix_ms: u64,
        version: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let tree = self.db.open_tree(tree).map_err(|e| self.io(e))?;
        let mut key = at_unix_ms.to_be_bytes().to_vec();
        // Two versions in one millisecond stay distinct and ordered.
        key.extend_from_slice(&tree.len().to_be_bytes());
        let value = serde_json::to_vec(version).expect("JSON values serialize");
        tree.insert(key, value).map_err(|e| self.io(e))?;
        tree.flush().map_err(|e| self.io(e))?;
        Ok(())
    }

    /// The newest `limit` price-sheet versions, newest first.
    pub(crate) fn pricing_history(
        &self,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        self.history(TREE_PRICING, limit)
    }

    fn history(&self, tree: &str, limit: usize) -> Result<Vec<serde_json::Value>, StoreError> {
        let tree = self.db.open_tree(tree).map_err(|e| self.io(e))?;
        let mut out = Vec::new();
        for entry in tree.iter().rev().take(limit) {
            let (_, v) = entry.map_err(|e| self.io(e))?;
            let json = serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("{} history: {e}", String::from_utf8_lossy(&tree.name())),
            })?;
            out.push(json);
        }
        Ok(out)
    }

    /// The last saved snapshot and when it was saved, `None` for a new store.
    pub fn load(&self) -> Result<Option<(Snapshot, u64)>, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            path: self.path.clone(),
            detail,
        };
        let vouched = self.marker_time();
        let lost = |found: Option<u64>| StoreError::Damaged {
            path: self.path.clone(),
            detail: format!(
                "it holds {} but a save from Unix ms {} had reached the disk",
                found.map_or("no save".to_owned(), |t| format!("a save from Unix ms {t}")),
                vouched.unwrap_or(0)
            ),
        };
        let Some(json) = self.db.get(KEY_SNAPSHOT).map_err(|e| self.io(e))? else {
            return match vouched {
                Some(_) => Err(lost(None)),
                None => Ok(None),
            };
        };
        let snapshot: Snapshot =
            serde_json::from_slice(&json).map_err(|e| corrupt(format!("snapshot: {e}")))?;
        let saved = self
            .db
            .get(KEY_SAVED_AT)
            .map_err(|e| self.io(e))?
            .ok_or_else(|| corrupt("no save time".into()))?;
        let bytes: [u8; 8] = saved
            .as_ref()
            .try_into()
            .map_err(|_| corrupt("save time is not 8 bytes".into()))?;
        let saved_at = u64::from_be_bytes(bytes);
        if vouched.is_some_and(|v| saved_at < v) {
            return Err(lost(Some(saved_at)));
        }
        Ok(Some((snapshot, saved_at)))
    }
}
