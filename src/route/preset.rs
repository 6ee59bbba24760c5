//! A preset's hints as one more source, merged with the request's own: the strictest value
//! wins, as between a request's body and its headers (the lowest maximum, the highest
//! minimum, the strictest target per percentile; `only` lists intersect, `ignore` lists add
//! up; fallbacks are allowed only if both allow them). For what is a choice rather than a
//! bound — the objective, the latency metric, `provider.order`, `route.hedge` — the request's own word wins
//! and the preset's is the default.

use serde_json::value::{to_raw_value, RawValue};

use super::hints::{gather, merge_latency, min_opt, Gathered, HintError, Sources};

/// Reads a preset's `route` and `provider` objects with the request parser's rules; an
/// error names the field (`route.max_latency_ms`, `provider.sort`, ...).
pub(crate) fn preset_hints(
    route: Option<&serde_json::Value>,
    provider: Option<&serde_json::Value>,
) -> Result<Gathered, HintError> {
    let raw = |v: Option<&serde_json::Value>| -> Option<Box<RawValue>> {
        v.map(|v| to_raw_value(v).expect("a JSON value serializes"))
    };
    let (route, provider) = (raw(route), raw(provider));
    let sources = Sources {
        route: route.as_deref(),
        provider: provider.as_deref(),
        models: None,
    };
    let mut g = gather(sources, |_| None, None)?;
    let relabel = |field: &'static str| -> &'static str {
        match field {
            "route.only" => "preset.route.only",
            "provider.only" => "preset.provider.only",
            "route.ignore" => "preset.route.ignore",
            "provider.ignore" => "preset.provider.ignore",
            other => other,
        }
    };
    for (field, _) in g
        .constraints
        .only
        .iter_mut()
        .chain(g.constraints.ignore.iter_mut())
    {
        *field = relabel(field);
    }
    Ok(g)
}

/// The request's hints on top of a preset's.
pub(crate) fn merge(request: Gathered, preset: &Gathered) -> Gathered {
    let (mut r, p) = (request.constraints, &preset.constraints);
    r.latency.extend(p.latency.iter().copied());
    merge_latency(&mut r.latency);
    for t in &p.throughput {
        match r
            .throughput
            .iter_mut()
            .find(|x| x.percentile == t.percentile)
        {
            Some(x) => x.min_tokens_per_s = x.min_tokens_per_s.max(t.min_tokens_per_s),
            None => r.throughput.push(*t),
        }
    }
    r.min_quality = match (r.min_quality, p.min_quality) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    r.max_cost_usd = min_opt(r.max_cost_usd, p.max_cost_usd);
    r.max_price.prompt = min_opt(r.max_price.prompt, p.max_price.prompt);
    r.max_price.completion = min_opt(r.max_price.completion, p.max_price.completion);
    r.max_price.request = min_opt(r.max_price.request, p.max_price.request);
    r.only.extend(p.only.iter().cloned());
    r.ignore.extend(p.ignore.iter().cloned());
    r.hedge = r.hedge.or(p.hedge);
    if r.order.is_empty() {
        r.order = p.order.clone();
    }
    r.max_attempts = match (r.max_attempts, p.max_attempts) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    r.allow_fallbacks &= p.allow_fallbacks;
    r.merge_models |= p.merge_models;
    Gathered {
        constraints: r,
        prefer: request.prefer.or(preset.prefer),
        metric: request.metric.or(preset.metric),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::route::{ChatBody, LatencyMetric, Prefer};

    fn request(body: &str) -> Gathered {
        let chat = ChatBody::parse(body.as_bytes()).expect("body");
        let sources = Sources {
            route: chat.field("route"),
            provider: chat.field("provider"),
            models: chat.field("models"),
        };
        gather(sources, |_| None, None).expect("hints")
    }

    #[test]
    fn the_strictest_wins_and_the_request_chooses() {
        let preset = preset_hints(
            Some(&json!({"max_latency_ms": 800, "prefer": "latency", "min_quality": 0.6, "max_attempts": 2})),
            Some(&json!({"max_price": {"prompt": 1.0}, "only": ["a", "b"], "order": ["b"]})),
        )
        .expect("preset");
        let r = request(
            r#"{"model": "m", "messages": [{"role": "user", "content": "x"}],
                "route": {"max_latency_ms": 1200, "min_quality": 0.7, "prefer": "cost"},
                "provider": {"max_price": {"prompt": 2.0, "completion": 3.0}, "only": ["a"]}}"#,
        );
        let m = merge(r, &preset);
        let c = m.clone().into_constraints(true);
        assert_eq!(c.latency.len(), 1);
        assert_eq!(c.latency[0].max_ms, 800.0, "the lower maximum");
        assert_eq!(c.min_quality, Some(0.7), "the higher minimum");
        assert_eq!(c.max_price.prompt, Some(1.0));
        assert_eq!(c.max_price.completion, Some(3.0));
        assert_eq!(c.max_attempts, Some(2));
        assert_eq!(c.prefer, Prefer::Cost, "the request's own objective");
        assert_eq!(c.metric, LatencyMetric::Ttft);
        assert_eq!(
            c.order,
            ["b"],
            "the preset's order, the request having none"
        );
        let only: Vec<&str> = c.only.iter().map(|(f, _)| *f).collect();
        assert_eq!(only, ["provider.only", "preset.provider.only"]);
        // Without its own objective, the request takes the preset's.
        let bare = request(r#"{"model": "m", "messages": [{"role": "user", "content": "x"}]}"#);
        assert_eq!(merge(bare, &preset).prefer, Some(Prefer::Latency));
    }

    #[test]
    fn a_bad_preset_hint_names_its_field() {
        let e = preset_hints(Some(&json!({"max_latency_ms": -1})), None).expect_err("negative");
        assert_eq!(e.field, "route.max_latency_ms");
        let e = preset_hints(None, Some(&json!({"sort": "fastest"}))).expect_err("bad sort");
        assert_eq!(e.field, "provider.sort");
        let e = preset_hints(Some(&json!({"max_latncy_ms": 1})), None).expect_err("unknown");
        assert_eq!(e.field, "route");
    }
}
