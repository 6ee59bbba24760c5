//! The `switchyard` command: argument parsing only; the library does the work.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard::config::Config;
use switchyard::demo::{self, DemoOptions};
use switchyard::gateway::{self, Gateway};

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
        Command::Serve { .. } => "switchyard=info",
    };
    tracing_subscriber::fmt()
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
            Command::Serve { config, listen } => serve(config, listen).await,
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

async fn serve(config_path: PathBuf, listen: Option<SocketAddr>) -> Result<(), String> {
    let mut config = Config::load(&config_path).map_err(|e| e.to_string())?;
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    let sheets =
        switchyard::pricing::load_dir(&config.server.pricing_dir).map_err(|e| e.to_string())?;
    let gateway = Gateway::build(&config, &sheets, |var| std::env::var(var).ok())
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    tracing::info!(
        addr = %config.server.listen,
        endpoints = gateway.catalog().endpoints().len(),
        providers = gateway.catalog().providers().len(),
        "switchyard serving"
    );
    gateway::serve(listener, gateway, gateway::shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
}

fn fail(message: &str) -> ExitCode {
    eprintln!("switchyard: {message}");
    ExitCode::FAILURE
}
