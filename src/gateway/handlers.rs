//! Request handlers: chat completions, the model list, health.
//!
//! A chat request goes: read the body (bounded), parse the fields the router needs, resolve
//! `model` to candidates, let the policy rank them, run the attempts, and answer: the JSON
//! body or the relayed stream, untouched, with headers saying which endpoint answered after
//! how many attempts.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::time::Instant;

use rand::rngs::SmallRng;
use rand::RngCore;

use super::attempt::{self, Answer, ClientBody};
use super::decisions::Record;
use super::guard::Caller;

use super::{ApiError, Gateway, ATTEMPTS_HEADER, ENDPOINT_HEADER, REQUEST_ID_HEADER};
use crate::catalog::Catalog;
use crate::plan::{AttemptFailure, Attempts, Failure, Parsed};
use crate::route::ChatBody;

pub(crate) async fn chat_completions(
    State(gateway): State<Gateway>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    serve(
        &gateway,
        caller,
        &headers,
        body,
        "chat.completions",
        |bytes| Ok((bytes, ClientBody::OpenAi)),
    )
    .await
}

/// Serves one request of a client surface: reads its body, lets `prepare` turn it into the
/// chat form the planner reads and what the client sent, serves it, counts how it ended and
/// stamps its id on the answer.
pub(super) async fn serve(
    gateway: &Gateway,
    caller: Option<Extension<Caller>>,
    headers: &HeaderMap,
    body: Body,
    surface: &str,
    prepare: impl FnOnce(Bytes) -> Result<(Bytes, ClientBody), ApiError>,
) -> Response {
    let (mut rng, request_id, caller) = begin(gateway, caller);
    let arrived_ms = gateway.0.clock.unix_ms();
    let served = async {
        let bytes = read_request(gateway, headers, body).await?;
        let (planning, client) = prepare(bytes)?;
        chat(
            gateway,
            &caller,
            headers,
            &planning,
            client,
            Served {
                id: &request_id,
                surface,
                arrived_ms,
            },
            &mut rng,
        )
        .await
    };
    let served = served.await;
    if let (Err(e), Some(log)) = (&served, &gateway.0.log) {
        // Failed attempts were logged with them; a refusal has no attempts to log.
        if !matches!(e, ApiError::AllAttemptsFailed { .. }) {
            let status = e.status().as_u16();
            log.write(super::request_log::refused(
                &request_id,
                arrived_ms,
                caller.name(),
                surface,
                status,
            ));
        }
    }
    counted(gateway, surface, served, &request_id)
}

/// Who a request is, as the request log knows it.
struct Served<'a> {
    id: &'a str,
    surface: &'a str,
    arrived_ms: u64,
}

/// Keeps to the providers that do not speak `excluded`: the request cannot be said in it.
fn only_dialect(parsed: &mut Parsed, catalog: &Catalog, excluded: crate::dialect::Protocol) {
    let allowed = catalog
        .providers()
        .iter()
        .filter(|p| p.protocol != excluded)
        .map(|p| p.name.clone())
        .collect();
    parsed.request.constraints.only.push(("dialect", allowed));
}

/// A request's own random draws, its id and its caller.
fn begin(gateway: &Gateway, caller: Option<Extension<Caller>>) -> (SmallRng, String, Caller) {
    let mut rng = gateway.0.rng.for_request();
    let request_id = format!("req_{:016x}", rng.next_u64());
    (
        rng,
        request_id,
        caller.map(|Extension(c)| c).unwrap_or_default(),
    )
}

