//! A simulated OpenAI-compatible provider on loopback, shared by tests, benches and the demo.
//!
//! It answers `POST /v1/chat/completions` (and, in Anthropic's dialect, `POST /v1/messages`:
//! [`anthropic`]) like a real provider: JSON, or SSE chunks one token
//! at a time, with `usage` (in a final chunk when `stream_options.include_usage` is set). How
//! it behaves — time to first token, time per token, answer length, random error rate, and
//! injected faults (a fixed status, hanging before or after the headers, breaking a stream,
//! invalid JSON, 429 with `Retry-After`, connection resets, malformed or truncated event
//! streams, bytes dripped slowly) — is a [`Behavior`] that can be changed while it runs. It counts the
//! requests it receives and keeps the last body and `Authorization` header so tests can check
//! what the router sent. [`FakeProvider::stop`] closes the listener (new connections are
//! refused) and [`FakeProvider::restart`] opens it again on the same port.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::stream;
use rand::Rng;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

mod anthropic;
mod embeddings;
mod sse;
mod surfaces;
pub use embeddings::vector as embedding_vector;

/// A fault injected into every answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Answer this HTTP status with an OpenAI-style error body.
    Status(u16),
    /// Accept the request and never answer.
    HangBeforeHeaders,
    /// Send 200 headers, then nothing.
    HangAfterHeaders,
    /// Stream this many tokens, then break the connection.
    BreakAfter(u32),
    /// Answer 200 with a body that is not JSON.
    InvalidJson,
    /// Answer 429 with `Retry-After: <seconds>`.
    RateLimited { retry_after_s: u32 },
    /// Reset the connection (TCP RST) as soon as a request arrives on a new connection; on
    /// a kept-alive one, abort right after the headers.
    Reset,
    /// Stream this many tokens, then go silent with the connection open (non-streaming:
    /// half the body, then silence).
    HangMidStream(u32),
    /// Answer 200 `text/event-stream` whose first event is not JSON.
    MalformedSse,
    /// Answer 200 `text/event-stream` with half an event, then close.
    TruncatedSse,
    /// Send the answer one byte at a time, this long apart.
    Drip(Duration),
    /// Answer this status with an error body quoting the `Authorization` header received,
    /// as careless providers do.
    EchoAuthorization(u16),
}

/// How the fake provider answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Behavior {
    /// Median delay before the first token.
    pub ttft: Duration,
    /// Log-normal spread of the first-token delay (0 = always `ttft`).
    pub ttft_sigma: f64,
    /// Prompt tokens prefilled per second (OpenAI chat): the first token comes that much
    /// later for the prompt's size (bytes of `messages` / 4); none: prompt size costs nothing.
    pub prefill_tokens_per_s: Option<f64>,
    /// A top-level request field its model does not support: a request carrying it gets
    /// OpenAI's 400 `unsupported_parameter`.
    pub unsupported: Option<&'static str>,
    /// Delay between two tokens of a stream.
    pub token_interval: Duration,
    /// Answer length in tokens (capped by the request's `max_tokens`).
    pub output_tokens: u32,
    /// Fraction of requests answered with a 500.
    pub error_rate: f64,
    /// A heavy tail, deterministic: every `k`th request (counting from the first) waits this
    /// much longer for its first token.
    pub stall_every: Option<(u64, Duration)>,
    pub fault: Fault,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            ttft: Duration::ZERO,
            ttft_sigma: 0.0,
            prefill_tokens_per_s: None,
            unsupported: None,
            token_interval: Duration::ZERO,
            output_tokens: 8,
            error_rate: 0.0,
            stall_every: None,
            fault: Fault::None,
        }
    }
}

pub(crate) struct FakeState {
    name: String,
    behavior: Mutex<Behavior>,
    requests: AtomicU64,
    /// Streams whose client closed the connection before the stream's end.
    disconnects: AtomicU64,
    last_body: Mutex<Option<Value>>,
    last_auth: Mutex<Option<String>>,
    /// The last event stream sent in Anthropic's dialect, whole.
    last_sent: Mutex<Option<String>>,
    /// The `anthropic-beta` header of the last Messages request.
    last_beta: Mutex<Option<String>>,
    /// A prompt cache per `prompt_cache_key`: the prompt tokens last seen with it, which the
    /// next request with the key reads from the cache (OpenAI's chat completions).
    prompt_cache: Mutex<std::collections::HashMap<String, u64>>,
}

