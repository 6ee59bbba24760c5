//! The planner: tiers, merged tiers, group policies, attempts allowed, names checked.

use std::time::Duration;

use rand::SeedableRng;

use super::*;
use crate::config::PolicyName;
use crate::stats::Stats;

/// Providers `a`, `b`, `c`: `a` and `b` serve `big` (a dearer than b), `c` serves `small`
/// (cheapest of all); group `team` = [a/big, c/small].
fn catalog() -> Catalog {
    let endpoints = [
        ("a", "big", 5.0, 5.0, None),
        ("b", "big", 2.0, 2.0, None),
        ("c", "small", 0.1, 0.1, None),
    ];
    crate::catalog::testing::catalog(&endpoints, "[groups]\nteam = [\"a/big\", \"c/small\"]\n")
}

fn parsed(body: &str) -> Result<Parsed, PlanError> {
    let chat = ChatBody::parse(body.as_bytes()).expect("body");
    Parsed::new(&chat, |_| None)
}

fn ids(cat: &Catalog, plan: &Plan) -> Vec<String> {
    plan.decision
        .ranked
        .iter()
        .map(|&i| cat.endpoint(i).id.clone())
        .collect()
}

fn plan_with(planner: &Planner, body: &str) -> Result<(Vec<String>, Plan), PlanError> {
    let cat = catalog();
    let stats = Stats::new(Duration::from_secs(300), Duration::from_secs(60));
    let table = stats.table(&cat);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let p = parsed(body)?;
    let plan = planner.plan(&cat, &table, &p, 1, &mut rng)?;
    Ok((ids(&cat, &plan), plan))
}

fn cheapest(max_attempts: u32) -> Planner {
    Planner::new(
        select::from_name(PolicyName::Cheapest).into(),
        Vec::new(),
        max_attempts,
    )
}

const MSG: &str = r#""messages": [{"role": "user", "content": "hi"}]"#;

