//! The `switchyard` command: argument parsing only; the library does the work.
//!
//! [`pricing`] runs the `pricing` subcommands, [`offline`] `simulate` and `stats`.

mod alloc;
mod log;
mod offline;
mod pricing;

use pricing::PricingCommand;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard::config::Config;
use switchyard::demo::{self, DemoOptions};
use switchyard::gateway::{self, Gateway};
use switchyard::stats::store::Store;

/// mimalloc for small blocks instead of the system allocator: the request path allocates
/// many small, short-lived blocks (headers, bodies, futures), where glibc's malloc took about
/// a tenth of the router's CPU under load. Built without transparent huge pages (`no_thp`):
/// with them the 200-endpoint memory run peaked at 72 MiB instead of 45. Large blocks go to
/// the system allocator (see [`alloc`]).
#[global_allocator]
static ALLOCATOR: alloc::Allocator = alloc::Allocator;

#[derive(Parser)]
#[command(
    version,
    about = "A smart router for LLM APIs: one OpenAI-compatible endpoint in front of many providers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the router from a config file and its price sheets.
    Serve {
        /// The config file.
        #[arg(long, short, default_value = "switchyard.toml")]
        config: PathBuf,
        /// Listen here instead of the config's `server.listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Forget the learned statistics in `state_dir` and start afresh.
        #[arg(long)]
        reset_state: bool,
    },
    /// Run a routing scenario in virtual time against several policies and the oracle.
    Simulate {
        /// The scenario file (see simulations/); not with --replay.
        #[arg(required_unless_present = "replay", conflicts_with = "replay")]
        file: Option<PathBuf>,
        /// Replay a request log (`switchyard log export`) instead: its arrivals and hints,
        /// each endpoint's behaviour fitted from what the log observed.
        #[arg(long)]
        replay: Option<PathBuf>,
        /// Also write the first policy's run as a request log (JSON lines), to try
        /// --replay on.
        #[arg(long, conflicts_with_all = ["replay", "replicas"])]
        log_out: Option<PathBuf>,
        /// With --replay: the time windows endpoint behaviour is fitted over.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        window: std::time::Duration,
        /// Policies to compare (the scenario's list when absent).
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// Overrides the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write report.json, traffic.csv and SVG charts here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Compare one router with N replicas learning alone and N sharing (round robin,
        /// the scenario's `[fleet]` sync interval), for the first policy given (default
        /// thompson).
        #[arg(long)]
        replicas: Option<u32>,
        /// Hedge every request that does not say otherwise (`on`), or none that does not
        /// ask (`off`), overriding the scenario's `[hedge] enabled`.
        #[arg(long, value_parser = ["on", "off"])]
        hedge: Option<String>,
    },
    /// Check, import and compare price sheets.
    #[command(subcommand)]
    Pricing(PricingCommand),
    /// Read the request log a router keeps in its state directory.
    #[command(subcommand)]
    Log(log::LogCommand),
    /// Run one simulated provider (for benchmarks and manual tests).
    #[command(hide = true)]
    FakeProvider {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Delay before the first token, in milliseconds.
        #[arg(long, default_value_t = 0)]
        ttft_ms: u64,
        /// Answer length in tokens.
        #[arg(long, default_value_t = 16)]
        tokens: u32,
        /// Delay between two streamed tokens, in milliseconds.
        #[arg(long, default_value_t = 0)]
        token_interval_ms: u64,
        /// Fraction of requests answered with a 500.
        #[arg(long, default_value_t = 0.0)]
        error_rate: f64,
    },
    /// Make a new client key: prints the key (give it to the client) and the
    /// `[[clients]]` entry holding only its SHA-256 (put it in the config).
    Keygen {
        /// The client's name in the config entry.
        #[arg(long, default_value = "my-app")]
        name: String,
    },
    /// Print what a stopped router had learned, from its state directory.
    Stats {
        /// The router's `state_dir`.
        #[arg(long)]
        state_dir: PathBuf,
        /// Read half-lives from this config (defaults otherwise).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the router in front of simulated providers, with commands to try.
    Demo {
        /// The router's address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The control port (stop and start simulated providers).
        #[arg(long, default_value = "127.0.0.1:8079")]
        control: SocketAddr,
        /// Directory for the generated config, price sheets and state.
        #[arg(long, default_value = "switchyard-demo")]
        dir: PathBuf,
        /// Requests per second of built-in traffic, so the dashboard has something to show
        /// (0 = none).
        #[arg(long, default_value_t = 4.0)]
        load: f64,
        /// Run N routers sharing through Redis (on consecutive ports from --listen); the
        /// demo starts a redis-server unless --redis-url is given.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
        replicas: u16,
        /// The fleet's Redis for --replicas.
        #[arg(long)]
        redis_url: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = match cli.command {
        Command::Demo { .. } => "switchyard=info",
        _ => "switchyard=info",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve {
                config,
                listen,
                reset_state,
            } => serve(config, listen, reset_state).await,
            Command::Stats {
                state_dir,
                config,
                json,
            } => offline::print_stats(&state_dir, config.as_deref(), json),
            Command::Pricing(cmd) => pricing::run(cmd),
            Command::Log(cmd) => log::run(cmd),
            Command::Keygen { name } => {
                let (key, hex) = switchyard::auth::generate_key();
                print_lines([
                    format!("key (give it to the client; it is not stored anywhere): {key}"),
                    String::new(),
                    "config entry:".to_owned(),
                    "[[clients]]".to_owned(),
                    format!("name = \"{name}\""),
                    format!("key_sha256 = \"{hex}\""),
                ]);
                Ok(())
            }
            Command::FakeProvider {
                listen,
                ttft_ms,
                tokens,
                token_interval_ms,
                error_rate,
            } => {
                let behavior = switchyard::fake::Behavior {
                    ttft: std::time::Duration::from_millis(ttft_ms),
                    output_tokens: tokens,
                    token_interval: std::time::Duration::from_millis(token_interval_ms),
                    error_rate,
                    ..Default::default()
                };
                let fake = switchyard::fake::FakeProvider::start_on(listen, "fake", behavior)
                    .await
                    .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
                print_lines([format!("fake provider listening on {}", fake.base_url())]);
                gateway::shutdown_signal().await;
                Ok(())
            }
            Command::Simulate {
                file,
                policies,
                seed,
                json,
                out,
                replicas,
                hedge,
                replay,
                window,
                log_out,
            } => {
                let hedge = hedge.map(|h| h == "on");
                match (replay, file, replicas) {
                    (Some(log), _, _) => {
                        offline::replay(&log, &policies, seed, json, hedge, window)
                    }
                    (None, Some(file), Some(n)) => {
                        offline::compare_fleets(&file, &policies, seed, n, json)
                    }
                    (None, Some(file), None) => {
                        let options = offline::SimOptions {
                            json,
                            out: out.as_deref(),
                            hedge,
                            log_out: log_out.as_deref(),
                        };
                        offline::simulate(&file, &policies, seed, options)
                    }
                    (None, None, _) => Err("a scenario file or --replay LOG".into()),
                }
            }
            Command::Demo {
                listen,
                control,
                dir,
                load,
                replicas,
                redis_url,
            } => {
                let options = DemoOptions {
                    listen,
                    control,
                    dir,
                    load,
                    replicas: usize::from(replicas),
                    redis_url,
                };
                demo::run(options, gateway::shutdown_signal())
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

async fn serve(
    config_path: PathBuf,
    listen: Option<SocketAddr>,
    reset_state: bool,
) -> Result<(), String> {
    let mut config = Config::load(&config_path).map_err(|e| e.to_string())?;
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    let sheets =
        switchyard::pricing::load_dir(&config.server.pricing_dir).map_err(|e| e.to_string())?;
    let store = Store::open(&config.server.state_dir, reset_state).map_err(|e| e.to_string())?;
    let gateway = Gateway::build(&config, &sheets, |var| std::env::var(var).ok(), Some(store))
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    let listeners = gateway::Listeners::per_core(config.server.listen, config.server.threads)
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    let addr = listeners.local_addr().map_err(|e| e.to_string())?;
    // Before anyone is told where to connect: from then on a SIGTERM shuts down gracefully.
    let shutdown = gateway::shutdown_signal();
    // On stdout, for people and for scripts that started it on port 0.
    println!("switchyard listening on http://{addr}");
    tracing::info!(
        %addr,
        endpoints = gateway.live().catalog.endpoints().len(),
        providers = gateway.live().catalog.providers().len(),
        threads = listeners.threads(),
        "switchyard serving"
    );
    gateway::serve(listeners, gateway, shutdown)
        .await
        .map_err(|e| format!("server error: {e}"))
}

/// Prints lines to stdout, stopping quietly when it is closed (e.g. piped into `head`).
fn print_lines(lines: impl IntoIterator<Item = String>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            return;
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("switchyard: {message}");
    ExitCode::FAILURE
}
