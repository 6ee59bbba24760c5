use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};

fn hints(body: Value, headers: &[(&str, &str)]) -> Result<Constraints, HintError> {
    let bytes = body.to_string().into_bytes();
    let chat = ChatBody::parse(&bytes).expect("valid body");
    let (_, suffix) = split_suffix(&chat.model);
    parse(
        &chat,
        |name| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v),
        suffix,
    )
}

fn with(extra: Value) -> Value {
    let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

#[test]
fn defaults_prefer_cost_without_targets() {
    let c = hints(with(json!({})), &[]).expect("valid");
    assert_eq!(c.prefer, Prefer::Cost);
    assert_eq!(c.metric, LatencyMetric::Total);
    assert!(c.latency.is_empty() && c.allow_fallbacks);
    let c = hints(with(json!({"stream": true})), &[]).expect("valid");
    assert_eq!(c.metric, LatencyMetric::Ttft);
}

#[test]
fn the_strictest_value_wins_across_sources() {
    let body = with(json!({
        "route": {"max_latency_ms": 800, "latency_percentile": 90, "max_cost_usd": 0.01, "min_quality": 0.6},
        "provider": {"preferred_max_latency": {"p50": 0.3, "p90": 2.0}, "allow_fallbacks": false},
    }));
    let headers = [
        ("x-route-max-latency-ms", "500"),
        ("x-route-percentile", "99"),
        ("x-route-max-cost-usd", "0.02"),
        ("x-route-min-quality", "0.7"),
    ];
    let c = hints(body, &headers).expect("valid");
    assert_eq!(
        c.latency,
        vec![
            LatencyTarget {
                percentile: 50.0,
                max_ms: 300.0
            },
            LatencyTarget {
                percentile: 90.0,
                max_ms: 2000.0
            },
            LatencyTarget {
                percentile: 99.0,
                max_ms: 500.0
            },
        ]
    );
    assert_eq!(c.max_cost_usd, Some(0.01));
    assert_eq!(c.min_quality, Some(0.7));
    assert!(!c.allow_fallbacks);
}

#[test]
fn prefer_comes_from_route_then_sort_then_suffix_then_header() {
    let h = [("x-route-prefer", "quality")];
    assert_eq!(
        hints(with(json!({})), &h).expect("valid").prefer,
        Prefer::Quality
    );
    let nitro = json!({"model": "m:nitro", "messages": [{}]});
    assert_eq!(hints(nitro, &h).expect("valid").prefer, Prefer::Throughput);
    let sorted = json!({"model": "m:nitro", "messages": [{}], "provider": {"sort": "latency"}});
    assert_eq!(
        hints(sorted.clone(), &h).expect("valid").prefer,
        Prefer::Latency
    );
    let mut routed = sorted;
    routed["route"] = json!({"prefer": "cost"});
    assert_eq!(hints(routed, &h).expect("valid").prefer, Prefer::Cost);
    assert_eq!(split_suffix("m:floor"), ("m", Some(Prefer::Cost)));
    assert_eq!(split_suffix("m:free"), ("m:free", None));
}

#[test]
fn openrouter_fields_keep_their_units_and_lists_their_sources() {
    let c = hints(
        with(json!({
            "provider": {"order": ["b", "a"], "only": ["a", "b"], "ignore": ["c"], "max_price": {"prompt": 1, "completion": 2},
                         "preferred_min_throughput": 50, "sort": {"by": "price", "partition": "none"}},
            "route": {"only": ["a"]},
            "models": ["m2", "m3"],
        })),
        &[],
    )
    .expect("valid");
    assert_eq!(c.order, ["b", "a"]);
    assert_eq!(c.only.len(), 2);
    assert_eq!(c.ignore, vec![("provider.ignore", vec!["c".to_owned()])]);
    assert_eq!(c.max_price.prompt, Some(1.0));
    assert_eq!(
        c.throughput,
        vec![ThroughputTarget {
            percentile: 50.0,
            min_tokens_per_s: 50.0
        }]
    );
    assert_eq!(c.fallback_models, ["m2", "m3"]);
    assert!(c.merge_models);
}

#[test]
fn invalid_hints_name_their_field() {
    let cases = [
        (
            json!({"route": {"max_latency_ms": -5}}),
            "route.max_latency_ms",
        ),
        (
            json!({"route": {"latency_percentile": 100}}),
            "route.latency_percentile",
        ),
        (json!({"route": {"max_latncy_ms": 5}}), "route"),
        (json!({"route": {"prefer": "speed"}}), "route"),
        (json!({"route": {"min_quality": 2}}), "route.min_quality"),
        (json!({"route": {"max_attempts": 0}}), "route.max_attempts"),
        (json!({"route": 5}), "route"),
        (json!({"provider": {"sort": "fastest"}}), "provider.sort"),
        (
            json!({"provider": {"max_price": {"prompt": -1}}}),
            "provider.max_price.prompt",
        ),
        (
            json!({"provider": {"data_collection": "deny"}}),
            "provider.data_collection",
        ),
        (
            json!({"provider": {"preferred_max_latency": 0}}),
            "provider.preferred_max_latency",
        ),
        (json!({"models": ["ok", ""]}), "models[1]"),
        (json!({"models": "m2"}), "models"),
    ];
    for (extra, field) in cases {
        let e = hints(with(extra.clone()), &[]).unwrap_err();
        assert_eq!(e.field, field, "{extra}: {e}");
    }
    for (name, value) in [
        ("x-route-max-latency-ms", "fast"),
        ("x-route-max-cost-usd", "0"),
        ("x-route-min-quality", "1.5"),
        ("x-route-prefer", "cheap"),
        ("x-route-percentile", "0"),
    ] {
        let e = hints(with(json!({})), &[(name, value)]).unwrap_err();
        assert_eq!(e.field, name, "{e}");
    }
}

proptest! {
    /// Whatever JSON sits in the hint fields, parsing returns an answer, never panics.
    #[test]
    fn arbitrary_hint_values_never_panic(route in any_json(), provider in any_json(), models in any_json()) {
        let body = with(json!({"route": route, "provider": provider, "models": models}));
        let _ = hints(body, &[]);
    }

    #[test]
    fn arbitrary_header_values_never_panic(v in "\\PC{0,12}") {
        let _ = hints(with(json!({})), &[("x-route-max-latency-ms", &v), ("x-route-prefer", &v), ("x-route-percentile", &v)]);
    }
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[a-z_]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("max_latency_ms".to_owned()),
                    Just("order".to_owned()),
                    Just("sort".to_owned()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
