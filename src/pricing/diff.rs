//! What changed between two sets of price sheets: prices up or down (with the change in
//! percent), models and providers that appeared or disappeared.

use std::collections::BTreeMap;
use std::fmt;

use super::{ModelPrice, PriceSheet};

/// One difference.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Added {
        id: String,
        price: ModelPrice,
    },
    Removed {
        id: String,
    },
    Price {
        id: String,
        field: &'static str,
        old: Option<f64>,
        new: Option<f64>,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let num = |v: &Option<f64>| v.map_or("none".to_owned(), |v| v.to_string());
        match self {
            Change::Added { id, price } => write!(
                f,
                "+ {id} (input {}, output {})",
                price.input_per_mtok, price.output_per_mtok
            ),
            Change::Removed { id } => write!(f, "- {id}"),
            Change::Price {
                id,
                field,
                old,
                new,
            } => {
                write!(f, "~ {id}: {field} {} -> {}", num(old), num(new))?;
                if let (Some(o), Some(n)) = (old, new) {
                    if *o != 0.0 {
                        write!(f, " ({:+.1}%)", (n - o) / o * 100.0)?;
                    }
                }
                Ok(())
            }
        }
    }
}

fn index(sheets: &[PriceSheet]) -> BTreeMap<String, &ModelPrice> {
    sheets
        .iter()
        .flat_map(|s| {
            s.models
                .iter()
                .map(move |(m, p)| (format!("{}/{m}", s.provider), p))
        })
        .collect()
}

/// Every difference from `old` to `new`, by endpoint id.
pub fn diff(old: &[PriceSheet], new: &[PriceSheet]) -> Vec<Change> {
    let (old, new) = (index(old), index(new));
    let mut out = Vec::new();
    for (id, o) in &old {
        let Some(n) = new.get(id) else {
            out.push(Change::Removed { id: id.clone() });
            continue;
        };
        for (field, a, b) in [
            (
                "input_per_mtok",
                Some(o.input_per_mtok),
                Some(n.input_per_mtok),
            ),
            (
                "output_per_mtok",
                Some(o.output_per_mtok),
                Some(n.output_per_mtok),
            ),
            (
                "cached_input_per_mtok",
                o.cached_input_per_mtok,
                n.cached_input_per_mtok,
            ),
            (
                "cache_write_per_mtok",
                o.cache_write_per_mtok,
                n.cache_write_per_mtok,
            ),
            ("per_request", o.per_request, n.per_request),
        ] {
            if a != b {
                out.push(Change::Price {
                    id: id.clone(),
                    field,
                    old: a,
                    new: b,
                });
            }
        }
    }
    for (id, n) in &new {
        if !old.contains_key(id) {
            out.push(Change::Added {
                id: id.clone(),
                price: (*n).clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sheet(models: &str) -> PriceSheet {
        let text =
            format!("provider = \"p\"\neffective = \"2026-11-01\"\nsource = \"x\"\n{models}");
        PriceSheet::parse(&text, Path::new("p.toml")).expect("sheet")
    }

    #[test]
    fn changes_additions_and_removals_are_reported() {
        let old = sheet("[models.a]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n[models.b]\ninput_per_mtok = 1.0\noutput_per_mtok = 1.0\n");
        let new = sheet("[models.a]\ninput_per_mtok = 1.5\noutput_per_mtok = 2.0\n[models.c]\ninput_per_mtok = 3.0\noutput_per_mtok = 4.0\n");
        let lines: Vec<String> = diff(&[old], &[new]).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            lines,
            [
                "~ p/a: input_per_mtok 1 -> 1.5 (+50.0%)",
                "- p/b",
                "+ p/c (input 3, output 4)"
            ]
        );
    }
}
