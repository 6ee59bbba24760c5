//! `switchyard demo`: the router in front of a handful of simulated providers.
//!
//! Starts four [`FakeProvider`]s on loopback with distinct prices, latencies and error
//! profiles, writes a real `switchyard.toml` and real price sheets for them into the demo
//! directory, and serves the router from those files through the same loading path as
//! `switchyard serve`. A small control port lets a person stop and start a provider to watch
//! fallback at work. Prints ready-to-paste commands, then serves until Ctrl-C.

mod fleet;
mod load;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::fake::{Behavior, FakeProvider};
use crate::gateway::{self, Gateway};

/// One simulated provider of the demo.
struct Profile {
    name: &'static str,
    note: &'static str,
    behavior: Behavior,
    /// `(model, input $/Mtok, output $/Mtok, quality)`.
    models: &'static [(&'static str, f64, f64, f64)],
    /// Speaks Anthropic's Messages API instead of OpenAI's chat completions.
    anthropic: bool,
    /// Serves OpenAI's Responses API too.
    responses: bool,
    /// Its models are embedding models.
    embedding: bool,
}

fn profiles() -> Vec<Profile> {
    let ms = Duration::from_millis;
    vec![
        Profile {
            name: "budget",
            note: "cheapest, slow first token, 5% errors",
            behavior: Behavior {
                ttft: ms(700),
                ttft_sigma: 0.4,
                token_interval: ms(20),
                output_tokens: 24,
                error_rate: 0.05,
                ..Behavior::default()
            },
            models: &[
                ("llama-3.3-70b", 0.10, 0.25, 0.72),
                ("llama-3.1-8b", 0.02, 0.05, 0.55),
            ],
            anthropic: false,
            responses: false,
            embedding: false,
        },
        Profile {
            name: "steady",
            note: "mid-priced, 180 ms first token, 1% errors",
            behavior: Behavior {
                ttft: ms(180),
                ttft_sigma: 0.3,
                token_interval: ms(8),
                output_tokens: 24,
                error_rate: 0.01,
                ..Behavior::default()
            },
            models: &[("llama-3.3-70b", 0.59, 0.79, 0.75)],
            anthropic: false,
            responses: true,
            embedding: false,
        },
        Profile {
            name: "turbo",
            note: "dearer, 60 ms first token, no errors",
            behavior: Behavior {
                ttft: ms(60),
                ttft_sigma: 0.2,
                token_interval: ms(3),
                output_tokens: 24,
                ..Behavior::default()
            },
            models: &[
                ("llama-3.3-70b", 0.90, 1.20, 0.75),
                ("llama-3.1-8b", 0.10, 0.10, 0.55),
            ],
            anthropic: false,
            responses: true,
            embedding: false,
        },
        Profile {
            name: "premium",
            note: "a large model, 300 ms first token",
            behavior: Behavior {
                ttft: ms(300),
                ttft_sigma: 0.3,
                token_interval: ms(10),
                output_tokens: 24,
                error_rate: 0.005,
                ..Behavior::default()
            },
            models: &[("frontier-large", 2.50, 10.00, 0.95)],
            anthropic: false,
            responses: false,
            embedding: false,
        },
        Profile {
            name: "claude",
            note: "speaks Anthropic's Messages API, 250 ms first token",
            behavior: Behavior {
                ttft: ms(250),
                ttft_sigma: 0.3,
                token_interval: ms(6),
                output_tokens: 24,
                error_rate: 0.005,
                ..Behavior::default()
            },
            models: &[("claude-haiku-4-5", 1.00, 5.00, 0.85)],
            anthropic: true,
            responses: false,
            embedding: false,
        },
        Profile {
            name: "vectors",
            note: "embeddings, two providers of one model",
            behavior: Behavior {
                ttft: ms(40),
                ..Behavior::default()
            },
            models: &[("text-embedding-3-small", 0.02, 0.0, 0.0)],
            anthropic: false,
            responses: false,
            embedding: true,
        },
        Profile {
            name: "vectors-lite",
            note: "the same embedding model, cheaper, slower",
            behavior: Behavior {
                ttft: ms(120),
                error_rate: 0.02,
                ..Behavior::default()
            },
            models: &[("text-embedding-3-small", 0.015, 0.0, 0.0)],
            anthropic: false,
            responses: false,
            embedding: true,
        },
    ]
}

