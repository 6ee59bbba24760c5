//! Preset files: what is accepted, and errors that name the file and the field.

use std::path::Path;

use super::*;

const GOOD: &str = r#"
name = "fast-cheap"
models = ["m", "b/m"]
route = { max_latency_ms = 800, latency_percentile = 95, prefer = "cost" }
provider = { sort = "price" }
policy = "cheapest"
"#;

fn parse(text: &str) -> Result<Preset, PresetError> {
    Preset::parse(text, Path::new("routing/fast-cheap.toml"))
}

#[test]
fn a_good_preset_parses() {
    let p = parse(GOOD).expect("valid");
    assert_eq!(p.models, ["m", "b/m"]);
    assert_eq!(p.policy, Some(PolicyName::Cheapest));
    assert_eq!(p.hints.constraints.latency[0].max_ms, 800.0);
}

#[test]
fn errors_name_the_file_and_the_field() {
    for (from, to, field) in [
        (
            "max_latency_ms = 800",
            "max_latency_ms = -8",
            "route.max_latency_ms",
        ),
        ("sort = \"price\"", "sort = \"fastest\"", "provider.sort"),
        ("name = \"fast-cheap\"", "name = \"other\"", "name"),
        ("models = [\"m\", \"b/m\"]", "models = []", "models"),
        (
            "models = [\"m\", \"b/m\"]",
            "models = [\"m\", \"@preset/x\"]",
            "models[1]",
        ),
    ] {
        let e = parse(&GOOD.replace(from, to)).expect_err(to);
        assert_eq!(e.field, field, "{to}: {e}");
        assert!(e.to_string().contains("routing/fast-cheap.toml"), "{e}");
    }
    let e = parse(&GOOD.replace("policy", "polcy")).expect_err("unknown field");
    assert!(e.message.contains("polcy"), "{e}");
    let e = parse(&GOOD.replace("\"cheapest\"", "\"fastest\"")).expect_err("unknown policy");
    assert!(e.message.contains("fastest"), "{e}");
}

#[test]
fn models_and_names_are_checked_against_the_catalog() {
    let cat = crate::catalog::testing::catalog(
        &[("a", "m", 1.0, 1.0, None), ("b", "m", 2.0, 2.0, None)],
        "",
    );
    let good = Presets::new(vec![parse(GOOD).expect("valid")], 0);
    good.check(&cat, Path::new("routing"))
        .expect("every name exists");
    let bad = Presets::new(
        vec![parse(&GOOD.replace("\"b/m\"", "\"c/m\"")).expect("parses")],
        0,
    );
    let e = bad
        .check(&cat, Path::new("routing"))
        .expect_err("c/m is unknown");
    assert_eq!(e.0[0].field, "models[1]");
    let bad = Presets::new(
        vec![parse(&GOOD.replace("sort = \"price\"", "only = [\"zz\"]")).expect("parses")],
        0,
    );
    let e = bad
        .check(&cat, Path::new("routing"))
        .expect_err("zz is unknown");
    assert_eq!(e.0[0].field, "provider.only");
}

#[test]
fn a_directory_is_all_or_nothing_and_may_be_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(load_dir(&dir.path().join("none"))
        .expect("missing is empty")
        .is_empty());
    std::fs::write(dir.path().join("fast-cheap.toml"), GOOD).expect("write");
    assert_eq!(load_dir(dir.path()).expect("valid").len(), 1);
    std::fs::write(dir.path().join("x.toml"), "name = \"x\"\n").expect("write");
    let e = load_dir(dir.path()).expect_err("x has no models");
    assert_eq!(e.0.len(), 1);
    assert!(e.to_string().contains("x.toml"), "{e}");
}

#[test]
fn a_preset_may_take_a_groups_name_not_a_models_and_default_takes_no_models() {
    let cat = crate::catalog::testing::catalog(
        &[("a", "m", 1.0, 1.0, None), ("b", "n", 2.0, 2.0, None)],
        "[groups]\nteam = [\"a/m\", \"b/n\"]\n",
    );
    let named = |name: &str| {
        Preset::parse(
            &format!("name = \"{name}\"\nmodels = [\"m\"]\n"),
            Path::new(&format!("routing/{name}.toml")),
        )
        .expect("parses")
    };
    Presets::new(vec![named("team")], 0)
        .check(&cat, Path::new("routing"))
        .expect("a group's name is free to take");
    let e = Presets::new(vec![named("m")], 0)
        .check(&cat, Path::new("routing"))
        .expect_err("a model's name is not");
    assert_eq!(e.0[0].field, "name");
    let p = Path::new("routing/default.toml");
    Preset::parse("name = \"default\"\npolicy = \"cheapest\"\n", p).expect("no models");
    let e = Preset::parse("name = \"default\"\nmodels = [\"m\"]\n", p).expect_err("models");
    assert_eq!(e.field, "models");
}
