//! Importing price sheets from the formats people already keep.
//!
//! - LiteLLM's `model_prices_and_context_window.json`: entries with `mode = "chat"`, prices
//!   `input_cost_per_token`, `output_cost_per_token`, `cache_read_input_token_cost` (USD per
//!   token, JSON numbers), `max_input_tokens`, `max_output_tokens`, grouped by
//!   `litellm_provider` into one sheet per provider (renamed where switchyard's name differs,
//!   e.g. `together_ai` → `together`), the provider prefix stripped from model names.
//! - OpenRouter's `/api/v1/models`: `pricing.prompt`, `pricing.completion`,
//!   `pricing.request`, `pricing.input_cache_read` (USD per token, as strings),
//!   `context_length`, `top_provider.max_completion_tokens`, into one `openrouter` sheet.
//!
//! Per-token prices become per-million prices in decimal, so `1.5e-07` is written `0.15`, not
//! `0.15000000000000002`. Every produced sheet is checked by parsing it back with the same
//! validation the router applies; what cannot be imported is reported with its reason.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use super::sheet::{MAX_PRICE_PER_MTOK, MAX_PRICE_PER_REQUEST};
use super::{ModelPrice, PriceSheet};

/// Sheets produced and entries left out.
#[derive(Debug, Default)]
pub struct Imported {
    pub sheets: Vec<PriceSheet>,
    /// `(entry, why it was left out)`.
    pub skipped: Vec<(String, Skip)>,
}

/// Why an entry was left out of the import.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Skip {
    #[error("provider `{0}` makes no valid provider name")]
    ProviderName(String),
    #[error("mode `{0}`, not chat")]
    NotChat(String),
    #[error("no {0} price")]
    MissingPrice(&'static str),
    #[error("price `{0}` is not a number")]
    NotANumber(String),
    #[error("{field} price {value} is negative or above {max}")]
    OutOfRange {
        field: &'static str,
        value: f64,
        max: f64,
    },
    #[error("duplicate of model `{0}`")]
    Duplicate(String),
    #[error("entry without an `id`")]
    NoId,
}

impl Skip {
    /// The kind of reason, for a summary that groups entries.
    pub fn kind(&self) -> &'static str {
        match self {
            Skip::ProviderName(_) => "provider makes no valid provider name",
            Skip::NotChat(_) => "not a chat model",
            Skip::MissingPrice(_) => "no price",
            Skip::NotANumber(_) | Skip::OutOfRange { .. } => "unusable price",
            Skip::Duplicate(_) => "duplicate model name (first kept)",
            Skip::NoId => "no id",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unexpected shape: {0}")]
    Shape(&'static str),
}

/// LiteLLM provider names that switchyard spells differently.
const LITELLM_RENAMES: [(&str, &str); 3] = [
    ("together_ai", "together"),
    ("fireworks_ai", "fireworks"),
    ("gemini", "google"),
];

/// switchyard's name for a LiteLLM provider, `None` when it makes no valid provider name.
pub(crate) fn provider_name(litellm: &str) -> Option<String> {
    let name = LITELLM_RENAMES
        .iter()
        .find(|(from, _)| *from == litellm)
        .map_or_else(|| litellm.replace('_', "-"), |(_, to)| (*to).to_owned());
    super::super::config::is_valid_name(&name).then_some(name)
}

/// A per-token price (JSON number or string) as USD per million tokens, exactly.
fn per_mtok(v: &Value) -> Result<Option<f64>, Skip> {
    let text = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        other => return Err(Skip::NotANumber(other.to_string())),
    };
    let d = Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| Skip::NotANumber(text.clone()))?;
    let per_m = (d * Decimal::from(1_000_000)).normalize();
    let f = f64::from_str(&per_m.to_string()).map_err(|_| Skip::NotANumber(text))?;
    Ok(Some(f))
}

fn tokens(v: &Value) -> Option<u32> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0)
}

/// Checks one model's prices the way a sheet would, without building the sheet.
fn check(price: &ModelPrice) -> Result<(), Skip> {
    for (field, v, max) in [
        ("input", Some(price.input_per_mtok), MAX_PRICE_PER_MTOK),
        ("output", Some(price.output_per_mtok), MAX_PRICE_PER_MTOK),
        (
            "cached input",
            price.cached_input_per_mtok,
            MAX_PRICE_PER_MTOK,
        ),
        (
            "cache write",
            price.cache_write_per_mtok,
            MAX_PRICE_PER_MTOK,
        ),
        ("per-request", price.per_request, MAX_PRICE_PER_REQUEST),
    ] {
        if let Some(v) = v {
            if !(0.0..=max).contains(&v) {
                return Err(Skip::OutOfRange {
                    field,
                    value: v,
                    max,
                });
            }
        }
    }
    Ok(())
}

