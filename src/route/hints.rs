//! What a request asks of its route, gathered from every source and merged into one
//! [`Constraints`], the strictest value winning.
//!
//! Sources: switchyard's own `route` object in the body; OpenRouter's `provider` object
//! (`order`, `allow_fallbacks`, `only`, `ignore`, `sort`, `max_price`, `preferred_max_latency`,
//! `preferred_min_throughput`, with OpenRouter's units: seconds, tokens per second, USD per
//! million tokens) and its `models` fallback list; the `x-route-*` headers; the `:floor` and
//! `:nitro` model suffixes. Numbers combine strictly (the lowest maximum, the highest
//! minimum, the highest percentile; `only` lists intersect, `ignore` lists add up). For the
//! objective, `route.prefer` outranks `provider.sort`, which outranks a model suffix, which
//! outranks `x-route-prefer`. OpenRouter fields this router cannot honour
//! (`data_collection: "deny"`, `zdr`, `quantizations`,
//! `enforce_distillable_text`) are refused with a 400 rather than silently ignored. Every
//! error names the field or header.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::body::ChatBody;
use crate::plan::hedge::{After, HedgeAsk};

/// Which latency a target is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencyMetric {
    /// Time to the first token.
    Ttft,
    /// Time to the end of the answer.
    Total,
}

/// What to optimise among the candidates that meet every target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prefer {
    #[default]
    Cost,
    Latency,
    Quality,
    Throughput,
}

/// The `percentile`th percentile of latency must stay at or below `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyTarget {
    pub percentile: f64,
    pub max_ms: f64,
}

/// `percentile` percent of requests must decode at least `min_tokens_per_s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ThroughputTarget {
    pub percentile: f64,
    pub min_tokens_per_s: f64,
}

/// Price ceilings in USD per million tokens (and per request).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPrice {
    pub prompt: Option<f64>,
    pub completion: Option<f64>,
    pub request: Option<f64>,
}

/// Everything a request asks of its route, merged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Constraints {
    pub prefer: Prefer,
    pub metric: LatencyMetric,
    /// All must hold (soft: optimised against, not filtered on).
    pub latency: Vec<LatencyTarget>,
    pub throughput: Vec<ThroughputTarget>,
    pub min_quality: Option<f64>,
    /// Hard: candidates whose estimated cost is above are removed.
    pub max_cost_usd: Option<f64>,
    /// Hard.
    pub max_price: MaxPrice,
    /// Hard: each list is a provider name or endpoint id set a candidate must be in.
    pub only: Vec<(&'static str, Vec<String>)>,
    /// Hard: candidates named here (provider or endpoint id) are removed.
    pub ignore: Vec<(&'static str, Vec<String>)>,
    /// Providers to try first, in this order.
    pub order: Vec<String>,
    pub max_attempts: Option<u32>,
    pub allow_fallbacks: bool,
    /// More models to fall back to, in order, after the requested one (`models`).
    pub fallback_models: Vec<String>,
    /// Rank all models' endpoints together instead of model by model
    /// (`provider.sort.partition = "none"`).
    pub merge_models: bool,
    /// Hard: what the request's body needs of a model (tools, images, ...; see
    /// [`crate::route::needs`]); endpoints whose sheet says they lack one are removed.
    pub needs: crate::pricing::Capabilities,
    /// OpenRouter's `provider.require_parameters: true`: endpoints whose sheet does not
    /// list every capability the request uses are removed, unknown ones too.
    pub require_parameters: bool,
    /// `route.hedge`: whether (and how) to hedge a silent attempt; `None` leaves it to the
    /// `[hedge]` config (see [`crate::plan::hedge`]).
    pub hedge: Option<HedgeAsk>,
}

/// A hint that cannot be taken; `field` is the body field or header at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct HintError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> HintError {
    HintError {
        field: field.into(),
        message: message.into(),
    }
}

