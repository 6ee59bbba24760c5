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

/// mimalloc instead of the system allocator: the request path allocates many small,
/// short-lived blocks (headers, bodies, futures), where glibc's malloc took about a tenth of
/// the router's CPU under load. Built without transparent huge pages (`no_thp`): with them
/// the 200-endpoint memory run peaked at 72 MiB instead of 45.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// The scenario file (see simulations/).
        file: PathBuf,
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
    },
    /// Check, import and compare price sheets.
    #[command(subcommand)]
    Pricing(PricingCommand),
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
    },
}

#[derive(Subcommand)]
enum PricingCommand {
    /// Check every sheet in a directory; every problem is printed with file, model and field.
    Validate {
        #[arg(default_value = "pricing")]
        dir: PathBuf,
    },
    /// Write sheets from LiteLLM's price table or OpenRouter's model list.
    Import {
        /// The format of FILE.
        #[arg(long, value_enum)]
        from: ImportFormat,
        file: PathBuf,
        /// Only these providers (switchyard names, e.g. together, google); all when absent.
        #[arg(long = "provider")]
        providers: Vec<String>,
        /// Where to write `<provider>.toml` files.
        #[arg(long, default_value = "pricing")]
        out: PathBuf,
        /// The sheets' `effective` date (default: today).
        #[arg(long)]
        effective: Option<String>,
        /// The sheets' `source` (default: the file's name).
        #[arg(long)]
        source: Option<String>,
    },
    /// Show what changed between two sheets directories (or two sheet files).
    Diff { old: PathBuf, new: PathBuf },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ImportFormat {
    Litellm,
    Openrouter,
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
            } => print_stats(&state_dir, config.as_deref(), json),
            Command::Pricing(cmd) => pricing_command(cmd),
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
            } => simulate(&file, &policies, seed, json, out.as_deref()),
            Command::Demo {
                listen,
                control,
                dir,
                load,
            } => {
                let options = DemoOptions {
                    listen,
                    control,
                    dir,
                    load,
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
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        print_lines([text]);
    } else {
        let age = age_ms as f64 / 1000.0;
        let head = format!("saved {age:.0} s ago in {}\n", store.path().display());
        print_lines(std::iter::once(head).chain(table.lines().map(str::to_owned)));
    }
    Ok(())
}

fn pricing_command(cmd: PricingCommand) -> Result<(), String> {
    use switchyard::pricing::{self, diff, import, PriceSheet};
    match cmd {
        PricingCommand::Validate { dir } => {
            let sheets = pricing::load_dir(&dir).map_err(|e| e.to_string())?;
            if sheets.is_empty() {
                return Err(format!("{}: no *.toml price sheets here", dir.display()));
            }
            let models: usize = sheets.iter().map(|s| s.models.len()).sum();
            print_lines([format!(
                "{}: {} sheets, {models} models, all valid",
                dir.display(),
                sheets.len()
            )]);
            Ok(())
        }
        PricingCommand::Import {
            from,
            file,
            providers,
            out,
            effective,
            source,
        } => {
            let json =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let effective = effective.unwrap_or_else(|| {
                humantime::format_rfc3339(SystemTime::now()).to_string()[..10].to_owned()
            });
            let source = source.unwrap_or_else(|| {
                file.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            });
            let imported = match from {
                ImportFormat::Litellm => {
                    import::from_litellm(&json, &providers, &effective, &source)
                }
                ImportFormat::Openrouter => import::from_openrouter(&json, &effective, &source),
            }
            .map_err(|e| format!("{}: {e}", file.display()))?;
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            for sheet in &imported.sheets {
                let path = out.join(format!("{}.toml", sheet.provider));
                let text = sheet.to_toml();
                // The same validation the router applies, before the file is written.
                PriceSheet::parse(&text, &path)
                    .map_err(|e| format!("{}", pricing::SheetErrors(e)))?;
                std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
                print_lines([format!(
                    "wrote {} ({} models)",
                    path.display(),
                    sheet.models.len()
                )]);
            }
            let mut reasons: std::collections::BTreeMap<String, usize> =
                std::collections::BTreeMap::new();
            for (_, why) in &imported.skipped {
                *reasons.entry(why.kind().to_owned()).or_default() += 1;
            }
            let summary = std::iter::once(format!("skipped {} entries:", imported.skipped.len()))
                .chain(reasons.iter().map(|(why, n)| format!("  {n:>5}  {why}")));
            print_lines(summary);
            Ok(())
        }
        PricingCommand::Diff { old, new } => {
            let load = |p: &Path| -> Result<Vec<PriceSheet>, String> {
                if p.is_dir() {
                    pricing::load_dir(p).map_err(|e| e.to_string())
                } else {
                    let text =
                        std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                    // Compare sheets by content: the file name need not be <provider>.toml.
                    let sheet: PriceSheet =
                        toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
                    Ok(vec![sheet])
                }
            };
            let changes = diff::diff(&load(&old)?, &load(&new)?);
            if changes.is_empty() {
                print_lines(["no price changes".to_owned()]);
            }
            print_lines(changes.iter().map(|c| c.to_string()));
            Ok(())
        }
    }
}

fn simulate(
    file: &Path,
    policies: &[String],
    seed: Option<u64>,
    json: bool,
    out: Option<&Path>,
) -> Result<(), String> {
    use switchyard::sim::{
        self,
        scenario::{Scenario, SimPolicy},
    };
    let scenario = Scenario::load(file).map_err(|e| e.to_string())?;
    let chosen = policies
        .iter()
        .map(|p| SimPolicy::parse(p).ok_or_else(|| format!("--policy: unknown policy `{p}`")))
        .collect::<Result<Vec<_>, _>>()?;
    // A progress bar for people; scripts and CI (stderr not a terminal) see nothing.
    let runs = if chosen.is_empty() {
        scenario.policies.len().max(3)
    } else {
        chosen.len()
    } + 1;
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::new(runs as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} policies simulated, last: {msg}",
        )
        .expect("a valid template"),
    );
    let report = sim::simulate_with_progress(
        &scenario,
        &chosen,
        seed.unwrap_or(scenario.seed),
        |name, _| {
            bar.set_message(name.to_owned());
            bar.inc(1);
        },
    );
    bar.finish_and_clear();
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(dir.join("report.json"), &text)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(dir.join("traffic.csv"), sim::report::traffic_csv(&report))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        sim::plot::write_charts(&report, dir).map_err(|e| format!("charts: {e}"))?;
    }
    if json {
        print_lines([text]);
    } else {
        print_lines(report.table().lines().map(str::to_owned));
    }
    Ok(())
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
