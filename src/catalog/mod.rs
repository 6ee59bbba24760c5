//! The catalog: providers, endpoints (one provider serving one model, id `provider/model`),
//! the models several providers may serve, groups, and `auto`.
//!
//! Built once from the config and the price sheets, immutable afterwards, shared by `Arc`;
//! a change of prices or config builds a new catalog and swaps it whole. Resolving a request's
//! `model` is a hash lookup returning a slice of endpoint indices, so the request path never
//! allocates here. Provider keys are read from the environment at build time (through an
//! injected lookup, so tests need not touch the process environment) and kept in [`ApiKey`],
//! whose `Debug` never shows them.

mod key;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::{BTreeMap, HashMap};

use crate::config::{Config, ProviderConfig};
use crate::pricing::{ModelPrice, PriceSheet, Rates};

pub use key::ApiKey;

/// Index of an endpoint in [`Catalog::endpoints`].
pub(crate) type EndpointIdx = usize;

/// One OpenAI-compatible API.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    /// `{base_url}/chat/completions` (`{base_url}/messages` for the Anthropic protocol),
    /// parsed once: the request path clones it instead of parsing a URL string (with its
    /// IDNA pass) per attempt.
    pub chat_url: crate::upstream::Target,
    pub api_key: Option<ApiKey>,
    pub protocol: crate::dialect::Protocol,
    /// `anthropic-version`, for the Anthropic protocol.
    pub anthropic_version: http::HeaderValue,
    /// `{base_url}/embeddings`, `/completions`, `/responses` (OpenAI protocol).
    pub embeddings_url: crate::upstream::Target,
    pub completions_url: crate::upstream::Target,
    pub responses_url: crate::upstream::Target,
    /// It serves the Responses API.
    pub responses: bool,
}

/// One provider serving one model, with its prices.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `provider/model`.
    pub id: String,
    pub provider: usize,
    /// The model name clients use.
    pub model: String,
    /// The model name sent upstream.
    pub upstream_model: String,
    pub price: ModelPrice,
    /// `price` as exact decimal rates, for accounting.
    pub rates: Rates,
    /// Chat or embedding (from the sheet).
    pub kind: crate::pricing::ModelKind,
}

/// Why a catalog could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("provider `{provider}` has no price sheet `{provider}.toml` in the pricing directory")]
    MissingSheet { provider: String },
    #[error("provider `{provider}`: environment variable `{var}` (its `api_key_env`) is not set")]
    MissingKey { provider: String, var: String },
    #[error("provider `{provider}`: `{var}` holds characters an HTTP header cannot carry")]
    InvalidKey { provider: String, var: String },
    #[error(
        "group `{group}`: `{member}` is neither an endpoint id nor a model in the price sheets"
    )]
    UnknownGroupMember { group: String, member: String },
    #[error("group `{group}` has the name of a model or endpoint; rename the group")]
    GroupShadowsModel { group: String },
    #[error("provider `{provider}`: `{url}` is not a valid URL: {reason}")]
    InvalidUrl {
        provider: String,
        url: String,
        reason: String,
    },
}

/// The immutable routing table.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    providers: Vec<Provider>,
    endpoints: Vec<Endpoint>,
    /// Endpoint id, model name, group name and `auto` → endpoints, in one map.
    names: HashMap<String, Vec<EndpointIdx>>,
    groups: BTreeMap<String, Vec<EndpointIdx>>,
    /// A model whose sheet lists no `supports` can do what a request needs
    /// (`[routing] unknown_capabilities`).
    unknown_capable: bool,
}