/// Default percentile of a latency target.
pub(crate) const DEFAULT_PERCENTILE: f64 = 95.0;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RouteHint {
    max_latency_ms: Option<f64>,
    latency_percentile: Option<f64>,
    latency_metric: Option<LatencyMetric>,
    max_cost_usd: Option<f64>,
    min_quality: Option<f64>,
    prefer: Option<Prefer>,
    only: Option<Vec<String>>,
    ignore: Option<Vec<String>>,
    max_attempts: Option<u32>,
    allow_fallbacks: Option<bool>,
    /// `true`, `false`, or [`HedgeWith`]; read on its own so an error names its field.
    hedge: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HedgeWith {
    after: Option<After>,
    max_extra_cost_usd: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProviderHint {
    order: Option<Vec<String>>,
    allow_fallbacks: Option<bool>,
    require_parameters: Option<bool>,
    data_collection: Option<String>,
    zdr: Option<bool>,
    enforce_distillable_text: Option<bool>,
    only: Option<Vec<String>>,
    ignore: Option<Vec<String>>,
    quantizations: Option<Vec<String>>,
    sort: Option<Sort>,
    max_price: Option<MaxPrice>,
    preferred_max_latency: Option<Cutoffs>,
    preferred_min_throughput: Option<Cutoffs>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Sort {
    By(String),
    Object {
        by: String,
        partition: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Cutoffs {
    P50(f64),
    Percentiles(PercentileCutoffs),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PercentileCutoffs {
    p50: Option<f64>,
    p75: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
}

impl Cutoffs {
    fn pairs(&self) -> Vec<(f64, f64)> {
        match self {
            Cutoffs::P50(v) => vec![(50.0, *v)],
            Cutoffs::Percentiles(c) => [(50.0, c.p50), (75.0, c.p75), (90.0, c.p90), (99.0, c.p99)]
                .into_iter()
                .filter_map(|(p, v)| v.map(|v| (p, v)))
                .collect(),
        }
    }
}

/// Parses a body sub-object, naming `field` (and serde's own words) on failure.
fn parse_obj<'a, T: Deserialize<'a> + Default>(
    raw: Option<&'a RawValue>,
    field: &str,
) -> Result<T, HintError> {
    match raw {
        None => Ok(T::default()),
        Some(raw) if raw.get().trim() == "null" => Ok(T::default()),
        Some(raw) => serde_json::from_str(raw.get()).map_err(|e| {
            let msg = e.to_string();
            let msg = msg.split(" at line").next().unwrap_or(&msg);
            err(field, msg)
        }),
    }
}

fn positive(field: &str, v: f64) -> Result<f64, HintError> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(err(field, format!("must be a number above zero, got {v}")))
    }
}

fn percentile(field: &str, v: f64) -> Result<f64, HintError> {
    if v.is_finite() && v > 0.0 && v < 100.0 {
        Ok(v)
    } else {
        Err(err(
            field,
            format!("must be a percentile between 0 and 100 (exclusive), got {v}"),
        ))
    }
}

fn unit_interval(field: &str, v: f64) -> Result<f64, HintError> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(err(field, format!("must be between 0 and 1, got {v}")))
    }
}

pub(crate) fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Splits a `:floor` / `:nitro` suffix off a model name.
pub(crate) fn split_suffix(model: &str) -> (&str, Option<Prefer>) {
    if let Some(m) = model.strip_suffix(":floor") {
        (m, Some(Prefer::Cost))
    } else if let Some(m) = model.strip_suffix(":nitro") {
        (m, Some(Prefer::Throughput))
    } else {
        (model, None)
    }
}

/// Gathers the request's hints. `header` looks up a request header by lower-case name.
pub fn parse<'h>(
    body: &ChatBody<'_>,
    header: impl Fn(&str) -> Option<&'h str>,
    suffix: Option<Prefer>,
) -> Result<Constraints, HintError> {
    let sources = Sources {
        route: body.field("route"),
        provider: body.field("provider"),
        models: body.field("models"),
    };
    Ok(gather(sources, header, suffix)?.into_constraints(body.stream))
}

/// The raw hint objects of one source (a request body, or a preset file).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sources<'a> {
    pub route: Option<&'a RawValue>,
    pub provider: Option<&'a RawValue>,
    pub models: Option<&'a RawValue>,
}

/// What one source asks, before defaults: the objective and the latency metric stay
/// optional, so a request's own choice can outrank a preset's.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Gathered {
    /// Everything else (its `prefer` and `metric` are placeholders until
    /// [`Gathered::into_constraints`]).
    pub constraints: Constraints,
    pub prefer: Option<Prefer>,
    pub metric: Option<LatencyMetric>,
}

impl Gathered {
    /// The constraints, with the default objective (cost) and metric (TTFT for streams).
    pub(crate) fn into_constraints(self, stream: bool) -> Constraints {
        Constraints {
            prefer: self.prefer.unwrap_or_default(),
            metric: self.metric.unwrap_or(if stream {
                LatencyMetric::Ttft
            } else {
                LatencyMetric::Total
            }),
            ..self.constraints
        }
    }
}

