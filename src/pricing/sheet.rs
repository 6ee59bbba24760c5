//! One price sheet: `pricing/<provider>.toml`, prices in USD per million tokens.
//!
//! Validation refuses what would silently route money the wrong way: negative, non-finite or
//! absurd prices, a quality outside [0, 1], a zero context window, a sheet with no models, a
//! malformed `effective` date. Every error names the file, the model and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Highest price per million tokens accepted. The dearest real models today cost a few
/// hundred dollars per million output tokens; a value above this is a unit mistake
/// (USD per token or per thousand pasted as per million).
pub(crate) const MAX_PRICE_PER_MTOK: f64 = 1_000.0;
/// Highest fixed price per request accepted, in USD.
pub(crate) const MAX_PRICE_PER_REQUEST: f64 = 10.0;

/// A provider's prices, as written in its sheet.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSheet {
    /// The provider these prices are for; must match the file name.
    pub provider: String,
    /// The date from which these prices apply, `YYYY-MM-DD`.
    pub effective: String,
    /// Where the prices were read (a URL).
    pub source: String,
    /// Model name (as clients say it) → prices.
    pub models: BTreeMap<String, ModelPrice>,
}

/// Prices and limits of one model at one provider.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// The name sent upstream, when it differs from the model name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_model: Option<String>,
    /// USD per million prompt tokens.
    pub input_per_mtok: f64,
    /// USD per million completion tokens (0 for embedding models, which may omit it).
    #[serde(default = "absent")]
    pub output_per_mtok: f64,
    /// What the model does: `chat` (the default) or `embedding`. Chat requests never go to
    /// embedding models, nor embedding requests to chat models.
    #[serde(default, skip_serializing_if = "ModelKind::is_chat")]
    pub kind: ModelKind,
    /// USD per million prompt tokens served from the provider's cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
    /// USD per million prompt tokens written to the provider's cache (Anthropic's
    /// `cache_creation_input_tokens`); the input price when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
    /// USD charged per request on top of tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_request: Option<f64>,
    /// Largest prompt plus completion, in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
    /// Largest completion, in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Relative answer quality in [0, 1], for `min_quality` hints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<f64>,
    /// What the model can do (`tools`, `vision`, ...; see [`super::capability`]); absent:
    /// unknown, which `[routing] unknown_capabilities` decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports: Option<super::Capabilities>,
}

/// One thing wrong with one sheet.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {}{}", path.display(), model.as_ref().map(|m| format!("model `{m}`: ")).unwrap_or_default(), detail)]
pub struct SheetError {
    pub path: PathBuf,
    pub model: Option<String>,
    /// What is wrong, starting with the field name where there is one.
    pub detail: String,
}

impl PriceSheet {
    /// The sheet as TOML, in the format [`PriceSheet::parse`] reads.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("a price sheet always serializes");
        format!("# Prices in USD per million tokens (per_request: USD per request).\n{body}")
    }

    /// Parses and validates a sheet; `path` names it in errors and must be `<provider>.toml`.
    pub fn parse(text: &str, path: &Path) -> Result<PriceSheet, Vec<SheetError>> {
        let err = |model: Option<&str>, detail: String| SheetError {
            path: path.to_owned(),
            model: model.map(str::to_owned),
            detail,
        };
        let mut sheet: PriceSheet =
            toml::from_str(text).map_err(|e| vec![err(None, e.to_string())])?;
        let mut errors = Vec::new();
        for (name, price) in &mut sheet.models {
            if price.output_per_mtok.is_nan() {
                match price.kind {
                    // An embedding model answers no tokens.
                    ModelKind::Embedding => price.output_per_mtok = 0.0,
                    ModelKind::Chat => {
                        errors.push(err(
                            Some(name),
                            "`output_per_mtok`: is required for a chat model".into(),
                        ));
                        price.output_per_mtok = 0.0;
                    }
                }
            }
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            if stem != sheet.provider {
                errors.push(err(
                    None,
                    format!(
                        "`provider`: `{}` does not match the file name `{stem}.toml`",
                        sheet.provider
                    ),
                ));
            }
        }
        if !crate::config::is_valid_name(&sheet.provider) {
            errors.push(err(
                None,
                format!(
                    "`provider`: `{}` is not a valid provider name",
                    sheet.provider
                ),
            ));
        }
        if !is_iso_date(&sheet.effective) {
            errors.push(err(
                None,
                format!(
                    "`effective`: `{}` is not a YYYY-MM-DD date",
                    sheet.effective
                ),
            ));
        }
        if sheet.source.trim().is_empty() {
            errors.push(err(
                None,
                "`source`: must name where the prices come from".into(),
            ));
        }
        if sheet.models.is_empty() {
            errors.push(err(None, "`models`: the sheet lists no models".into()));
        }
        for (name, price) in &sheet.models {
            for detail in price.problems(name) {
                errors.push(err(Some(name), detail));
            }
        }
        if errors.is_empty() {
            Ok(sheet)
        } else {
            Err(errors)
        }
    }
}

/// A price the sheet did not give (told apart from 0 after parsing).
fn absent() -> f64 {
    f64::NAN
}

/// What a model does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    #[default]
    Chat,
    Embedding,
}

impl ModelKind {
    pub fn is_chat(&self) -> bool {
        *self == ModelKind::Chat
    }
}

