//! Presets: named routing settings a client selects with `"model": "@preset/NAME"`
//! (OpenRouter's convention), kept as `routing/<name>.toml`, one file per preset:
//!
//! ```toml
//! name = "fast-cheap"
//! models = ["llama-3.3-70b", "groq/llama-3.1-8b"]     # fallback order, as `models`
//! route = { max_latency_ms = 800, latency_percentile = 95, prefer = "cost" }
//! provider = { sort = "price" }                       # optional, OpenRouter's fields
//! policy = "thompson"                                 # optional
//! description = "what it is for"                      # optional
//! ```
//!
//! Two names are special. A preset named after a `[groups]` entry replaces that group, and
//! any preset is also reached by its plain name (`"model": "NAME"`), so groups are live: a
//! group is a preset without hints, with `group = true` to rank its models together rather
//! than in fallback order. The preset named `default` has no models: its hints and policy
//! apply to every request that names no other preset, which makes the router's default
//! policy and hints live.
//!
//! A preset is validated like a request (its `route` and `provider` go through the request
//! parser, so an error names the field) and against the catalog (every model, group or
//! endpoint it names must exist; its name must not be a model's or an endpoint's). A directory is loaded all or nothing, as price sheets are.
//! The request's own hints apply on top of the preset's, the strictest winning
//! ([`crate::route::preset`]). Pure: no I/O but reading the directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::catalog::Catalog;
use crate::config::PolicyName;
use crate::route::hints::{split_suffix, Gathered};
use crate::route::preset::preset_hints;

/// The prefix of a preset in `model`.
pub const PREFIX: &str = "@preset/";
/// The preset whose hints and policy apply to every request that names no other preset.
pub const DEFAULT: &str = "default";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetFile {
    name: String,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    group: bool,
    route: Option<serde_json::Value>,
    provider: Option<serde_json::Value>,
    policy: Option<PolicyName>,
    description: Option<String>,
}

/// One preset, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub name: String,
    /// Models, groups or endpoint ids, in fallback order (empty for [`DEFAULT`]).
    pub models: Vec<String>,
    /// Rank all its models' endpoints together, as a group does, not model by model.
    pub group: bool,
    pub policy: Option<PolicyName>,
    pub description: Option<String>,
    /// Its hints, as the request parser read them.
    pub(crate) hints: Gathered,
    /// The file's text, as accepted (shown by the admin routes, kept in the history).
    pub text: String,
}

/// Why a preset was refused: the file and the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.render())]
pub struct PresetError {
    pub path: PathBuf,
    pub field: String,
    pub message: String,
}

impl PresetError {
    fn render(&self) -> String {
        match self.field.as_str() {
            "" => format!("{}: {}", self.path.display(), self.message),
            field => format!("{}: `{field}`: {}", self.path.display(), self.message),
        }
    }
}

/// Every problem found in a presets directory.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{} problem(s) in presets:\n  {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
pub struct PresetErrors(pub Vec<PresetError>);

impl From<PresetError> for PresetErrors {
    fn from(e: PresetError) -> PresetErrors {
        PresetErrors(vec![e])
    }
}