/// Where and how the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The router's address.
    pub listen: SocketAddr,
    /// The control port's address (stop and start providers).
    pub control: SocketAddr,
    /// Where the generated config, price sheets and router state go.
    pub dir: PathBuf,
    /// Requests per second of built-in load through the router (0 = none).
    pub load: f64,
    /// Routers sharing through Redis (1: one router, no Redis).
    pub replicas: usize,
    /// The fleet's Redis; `None` with `replicas` > 1: the demo starts a `redis-server`.
    pub redis_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start a fake provider: {0}")]
    Provider(std::io::Error),
    #[error("cannot write the demo files in {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source} (is another demo running? try --listen)")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Pricing(#[from] crate::pricing::SheetErrors),
    #[error(transparent)]
    Build(#[from] gateway::BuildError),
    #[error("the router stopped with an error: {0}")]
    Serve(std::io::Error),
    #[error("cannot start redis-server for --replicas (install it, or pass --redis-url): {0}")]
    Redis(std::io::Error),
}

/// Runs the demo until `shutdown` resolves.
pub async fn run(
    options: DemoOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    let mut providers = Vec::new();
    for p in profiles() {
        let fake = FakeProvider::start(p.name, p.behavior.clone())
            .await
            .map_err(DemoError::Provider)?;
        providers.push((p, Arc::new(fake)));
    }
    let (_redis, fleet) = match (options.replicas > 1, &options.redis_url) {
        (false, _) => (None, String::new()),
        (true, Some(url)) => (None, fleet::section(url)),
        (true, None) => {
            let (redis, url) = fleet::start_redis()?;
            (Some(redis), fleet::section(&url))
        }
    };
    let config_path = write_files(&options, &providers, &fleet)?;
    let mut configs = vec![(options.listen, config_path.clone())];
    for k in 1..options.replicas {
        let mut addr = options.listen;
        addr.set_port(options.listen.port() + k as u16);
        configs.push((addr, fleet::write_replica(&config_path, k, addr)?));
    }
    let mut routers = Vec::new();
    for (addr, path) in &configs {
        let config = Config::load(path)?;
        let sheets = crate::pricing::load_dir(&config.server.pricing_dir)?;
        let store = crate::stats::store::Store::open(&config.server.state_dir, false)
            .map_err(gateway::BuildError::from)?;
        let gateway = Gateway::build(&config, &sheets, |var| std::env::var(var).ok(), Some(store))?;
        routers.push((bind(*addr).await?, gateway));
    }
    let control = bind(options.control).await?;
    let fakes: Vec<Arc<FakeProvider>> = providers.iter().map(|(_, f)| f.clone()).collect();
    tokio::spawn(async move {
        let _ = axum::serve(control, control_app(fakes)).await;
    });
    print_banner(&options, &config_path, &providers);
    let urls: Vec<String> = configs.iter().map(|(a, _)| format!("http://{a}")).collect();
    if urls.len() > 1 {
        println!(
            "fleet of {} replicas sharing through Redis, the built-in load spread round robin:",
            urls.len()
        );
        for u in &urls {
            println!("  {u}   (curl -s {u}/healthz shows the fleet)");
        }
        println!();
    }
    let load = tokio::spawn(load::run(urls, options.load));
    // One shutdown for every replica.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let serving: Vec<_> = routers
        .into_iter()
        .map(|(listener, gateway)| {
            let mut stopped = stopped.clone();
            tokio::spawn(gateway::serve(listener, gateway, async move {
                let _ = stopped.wait_for(|s| *s).await;
            }))
        })
        .collect();
    let mut result = Ok(());
    for s in serving {
        match s.await {
            Ok(Err(e)) => result = Err(DemoError::Serve(e)),
            Err(e) => result = Err(DemoError::Serve(std::io::Error::other(e))),
            Ok(Ok(())) => {}
        }
    }
    load.abort();
    result
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, DemoError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| DemoError::Listen { addr, source })
}