/// Counts how a request ended and stamps its id on the answer.
fn counted(
    gateway: &Gateway,
    surface: &str,
    served: Result<Response, ApiError>,
    request_id: &str,
) -> Response {
    let counters = &gateway.0.counters;
    let by_surface = super::SURFACES
        .iter()
        .position(|s| *s == surface)
        .map(|i| &counters.by_surface[i]);
    let mut response = match served {
        Ok(response) => {
            counters.answered.fetch_add(1, Ordering::Relaxed);
            if let Some(c) = by_surface {
                c[0].fetch_add(1, Ordering::Relaxed);
            }
            response
        }
        Err(e) => {
            let (counter, k) = match e {
                ApiError::AllAttemptsFailed { .. } => (&counters.failed, 2),
                _ => (&counters.refused, 1),
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if let Some(c) = by_surface {
                c[k].fetch_add(1, Ordering::Relaxed);
            }
            e.into_response()
        }
    };
    response.headers_mut().insert(
        REQUEST_ID_HEADER,
        HeaderValue::from_str(request_id).expect("a hex id is a valid header value"),
    );
    response
}

/// Reads a request body within `server.body_read_timeout` and `server.max_body_bytes`.
pub(super) async fn read_request(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, ApiError> {
    let shared = &*gateway.0;
    let body_timeout = shared.config.server.body_read_timeout;
    tokio::time::timeout(
        body_timeout,
        read_body(body, headers, shared.max_body_bytes),
    )
    .await
    .map_err(|_| ApiError::BodyTimeout(body_timeout))?
}

/// Serves one chat request given in OpenAI's form (`bytes`): plan, attempts, answer. For
/// an Anthropic client, `anthropic` holds its own body, and the answer is in its dialect.
async fn chat(
    gateway: &Gateway,
    caller: &Caller,
    headers: &HeaderMap,
    bytes: &[u8],
    client: ClientBody,
    served: Served<'_>,
    rng: &mut SmallRng,
) -> Result<Response, ApiError> {
    let shared = &*gateway.0;
    let Served {
        id: request_id,
        surface,
        arrived_ms,
    } = served;
    let started = Instant::now();
    use crate::dialect::Protocol;
    use crate::route::body::Shape;
    use crate::route::Operation;
    let (shape, operation) = match &client {
        ClientBody::Completions => (Shape::Completions, Operation::Completions),
        ClientBody::Responses { .. } => (Shape::Responses, Operation::Responses),
        ClientBody::Embeddings(_) => (Shape::Chat, Operation::Embeddings),
        ClientBody::OpenAi | ClientBody::Anthropic(_) => (Shape::Chat, Operation::Chat),
    };
    let chat = ChatBody::parse_as(bytes, shape)?;
    let (anthropic, embeddings, pinned) = match client {
        ClientBody::Anthropic(a) => (Some(a), None, None),
        ClientBody::Embeddings(body) => (None, Some(body), None),
        ClientBody::Responses { pinned } => (None, None, pinned),
        ClientBody::OpenAi | ClientBody::Completions => (None, None, None),
    };
    // This request's view of prices and catalog, kept to its end (see `Live`).
    let live = shared.live.load_full();
    let catalog = live.catalog.clone();
    let now_ns = gateway.now_ns();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut parsed = Parsed::with_presets(&chat, header, &live.presets)?;
    parsed.request.operation = operation;
    parsed.request.constraints.needs = crate::route::needs::of(&chat, shape);
    // An Anthropic client's own body, read once for what it needs and who is asking.
    let anthropic_fields = anthropic
        .as_ref()
        .and_then(|a| crate::route::body::top_level(&a.body).ok());
    if let Some(fields) = &anthropic_fields {
        let c = &mut parsed.request.constraints;
        c.needs = c.needs.union(crate::route::needs::of_anthropic(fields));
    }
    if let Some(endpoint) = pinned {
        // Only the endpoint that holds the previous response can continue it.
        parsed
            .request
            .constraints
            .only
            .push(("previous_response_id", vec![endpoint]));
    }
    // A request one dialect cannot carry goes only to providers of the other. An Anthropic
    // client's is known before planning.
    let mut untranslatable = anthropic
        .as_ref()
        .and_then(|a| a.untranslatable.clone())
        .map(|e| (e, Protocol::Openai));
    if let Some((_, excluded)) = &untranslatable {
        only_dialect(&mut parsed, &catalog, *excluded);
    }
    let mut plan = shared
        .planner
        .plan(&catalog, &live.table, &parsed, now_ns, rng);
    // An OpenAI request is checked against Anthropic's dialect only when its ranking reaches
    // an Anthropic-protocol endpoint (most never do); if it cannot go there, it is planned
    // again without them.
    let reaches_anthropic = |p: &crate::plan::Plan| {
        p.decision
            .ranked
            .iter()
            .any(|&i| catalog.provider_of(i).protocol == Protocol::Anthropic)
    };
    if anthropic.is_none()
        && operation == Operation::Chat
        && plan.as_ref().is_ok_and(reaches_anthropic)
    {
        if let Some(e) = super::dialects::anthropic_refusal(&chat) {
            only_dialect(&mut parsed, &catalog, Protocol::Anthropic);
            untranslatable = Some((e, Protocol::Anthropic));
            plan = shared
                .planner
                .plan(&catalog, &live.table, &parsed, now_ns, rng);
        }
    }
    let mut plan = match plan {
        // Nothing left that speaks the request's dialect: say which field did it.
        Err(crate::plan::PlanError::NoCandidates { .. }) if untranslatable.is_some() => {
            let (e, _) = untranslatable.expect("checked");
            return Err(ApiError::Translate(e));
        }
        plan => plan?,
    };
    // A conversation stays where its prompt cache is warm (embeddings have none); an
    // explicit `provider.order` comes first.
    let affinity_key = (operation != Operation::Embeddings
        && parsed.request.constraints.order.is_empty())
    .then(|| super::affinity::key(&chat, headers, anthropic_fields.as_deref(), caller.name()))
    .flatten();
    let affinity = crate::affinity::apply_remembered(
        &shared.affinities,
        &catalog,
        &live.table,
        affinity_key.as_deref(),
        &mut plan.decision,
        now_ns,
    );
    let total = shared.upstream.total_timeout;
    let deadline = started + total;
    let deadline_ns = now_ns.saturating_add(u64::try_from(total.as_nanos()).unwrap_or(u64::MAX));
    let mut attempts = Attempts::new(
        plan.decision.ranked.clone(),
        plan.max_attempts,
        deadline_ns,
        shared.config.routing.max_retry_after,
    );
    if shared.log.is_some() {
        attempts = attempts.traced();
    }
    let for_anthropic = anthropic.is_some();
    let out = attempt::Outbound {
        chat: &chat,
        anthropic,
        embeddings,
        operation,
    };
    let est_prompt_tokens = plan
        .decision
        .scores
        .first()
        .map_or(0.0, |s| s.estimate.prompt_tokens);
    let hedge = shared
        .hedging
        .config
        .settings(parsed.request.constraints.hedge, &chat.model)
        .map(|settings| super::hedge::Hedge {
            settings,
            costs: plan
                .decision
                .scores
                .iter()
                .map(|s| s.estimate.cost_usd)
                .collect(),
            prompt_tokens: est_prompt_tokens,
        });
    let mut hedged = super::hedge::HedgeOutcome::default();
    let result = super::drive::run(
        shared,
        &catalog,
        &live.table,
        &out,
        attempts,
        deadline,
        hedge.as_ref(),
        &mut hedged,
    )
    .await;
    let draft = shared.log.as_ref().map(|_| {
        let trace = match &result {
            Ok(a) => &a.trace,
            Err(e) => &e.trace,
        };
        super::request_log::Draft::new(
            request_id,
            arrived_ms,
            caller.name(),
            surface,
            &chat,
            headers,
            started,
            super::request_log::Attempted {
                catalog: &catalog,
                ranked: &plan.decision.ranked,
                est_prompt_tokens,
                trace,
                arrived_ns: now_ns,
                hedge: &hedged,
                hedging: hedge.is_some(),
            },
        )
    });
    let named = |failures: &[(usize, Failure)]| -> Vec<AttemptFailure> {
        failures
            .iter()
            .map(|(idx, f)| AttemptFailure {
                endpoint: catalog.endpoint(*idx).id.clone(),
                class: f.class,
                status: f.status,
            })
            .collect()
    };
    let (failures, answered_by) = match &result {
        Ok(a) => (named(&a.failures), Some(a.endpoint)),
        Err(e) => (named(&e.failures), None),
    };
    shared.decisions.push(Record {
        request_id: request_id.to_owned(),
        at_unix_ms: shared.clock.unix_ms(),
        client: caller.name().map(str::to_owned),
        model: chat.model.to_string(),
        preset: parsed.preset.clone(),
        catalog: catalog.clone(),
        request: parsed.request,
        decision: plan.decision,
        removed: plan.removed,
        max_attempts: plan.max_attempts,
        failures: failures.clone(),
        answered_by,
        candidates_total: 0,
        removed_total: 0,
        affinity,
        hedge: hedge.is_some().then(|| hedged.clone()),
    });
    let log = |line: crate::log::Line| {
        if let Some(log) = &shared.log {
            log.write(line);
        }
    };
    let answered = match result {
        Ok(answered) => answered,
        Err(e) => {
            if let Some(d) = draft {
                log(d.finish(crate::log::Outcome::Failed, 502, None, None, None));
            }
            return Err(ApiError::AllAttemptsFailed {
                failures,
                deadline_hit: e.deadline_hit,
                retry_after: e.retry_after,
            });
        }
    };

    let endpoint = catalog.endpoint(answered.endpoint).id.clone();
    let attempts = answered.attempts();
    if !matches!(answered.answer, Answer::Rejected { .. }) {
        let now_ns = gateway.now_ns();
        // An answer its client may score (`POST /v1/feedback`).
        shared
            .feedback
            .answered(request_id, caller.name(), &endpoint, now_ns);
        // The conversation's next turn starts here.
        if let Some(key) = &affinity_key {
            shared.affinities.set(key, &endpoint, now_ns);
        }
    }
    let mut response = super::answer::respond(
        super::answer::Answering {
            gateway,
            request_id,
            endpoint: &endpoint,
            idx: answered.endpoint,
            catalog: &catalog,
            caller,
            started,
            draft,
            for_anthropic,
            chat: &chat,
        },
        answered.answer,
    );
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&endpoint) {
        h.insert(ENDPOINT_HEADER, v);
    }
    h.insert(ATTEMPTS_HEADER, HeaderValue::from(attempts));
    if let Some(v) = hedged.header() {
        h.insert(super::HEDGED_HEADER, HeaderValue::from_static(v));
    }
    Ok(response)
}

/// Reads at most `limit` bytes of body; a declared or actual larger body is a 413.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Err(e) => Err(ApiError::BodyRead(e.to_string())),
    }
}
