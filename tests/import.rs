//! The importers on the real LiteLLM table (`../shared/data`, litellm 1.108.7): what each
//! provider's models are said to support, and the shipped `pricing/` sheets being exactly
//! that table's import. CI requires the table (`SWITCHYARD_REQUIRE_LITELLM_TABLE=1`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use switchyard::pricing::{import, Capability, PriceSheet};

const PROVIDERS: [&str; 10] = [
    "openai",
    "anthropic",
    "google",
    "groq",
    "together",
    "deepinfra",
    "fireworks",
    "mistral",
    "deepseek",
    "xai",
];

fn table() -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/litellm_model_prices_and_context_window.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if std::env::var("SWITCHYARD_REQUIRE_LITELLM_TABLE").as_deref() == Ok("1") => {
            panic!("{}: {e}", path.display())
        }
        Err(e) => {
            eprintln!("skipped: {} not readable ({e})", path.display());
            None
        }
    }
}

#[test]
fn the_real_table_imports_capabilities_per_provider() {
    let Some(json) = table() else { return };
    let only: Vec<String> = PROVIDERS.iter().map(|p| p.to_string()).collect();
    let source = "LiteLLM model_prices_and_context_window.json (litellm 1.108.7)";
    let imported = import::from_litellm(&json, &only, "2026-11-25", source).expect("imports");
    // Per provider: chat models, how many list capabilities at all, and how many each.
    let mut report = String::new();
    let mut counts: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for sheet in &imported.sheets {
        let chat: Vec<_> = sheet.models.values().filter(|m| m.kind.is_chat()).collect();
        let listed = chat.iter().filter(|m| m.supports.is_some()).count();
        let per = counts
            .entry(
                PROVIDERS
                    .iter()
                    .find(|p| **p == sheet.provider)
                    .expect("asked for"),
            )
            .or_default();
        for c in Capability::ALL {
            let n = chat
                .iter()
                .filter(|m| m.supports.is_some_and(|s| s.has(c)))
                .count();
            per.insert(c.name(), n);
        }
        report.push_str(&format!(
            "{:<10} {:>3} chat models, {:>3} listing capabilities: {}\n",
            sheet.provider,
            chat.len(),
            listed,
            per.iter()
                .filter(|(_, n)| **n > 0)
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    eprintln!("{report}");
    // Every provider has models that call tools; these facts are in the table.
    for p in PROVIDERS {
        assert!(
            counts[p]["tools"] > 0,
            "{p}: no tool-calling model\n{report}"
        );
    }
    let model = |p: &str, m: &str| {
        let sheet = imported
            .sheets
            .iter()
            .find(|s| s.provider == p)
            .expect("sheet");
        sheet.models[m]
            .supports
            .unwrap_or_else(|| panic!("{p}/{m} lists capabilities"))
    };
    let gpt4o = model("openai", "gpt-4o");
    for c in [
        Capability::Tools,
        Capability::Vision,
        Capability::JsonSchema,
        Capability::Pdf,
    ] {
        assert!(gpt4o.has(c), "gpt-4o: {c:?} ({gpt4o})");
    }
    assert!(!gpt4o.has(Capability::Reasoning), "{gpt4o}");
    assert!(model("openai", "gpt-5").has(Capability::Responses));
    let sonnet = model("anthropic", "claude-sonnet-4-5");
    assert!(sonnet.has(Capability::Reasoning) && sonnet.has(Capability::PromptCaching));
    // A guard model lists nothing: unknown, not "capable of nothing".
    let groq = imported
        .sheets
        .iter()
        .find(|s| s.provider == "groq")
        .expect("groq");
    assert_eq!(groq.models["llama-guard-3-8b"].supports, None);

    // The shipped sheets are this import, capabilities included.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pricing");
    for sheet in &imported.sheets {
        let path = dir.join(format!("{}.toml", sheet.provider));
        let text = std::fs::read_to_string(&path).expect("shipped sheet");
        let shipped = PriceSheet::parse(&text, &path).expect("valid");
        assert_eq!(&shipped, sheet, "{}: re-import pricing/", path.display());
    }
}
