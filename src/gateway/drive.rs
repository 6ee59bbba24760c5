//! Driving the attempt machine ([`crate::plan::Attempts`]) with real exchanges
//! ([`super::attempt::exchange`]): one attempt at a time, or, for a hedged request
//! ([`super::hedge`]), a second beside a silent first. The first to answer (a JSON answer,
//! or a stream's first data event) ends the request; the other's exchange is dropped, which
//! closes its connection, and it is counted cancelled.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::attempt::{exchange, Answer, Exchange, Outbound};
use super::hedge::{Hedge, HedgeOutcome};
use super::meter::AttemptMeter;
use super::Shared;
use crate::catalog::{Catalog, EndpointIdx};
use crate::plan::hedge::{delay_ms, loser_cost};
use crate::plan::{Attempts, Exhausted, Failure, Tried};
use crate::route::ChatBody;
use crate::stats::StatsTable;

/// The attempt that answered.
pub(crate) struct Answered {
    pub endpoint: EndpointIdx,
    /// The attempts that failed before it.
    pub failures: Vec<(EndpointIdx, Failure)>,
    /// Every attempt, the answering one and any hedge race's loser included.
    pub trace: Vec<Tried>,
    pub answer: Answer,
}

impl Answered {
    /// Attempts made, the answering one included (a hedge race's loser not).
    pub fn attempts(&self) -> usize {
        self.failures.len() + 1
    }
}

type Running<'a> = FuturesUnordered<BoxFuture<'a, (EndpointIdx, Result<Exchange, Failure>)>>;

/// What the race loop waits for next.
enum Wake {
    Ended(EndpointIdx, Result<Exchange, Failure>),
    HedgeDue,
}

/// Drives the attempt machine with real exchanges until an endpoint answers or the machine
/// stops (`max_attempts`, the candidates, or `deadline`, which the machine knows as
/// `Attempts`' own deadline in the router's time). With `hedge`, an attempt silent past its
/// hedge delay gets the next candidate beside it; the first to answer wins and the other's
/// exchange is dropped (its connection closed) and counted cancelled.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<'a>(
    shared: &'a Shared,
    catalog: &'a Catalog,
    table: &Arc<StatsTable>,
    out: &'a Outbound<'a>,
    mut attempts: Attempts,
    deadline: Instant,
    hedge: Option<&Hedge>,
    hedged: &mut HedgeOutcome,
) -> Result<Answered, Exhausted> {
    let body = out.chat;
    let now_ns = || super::meter::nanos_since(shared.epoch);
    let mut running: Running<'a> = FuturesUnordered::new();
    let mut meters: Vec<AttemptMeter> = Vec::with_capacity(1);
    let start = |idx: EndpointIdx, running: &mut Running<'a>, meters: &mut Vec<AttemptMeter>| {
        let rates = catalog.endpoint(idx).rates;
        meters.push(AttemptMeter::started(
            table.clone(),
            idx,
            rates,
            shared.epoch,
        ));
        running.push(Box::pin(async move {
            (idx, exchange(shared, catalog, idx, out, deadline).await)
        }));
    };
    let take_meter = |meters: &mut Vec<AttemptMeter>, idx: EndpointIdx| {
        let at = meters.iter().position(|m| m.endpoint() == idx);
        meters.swap_remove(at.expect("every running attempt has a meter"))
    };
    let mut hedge_at: Option<Instant> = None;
    loop {
        if running.is_empty() {
            let Some(idx) = attempts.next(table, now_ns()) else {
                break;
            };
            start(idx, &mut running, &mut meters);
            hedge_at =
                hedge.and_then(|h| hedge_due(h, &attempts, table, idx, body, now_ns(), hedged));
        }
        let wake = match hedge_at {
            Some(at) => tokio::select! {
                ended = running.next() => ended.map(|(i, r)| Wake::Ended(i, r)),
                () = tokio::time::sleep_until(at) => Some(Wake::HedgeDue),
            },
            None => running.next().await.map(|(i, r)| Wake::Ended(i, r)),
        };
        let (idx, result) = match wake {
            None => continue,
            Some(Wake::HedgeDue) => {
                hedge_at = None;
                let h = hedge.expect("a hedge is due only when hedging");
                if let Some(idx) = start_hedge(shared, h, &mut attempts, table, now_ns(), hedged) {
                    start(idx, &mut running, &mut meters);
                }
                continue;
            }
            Some(Wake::Ended(idx, result)) => (idx, result),
        };
        let meter = take_meter(&mut meters, idx);
        let exchange = match result {
            Err(failure) => {
                meter.hand_over();
                tracing::warn!(endpoint = %catalog.endpoint(idx).id, class = %failure.class,
                    status = failure.status, "attempt failed; trying the next candidate");
                attempts.failed(table, idx, failure, now_ns());
                continue;
            }
            Ok(exchange) => exchange,
        };
        if let Exchange::Rejected {
            status, body: b, ..
        } = &exchange
        {
            // A parameter this model lacks: another may take the request.
            if (attempts.has_next() || attempts.running() > 1)
                && super::refusal::unsupported_parameter(status.as_u16(), b)
            {
                meter.hand_over();
                tracing::info!(endpoint = %catalog.endpoint(idx).id, status = status.as_u16(),
                    "the provider does not support a parameter of the request; trying the next candidate");
                attempts.unsupported(table, idx, status.as_u16(), now_ns());
                continue;
            }
        }
        // This attempt ends the request; any other still running lost the race.
        let losers = match &exchange {
            Exchange::Rejected { .. } => attempts.rejected(table, idx, now_ns()),
            _ => attempts.answered(table, idx, now_ns()),
        };
        if hedged.started.is_some() {
            hedged.won = hedged.started == Some(idx);
        }
        for loser in losers {
            take_meter(&mut meters, loser).hand_over();
            let h = hedge.expect("only a hedge races");
            let cost = loser_cost(
                h.prompt_tokens,
                catalog.endpoint(loser).price.input_per_mtok,
            );
            hedged.wasted_usd += cost;
            shared.hedging.wasted(cost, now_ns());
        }
        if hedged.won {
            shared.hedging.won.fetch_add(1, Ordering::Relaxed);
        }
        // Dropping the losers' exchanges closes their connections.
        drop(running);
        let answer = match exchange {
            Exchange::Json(bytes, facts, native) => {
                let cost = meter.succeed(None, facts.usage.as_ref(), body.messages_bytes);
                Answer::Json {
                    body: bytes,
                    cost,
                    facts,
                    native,
                }
            }
            Exchange::Stream { first, rest, tap } => Answer::Stream {
                first,
                rest,
                meter,
                tap,
            },
            Exchange::Rejected {
                status,
                content_type,
                body,
            } => {
                meter.hand_over();
                Answer::Rejected {
                    status,
                    content_type,
                    body,
                }
            }
        };
        return Ok(Answered {
            endpoint: idx,
            failures: attempts.failures().to_vec(),
            trace: attempts.trace().to_vec(),
            answer,
        });
    }
    Err(attempts.exhausted(now_ns()))
}

