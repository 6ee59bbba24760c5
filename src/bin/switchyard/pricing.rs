//! `switchyard pricing`: validate, import and diff price sheets.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::Subcommand;

use crate::print_lines;

#[derive(Subcommand)]
pub enum PricingCommand {
    /// Check every sheet in a directory; every problem is printed with file, model and field.
    Validate {
        #[arg(default_value = "pricing")]
        dir: PathBuf,
    },
    /// Write sheets from LiteLLM's price table or OpenRouter's model list.
    Import {
        /// The format of FILE.
        #[arg(long, value_enum)]
        from: ImportFormat,
        file: PathBuf,
        /// Only these providers (switchyard names, e.g. together, google); all when absent.
        #[arg(long = "provider")]
        providers: Vec<String>,
        /// Where to write `<provider>.toml` files.
        #[arg(long, default_value = "pricing")]
        out: PathBuf,
        /// The sheets' `effective` date (default: today).
        #[arg(long)]
        effective: Option<String>,
        /// The sheets' `source` (default: the file's name).
        #[arg(long)]
        source: Option<String>,
    },
    /// Show what changed between two sheets directories (or two sheet files).
    Diff { old: PathBuf, new: PathBuf },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ImportFormat {
    Litellm,
    Openrouter,
}

pub fn run(cmd: PricingCommand) -> Result<(), String> {
    use switchyard::pricing::{self, diff, import, PriceSheet};
    match cmd {
        PricingCommand::Validate { dir } => {
            let sheets = pricing::load_dir(&dir).map_err(|e| e.to_string())?;
            if sheets.is_empty() {
                return Err(format!("{}: no *.toml price sheets here", dir.display()));
            }
            let models: usize = sheets.iter().map(|s| s.models.len()).sum();
            print_lines([format!(
                "{}: {} sheets, {models} models, all valid",
                dir.display(),
                sheets.len()
            )]);
            Ok(())
        }
        PricingCommand::Import {
            from,
            file,
            providers,
            out,
            effective,
            source,
        } => {
            let json =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let effective = effective.unwrap_or_else(|| {
                humantime::format_rfc3339(SystemTime::now()).to_string()[..10].to_owned()
            });
            let source = source.unwrap_or_else(|| {
                file.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            });
            let imported = match from {
                ImportFormat::Litellm => {
                    import::from_litellm(&json, &providers, &effective, &source)
                }
                ImportFormat::Openrouter => import::from_openrouter(&json, &effective, &source),
            }
            .map_err(|e| format!("{}: {e}", file.display()))?;
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            for sheet in &imported.sheets {
                let path = out.join(format!("{}.toml", sheet.provider));
                let text = sheet.to_toml();
                // The same validation the router applies, before the file is written.
                PriceSheet::parse(&text, &path)
                    .map_err(|e| format!("{}", pricing::SheetErrors(e)))?;
                std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
                print_lines([format!(
                    "wrote {} ({} models)",
                    path.display(),
                    sheet.models.len()
                )]);
            }
            let mut reasons: std::collections::BTreeMap<String, usize> =
                std::collections::BTreeMap::new();
            for (_, why) in &imported.skipped {
                *reasons.entry(why.kind().to_owned()).or_default() += 1;
            }
            let summary = std::iter::once(format!("skipped {} entries:", imported.skipped.len()))
                .chain(reasons.iter().map(|(why, n)| format!("  {n:>5}  {why}")));
            print_lines(summary);
            Ok(())
        }
        PricingCommand::Diff { old, new } => {
            let load = |p: &Path| -> Result<Vec<PriceSheet>, String> {
                if p.is_dir() {
                    pricing::load_dir(p).map_err(|e| e.to_string())
                } else {
                    let text =
                        std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                    // Compare sheets by content: the file name need not be <provider>.toml.
                    let sheet: PriceSheet =
                        toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
                    Ok(vec![sheet])
                }
            };
            let changes = diff::diff(&load(&old)?, &load(&new)?);
            if changes.is_empty() {
                print_lines(["no price changes".to_owned()]);
            }
            print_lines(changes.iter().map(|c| c.to_string()));
            Ok(())
        }
    }
}