impl Catalog {
    /// Builds the catalog for the configured providers. Sheets of providers not in the config
    /// are ignored (a shared pricing directory may cover more providers than one router uses).
    pub fn build(
        config: &Config,
        sheets: &[PriceSheet],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog {
            unknown_capable: config.routing.unknown_capabilities
                == crate::config::UnknownCapabilities::Capable,
            ..Catalog::default()
        };
        for pc in &config.providers {
            let sheet = sheets
                .iter()
                .find(|s| s.provider == pc.name)
                .ok_or_else(|| CatalogError::MissingSheet {
                    provider: pc.name.clone(),
                })?;
            catalog.add_provider(pc, sheet, env)?;
        }
        // `auto` is every chat endpoint: embedding models answer another question.
        let all: Vec<EndpointIdx> = (0..catalog.endpoints.len())
            .filter(|&i| catalog.endpoints[i].kind.is_chat())
            .collect();
        for (group, members) in &config.groups {
            if catalog.names.contains_key(group) {
                return Err(CatalogError::GroupShadowsModel {
                    group: group.clone(),
                });
            }
            let mut idxs = Vec::new();
            for member in members {
                let found =
                    catalog
                        .names
                        .get(member)
                        .ok_or_else(|| CatalogError::UnknownGroupMember {
                            group: group.clone(),
                            member: member.clone(),
                        })?;
                for &i in found {
                    if !idxs.contains(&i) {
                        idxs.push(i);
                    }
                }
            }
            catalog.groups.insert(group.clone(), idxs.clone());
            catalog.names.insert(group.clone(), idxs);
        }
        catalog.names.insert("auto".to_owned(), all);
        Ok(catalog)
    }

    fn add_provider(
        &mut self,
        pc: &ProviderConfig,
        sheet: &PriceSheet,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), CatalogError> {
        let api_key = match &pc.api_key_env {
            None => None,
            Some(var) => {
                let value = env(var).filter(|k| !k.trim().is_empty()).ok_or_else(|| {
                    CatalogError::MissingKey {
                        provider: pc.name.clone(),
                        var: var.clone(),
                    }
                })?;
                Some(ApiKey::new(&value).ok_or_else(|| CatalogError::InvalidKey {
                    provider: pc.name.clone(),
                    var: var.clone(),
                })?)
            }
        };
        let path = match pc.protocol {
            crate::dialect::Protocol::Openai => "chat/completions",
            crate::dialect::Protocol::Anthropic => "messages",
        };
        let url = format!("{}/{path}", pc.base_url.trim_end_matches('/'));
        let chat_url =
            crate::upstream::Target::parse(&url).map_err(|reason| CatalogError::InvalidUrl {
                provider: pc.name.clone(),
                url: url.clone(),
                reason,
            })?;
        let at = |path: &str| {
            let url = format!("{}/{path}", pc.base_url.trim_end_matches('/'));
            crate::upstream::Target::parse(&url).map_err(|reason| CatalogError::InvalidUrl {
                provider: pc.name.clone(),
                url: url.clone(),
                reason,
            })
        };
        let (embeddings_url, completions_url, responses_url) =
            (at("embeddings")?, at("completions")?, at("responses")?);
        let provider = self.providers.len();
        let version = pc
            .anthropic_version
            .as_deref()
            .unwrap_or(crate::dialect::anthropic::DEFAULT_VERSION);
        self.providers.push(Provider {
            name: pc.name.clone(),
            chat_url,
            api_key,
            protocol: pc.protocol,
            anthropic_version: http::HeaderValue::from_str(version)
                .unwrap_or_else(|_| http::HeaderValue::from_static("2023-06-01")),
            embeddings_url,
            completions_url,
            responses_url,
            responses: pc.responses,
        });
        for (model, price) in &sheet.models {
            let idx = self.endpoints.len();
            let id = format!("{}/{}", pc.name, model);
            self.endpoints.push(Endpoint {
                id: id.clone(),
                provider,
                model: model.clone(),
                upstream_model: price
                    .upstream_model
                    .clone()
                    .unwrap_or_else(|| model.clone()),
                price: price.clone(),
                rates: Rates::of(price),
                kind: price.kind,
            });
            self.names.entry(id).or_default().push(idx);
            self.names.entry(model.clone()).or_default().push(idx);
        }
        Ok(())
    }

    /// The endpoints a request's `model` names: an endpoint id, a model served by one or more
    /// providers, a group, or `auto`. `None` when the name is unknown.
    pub fn resolve(&self, model: &str) -> Option<&[EndpointIdx]> {
        self.names.get(model).map(Vec::as_slice)
    }

    /// The endpoint whose id is `id` (one map look-up; a model name that happens to equal
    /// an id is not mistaken for it).
    pub fn index_of(&self, id: &str) -> Option<EndpointIdx> {
        self.names
            .get(id)?
            .iter()
            .copied()
            .find(|&i| self.endpoints[i].id == id)
    }