/// Imports LiteLLM's table; `only` limits it to these switchyard provider names (all when
/// empty).
pub fn from_litellm(
    json: &str,
    only: &[String],
    effective: &str,
    source: &str,
) -> Result<Imported, ImportError> {
    let table: BTreeMap<String, Value> = serde_json::from_str(json)?;
    let mut out = Imported::default();
    let mut by_provider: BTreeMap<String, BTreeMap<String, ModelPrice>> = BTreeMap::new();
    for (key, entry) in &table {
        if key == "sample_spec" {
            continue;
        }
        let litellm = entry["litellm_provider"].as_str().unwrap_or("");
        let Some(provider) = provider_name(litellm) else {
            if only.is_empty() {
                out.skipped
                    .push((key.clone(), Skip::ProviderName(litellm.to_owned())));
            }
            continue;
        };
        if !only.is_empty() && !only.contains(&provider) {
            continue;
        }
        let mode = entry["mode"].as_str().unwrap_or("none");
        let kind = match mode {
            "chat" => crate::pricing::ModelKind::Chat,
            "embedding" => crate::pricing::ModelKind::Embedding,
            _ => {
                out.skipped
                    .push((key.clone(), Skip::NotChat(mode.to_owned())));
                continue;
            }
        };
        let price = (|| -> Result<ModelPrice, Skip> {
            let input =
                per_mtok(&entry["input_cost_per_token"])?.ok_or(Skip::MissingPrice("input"))?;
            let output = match (per_mtok(&entry["output_cost_per_token"])?, kind) {
                (Some(o), _) => o,
                // An embedding answers no tokens.
                (None, crate::pricing::ModelKind::Embedding) => 0.0,
                (None, crate::pricing::ModelKind::Chat) => {
                    return Err(Skip::MissingPrice("output"))
                }
            };
            Ok(ModelPrice {
                upstream_model: None,
                input_per_mtok: input,
                output_per_mtok: output,
                kind,
                cached_input_per_mtok: per_mtok(&entry["cache_read_input_token_cost"])?,
                // A listed 0 means "not charged separately" in LiteLLM's table: writes then
                // cost what input costs.
                cache_write_per_mtok: per_mtok(&entry["cache_creation_input_token_cost"])?
                    .filter(|&v| v > 0.0),
                per_request: None,
                context_window: tokens(&entry["max_input_tokens"])
                    .or_else(|| tokens(&entry["max_tokens"])),
                max_output_tokens: tokens(&entry["max_output_tokens"]),
                quality: None,
                supports: super::capability::from_litellm(entry),
            })
        })();
        let price = match price.and_then(|p| check(&p).map(|()| p)) {
            Ok(p) => p,
            Err(why) => {
                out.skipped.push((key.clone(), why));
                continue;
            }
        };
        let model = key
            .strip_prefix(&format!("{litellm}/"))
            .unwrap_or(key)
            .to_owned();
        let models = by_provider.entry(provider).or_default();
        if models.contains_key(&model) {
            out.skipped.push((key.clone(), Skip::Duplicate(model)));
            continue;
        }
        models.insert(model, price);
    }
    for (provider, models) in by_provider {
        out.sheets.push(PriceSheet {
            provider,
            effective: effective.to_owned(),
            source: source.to_owned(),
            models,
        });
    }
    Ok(out)
}

