//! The router as the fleet's sync task sees it ([`crate::fleet::sync::Host`]): its clock,
//! statistics and client keys, and its price sheets to share and to take in.

use std::sync::Arc;

use super::prices::{read_dir, PriceUpdateError, Texts};
use super::Gateway;
use crate::fleet::merge::Instant;
use crate::fleet::sync::{Host, Texts as SheetTexts};
use crate::pricing::{self, PriceSheet};
use crate::stats::Stats;

/// The trigger recorded for sheets taken in from the fleet (they are not published again).
const FROM_FLEET: &str = "fleet";

impl Gateway {
    /// Called by every accepted price update with the sheets now in force.
    pub(super) fn sheets_installed(&self, texts: &Texts, trigger: &str) {
        let texts: SheetTexts = texts.iter().cloned().collect();
        *lock(&self.0.price_texts) = Some(texts);
        if let Some(fleet) = &self.0.fleet {
            if trigger != FROM_FLEET {
                fleet.prices_changed();
            }
        }
    }

    /// Installs the fleet's sheets, all or nothing: every sheet is parsed and the catalog
    /// built before a file is written; then the changed files are written (temporary file,
    /// rename) and those of providers the fleet no longer has removed.
    fn take_fleet_sheets(&self, texts: SheetTexts) -> Result<u64, PriceUpdateError> {
        let _writer = self.price_writer();
        let dir = self.0.config.server.pricing_dir.clone();
        let mut sheets = Vec::with_capacity(texts.len());
        let mut errors = Vec::new();
        for (provider, text) in &texts {
            let path = dir.join(format!("{provider}.toml"));
            if !crate::config::is_valid_name(provider) {
                errors.push(pricing::SheetError {
                    path,
                    model: None,
                    detail: "provider: not a valid name".into(),
                });
                continue;
            }
            match PriceSheet::parse(text, &path) {
                Ok(s) => sheets.push(s),
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            return Err(pricing::SheetErrors(errors).into());
        }
        crate::catalog::Catalog::build(&self.0.config, &sheets, &self.0.env)?;
        let (_, current) = read_dir(&dir)?;
        let write = |path: &std::path::Path, r: std::io::Result<()>| {
            r.map_err(|source| PriceUpdateError::Write {
                path: path.display().to_string(),
                source,
            })
        };
        for (provider, text) in &texts {
            if current.iter().any(|(p, t)| p == provider && t == text) {
                continue;
            }
            let path = dir.join(format!("{provider}.toml"));
            let tmp = dir.join(format!(".{provider}.toml.tmp"));
            write(
                &path,
                std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)),
            )?;
        }
        for (provider, _) in current.iter().filter(|(p, _)| !texts.contains_key(p)) {
            let path = dir.join(format!("{provider}.toml"));
            write(&path, std::fs::remove_file(&path))?;
        }
        self.install(&sheets, texts.into_iter().collect(), FROM_FLEET)
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Host for Gateway {
    fn instant(&self) -> Instant {
        Instant {
            now_ns: self.now_ns(),
            unix_ms: self.unix_ms(),
        }
    }

    fn stats(&self) -> &Arc<Stats> {
        &self.0.stats
    }

    fn clients(&self) -> &crate::auth::Clients {
        &self.0.clients
    }

    fn price_texts(&self) -> SheetTexts {
        if let Some(texts) = lock(&self.0.price_texts).as_ref() {
            return texts.clone();
        }
        match read_dir(&self.0.config.server.pricing_dir) {
            Ok((_, texts)) => {
                let texts: SheetTexts = texts.into_iter().collect();
                *lock(&self.0.price_texts) = Some(texts.clone());
                texts
            }
            Err(e) => {
                tracing::warn!(error = %e, "fleet: the pricing directory cannot be read");
                SheetTexts::new()
            }
        }
    }

    fn apply_prices(&self, texts: SheetTexts) -> Result<u64, String> {
        self.take_fleet_sheets(texts).map_err(|e| e.to_string())
    }
}