#[test]
fn models_fall_back_tier_by_tier_unless_merged() {
    let body = format!(r#"{{"model": "big", "models": ["small"], {MSG}}}"#);
    let (ids, _) = plan_with(&cheapest(3), &body).expect("plan");
    // The requested model's endpoints first (cheapest first), then the fallback's.
    assert_eq!(ids, ["b/big", "a/big", "c/small"]);
    let merged = format!(
        r#"{{"model": "big", "models": ["small"], "provider": {{"sort": {{"by": "price", "partition": "none"}}}}, {MSG}}}"#
    );
    let (ids, _) = plan_with(&cheapest(3), &merged).expect("plan");
    // One ranking over both models: the cheapest model's endpoint leads.
    assert_eq!(ids, ["c/small", "b/big", "a/big"]);
}

#[test]
fn a_group_uses_its_own_policy() {
    let planner = Planner::new(
        select::from_name(PolicyName::Cheapest).into(),
        vec![(
            "team".into(),
            select::from_name(PolicyName::RoundRobin).into(),
        )],
        3,
    );
    let body = format!(r#"{{"model": "team", {MSG}}}"#);
    let (_, plan) = plan_with(&planner, &body).expect("plan");
    assert_eq!(plan.decision.policy, "round-robin");
    let body = format!(r#"{{"model": "big", {MSG}}}"#);
    let (_, plan) = plan_with(&planner, &body).expect("plan");
    assert_eq!(plan.decision.policy, "cheapest");
    assert_eq!(planner.policy_for("team").name(), "round-robin");
}

#[test]
fn attempts_allowed_take_the_lowest_and_one_without_fallbacks() {
    let base = format!(r#""model": "auto", {MSG}"#);
    let (_, plan) = plan_with(&cheapest(3), &format!("{{{base}}}")).expect("plan");
    assert_eq!(plan.max_attempts, 3);
    let body = format!(r#"{{{base}, "route": {{"max_attempts": 2}}}}"#);
    assert_eq!(
        plan_with(&cheapest(3), &body).expect("plan").1.max_attempts,
        2
    );
    let body = format!(r#"{{{base}, "route": {{"max_attempts": 5}}}}"#);
    assert_eq!(
        plan_with(&cheapest(3), &body).expect("plan").1.max_attempts,
        3
    );
    let body = format!(r#"{{{base}, "provider": {{"allow_fallbacks": false}}}}"#);
    assert_eq!(
        plan_with(&cheapest(3), &body).expect("plan").1.max_attempts,
        1
    );
}

#[test]
fn unknown_names_and_empty_candidate_sets_are_refused_with_the_field() {
    let body = format!(r#"{{"model": "nope", {MSG}}}"#);
    assert!(matches!(
        plan_with(&cheapest(3), &body),
        Err(PlanError::ModelNotFound { field, .. }) if field == "model"
    ));
    let body = format!(r#"{{"model": "big", "models": ["x"], {MSG}}}"#);
    assert!(matches!(
        plan_with(&cheapest(3), &body),
        Err(PlanError::ModelNotFound { field, .. }) if field == "models[0]"
    ));
    let body = format!(r#"{{"model": "big", "route": {{"only": ["zz"]}}, {MSG}}}"#);
    assert!(matches!(
        plan_with(&cheapest(3), &body),
        Err(PlanError::Hint(h)) if h.field == "route.only"
    ));
    let body = format!(r#"{{"model": "big", "route": {{"ignore": ["a", "b"]}}, {MSG}}}"#);
    match plan_with(&cheapest(3), &body) {
        Err(PlanError::NoCandidates { removed }) => {
            assert_eq!(removed.len(), 2, "{removed:?}");
            assert!(removed.iter().all(|(_, c)| c == "route.ignore"));
        }
        other => panic!("expected no candidates, got {other:?}"),
    }
}

#[test]
fn provider_order_goes_first() {
    let body = format!(r#"{{"model": "big", "provider": {{"order": ["a"]}}, {MSG}}}"#);
    let (ids, _) = plan_with(&cheapest(3), &body).expect("plan");
    assert_eq!(ids, ["a/big", "b/big"]);
}

fn presets(texts: &[(&str, &str)]) -> Presets {
    let all = texts
        .iter()
        .map(|(name, text)| {
            crate::presets::Preset::parse(text, std::path::Path::new(&format!("{name}.toml")))
                .expect("preset")
        })
        .collect();
    Presets::new(all, 7)
}

fn plan_with_presets(
    body: &str,
    presets: &Presets,
) -> Result<(Vec<String>, Plan, Parsed), PlanError> {
    let cat = catalog();
    let stats = Stats::new(Duration::from_secs(300), Duration::from_secs(60));
    let table = stats.table(&cat);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let chat = ChatBody::parse(body.as_bytes()).expect("body");
    let parsed = Parsed::with_presets(&chat, |_| None, presets)?;
    let plan = cheapest(3).plan(&cat, &table, &parsed, 1, &mut rng)?;
    Ok((ids(&cat, &plan), plan, parsed))
}

#[test]
fn a_preset_by_name_or_plain_name_and_the_default_preset() {
    let p = presets(&[
        (
            "fast",
            "name = \"fast\"\nmodels = [\"small\", \"big\"]\npolicy = \"round-robin\"\n",
        ),
        (
            "team",
            "name = \"team\"\ngroup = true\nmodels = [\"big\", \"small\"]\n",
        ),
        (
            "default",
            "name = \"default\"\npolicy = \"cheapest\"\nroute = { max_attempts = 2 }\n",
        ),
    ]);
    // By `@preset/NAME` and by plain name: its models in order, its policy, its version.
    for model in ["@preset/fast", "fast"] {
        let body = format!(r#"{{"model": "{model}", {MSG}}}"#);
        let (ids, plan, parsed) = plan_with_presets(&body, &p).expect("plan");
        assert_eq!(ids, ["c/small", "b/big", "a/big"], "{model}");
        assert_eq!(plan.decision.policy, "round-robin");
        assert_eq!(parsed.preset, Some(("fast".to_owned(), 7)));
    }
    // A group preset (here replacing the config group `team`) ranks its models together.
    let body = format!(r#"{{"model": "team", {MSG}}}"#);
    let (ids, _, _) = plan_with_presets(&body, &p).expect("plan");
    assert_eq!(
        ids,
        ["c/small", "b/big", "a/big"],
        "merged: the cheapest of all first"
    );
    // Any other request takes the default preset's hints and policy.
    let body = format!(r#"{{"model": "big", {MSG}}}"#);
    let (ids, plan, parsed) = plan_with_presets(&body, &p).expect("plan");
    assert_eq!(ids, ["b/big", "a/big"]);
    assert_eq!(plan.max_attempts, 2);
    assert_eq!(parsed.preset, Some(("default".to_owned(), 7)));
    // The default preset names no models: not a preset to ask for.
    let body = format!(r#"{{"model": "@preset/default", {MSG}}}"#);
    assert!(matches!(
        plan_with_presets(&body, &p),
        Err(PlanError::ModelNotFound { .. })
    ));
    let body = format!(r#"{{"model": "@preset/nope", {MSG}}}"#);
    assert!(matches!(
        plan_with_presets(&body, &p),
        Err(PlanError::ModelNotFound { .. })
    ));
}