/// When the attempt just started at `idx` is due a hedge, if ever: `None` when no candidate
/// is left to hedge with, or its percentile is not known yet (noted in `hedged`).
fn hedge_due(
    h: &Hedge,
    attempts: &Attempts,
    table: &StatsTable,
    idx: EndpointIdx,
    body: &ChatBody<'_>,
    now_ns: u64,
    hedged: &mut HedgeOutcome,
) -> Option<Instant> {
    attempts.hedge_candidate(h.settings.max_hedges)?;
    let view = table.view(idx, now_ns);
    let Some(ms) = delay_ms(h.settings.after, &view, body.stream, h.prompt_tokens) else {
        hedged.skipped = Some("history");
        return None;
    };
    hedged.after_ms = Some(ms);
    Some(Instant::now() + Duration::from_secs_f64(ms / 1000.0))
}

/// Starts the hedge that is due, unless it would cost more than the request allows or the
/// budget is spent.
fn start_hedge(
    shared: &Shared,
    h: &Hedge,
    attempts: &mut Attempts,
    table: &StatsTable,
    now_ns: u64,
    hedged: &mut HedgeOutcome,
) -> Option<EndpointIdx> {
    attempts.hedge_candidate(h.settings.max_hedges)?;
    let cost = h
        .costs
        .get(attempts.started())
        .copied()
        .unwrap_or(f64::INFINITY);
    if cost > h.settings.max_extra_cost_usd {
        hedged.skipped = Some("cost");
        return None;
    }
    if !shared.hedging.allows(now_ns) {
        hedged.skipped = Some("budget");
        shared.hedging.paused.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    let idx = attempts.hedge(table, h.settings.max_hedges, now_ns)?;
    hedged.started = Some(idx);
    shared.hedging.started.fetch_add(1, Ordering::Relaxed);
    Some(idx)
}
