//! Price sheets: the format ([`sheet`]) and loading a whole directory of them.
//!
//! A directory is loaded all or nothing: every sheet is parsed and validated, every error of
//! every file is collected, and only a directory without a single error yields sheets. That
//! is what lets a reload keep serving the previous table when a new one is wrong.

pub mod capability;
pub mod cost;
pub mod diff;
pub mod import;
pub mod sheet;

use std::path::{Path, PathBuf};

pub use capability::{Capabilities, Capability};
pub use cost::Rates;
pub use sheet::{ModelKind, ModelPrice, PriceSheet, SheetError};

/// Every problem found in a sheets directory, each naming its file.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in price sheets:\n  {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
pub struct SheetErrors(pub Vec<SheetError>);

/// Loads every `*.toml` sheet in `dir`, sorted by file name.
pub fn load_dir(dir: &Path) -> Result<Vec<PriceSheet>, SheetErrors> {
    Ok(load_dir_with_text(dir)?
        .into_iter()
        .map(|(s, _)| s)
        .collect())
}

/// Like [`load_dir`], with each sheet's text as read (one read per file).
pub(crate) fn load_dir_with_text(dir: &Path) -> Result<Vec<(PriceSheet, String)>, SheetErrors> {
    let io_err = |path: &Path, e: std::io::Error| {
        SheetErrors(vec![SheetError {
            path: path.to_owned(),
            model: None,
            detail: format!("cannot read: {e}"),
        }])
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut sheets = Vec::with_capacity(paths.len());
    let mut errors = Vec::new();
    for path in &paths {
        match std::fs::read_to_string(path) {
            Ok(text) => match PriceSheet::parse(&text, path) {
                Ok(sheet) => sheets.push((sheet, text)),
                Err(mut e) => errors.append(&mut e),
            },
            Err(e) => errors.extend(io_err(path, e).0),
        }
    }
    if errors.is_empty() {
        Ok(sheets)
    } else {
        Err(SheetErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_with_one_bad_sheet_yields_nothing_and_names_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = "provider = \"a\"\neffective = \"2026-11-01\"\nsource = \"x\"\n[models.m]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n";
        std::fs::write(dir.path().join("a.toml"), good).expect("write");
        std::fs::write(dir.path().join("b.toml"), good.replace("\"a\"", "\"b\"")).expect("write");
        assert_eq!(load_dir(dir.path()).expect("valid").len(), 2);

        std::fs::write(dir.path().join("c.toml"), good.replace("\"a\"", "\"zz\"")).expect("write");
        let err = load_dir(dir.path()).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert!(err.to_string().contains("c.toml"), "{err}");
    }
}