    pub fn endpoint(&self, idx: EndpointIdx) -> &Endpoint {
        &self.endpoints[idx]
    }

    /// Whether a model whose sheet lists no `supports` counts as capable.
    pub fn unknown_capable(&self) -> bool {
        self.unknown_capable
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    pub(crate) fn provider_of(&self, idx: EndpointIdx) -> &Provider {
        &self.providers[self.endpoints[idx].provider]
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// Group name → member endpoints, sorted by name.
    pub fn groups(&self) -> &BTreeMap<String, Vec<EndpointIdx>> {
        &self.groups
    }

    /// Model names served by more than one provider, with their endpoints.
    pub(crate) fn shared_models(&self) -> impl Iterator<Item = (&str, &[EndpointIdx])> {
        self.names.iter().filter_map(|(name, idxs)| {
            let is_model = idxs.len() > 1 && self.endpoints[idxs[0]].model == *name;
            is_model.then_some((name.as_str(), idxs.as_slice()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sheet(provider: &str, models: &[&str]) -> PriceSheet {
        let mut text =
            format!("provider = \"{provider}\"\neffective = \"2026-11-01\"\nsource = \"x\"\n");
        for m in models {
            text.push_str(&format!(
                "[models.\"{m}\"]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n"
            ));
        }
        PriceSheet::parse(&text, Path::new(&format!("{provider}.toml"))).expect("valid sheet")
    }

    fn config(extra: &str) -> Config {
        let text = format!(
            "[server]\n[[providers]]\nname = \"a\"\nbase_url = \"http://a/v1/\"\napi_key_env = \"A_KEY\"\n\
             [[providers]]\nname = \"b\"\nbase_url = \"http://b/v1\"\n{extra}"
        );
        Config::parse(&text, Path::new("t.toml")).expect("valid config")
    }

    fn env(var: &str) -> Option<String> {
        (var == "A_KEY").then(|| "sk-test".to_owned())
    }

    #[test]
    fn resolves_ids_models_groups_and_auto() {
        let sheets = [sheet("a", &["m1", "m2"]), sheet("b", &["m1"])];
        let c = Catalog::build(
            &config("[groups]\nsmall = [\"m1\", \"a/m2\"]\n"),
            &sheets,
            &env,
        )
        .expect("builds");
        let ids = |name: &str| -> Vec<&str> {
            c.resolve(name)
                .expect("known")
                .iter()
                .map(|&i| c.endpoint(i).id.as_str())
                .collect()
        };
        assert_eq!(ids("a/m1"), ["a/m1"]);
        assert_eq!(ids("m1"), ["a/m1", "b/m1"]);
        assert_eq!(ids("small"), ["a/m1", "b/m1", "a/m2"]);
        assert_eq!(ids("auto").len(), 3);
        assert!(c.resolve("nope").is_none());
        // An endpoint by its id only: a model or group name is not one.
        assert_eq!(
            c.index_of("b/m1").map(|i| c.endpoint(i).id.as_str()),
            Some("b/m1")
        );
        assert_eq!(c.index_of("m1"), None);
        assert_eq!(c.index_of("small"), None);
        assert_eq!(
            c.provider_of(0).chat_url.uri().to_string(),
            "http://a/v1/chat/completions"
        );
        assert_eq!(c.shared_models().count(), 1);
    }

    #[test]
    fn missing_key_sheet_and_group_member_are_errors() {
        let sheets = [sheet("a", &["m1"]), sheet("b", &["m1"])];
        let no_env = |_: &str| None;
        let err = Catalog::build(&config(""), &sheets, &no_env).unwrap_err();
        assert!(err.to_string().contains("A_KEY"), "{err}");
        let err = Catalog::build(&config(""), &sheets[..1], &env).unwrap_err();
        assert!(err.to_string().contains("`b`"), "{err}");
        let err = Catalog::build(&config("[groups]\ng = [\"zz\"]\n"), &sheets, &env).unwrap_err();
        assert!(err.to_string().contains("`zz`"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let sheets = [sheet("a", &["m1"]), sheet("b", &["m1"])];
        let c = Catalog::build(&config(""), &sheets, &env).expect("builds");
        let shown = format!("{c:?}");
        assert!(!shown.contains("sk-test"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