/// A running fake provider.
pub struct FakeProvider {
    addr: std::net::SocketAddr,
    state: Arc<FakeState>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl FakeProvider {
    /// Starts on an ephemeral loopback port.
    pub async fn start(name: &str, behavior: Behavior) -> std::io::Result<FakeProvider> {
        Self::start_on(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            name,
            behavior,
        )
        .await
    }

    /// Starts on `addr`.
    pub async fn start_on(
        addr: std::net::SocketAddr,
        name: &str,
        behavior: Behavior,
    ) -> std::io::Result<FakeProvider> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(FakeState {
            name: name.to_owned(),
            behavior: Mutex::new(behavior),
            requests: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            last_body: Mutex::new(None),
            last_auth: Mutex::new(None),
            last_sent: Mutex::new(None),
            last_beta: Mutex::new(None),
            prompt_cache: Mutex::new(Default::default()),
        });
        let provider = FakeProvider {
            addr,
            state,
            task: Mutex::new(None),
        };
        provider.listen(listener);
        Ok(provider)
    }

    fn listen(&self, listener: TcpListener) {
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/messages", post(anthropic::messages))
            .route("/v1/embeddings", post(embeddings::embeddings))
            .route("/v1/completions", post(surfaces::completions))
            .route("/v1/responses", post(surfaces::responses))
            .with_state(self.state.clone());
        let state = self.state.clone();
        let on_accept = move |tcp: tokio::net::TcpStream| {
            let reset = state.behavior.lock().expect("behavior lock").fault == Fault::Reset;
            if !reset {
                return crate::http::Accept::Serve(tcp);
            }
            state.requests.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(reset_connection(tcp));
            crate::http::Accept::Handled
        };
        let task = tokio::spawn(crate::http::serve(
            listener,
            app,
            crate::http::ServeOptions::default(),
            std::future::pending(),
            on_accept,
        ));
        *self.task.lock().expect("fake task lock") = Some(task);
    }

    /// Stops accepting connections: new attempts are refused. Requests already being
    /// answered go on.
    pub fn stop(&self) {
        if let Some(task) = self.task.lock().expect("fake task lock").take() {
            task.abort();
        }
    }

    /// Listens again on the same port after [`stop`](Self::stop).
    pub async fn restart(&self) -> std::io::Result<()> {
        self.stop();
        let listener = TcpListener::bind(self.addr).await?;
        self.listen(listener);
        Ok(())
    }

    pub(crate) fn is_running(&self) -> bool {
        self.task.lock().expect("fake task lock").is_some()
    }

    pub fn name(&self) -> &str {
        &self.state.name
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// The OpenAI-style base URL, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn set_behavior(&self, behavior: Behavior) {
        *self.state.behavior.lock().expect("behavior lock") = behavior;
    }

    /// Requests received since start.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// OpenAI streams its client closed before their end (a cancelled hedge, a client gone).
    pub fn disconnects(&self) -> u64 {
        self.state.disconnects.load(Ordering::Relaxed)
    }

    /// The JSON body of the last request received.
    pub fn last_body(&self) -> Option<Value> {
        self.state.last_body.lock().expect("body lock").clone()
    }

    /// The `Authorization` header of the last request received.
    pub fn last_authorization(&self) -> Option<String> {
        self.state.last_auth.lock().expect("auth lock").clone()
    }

    /// The `anthropic-beta` header of the last Messages request.
    pub fn last_anthropic_beta(&self) -> Option<String> {
        self.state.last_beta.lock().expect("beta lock").clone()
    }

