//! The `switchyard` command: argument parsing only; the library does the work.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use switchyard::config::{Config, StatsConfig};
use switchyard::demo::{self, DemoOptions};
use switchyard::gateway::{self, Gateway};
use switchyard::stats::store::Store;
use switchyard::stats::{HalfLife, HalfLives};

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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = match cli.command {
        Command::Demo { .. } => "switchyard=debug,switchyard::fake=info",
        Command::Serve { .. } | Command::Stats { .. } => "switchyard=info",
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
            } => print_stats(&state_dir, config.as_deref(), json),
            Command::Demo {
                listen,
                control,
                dir,
            } => {
                let options = DemoOptions {
                    listen,
                    control,
                    dir,
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
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // On stdout, for people and for scripts that started it on port 0.
    println!("switchyard listening on http://{addr}");
    tracing::info!(
        %addr,
        endpoints = gateway.live().catalog.endpoints().len(),
        providers = gateway.live().catalog.providers().len(),
        "switchyard serving"
    );
    gateway::serve(listener, gateway, gateway::shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
}

fn print_stats(state_dir: &Path, config: Option<&Path>, json: bool) -> Result<(), String> {
    let stats_config = match config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?.stats,
        None => StatsConfig::default(),
    };
    let hl = HalfLives {
        latency: HalfLife::new(stats_config.latency_half_life),
        outcome: HalfLife::new(stats_config.outcome_half_life),
    };
    if !state_dir.join("stats.sled").exists() {
        return Err(format!("{}: no saved statistics here", state_dir.display()));
    }
    let store = Store::open(state_dir, false).map_err(|e| e.to_string())?;
    let Some((snapshot, saved_at)) = store.load().map_err(|e| e.to_string())? else {
        return Err(format!("{}: nothing saved yet", state_dir.display()));
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let age_ms = now.saturating_sub(saved_at);
    let (report, table) =
        switchyard::admin::endpoints::stored_report(snapshot, age_ms * 1_000_000, hl);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "saved {:.0} s ago in {}\n",
            age_ms as f64 / 1000.0,
            store.path().display()
        );
        print!("{table}");
    }
    Ok(())
}

fn fail(message: &str) -> ExitCode {
    eprintln!("switchyard: {message}");
    ExitCode::FAILURE
}