/// Imports OpenRouter's model list into one `openrouter` sheet.
pub fn from_openrouter(json: &str, effective: &str, source: &str) -> Result<Imported, ImportError> {
    let doc: Value = serde_json::from_str(json)?;
    let data = doc["data"]
        .as_array()
        .ok_or(ImportError::Shape("no `data` array"))?;
    let mut out = Imported::default();
    let mut models = BTreeMap::new();
    for entry in data {
        let Some(id) = entry["id"].as_str() else {
            out.skipped.push(("(no id)".into(), Skip::NoId));
            continue;
        };
        let p = &entry["pricing"];
        let price = (|| -> Result<ModelPrice, Skip> {
            Ok(ModelPrice {
                upstream_model: None,
                input_per_mtok: per_mtok(&p["prompt"])?.ok_or(Skip::MissingPrice("prompt"))?,
                output_per_mtok: per_mtok(&p["completion"])?
                    .ok_or(Skip::MissingPrice("completion"))?,
                cached_input_per_mtok: per_mtok(&p["input_cache_read"])?,
                cache_write_per_mtok: per_mtok(&p["input_cache_write"])?,
                kind: Default::default(),
                // `request` is USD per request already, not per token.
                per_request: match &p["request"] {
                    Value::String(s) => Decimal::from_str(s.trim())
                        .ok()
                        .and_then(|d| f64::from_str(&d.normalize().to_string()).ok())
                        .filter(|&v| v != 0.0),
                    _ => None,
                },
                context_window: tokens(&entry["context_length"]),
                max_output_tokens: tokens(&entry["top_provider"]["max_completion_tokens"]),
                quality: None,
                supports: super::capability::from_openrouter(entry),
            })
        })();
        match price.and_then(|p| check(&p).map(|()| p)) {
            Ok(p) => {
                if models.insert(id.to_owned(), p).is_some() {
                    out.skipped
                        .push((id.to_owned(), Skip::Duplicate(id.to_owned())));
                }
            }
            Err(why) => out.skipped.push((id.to_owned(), why)),
        }
    }
    if !models.is_empty() {
        out.sheets.push(PriceSheet {
            provider: "openrouter".into(),
            effective: effective.to_owned(),
            source: source.to_owned(),
            models,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A few entries cut from LiteLLM's table (litellm 1.108.7, MIT licence, see
    /// `tests/fixtures/LITELLM-LICENSE`), chosen to cover each case.
    const FIXTURE: &str = include_str!("../../tests/fixtures/litellm_sample.json");

    #[test]
    fn litellm_fixture_imports_exact_prices_and_reports_skips() {
        let all = from_litellm(FIXTURE, &[], "2026-11-25", "litellm").expect("imports");
        let sheet = |p: &str| {
            all.sheets
                .iter()
                .find(|s| s.provider == p)
                .unwrap_or_else(|| panic!("{p} sheet"))
        };
        let mini = &sheet("openai").models["gpt-4o-mini"];
        assert_eq!((mini.input_per_mtok, mini.output_per_mtok), (0.15, 0.6));
        assert_eq!(mini.cached_input_per_mtok, Some(0.075));
        assert_eq!(
            (mini.context_window, mini.max_output_tokens),
            (Some(128000), Some(16384))
        );
        let sonnet = &sheet("anthropic").models["claude-sonnet-4-5"];
        assert_eq!(sonnet.cache_write_per_mtok, Some(3.75));
        // Prefix stripped, provider renamed.
        assert!(sheet("deepseek").models.contains_key("deepseek-chat"));
        assert!(sheet("together")
            .models
            .contains_key("meta-llama/Llama-3.3-70B-Instruct-Turbo"));
        // Embedding models come as such, priced per input token.
        let embed = &sheet("openai").models["text-embedding-3-small"];
        assert_eq!(embed.kind, crate::pricing::ModelKind::Embedding);
        assert_eq!((embed.input_per_mtok, embed.output_per_mtok), (0.02, 0.0));
        let skipped: Vec<&str> = all.skipped.iter().map(|(k, _)| k.as_str()).collect();
        assert!(!skipped.contains(&"text-embedding-3-small"), "{skipped:?}");
        // Every sheet passes the router's own validation once written out.
        for s in &all.sheets {
            let text = s.to_toml();
            let path = format!("{}.toml", s.provider);
            let back = PriceSheet::parse(&text, Path::new(&path))
                .unwrap_or_else(|e| panic!("{path}: {e:?}\n{text}"));
            assert_eq!(&back, s);
        }
        let only = from_litellm(FIXTURE, &["openai".to_owned()], "2026-11-25", "litellm")
            .expect("imports");
        assert_eq!(only.sheets.len(), 1);
    }

    #[test]
    fn openrouter_prices_are_strings_per_token() {
        let json = r#"{"data": [
            {"id": "meta-llama/llama-3.3-70b-instruct", "pricing": {"prompt": "0.00000013", "completion": "0.0000004", "request": "0", "input_cache_read": "0.00000001"}, "context_length": 131072, "top_provider": {"max_completion_tokens": 16384}},
            {"id": "anthropic/claude-haiku-4.5", "pricing": {"prompt": "0.000001", "completion": "0.000005", "input_cache_read": "0.0000001", "input_cache_write": "0.00000125"}},
            {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}, "context_length": 2000000},
            {"id": "x/free", "pricing": {"prompt": "0", "completion": "0", "request": "0.002"}}
        ]}"#;
        let out = from_openrouter(json, "2026-11-25", "openrouter").expect("imports");
        let m = &out.sheets[0].models["meta-llama/llama-3.3-70b-instruct"];
        assert_eq!(
            (m.input_per_mtok, m.output_per_mtok, m.cached_input_per_mtok),
            (0.13, 0.4, Some(0.01))
        );
        assert_eq!(m.per_request, None);
        assert_eq!(m.cache_write_per_mtok, None);
        let claude = &out.sheets[0].models["anthropic/claude-haiku-4.5"];
        assert_eq!(
            (claude.cached_input_per_mtok, claude.cache_write_per_mtok),
            (Some(0.1), Some(1.25))
        );
        assert_eq!(out.sheets[0].models["x/free"].per_request, Some(0.002));
        assert_eq!(out.skipped.len(), 1);
        assert!(
            matches!(out.skipped[0].1, Skip::OutOfRange { field: "input", .. }),
            "{:?}",
            out.skipped
        );
        assert!(matches!(
            from_openrouter("{}", "d", "s"),
            Err(ImportError::Shape(_))
        ));
    }
}