impl Preset {
    /// Parses and validates a preset; `path` names it in errors and must be `<name>.toml`.
    /// Model names are checked against a catalog by [`Presets::check`].
    pub fn parse(text: &str, path: &Path) -> Result<Preset, PresetError> {
        let err = |field: &str, message: String| PresetError {
            path: path.to_owned(),
            field: field.to_owned(),
            message,
        };
        let file: PresetFile = toml::from_str(text).map_err(|e| {
            let message = e.message().to_owned();
            // toml names unknown and missing fields in its message; the key path is in it.
            err("", message)
        })?;
        if !crate::config::is_valid_name(&file.name) {
            return Err(err(
                "name",
                format!("`{}` must use only a-z, 0-9, '-', '_' or '.'", file.name),
            ));
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if stem != file.name {
            return Err(err(
                "name",
                format!("`{}` does not match the file name `{stem}.toml`", file.name),
            ));
        }
        if file.name == DEFAULT && !file.models.is_empty() {
            return Err(err(
                "models",
                "the default preset applies to whatever a request names: it takes no models".into(),
            ));
        }
        if file.name != DEFAULT && file.models.is_empty() {
            return Err(err("models", "must name at least one model".into()));
        }
        if let Some(i) = file.models.iter().position(|m| m.trim().is_empty()) {
            return Err(err(&format!("models[{i}]"), "must be a model name".into()));
        }
        if let Some(i) = file.models.iter().position(|m| m.starts_with(PREFIX)) {
            return Err(err(
                &format!("models[{i}]"),
                "a preset cannot name another preset".into(),
            ));
        }
        let hints = preset_hints(file.route.as_ref(), file.provider.as_ref())
            .map_err(|e| err(&e.field, e.message))?;
        Ok(Preset {
            name: file.name,
            models: file.models,
            group: file.group,
            policy: file.policy,
            description: file.description,
            hints,
            text: text.to_owned(),
        })
    }
}

/// One version of every preset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Presets {
    by_name: BTreeMap<String, Preset>,
    /// Counts accepted changes since start (0 = as loaded at start).
    pub version: u64,
}

impl Presets {
    pub fn new(presets: Vec<Preset>, version: u64) -> Presets {
        Presets {
            by_name: presets.into_iter().map(|p| (p.name.clone(), p)).collect(),
            version,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Preset> {
        self.by_name.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Preset> {
        self.by_name.values()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Every model, group or endpoint a preset names exists in `catalog`, and every `only`,
    /// `ignore` or `order` name is a provider or endpoint of it.
    pub fn check(&self, catalog: &Catalog, dir: &Path) -> Result<(), PresetErrors> {
        let mut errors = Vec::new();
        for p in self.by_name.values() {
            let path = dir.join(format!("{}.toml", p.name));
            // A group's name is free to take (the preset replaces the group); a model's or an
            // endpoint's is not: `"model": NAME` would be ambiguous.
            if catalog.resolve(&p.name).is_some() && !catalog.groups().contains_key(&p.name) {
                errors.push(PresetError {
                    path: path.clone(),
                    field: "name".into(),
                    message: format!(
                        "`{}` is a model or an endpoint of the catalog; a preset may take a group's name, not a model's",
                        p.name
                    ),
                });
            }
            for (i, m) in p.models.iter().enumerate() {
                if catalog.resolve(split_suffix(m).0).is_none() {
                    errors.push(PresetError {
                        path: path.clone(),
                        field: format!("models[{i}]"),
                        message: format!(
                            "`{m}` is neither a model, a group, an endpoint id nor `auto`"
                        ),
                    });
                }
            }
            let c = &p.hints.constraints;
            let known = |n: &str| {
                catalog.providers().iter().any(|x| x.name == n)
                    || catalog.endpoints().iter().any(|e| e.id == n)
            };
            let lists = c
                .only
                .iter()
                .chain(&c.ignore)
                .map(|(f, l)| (f.trim_start_matches("preset."), l))
                .chain(std::iter::once(("provider.order", &c.order)));
            for (field, list) in lists {
                if let Some(bad) = list.iter().find(|n| !known(n)) {
                    errors.push(PresetError {
                        path: path.clone(),
                        field: field.to_owned(),
                        message: format!(
                            "`{bad}` is neither a configured provider nor an endpoint id"
                        ),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PresetErrors(errors))
        }
    }
}

/// Every `*.toml` preset in `dir`, sorted by name; a missing directory holds none.
pub fn load_dir(dir: &Path) -> Result<Vec<Preset>, PresetErrors> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(PresetError {
                path: dir.to_owned(),
                field: String::new(),
                message: format!("cannot read: {e}"),
            }
            .into())
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut presets = Vec::new();
    let mut errors = Vec::new();
    for path in &paths {
        match std::fs::read_to_string(path) {
            Ok(text) => match Preset::parse(&text, path) {
                Ok(p) => presets.push(p),
                Err(e) => errors.push(e),
            },
            Err(e) => errors.push(PresetError {
                path: path.clone(),
                field: String::new(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    if errors.is_empty() {
        Ok(presets)
    } else {
        Err(PresetErrors(errors))
    }
}

#[cfg(test)]
mod tests;
