//! From a parsed request to a ranked plan: resolve `model` (and the `models` fallbacks) to
//! candidate tiers, check the names the hints use, drop what the hard constraints rule out,
//! and let the policy rank the rest.

use std::sync::Arc;

use rand::RngCore;

use crate::catalog::{Catalog, EndpointIdx};
use crate::config::{PolicyName, RoutingConfig};
use crate::presets::Presets;
use crate::route::hints::{self, split_suffix, HintError};
use crate::route::preset::merge;
use crate::route::{ChatBody, Constraints, RouteRequest};
use crate::select::{self, Candidate, Context, Decision, Policy, Removal};
use crate::stats::StatsTable;

/// Why a request cannot be planned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Hint(#[from] HintError),
    /// `model` (or `models[i]`, named by `field`) names nothing in the catalog.
    #[error("`{field}`: the model `{model}` does not exist")]
    ModelNotFound { model: String, field: String },
    /// The hard constraints removed every candidate: `(endpoint id, constraint)` pairs.
    #[error("no endpoint satisfies the request's hard constraints")]
    NoCandidates { removed: Vec<(String, String)> },
}

/// A request as the router reads it: the model it names (suffix removed) and the summary
/// the selector sees, hints merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub model: String,
    pub request: RouteRequest,
    /// The preset the request named, and the version of the presets it was read from.
    pub preset: Option<(String, u64)>,
    /// A policy the preset asks for, instead of the group's or the router's.
    pub policy: Option<PolicyName>,
    /// The name a group policy is looked up by (`routing.group_policies`): the model the
    /// client named, or the preset's name.
    pub policy_key: String,
}

impl Parsed {
    /// Reads the hints of every source (body, headers, model suffix). `header` looks up a
    /// request header by lower-case name.
    pub fn new<'h>(
        chat: &ChatBody<'_>,
        header: impl Fn(&str) -> Option<&'h str>,
    ) -> Result<Parsed, PlanError> {
        Parsed::with_presets(chat, header, &Presets::default())
    }

    /// [`Parsed::new`], where `model` may name a preset (`@preset/NAME`): its models become
    /// the model and the fallbacks (before the request's own `models`), its hints apply under
    /// the request's (the strictest wins), and its policy, if any, ranks.
    pub fn with_presets<'h>(
        chat: &ChatBody<'_>,
        header: impl Fn(&str) -> Option<&'h str>,
        presets: &Presets,
    ) -> Result<Parsed, PlanError> {
        let (model, suffix) = split_suffix(&chat.model);
        let sources = hints::Sources {
            route: chat.field("route"),
            provider: chat.field("provider"),
            models: chat.field("models"),
        };
        let gathered = hints::gather(sources, header, suffix)?;
        let named = model.strip_prefix(crate::presets::PREFIX);
        let preset = match named {
            Some(name) => Some(
                presets
                    .get(name)
                    .filter(|p| p.name != crate::presets::DEFAULT)
                    .ok_or_else(|| PlanError::ModelNotFound {
                        model: model.to_owned(),
                        field: "model".to_owned(),
                    })?,
            ),
            // A preset by its plain name (a live group), else the default preset, if any.
            None => presets
                .get(model)
                .filter(|p| p.name != crate::presets::DEFAULT)
                .or_else(|| presets.get(crate::presets::DEFAULT)),
        };
        let Some(preset) = preset else {
            return Ok(Parsed {
                model: model.to_owned(),
                request: RouteRequest::new(chat, gathered.into_constraints(chat.stream)),
                preset: None,
                policy: None,
                policy_key: model.to_owned(),
            });
        };
        let mut merged = merge(gathered, &preset.hints);
        let (target, policy_key) = match preset.models.split_first() {
            Some((first, rest)) => {
                let own = std::mem::take(&mut merged.constraints.fallback_models);
                merged.constraints.fallback_models = rest.iter().cloned().chain(own).collect();
                merged.constraints.merge_models |= preset.group;
                (first.clone(), preset.name.clone())
            }
            // The default preset: the request's own model.
            None => (model.to_owned(), model.to_owned()),
        };
        Ok(Parsed {
            model: target,
            request: RouteRequest::new(chat, merged.into_constraints(chat.stream)),
            preset: Some((preset.name.clone(), presets.version)),
            policy: preset.policy,
            policy_key,
        })
    }
}

/// What the router decided for one request.
#[derive(Debug, Clone)]
pub struct Plan {
    pub decision: Decision,
    pub removed: Vec<Removal>,
    /// Attempts allowed: the config's, lowered by `route.max_attempts`, one without fallbacks.
    pub max_attempts: usize,
}

/// The routing settings a plan is made with: the policy, the groups' own policies, and the
/// attempts allowed.
pub struct Planner {
    policy: Arc<dyn Policy>,
    group_policies: Vec<(String, Arc<dyn Policy>)>,
    /// Policies presets may name, built once (a round robin keeps its turn across requests).
    named: Vec<(PolicyName, Arc<dyn Policy>)>,
    max_attempts: u32,
}