fn write_files(
    options: &DemoOptions,
    providers: &[(Profile, Arc<FakeProvider>)],
    fleet: &str,
) -> Result<PathBuf, DemoError> {
    let pricing = options.dir.join("pricing");
    let write = |path: &Path, text: &str| {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
            .and_then(|()| std::fs::write(path, text))
            .map_err(|source| DemoError::Write {
                path: path.to_owned(),
                source,
            })
    };
    // Sheets of an earlier run may name other providers; start the directory afresh.
    let _ = std::fs::remove_dir_all(&pricing);
    let mut config = format!(
        "# Written by `switchyard demo` at every start: the fake providers' ports change.\n\
         [server]\nlisten = \"{}\"\nstate_dir = \"state\"\npricing_dir = \"pricing\"\n\n\
         [upstream]\nfirst_byte_timeout = \"3s\"\nidle_timeout = \"5s\"\ntotal_timeout = \"30s\"\n\n\
         [routing]\npolicy = \"thompson\"\nmax_attempts = 3\n\n\
         [groups]\nfast-70b = [\"steady/llama-3.3-70b\", \"turbo/llama-3.3-70b\"]\n",
        options.listen
    );
    for (p, fake) in providers {
        config.push_str(&format!(
            "\n# {}\n[[providers]]\nname = \"{}\"\nbase_url = \"{}\"\n{}",
            p.note,
            p.name,
            fake.base_url(),
            if p.anthropic {
                "protocol = \"anthropic\"\n"
            } else if p.responses {
                "responses = true\n"
            } else {
                ""
            }
        ));
        let mut sheet = format!(
            "provider = \"{}\"\neffective = \"2026-11-01\"\nsource = \"switchyard demo (simulated provider)\"\n",
            p.name
        );
        for (model, input, output, quality) in p.models {
            sheet.push_str(&format!(
                "\n[models.\"{model}\"]\ninput_per_mtok = {input:?}\noutput_per_mtok = {output:?}\ncontext_window = 131072\n"
            ));
            if p.embedding {
                sheet.push_str("kind = \"embedding\"\n");
            } else {
                sheet.push_str(&format!("quality = {quality:?}\n"));
            }
            if p.anthropic {
                // Anthropic's cache prices: reads a tenth of input, writes a quarter more.
                sheet.push_str(&format!(
                    "cached_input_per_mtok = {:?}\ncache_write_per_mtok = {:?}\n",
                    input / 10.0,
                    input * 1.25
                ));
            }
        }
        write(&pricing.join(format!("{}.toml", p.name)), &sheet)?;
    }
    // Two presets: routing settings clients select by name, editable while the demo runs.
    let routing = options.dir.join("routing");
    let _ = std::fs::remove_dir_all(&routing);
    for (name, text) in DEMO_PRESETS {
        write(&routing.join(format!("{name}.toml")), text)?;
    }
    config = config.replacen(
        "pricing_dir = \"pricing\"\n",
        "pricing_dir = \"pricing\"\nrouting_dir = \"routing\"\n",
        1,
    );
    config.push_str(fleet);
    let path = options.dir.join("switchyard.toml");
    write(&path, &config)?;
    Ok(path)
}

/// The demo's presets: `(name, file text)`.
const DEMO_PRESETS: [(&str, &str); 2] = [
    (
        "fast-cheap",
        "name = \"fast-cheap\"\ndescription = \"the cheapest 70B answer whose p95 first token is under 400 ms\"\n\
         models = [\"llama-3.3-70b\", \"llama-3.1-8b\"]\n\
         route = { max_latency_ms = 400, latency_percentile = 95, latency_metric = \"ttft\", prefer = \"cost\" }\n",
    ),
    (
        "best-quality",
        "name = \"best-quality\"\ndescription = \"the highest-quality model, whatever it costs\"\n\
         models = [\"auto\"]\nroute = { prefer = \"quality\", min_quality = 0.7 }\n",
    ),
];