/// Gathers one source's hints, the headers and the model suffix.
pub(crate) fn gather<'h>(
    sources: Sources<'_>,
    header: impl Fn(&str) -> Option<&'h str>,
    suffix: Option<Prefer>,
) -> Result<Gathered, HintError> {
    let route: RouteHint = parse_obj(sources.route, "route")?;
    let provider: ProviderHint = parse_obj(sources.provider, "provider")?;
    let models: Vec<String> =
        parse_obj::<Option<Vec<String>>>(sources.models, "models")?.unwrap_or_default();
    if let Some(i) = models.iter().position(|m| m.trim().is_empty()) {
        return Err(err(format!("models[{i}]"), "must be a model name"));
    }
    refuse_unsupported(&provider)?;

    let num_header = |name: &str| -> Result<Option<f64>, HintError> {
        match header(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| err(name, format!("must be a number, got `{v}`"))),
        }
    };
    let h_latency = num_header("x-route-max-latency-ms")?
        .map(|v| positive("x-route-max-latency-ms", v))
        .transpose()?;
    let h_cost = num_header("x-route-max-cost-usd")?
        .map(|v| positive("x-route-max-cost-usd", v))
        .transpose()?;
    let h_quality = num_header("x-route-min-quality")?
        .map(|v| unit_interval("x-route-min-quality", v))
        .transpose()?;
    let h_percentile = num_header("x-route-percentile")?
        .map(|v| percentile("x-route-percentile", v))
        .transpose()?;
    let h_prefer = match header("x-route-prefer") {
        None => None,
        Some(v) => Some(
            serde_json::from_value::<Prefer>(serde_json::Value::String(v.trim().to_owned()))
                .map_err(|_| {
                    err(
                        "x-route-prefer",
                        format!("must be cost, latency, quality or throughput, got `{v}`"),
                    )
                })?,
        ),
    };

    let r_latency = route
        .max_latency_ms
        .map(|v| positive("route.max_latency_ms", v))
        .transpose()?;
    let r_percentile = route
        .latency_percentile
        .map(|v| percentile("route.latency_percentile", v))
        .transpose()?;
    let r_cost = route
        .max_cost_usd
        .map(|v| positive("route.max_cost_usd", v))
        .transpose()?;
    let r_quality = route
        .min_quality
        .map(|v| unit_interval("route.min_quality", v))
        .transpose()?;
    if let Some(n) = route.max_attempts {
        if !(1..=10).contains(&n) {
            return Err(err(
                "route.max_attempts",
                format!("must be between 1 and 10, got {n}"),
            ));
        }
    }

    let hedge = route.hedge.map(hedge_ask).transpose()?.flatten();

    let mut latency = Vec::new();
    if let Some(max_ms) = min_opt(r_latency, h_latency) {
        let p = match (r_percentile, h_percentile) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => a.or(b).unwrap_or(DEFAULT_PERCENTILE),
        };
        latency.push(LatencyTarget {
            percentile: p,
            max_ms,
        });
    }
    if let Some(c) = &provider.preferred_max_latency {
        for (p, seconds) in c.pairs() {
            let max_ms = positive("provider.preferred_max_latency", seconds)? * 1000.0;
            latency.push(LatencyTarget {
                percentile: p,
                max_ms,
            });
        }
    }
    merge_latency(&mut latency);
    let mut throughput = Vec::new();
    if let Some(c) = &provider.preferred_min_throughput {
        for (p, tps) in c.pairs() {
            let min = positive("provider.preferred_min_throughput", tps)?;
            throughput.push(ThroughputTarget {
                percentile: p,
                min_tokens_per_s: min,
            });
        }
    }

    let mut max_price = MaxPrice::default();
    if let Some(mp) = provider.max_price {
        for (name, v) in [
            ("prompt", mp.prompt),
            ("completion", mp.completion),
            ("request", mp.request),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(err(
                        format!("provider.max_price.{name}"),
                        format!("must be zero or more, got {v}"),
                    ));
                }
            }
        }
        max_price = mp;
    }

    let (sort_prefer, merge_models) = match &provider.sort {
        None => (None, false),
        Some(Sort::By(by)) => (Some(sort_by(by)?), false),
        Some(Sort::Object { by, partition }) => {
            let merge = match partition.as_deref() {
                None | Some("model") => false,
                Some("none") => true,
                Some(other) => {
                    return Err(err(
                        "provider.sort.partition",
                        format!("must be `model` or `none`, got `{other}`"),
                    ))
                }
            };
            (Some(sort_by(by)?), merge)
        }
    };

    let named =
        |pairs: [(&'static str, Option<Vec<String>>); 2]| -> Vec<(&'static str, Vec<String>)> {
            pairs
                .into_iter()
                .filter_map(|(f, l)| l.map(|l| (f, l)))
                .collect()
        };
    let only = named([("route.only", route.only), ("provider.only", provider.only)]);
    let ignore = named([
        ("route.ignore", route.ignore),
        ("provider.ignore", provider.ignore),
    ]);

    let constraints = Constraints {
        latency,
        throughput,
        min_quality: match (r_quality, h_quality) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        },
        max_cost_usd: min_opt(r_cost, h_cost),
        max_price,
        only,
        ignore,
        order: provider.order.unwrap_or_default(),
        max_attempts: route.max_attempts,
        allow_fallbacks: route.allow_fallbacks.unwrap_or(true)
            && provider.allow_fallbacks.unwrap_or(true),
        fallback_models: models,
        merge_models,
        require_parameters: provider.require_parameters.unwrap_or(false),
        hedge,
        ..Constraints::default()
    };
    Ok(Gathered {
        constraints,
        prefer: route.prefer.or(sort_prefer).or(suffix).or(h_prefer),
        metric: route.latency_metric,
    })
}

