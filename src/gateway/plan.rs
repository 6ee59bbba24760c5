//! From a parsed request to a ranked plan of attempts: resolve `model` (and the `models`
//! fallbacks) to candidate tiers, check the names the hints use, drop what the hard
//! constraints rule out, and let the policy rank the rest.

use rand::RngCore;

use super::error::ApiError;
use super::Shared;
use crate::catalog::{Catalog, EndpointIdx};
use crate::route::hints::split_suffix;
use crate::route::{hints, ChatBody, RouteRequest};
use crate::select::{self, Candidate, Context, Decision, Removal};
use crate::stats::StatsTable;

/// What the router decided for one request.
pub struct Plan {
    pub request: RouteRequest,
    pub decision: Decision,
    pub removed: Vec<Removal>,
    /// Attempts allowed: the config's, lowered by `route.max_attempts`, one without fallbacks.
    pub max_attempts: usize,
}

/// `header` looks up a request header by lower-case name.
pub fn plan<'h>(
    shared: &Shared,
    catalog: &Catalog,
    table: &StatsTable,
    chat: &ChatBody<'_>,
    header: impl Fn(&str) -> Option<&'h str>,
    now_ns: u64,
    rng: &mut dyn RngCore,
) -> Result<Plan, ApiError> {
    let (model, suffix) = split_suffix(&chat.model);
    let constraints = hints::parse(chat, header, suffix)?;
    let request = RouteRequest::new(chat, constraints);
    let c = &request.constraints;

    let primary = catalog
        .resolve(model)
        .ok_or_else(|| ApiError::ModelNotFound(model.to_owned(), "model".into()))?;
    let mut tiers: Vec<&[EndpointIdx]> = vec![primary];
    for (i, m) in c.fallback_models.iter().enumerate() {
        let (m, _) = split_suffix(m);
        let found = catalog
            .resolve(m)
            .ok_or_else(|| ApiError::ModelNotFound(m.to_owned(), format!("models[{i}]")))?;
        tiers.push(found);
    }
    check_names(catalog, c)?;

    let mut removed = Vec::new();
    let mut candidate_tiers: Vec<Vec<Candidate>> = Vec::with_capacity(tiers.len());
    for tier in tiers {
        let (kept, mut out) = select::filter::filter(&request, catalog, table, now_ns, tier);
        removed.append(&mut out);
        candidate_tiers.push(kept);
    }
    if c.merge_models {
        let merged: Vec<Candidate> = candidate_tiers.concat();
        candidate_tiers = vec![merged];
    }
    if candidate_tiers.iter().all(Vec::is_empty) {
        removed.dedup_by(|a, b| a.endpoint == b.endpoint);
        let removed = removed
            .into_iter()
            .map(|r| (catalog.endpoint(r.endpoint).id.clone(), r.constraint))
            .collect();
        return Err(ApiError::NoCandidates { removed });
    }

    let policy = shared
        .group_policies
        .iter()
        .find(|(group, _)| group == model)
        .map_or(&*shared.policy, |(_, p)| &**p);
    let ctx = Context {
        request: &request,
        catalog,
        stats: table,
        now_ns,
    };
    let decision = select::rank(policy, &ctx, &candidate_tiers, rng);
    let mut max_attempts = shared.max_attempts;
    if let Some(n) = c.max_attempts {
        max_attempts = max_attempts.min(n);
    }
    if !c.allow_fallbacks {
        max_attempts = 1;
    }
    Ok(Plan {
        request,
        decision,
        removed,
        max_attempts: max_attempts as usize,
    })
}

/// `only` / `ignore` / `order` must name known providers or endpoints: a typo would
/// otherwise silently filter everything or nothing.
fn check_names(catalog: &Catalog, c: &crate::route::Constraints) -> Result<(), ApiError> {
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
            return Err(ApiError::Hint(hints::HintError {
                field: field.to_owned(),
                message: format!("`{bad}` is neither a configured provider nor an endpoint id"),
            }));
        }
    }
    Ok(())
}