    /// The last Anthropic event stream it sent (all of it, even if the fault broke it).
    pub fn last_sent_stream(&self) -> Option<String> {
        self.state.last_sent.lock().expect("sent lock").clone()
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits for a request's first bytes, then closes with SO_LINGER 0: the peer gets a RST.
async fn reset_connection(mut tcp: tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
    let _ = tcp.set_zero_linger();
    drop(tcp);
}

/// The answer text a fake provider gives: deterministic, so tests can compare it whole.
pub fn reply_text(provider: &str, model: &str, tokens: u32) -> String {
    reply_tokens(provider, model, tokens).concat()
}

fn reply_tokens(provider: &str, model: &str, tokens: u32) -> Vec<String> {
    const WORDS: [&str; 8] = [
        "switch", "yard", "routes", "every", "token", "to", "the", "cheapest",
    ];
    (0..tokens)
        .map(|i| match i {
            0 => format!("[{provider}/{model}]"),
            _ => format!(" {}", WORDS[(i as usize - 1) % WORDS.len()]),
        })
        .collect()
}

fn error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body =
        json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}});
    (status, axum::Json(body)).into_response()
}

async fn chat(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    let nth = state.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let behavior = state.behavior.lock().expect("behavior lock").clone();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    *state.last_auth.lock().expect("auth lock") = auth;
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "fake provider: body is not JSON");
    };
    *state.last_body.lock().expect("body lock") = Some(request.clone());

    match behavior.fault {
        Fault::Status(code) => return error(code, "fake provider: injected failure"),
        Fault::HangBeforeHeaders => std::future::pending::<()>().await,
        Fault::HangAfterHeaders => {
            return Response::new(Body::from_stream(stream::pending::<
                Result<Bytes, std::io::Error>,
            >()))
        }
        Fault::InvalidJson => {
            return ([("content-type", "application/json")], "{not json").into_response()
        }
        Fault::EchoAuthorization(code) => {
            let auth = state.last_auth.lock().expect("auth lock").clone();
            let message = format!(
                "fake provider: key not accepted: {}",
                auth.unwrap_or_default()
            );
            return error(code, &message);
        }
        Fault::RateLimited { retry_after_s } => {
            let mut response = error(429, "fake provider: rate limited");
            response
                .headers_mut()
                .insert("retry-after", retry_after_s.into());
            return response;
        }
        Fault::Reset => {
            // A kept-alive connection: the nearest thing to a reset is a body that breaks.
            return Response::new(Body::from_stream(stream::once(async {
                Err::<Bytes, _>(std::io::Error::other("fake provider: injected reset"))
            })));
        }
        Fault::MalformedSse => {
            return (
                [("content-type", "text/event-stream")],
                "data: {\"id\": \"chatcmpl-broken\", \"choices\": [\n\ndata: [DONE]\n\n",
            )
                .into_response()
        }
        Fault::TruncatedSse => {
            return (
                [("content-type", "text/event-stream")],
                "data: {\"id\": \"chatcmpl-trunc",
            )
                .into_response()
        }
        Fault::None | Fault::BreakAfter(_) | Fault::HangMidStream(_) | Fault::Drip(_) => {}
    }
    if let Some(param) = behavior.unsupported.filter(|p| request.get(*p).is_some()) {
        let message = format!("Unsupported parameter: '{param}' is not supported with this model.");
        let body = json!({"error": {"message": message, "type": "invalid_request_error",
            "param": param, "code": "unsupported_parameter"}});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let prompt_tokens = request["messages"].to_string().len().div_ceil(4) as u64;
    let (ttft, failed) = draw(&behavior);
    let stall = match behavior.stall_every {
        Some((k, extra)) if k > 0 && nth % k == 0 => extra,
        _ => Duration::ZERO,
    };
    let ttft = ttft
        + stall
        + behavior
            .prefill_tokens_per_s
            .map_or(Duration::ZERO, |rate| {
                Duration::from_secs_f64(prompt_tokens as f64 / rate.max(1e-9))
            });
    if failed {
        tokio::time::sleep(ttft / 2).await;
        return error(500, "fake provider: random failure");
    }

    let model = request["model"].as_str().unwrap_or("unknown").to_owned();
    let cap = request["max_completion_tokens"]
        .as_u64()
        .or_else(|| request["max_tokens"].as_u64())
        .unwrap_or(u64::MAX);
    let n = u32::try_from(u64::from(behavior.output_tokens).min(cap)).unwrap_or(u32::MAX);
    let mut usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": n, "total_tokens": prompt_tokens + u64::from(n)});
    if let Some(key) = request["prompt_cache_key"].as_str() {
        // What this key's previous request sent is read from the cache (a conversation's
        // earlier turns are a prefix of its next).
        let mut cache = state.prompt_cache.lock().expect("cache lock");
        let cached = cache
            .insert(key.to_owned(), prompt_tokens)
            .unwrap_or(0)
            .min(prompt_tokens);
        usage["prompt_tokens_details"] = json!({"cached_tokens": cached});
    }
    let tokens = reply_tokens(&state.name, &model, n);
    let id = format!("chatcmpl-fake-{}", state.requests.load(Ordering::Relaxed));
    let choice = &request["tool_choice"];
    let kind = choice.as_str().or(choice["type"].as_str());
    let tool = anthropic::forced_tool(&request["tools"], kind, choice["function"]["name"].as_str());

    if request["stream"].as_bool() != Some(true) {
        sleep_if(ttft + behavior.token_interval * n.saturating_sub(1)).await;
        let (message, finish) = match &tool {
            Some(name) => (
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_fake1",
                "type": "function", "function": {"name": name, "arguments": "{\"city\": \"Oslo\"}"}}]}),
                "tool_calls",
            ),
            None => (
                json!({"role": "assistant", "content": tokens.concat()}),
                "stop",
            ),
        };
        let body = json!({
            "id": id, "object": "chat.completion", "created": 1_764_000_000, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        });
        return match behavior.fault {
            Fault::Drip(interval) => sse::drip(body.to_string(), interval, "application/json"),
            Fault::HangMidStream(_) => {
                let text = body.to_string();
                sse::then_hang(text[..text.len() / 2].to_owned(), "application/json")
            }
            _ => axum::Json(body).into_response(),
        };
    }

    let include_usage = request["stream_options"]["include_usage"].as_bool() == Some(true);
    let break_after = match behavior.fault {
        Fault::BreakAfter(k) => Some(k as usize),
        _ => None,
    };
    let chunk = move |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 1_764_000_000, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events: Vec<Value> = Vec::with_capacity(tokens.len() + 3);
    if let Some(name) = &tool {
        events.push(chunk(
            json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_fake1",
            "type": "function", "function": {"name": name, "arguments": ""}}]}),
            Value::Null,
        ));
        for part in ["{\"city\":", " \"Oslo\"}"] {
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                Value::Null,
            ));
        }
    }
    for (i, t) in tokens.iter().enumerate().filter(|_| tool.is_none()) {
        let delta = if i == 0 {
            json!({"role": "assistant", "content": t})
        } else {
            json!({"content": t})
        };
        events.push(chunk(delta, Value::Null));
    }
    let finish = if tool.is_some() { "tool_calls" } else { "stop" };
    events.push(chunk(json!({}), json!(finish)));
    if include_usage {
        let mut last = chunk(json!({}), Value::Null);
        last["choices"] = json!([]);
        last["usage"] = usage;
        events.push(last);
    }
    let interval = behavior.token_interval;
    let texts = events
        .into_iter()
        .map(|e| format!("data: {e}\n\n"))
        .chain(std::iter::once("data: [DONE]\n\n".to_owned()));
    match behavior.fault {
        Fault::Drip(every) => return sse::drip(texts.collect(), every, "text/event-stream"),
        Fault::HangMidStream(k) => {
            let sent: String = texts.take(k as usize).collect();
            return sse::then_hang(sent, "text/event-stream");
        }
        _ => {}
    }
    sse::paced(&state, texts.collect(), ttft, interval, break_after)
}

/// This answer's first-token delay and whether it fails, drawn from `behavior`.
fn draw(behavior: &Behavior) -> (Duration, bool) {
    let mut rng = rand::rng();
    let noise = rand_distr::LogNormal::new(0.0, behavior.ttft_sigma.max(0.0))
        .map(|d| rng.sample(d))
        .unwrap_or(1.0);
    (
        behavior.ttft.mul_f64(noise),
        rng.random_bool(behavior.error_rate.clamp(0.0, 1.0)),
    )
}

async fn sleep_if(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}
