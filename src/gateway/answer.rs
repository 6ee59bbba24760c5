//! Turning the answering attempt's answer into the client's response: a JSON body with its
//! cost, a relayed stream (in the client's dialect) whose end is metered and logged, or a
//! provider's refusal; each leaves its line in the request log.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::time::Instant;

use super::attempt::Answer;
use super::guard::Caller;
use super::relay::{relay, StreamEnd, StreamSummary};
use super::request_log::Draft;
use super::usage::Usage;
use super::{Gateway, COST_HEADER};
use crate::catalog::{Catalog, EndpointIdx};
use crate::route::ChatBody;
use crate::stats::FailureClass;

/// What answering needs to know of the request.
pub(super) struct Answering<'a> {
    pub gateway: &'a Gateway,
    pub request_id: &'a str,
    /// The answering endpoint's id and index.
    pub endpoint: &'a str,
    pub idx: EndpointIdx,
    pub catalog: &'a Catalog,
    pub caller: &'a Caller,
    pub started: Instant,
    pub draft: Option<Draft>,
    pub for_anthropic: bool,
    pub chat: &'a ChatBody<'a>,
}

pub(super) fn respond(a: Answering<'_>, answer: Answer) -> Response {
    let Answering {
        gateway,
        request_id,
        endpoint,
        idx,
        catalog,
        caller,
        started,
        draft,
        for_anthropic,
        chat,
    } = a;
    let shared = &*gateway.0;
    let log = |line: crate::log::Line| {
        if let Some(log) = &shared.log {
            log.write(line);
        }
    };
    match answer {
        Answer::Json {
            body,
            cost,
            facts,
            native,
        } => {
            log_answer(request_id, endpoint, started, facts.usage.as_ref());
            if let (Some(client), Some(cost)) = (&caller.0, cost) {
                client.charge(cost);
            }
            shared.hedging.spent(cost, gateway.now_ns());
            if let Some(d) = draft {
                let usage = facts.usage.as_ref();
                log(d.finish(crate::log::Outcome::Answered, 200, None, usage, cost));
            }
            let body = match cost {
                _ if for_anthropic => super::dialects::json_for_anthropic(&body, native),
                Some(cost) => facts.with_cost(&body, cost).map_or(body, Bytes::from),
                None => body,
            };
            let mut response = ([(CONTENT_TYPE, "application/json")], body).into_response();
            if let Some(v) = cost.and_then(|c| HeaderValue::from_str(&c.to_string()).ok()) {
                response.headers_mut().insert(COST_HEADER, v);
            }
            response
        }
        Answer::Stream {
            first,
            rest,
            meter,
            tap,
        } => {
            let (id, ep) = (request_id.to_owned(), endpoint.to_owned());
            let messages_bytes = chat.messages_bytes;
            let client = caller.0.clone();
            let broke = tap.clone();
            let logged = gateway.clone();
            let on_end = move |summary: StreamSummary| {
                let shared = &*logged.0;
                if let (Some(tap), StreamEnd::Broken(why)) = (&broke, &summary.end) {
                    tap.broke(why);
                }
                tracing::debug!(request_id = %id, endpoint = %ep, end = ?summary.end,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    usage = ?summary.usage, "stream finished");
                use crate::log::Outcome;
                let (outcome, cost) = match summary.end {
                    StreamEnd::Completed => {
                        // The cost is in the usage chunk if the client asked for one.
                        let cost = meter.succeed(
                            summary.first_token,
                            summary.usage.as_ref(),
                            messages_bytes,
                        );
                        if let (Some(client), Some(cost)) = (&client, cost) {
                            client.charge(cost);
                        }
                        shared.hedging.spent(cost, logged.now_ns());
                        (Outcome::Answered, cost)
                    }
                    StreamEnd::Broken(_) | StreamEnd::UpstreamError => {
                        meter.fail(FailureClass::MidStream);
                        (Outcome::Broken, None)
                    }
                    // Dropping the meter untold records the attempt as cancelled.
                    StreamEnd::ClientGone => {
                        drop(meter);
                        (Outcome::ClientGone, None)
                    }
                };
                if let (Some(d), Some(log)) = (draft, &shared.log) {
                    let usage = summary.usage.as_ref();
                    log.write(d.finish(outcome, 200, summary.first_token, usage, cost));
                }
            };
            let idle = shared.upstream.idle_timeout;
            let rates = catalog.endpoint(idx).rates;
            let stream = relay(
                first,
                rest,
                !chat.client_wants_usage,
                Some(rates),
                idle,
                on_end,
            );
            let mut response = match (tap, for_anthropic) {
                (Some(tap), _) => Response::new(Body::from_stream(super::dialects::native_stream(
                    stream, tap,
                ))),
                (None, true) => {
                    let events = super::dialects::openai_to_anthropic_stream(stream);
                    Response::new(Body::from_stream(events))
                }
                (None, false) => Response::new(Body::from_stream(stream)),
            };
            let h = response.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            // Tell buffering proxies in front of the router to pass events on at once.
            h.insert(
                http::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            );
            response
        }
        Answer::Rejected {
            status,
            content_type,
            body,
        } => {
            tracing::debug!(request_id, %endpoint, status = status.as_u16(), "provider refused the request");
            if let Some(d) = draft {
                log(d.finish(
                    crate::log::Outcome::Rejected,
                    status.as_u16(),
                    None,
                    None,
                    None,
                ));
            }
            let anthropic_provider =
                catalog.provider_of(idx).protocol == crate::dialect::Protocol::Anthropic;
            if for_anthropic != anthropic_provider {
                // The refusal in the client's dialect.
                let body = super::dialects::rejection_for(for_anthropic, status.as_u16(), &body);
                (status, [(CONTENT_TYPE, "application/json")], body).into_response()
            } else {
                let mut response = (status, body).into_response();
                if let Some(ct) = content_type {
                    response.headers_mut().insert(CONTENT_TYPE, ct);
                }
                response
            }
        }
    }
}

fn log_answer(request_id: &str, endpoint: &str, started: Instant, usage: Option<&Usage>) {
    tracing::debug!(request_id, endpoint, elapsed_ms = started.elapsed().as_millis() as u64,
        usage = ?usage, "answered");
}
