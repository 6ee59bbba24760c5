//! A request's line in the request log ([`crate::log`]), drawn up as the request is served:
//! what is known once its attempts end ([`Draft::new`]), finished when its answer does (at
//! once for JSON, refusals and failures; at the stream's end for streams).

use axum::http::HeaderMap;
use tokio::time::Instant;

use super::hedge::HedgeOutcome;
use super::usage::Usage;
use crate::catalog::Catalog;
use crate::log::{AttemptLine, HedgeLine, Hints, Line, Outcome, RawJson, Record};
use crate::plan::{End, Tried};
use crate::route::ChatBody;

/// Ranked candidates a record names (the count is always kept).
const RANKED_KEPT: usize = 8;

/// A record waiting for its answer's end.
pub(crate) struct Draft {
    record: Record,
    /// When the request arrived, and when the answering attempt started.
    arrived: Instant,
    answer_started: Option<Instant>,
}

/// What the attempts were, for [`Draft::new`].
pub(crate) struct Attempted<'a> {
    pub catalog: &'a Catalog,
    pub ranked: &'a [usize],
    pub est_prompt_tokens: f64,
    pub trace: &'a [Tried],
    /// The router's clock (ns since its epoch) at arrival.
    pub arrived_ns: u64,
    pub hedge: &'a HedgeOutcome,
    pub hedging: bool,
}

impl Draft {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: &str,
        at_ms: u64,
        client: Option<&str>,
        surface: &str,
        chat: &ChatBody<'_>,
        headers: &HeaderMap,
        arrived: Instant,
        a: Attempted<'_>,
    ) -> Draft {
        let id_of = |i: usize| a.catalog.endpoint(i).id.clone();
        let ms = |ns: u64| ns.saturating_sub(a.arrived_ns) as f64 / 1e6;
        let attempts = a
            .trace
            .iter()
            .map(|t| {
                let (outcome, status) = AttemptLine::outcome_of(t.end);
                AttemptLine {
                    endpoint: id_of(t.endpoint),
                    start_ms: ms(t.started_ns),
                    outcome,
                    status,
                    took_ms: (t.ended_ns > 0)
                        .then(|| t.ended_ns.saturating_sub(t.started_ns) as f64 / 1e6),
                    ttft_ms: None,
                    hedge: t.hedge,
                }
            })
            .collect();
        let answering = a
            .trace
            .iter()
            .find(|t| matches!(t.end, End::Answered | End::Running));
        let answer_started = answering.map(|t| {
            arrived + std::time::Duration::from_nanos(t.started_ns.saturating_sub(a.arrived_ns))
        });
        let raw = |name: &str| chat.field(name).map(RawJson::of);
        let hints = Hints {
            route: raw("route"),
            provider: raw("provider"),
            models: raw("models"),
            headers: headers
                .iter()
                .filter(|(k, _)| k.as_str().starts_with("x-route-"))
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
        };
        let h = a.hedge;
        let hedge = (a.hedging).then(|| HedgeLine {
            after_ms: h.after_ms,
            started: h.started.is_some(),
            won: h.won,
            skipped: h.skipped.map(str::to_owned),
            wasted_usd: h.wasted_usd,
        });
        Draft {
            record: Record {
                id: id.to_owned(),
                at_ms,
                client: client.map(str::to_owned),
                surface: surface.to_owned(),
                model: chat.model.to_string(),
                stream: chat.stream,
                hints,
                prompt_bytes: chat.messages_bytes as u64,
                est_prompt_tokens: a.est_prompt_tokens.round() as u64,
                max_tokens: chat.max_output_tokens,
                candidates: a.ranked.len() as u32,
                ranked: a
                    .ranked
                    .iter()
                    .take(RANKED_KEPT)
                    .map(|&i| id_of(i))
                    .collect(),
                attempts,
                outcome: Outcome::Failed,
                status: 502,
                ttft_ms: None,
                total_ms: None,
                prompt_tokens: None,
                output_tokens: None,
                cost_usd: None,
                hedge,
            },
            arrived,
            answer_started,
        }
    }

    /// The line, as the request ended (`first_token` for streams).
    pub fn finish(
        mut self,
        outcome: Outcome,
        status: u16,
        first_token: Option<Instant>,
        usage: Option<&Usage>,
        cost: Option<rust_decimal::Decimal>,
    ) -> Line {
        use rust_decimal::prelude::ToPrimitive;
        let now = Instant::now();
        let since =
            |from: Instant, t: Instant| t.saturating_duration_since(from).as_secs_f64() * 1e3;
        let r = &mut self.record;
        r.outcome = outcome;
        r.status = status;
        if matches!(
            outcome,
            Outcome::Answered | Outcome::Broken | Outcome::ClientGone
        ) {
            r.total_ms = Some(since(self.arrived, now));
            r.ttft_ms = first_token.map(|t| since(self.arrived, t));
            if let (Some(start), Some(a)) = (
                self.answer_started,
                r.attempts
                    .iter_mut()
                    .rev()
                    .find(|a| a.outcome == "answered"),
            ) {
                a.took_ms = Some(since(start, now));
                a.ttft_ms = first_token.map(|t| since(start, t));
                if outcome != Outcome::Answered {
                    a.outcome = match outcome {
                        Outcome::Broken => "mid_stream",
                        _ => "client_gone",
                    }
                    .to_owned();
                }
            }
        }
        if let Some(u) = usage {
            r.prompt_tokens = Some(u.prompt_tokens);
            r.output_tokens = Some(u.completion_tokens);
        }
        r.cost_usd = cost.and_then(|c| c.to_f64());
        Line::Request(Box::new(self.record))
    }
}

/// The line of a request the router refused before any attempt.
pub(crate) fn refused(
    id: &str,
    at_ms: u64,
    client: Option<&str>,
    surface: &str,
    status: u16,
) -> Line {
    Line::Request(Box::new(Record {
        id: id.to_owned(),
        at_ms,
        client: client.map(str::to_owned),
        surface: surface.to_owned(),
        model: String::new(),
        stream: false,
        hints: Hints::default(),
        prompt_bytes: 0,
        est_prompt_tokens: 0,
        max_tokens: None,
        candidates: 0,
        ranked: Vec::new(),
        attempts: Vec::new(),
        outcome: Outcome::Refused,
        status,
        ttft_ms: None,
        total_ms: None,
        prompt_tokens: None,
        output_tokens: None,
        cost_usd: None,
        hedge: None,
    }))
}