impl Planner {
    pub fn new(
        policy: Arc<dyn Policy>,
        group_policies: Vec<(String, Arc<dyn Policy>)>,
        max_attempts: u32,
    ) -> Planner {
        let named = [
            PolicyName::Thompson,
            PolicyName::Cheapest,
            PolicyName::RoundRobin,
            PolicyName::Random,
            PolicyName::LowestLatency,
            PolicyName::P2cPeakEwma,
            PolicyName::OpenrouterPrice,
        ]
        .into_iter()
        .map(|n| (n, Arc::from(select::from_name(n))))
        .collect();
        Planner {
            policy,
            group_policies,
            named,
            max_attempts,
        }
    }

    /// The planner a `[routing]` section describes.
    pub(crate) fn from_config(routing: &RoutingConfig) -> Planner {
        Planner::new(
            select::from_name(routing.policy).into(),
            routing
                .group_policies
                .iter()
                .map(|(group, name)| (group.clone(), select::from_name(*name).into()))
                .collect(),
            routing.max_attempts,
        )
    }

    /// The policy that ranks requests for `model` (a group may have its own).
    pub(crate) fn policy_for(&self, model: &str) -> &dyn Policy {
        self.group_policies
            .iter()
            .find(|(group, _)| group == model)
            .map_or(&*self.policy, |(_, p)| &**p)
    }

    /// The policy of that name (for presets that name one).
    pub fn named(&self, name: PolicyName) -> &dyn Policy {
        self.named
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| &**p)
            .expect("every policy name is built")
    }

    /// Ranks the candidates of `parsed` at `now_ns`.
    pub(crate) fn plan(
        &self,
        catalog: &Catalog,
        table: &StatsTable,
        parsed: &Parsed,
        now_ns: u64,
        rng: &mut dyn RngCore,
    ) -> Result<Plan, PlanError> {
        let request = &parsed.request;
        let c = &request.constraints;
        let primary = resolve(catalog, &parsed.model, "model")?;
        let mut removed = Vec::new();
        let (kept, mut out) = select::filter::filter(request, catalog, table, primary);
        removed.append(&mut out);
        let mut candidate_tiers: Vec<Vec<Candidate>> = vec![kept];
        for (i, m) in c.fallback_models.iter().enumerate() {
            let (m, _) = split_suffix(m);
            let tier = resolve(catalog, m, &format!("models[{i}]"))?;
            let (kept, mut out) = select::filter::filter(request, catalog, table, tier);
            removed.append(&mut out);
            candidate_tiers.push(kept);
        }
        check_names(catalog, c)?;
        if c.merge_models && candidate_tiers.len() > 1 {
            let merged: Vec<Candidate> = candidate_tiers.concat();
            candidate_tiers = vec![merged];
        }
        if candidate_tiers.iter().all(Vec::is_empty) {
            removed.dedup_by(|a, b| a.endpoint == b.endpoint);
            let removed = removed
                .into_iter()
                .map(|r| (catalog.endpoint(r.endpoint).id.clone(), r.constraint))
                .collect();
            return Err(PlanError::NoCandidates { removed });
        }
        let ctx = Context {
            request,
            catalog,
            stats: table,
            now_ns,
        };
        let policy = match parsed.policy {
            Some(name) => self.named(name),
            None => self.policy_for(&parsed.policy_key),
        };
        let decision = select::rank(policy, &ctx, &candidate_tiers, rng);
        let mut max_attempts = self.max_attempts;
        if let Some(n) = c.max_attempts {
            max_attempts = max_attempts.min(n);
        }
        if !c.allow_fallbacks {
            max_attempts = 1;
        }
        Ok(Plan {
            decision,
            removed,
            max_attempts: max_attempts as usize,
        })
    }
}

fn resolve<'c>(
    catalog: &'c Catalog,
    model: &str,
    field: &str,
) -> Result<&'c [EndpointIdx], PlanError> {
    catalog
        .resolve(model)
        .ok_or_else(|| PlanError::ModelNotFound {
            model: model.to_owned(),
            field: field.to_owned(),
        })
}

/// `only` / `ignore` / `order` must name known providers or endpoints: a typo would
/// otherwise silently filter everything or nothing.
fn check_names(catalog: &Catalog, c: &Constraints) -> Result<(), PlanError> {
    let known = |n: &str| {
        catalog.providers().iter().any(|p| p.name == n)
            || catalog.endpoints().iter().any(|e| e.id == n)
    };
    let lists = c
        .only
        .iter()
        .chain(&c.ignore)
        .map(|(f, l)| (*f, l))
        .chain(std::iter::once(("provider.order", &c.order)));
    for (field, list) in lists {
        if let Some(bad) = list.iter().find(|n| !known(n)) {
            return Err(PlanError::Hint(HintError {
                field: field.to_owned(),
                message: format!("`{bad}` is neither a configured provider nor an endpoint id"),
            }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