impl ModelPrice {
    fn problems(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        if name.trim().is_empty() || name.trim() != name {
            out.push("model name must be non-empty without surrounding spaces".into());
        }
        let per_mtok = [
            ("input_per_mtok", Some(self.input_per_mtok)),
            ("output_per_mtok", Some(self.output_per_mtok)),
            ("cached_input_per_mtok", self.cached_input_per_mtok),
            ("cache_write_per_mtok", self.cache_write_per_mtok),
        ];
        for (field, value) in per_mtok {
            if let Some(v) = value {
                if let Some(p) = price_problem(v, MAX_PRICE_PER_MTOK) {
                    out.push(format!("`{field}`: {v} {p}"));
                }
            }
        }
        if let Some(v) = self.per_request {
            if let Some(p) = price_problem(v, MAX_PRICE_PER_REQUEST) {
                out.push(format!("`per_request`: {v} {p}"));
            }
        }
        if let Some(q) = self.quality {
            if !(0.0..=1.0).contains(&q) {
                out.push(format!("`quality`: {q} is outside [0, 1]"));
            }
        }
        if self.context_window == Some(0) {
            out.push("`context_window`: must be above zero".into());
        }
        if self.max_output_tokens == Some(0) {
            out.push("`max_output_tokens`: must be above zero".into());
        }
        if let Some(u) = &self.upstream_model {
            if u.trim().is_empty() {
                out.push("`upstream_model`: must not be empty".into());
            }
        }
        out
    }
}

fn price_problem(v: f64, max: f64) -> Option<String> {
    if !v.is_finite() {
        Some("is not a finite number".into())
    } else if v < 0.0 {
        Some("is negative".into())
    } else if v > max {
        Some(format!("is above {max}, probably a unit mistake"))
    } else {
        None
    }
}

/// A real calendar date `YYYY-MM-DD` from 2000 on: the day must exist in that month
/// (`2026-02-31` does not; `2028-02-29` does). humantime's RFC 3339 parser checks the
/// calendar, leap years included.
fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !s[..4].bytes().all(|c| c.is_ascii_digit())
    {
        return false;
    }
    s[..4].parse::<u32>().is_ok_and(|y| y >= 2000)
        && humantime::parse_rfc3339(&format!("{s}T00:00:00Z")).is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn calendar_dates_are_checked() {
        for good in ["2026-11-01", "2028-02-29", "2000-01-31", "2026-12-31"] {
            assert!(super::is_iso_date(good), "{good}");
        }
        for bad in [
            "2026-02-31",
            "2027-02-29",
            "2026-04-31",
            "2026-13-01",
            "1999-12-31",
            "2026-1-01",
            "+026-01-01",
        ] {
            assert!(!super::is_iso_date(bad), "{bad}");
        }
    }

    use super::*;

    const GOOD: &str = r#"
provider = "groq"
effective = "2026-11-01"
source = "https://groq.com/pricing"

[models."llama-3.3-70b"]
upstream_model = "llama-3.3-70b-versatile"
input_per_mtok = 0.59
output_per_mtok = 0.79
context_window = 131072
quality = 0.75
"#;

    fn parse(text: &str) -> Result<PriceSheet, Vec<SheetError>> {
        PriceSheet::parse(text, Path::new("pricing/groq.toml"))
    }

    #[test]
    fn good_sheet_parses() {
        let sheet = parse(GOOD).expect("valid");
        let m = &sheet.models["llama-3.3-70b"];
        assert_eq!(m.input_per_mtok, 0.59);
        assert_eq!(m.upstream_model.as_deref(), Some("llama-3.3-70b-versatile"));
    }

    #[test]
    fn each_kind_of_bad_value_is_named() {
        let cases = [
            (
                "input_per_mtok = 0.59",
                "input_per_mtok = -1.0",
                "`input_per_mtok`: -1 is negative",
            ),
            (
                "output_per_mtok = 0.79",
                "output_per_mtok = 5000.0",
                "`output_per_mtok`: 5000",
            ),
            ("quality = 0.75", "quality = 1.5", "`quality`: 1.5"),
            (
                "context_window = 131072",
                "context_window = 0",
                "`context_window`",
            ),
            (
                "effective = \"2026-11-01\"",
                "effective = \"Nov 1\"",
                "`effective`",
            ),
            (
                "effective = \"2026-11-01\"",
                "effective = \"2026-02-31\"",
                "`effective`",
            ),
            (
                "effective = \"2026-11-01\"",
                "effective = \"2027-02-29\"",
                "`effective`",
            ),
            (
                "provider = \"groq\"",
                "provider = \"openai\"",
                "does not match the file name",
            ),
            ("quality = 0.75", "qualty = 0.75", "unknown field `qualty`"),
        ];
        for (from, to, expect) in cases {
            let errors = parse(&GOOD.replace(from, to)).unwrap_err();
            let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            assert!(all.iter().any(|e| e.contains(expect)), "{to}: {all:?}");
            assert!(
                all.iter().all(|e| e.contains("pricing/groq.toml")),
                "{all:?}"
            );
        }
    }

    #[test]
    fn model_errors_name_the_model() {
        let errors = parse(&GOOD.replace("quality = 0.75", "quality = -0.1")).unwrap_err();
        assert!(
            errors[0].to_string().contains("model `llama-3.3-70b`"),
            "{errors:?}"
        );
    }

    #[test]
    fn empty_sheet_is_refused() {
        let text = "provider = \"groq\"\neffective = \"2026-11-01\"\nsource = \"x\"\nmodels = {}\n";
        let errors = parse(text).unwrap_err();
        assert!(errors[0].detail.contains("no models"), "{errors:?}");
    }
}