fn print_banner(options: &DemoOptions, config: &Path, providers: &[(Profile, Arc<FakeProvider>)]) {
    let url = format!("http://{}", options.listen);
    let ctl = format!("http://{}", options.control);
    println!(
        "\nswitchyard demo: router on {url}, config in {}\n",
        config.display()
    );
    println!("simulated providers:");
    for (p, fake) in providers {
        let models: Vec<String> = p
            .models
            .iter()
            .map(|m| format!("{}/{}", p.name, m.0))
            .collect();
        println!(
            "  {:<8} {:<22} {}  ({})",
            p.name,
            fake.addr(),
            models.join(", "),
            p.note
        );
    }
    let body = r#"{"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "Hello!"}]}"#;
    let stream_body = r#"{"model": "fast-70b", "stream": true, "messages": [{"role": "user", "content": "Hello!"}]}"#;
    let hint_body = r#"{"model": "llama-3.3-70b", "stream": true, "route": {"max_latency_ms": 400, "latency_percentile": 95}, "messages": [{"role": "user", "content": "Hello!"}]}"#;
    println!(
        "\ndashboard (built-in traffic of {} requests/s is flowing; --load 0 turns it off):",
        options.load
    );
    println!("  {url}/dashboard");
    println!("\ntry:");
    println!("  curl -s {url}/v1/models");
    println!(
        "  curl -si {url}/v1/chat/completions -H 'content-type: application/json' -d '{body}'"
    );
    println!("  curl -sN {url}/v1/chat/completions -H 'content-type: application/json' -d '{stream_body}'");
    println!("\ncheapest endpoint whose p95 time to first token is under 400 ms (budget is cheaper but slower):");
    println!("  curl -siN {url}/v1/chat/completions -H 'content-type: application/json' -d '{hint_body}'");
    println!(
        "  curl -s {url}/v1/decisions/REQUEST_ID        # why: paste the x-request-id of an answer"
    );
    println!(
        "  curl -s {url}/v1/feedback -d '{{\"request_id\": \"REQUEST_ID\", \"good\": false}}'   # score an answer: teaches its endpoint's quality"
    );
    println!("  curl -s {url}/v1/endpoints                   # what the router has learned");
    let preset_body =
        r#"{"model": "@preset/fast-cheap", "messages": [{"role": "user", "content": "Hello!"}]}"#;
    println!(
        "\npresets: routing settings by name (files in {}, reloaded when they change):",
        options.dir.join("routing").display()
    );
    println!("  curl -si {url}/v1/chat/completions -H 'content-type: application/json' -d '{preset_body}'");
    println!(
        "  edit {}/fast-cheap.toml (e.g. max_latency_ms = 150): the next request routes by it",
        options.dir.join("routing").display()
    );
    println!("  with SWITCHYARD_ADMIN_TOKEN set: curl -s -X PUT {url}/admin/routing/NAME -H \"authorization: Bearer $SWITCHYARD_ADMIN_TOKEN\" --data-binary @preset.toml");
    let messages_body = r#"{"model": "claude-haiku-4-5", "max_tokens": 200, "messages": [{"role": "user", "content": "Hello!"}]}"#;
    println!(
        "\nAnthropic's Messages API (Claude Code, the Anthropic SDKs), served by any provider:"
    );
    println!("  curl -s {url}/v1/messages -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' -d '{messages_body}'");
    println!("  ANTHROPIC_BASE_URL={url} ANTHROPIC_API_KEY=unused ANTHROPIC_MODEL=claude-haiku-4-5 ANTHROPIC_SMALL_FAST_MODEL=llama-3.1-8b claude");
    println!("  python3 -c \"import anthropic; print(anthropic.Anthropic(base_url='{url}', api_key='unused').messages.create(model='llama-3.3-70b', max_tokens=100, messages=[{{'role': 'user', 'content': 'Hi'}}]).content[0].text)\"");
    println!("\nOpenAI's other surfaces: the Responses API (turbo and steady serve it), embeddings (routed among the providers of one model), legacy completions:");
    println!("  curl -s {url}/v1/responses -H 'content-type: application/json' -d '{{\"model\": \"llama-3.3-70b\", \"input\": \"Hello!\"}}'");
    println!("  curl -s {url}/v1/embeddings -H 'content-type: application/json' -d '{{\"model\": \"text-embedding-3-small\", \"input\": [\"a\", \"b\"]}}'");
    println!("  curl -s {url}/v1/completions -H 'content-type: application/json' -d '{{\"model\": \"llama-3.1-8b\", \"prompt\": \"Say hi\"}}'");
    println!("\nstop the cheapest provider and watch requests fall back (x-switchyard-attempts):");
    println!("  curl -s -X POST {ctl}/providers/budget/stop");
    println!("  curl -s -X POST {ctl}/providers/budget/start");
    println!("  curl -s {ctl}/providers");
    println!("\nCtrl-C stops the demo.\n");
}

type Fakes = Arc<Vec<Arc<FakeProvider>>>;

fn control_app(fakes: Vec<Arc<FakeProvider>>) -> Router {
    Router::new()
        .route("/providers", get(list))
        .route("/providers/{name}/{action}", post(act))
        .with_state(Arc::new(fakes))
}

async fn list(State(fakes): State<Fakes>) -> Json<Value> {
    let all: Vec<Value> = fakes
        .iter()
        .map(|f| json!({"name": f.name(), "address": f.addr().to_string(), "running": f.is_running(), "requests": f.requests()}))
        .collect();
    Json(json!({ "providers": all }))
}

async fn act(
    State(fakes): State<Fakes>,
    UrlPath((name, action)): UrlPath<(String, String)>,
) -> (axum::http::StatusCode, Json<Value>) {
    use axum::http::StatusCode;
    let Some(fake) = fakes.iter().find(|f| f.name() == name) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no provider `{name}`")})),
        );
    };
    let result = match action.as_str() {
        "stop" => {
            fake.stop();
            Ok(())
        }
        "start" if fake.is_running() => Ok(()),
        "start" => fake.restart().await.map_err(|e| e.to_string()),
        _ => Err(format!("unknown action `{action}`: use stop or start")),
    };
    match result {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"name": name, "running": fake.is_running()})),
        ),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e}))),
    }
}
