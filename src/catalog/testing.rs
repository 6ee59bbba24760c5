//! Catalogs for unit tests, built through the real config and sheet parsers.

use std::path::Path;

use super::Catalog;
use crate::config::Config;
use crate::pricing::PriceSheet;

/// One endpoint: `(provider, model, input and output price per million tokens, quality)`.
pub(crate) type Spec<'a> = (&'a str, &'a str, f64, f64, Option<f64>);

/// A catalog of `endpoints` (each provider configured once, in order of appearance), with
/// `extra` appended to the config (e.g. a `[groups]` table).
pub(crate) fn catalog(endpoints: &[Spec<'_>], extra: &str) -> Catalog {
    let mut providers: Vec<&str> = Vec::new();
    for (p, ..) in endpoints {
        if !providers.contains(p) {
            providers.push(p);
        }
    }
    let mut config = "[server]\n".to_owned();
    let mut sheets = Vec::new();
    for p in &providers {
        config.push_str(&format!(
            "[[providers]]\nname = \"{p}\"\nbase_url = \"http://{p}\"\n"
        ));
        let mut text = format!("provider = \"{p}\"\neffective = \"2026-11-01\"\nsource = \"x\"\n");
        for (_, model, input, output, quality) in endpoints.iter().filter(|e| e.0 == *p) {
            text.push_str(&format!(
                "[models.\"{model}\"]\ninput_per_mtok = {input:?}\noutput_per_mtok = {output:?}\n"
            ));
            if let Some(q) = quality {
                text.push_str(&format!("quality = {q:?}\n"));
            }
        }
        sheets.push(PriceSheet::parse(&text, Path::new(&format!("{p}.toml"))).expect("sheet"));
    }
    config.push_str(extra);
    let config = Config::parse(&config, Path::new("t.toml")).expect("config");
    Catalog::build(&config, &sheets, &|_| None).expect("catalog")
}

/// Endpoints `p<i>/m`, one provider each, with `(input, output)` prices and one quality.
pub(crate) fn numbered(prices: &[(f64, f64)], quality: Option<f64>) -> Catalog {
    let names: Vec<String> = (0..prices.len()).map(|i| format!("p{i}")).collect();
    let specs: Vec<Spec<'_>> = prices
        .iter()
        .zip(&names)
        .map(|(&(i, o), p)| (p.as_str(), "m", i, o, quality))
        .collect();
    catalog(&specs, "")
}