/// `route.hedge`: `true`, `false`, `null`, or `{ after, max_extra_cost_usd }`.
fn hedge_ask(v: serde_json::Value) -> Result<Option<HedgeAsk>, HintError> {
    let with = match v {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Bool(false) => return Ok(Some(HedgeAsk::Off)),
        serde_json::Value::Bool(true) => HedgeWith {
            after: None,
            max_extra_cost_usd: None,
        },
        v @ serde_json::Value::Object(_) => serde_json::from_value(v).map_err(|e| {
            let field = if e.to_string().contains("percentile") {
                "route.hedge.after"
            } else {
                "route.hedge"
            };
            err(field, e.to_string())
        })?,
        _ => {
            return Err(err(
                "route.hedge",
                "must be true, false or an object with `after` and `max_extra_cost_usd`",
            ))
        }
    };
    if let Some(v) = with.max_extra_cost_usd {
        if !(v.is_finite() && v >= 0.0) {
            return Err(err(
                "route.hedge.max_extra_cost_usd",
                format!("must be zero or more, got {v}"),
            ));
        }
    }
    Ok(Some(HedgeAsk::On {
        after: with.after,
        max_extra_cost_usd: with.max_extra_cost_usd,
    }))
}

fn sort_by(by: &str) -> Result<Prefer, HintError> {
    match by {
        "price" => Ok(Prefer::Cost),
        "throughput" => Ok(Prefer::Throughput),
        "latency" => Ok(Prefer::Latency),
        other => Err(err(
            "provider.sort",
            format!("must be price, throughput or latency, got `{other}`"),
        )),
    }
}

/// Keeps one target per percentile, the strictest.
pub(crate) fn merge_latency(targets: &mut Vec<LatencyTarget>) {
    targets.sort_by(|a, b| {
        a.percentile
            .total_cmp(&b.percentile)
            .then(a.max_ms.total_cmp(&b.max_ms))
    });
    targets.dedup_by(|later, kept| later.percentile == kept.percentile);
}

fn refuse_unsupported(p: &ProviderHint) -> Result<(), HintError> {
    const NO_DATA: &str = "is not supported: this router has no such data about its providers, so it cannot honour it";
    if p.zdr == Some(true) {
        return Err(err("provider.zdr", NO_DATA));
    }
    if p.enforce_distillable_text == Some(true) {
        return Err(err("provider.enforce_distillable_text", NO_DATA));
    }
    match p.data_collection.as_deref() {
        None | Some("allow") => {}
        Some("deny") => return Err(err("provider.data_collection", NO_DATA)),
        Some(other) => {
            return Err(err(
                "provider.data_collection",
                format!("must be allow or deny, got `{other}`"),
            ))
        }
    }
    if p.quantizations.as_ref().is_some_and(|q| !q.is_empty()) {
        return Err(err("provider.quantizations", NO_DATA));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
