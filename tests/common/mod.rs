//! Test harness: the real router on port 0 in front of fake providers on port 0.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use switchyard::config::Config;
use switchyard::fake::{Behavior, FakeProvider};
use switchyard::gateway::{self, Gateway};
use switchyard::pricing::PriceSheet;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One fake provider to start: its name, behaviour, and `(model, input, output)` prices.
pub struct Spec {
    pub name: &'static str,
    pub behavior: Behavior,
    pub models: Vec<(&'static str, f64, f64)>,
    /// `protocol` of its `[[providers]]` entry (`None`: the default, OpenAI's).
    pub protocol: Option<&'static str>,
    /// Cache prices of every model: `(cached_input_per_mtok, cache_write_per_mtok)`.
    pub cache: Option<(f64, f64)>,
    /// Its models are embedding models.
    pub embedding: bool,
    /// It serves the Responses API (`responses = true`).
    pub responses: bool,
    /// The `quality` its sheet declares for every model.
    pub quality: Option<f64>,
    /// The `supports` list its sheet gives every model, as TOML (`["tools"]`).
    pub supports: Option<&'static str>,
    /// The `context_window` its sheet gives every model.
    pub context_window: Option<u32>,
}

pub fn spec(name: &'static str, behavior: Behavior, models: &[(&'static str, f64, f64)]) -> Spec {
    Spec {
        name,
        behavior,
        models: models.to_vec(),
        protocol: None,
        cache: None,
        embedding: false,
        responses: false,
        quality: None,
        supports: None,
        context_window: None,
    }
}

/// A fake provider serving embedding models.
pub fn embedding_spec(
    name: &'static str,
    behavior: Behavior,
    models: &[(&'static str, f64, f64)],
) -> Spec {
    Spec {
        embedding: true,
        ..spec(name, behavior, models)
    }
}

/// A fake provider speaking Anthropic's Messages API.
pub fn anthropic_spec(
    name: &'static str,
    behavior: Behavior,
    models: &[(&'static str, f64, f64)],
) -> Spec {
    Spec {
        protocol: Some("anthropic"),
        ..spec(name, behavior, models)
    }
}

pub struct Harness {
    pub addr: SocketAddr,
    pub fakes: Vec<Arc<FakeProvider>>,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Harness {
    /// Starts the fakes and a router configured for them; `extra` is appended to the config
    /// (e.g. `[upstream]` or `[routing]` tables).
    pub async fn start(specs: Vec<Spec>, extra: &str) -> Harness {
        Self::start_with_env(specs, extra, |_| None).await
    }

    pub async fn start_with_env(
        specs: Vec<Spec>,
        extra: &str,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Harness {
        let mut fakes = Vec::new();
        let mut text = String::from("[server]\nlisten = \"127.0.0.1:0\"\n");
        text.push_str(extra);
        let mut sheets = Vec::new();
        for s in &specs {
            let fake = FakeProvider::start(s.name, s.behavior.clone())
                .await
                .expect("fake starts");
            text.push_str(&format!(
                "\n[[providers]]\nname = \"{}\"\nbase_url = \"{}\"\n",
                s.name,
                fake.base_url()
            ));
            if s.responses {
                text.push_str("responses = true\n");
            }
            if let Some(p) = s.protocol {
                text.push_str(&format!("protocol = \"{p}\"\n"));
            }
            if env(&format!("{}_KEY", s.name.to_uppercase())).is_some() {
                text.push_str(&format!(
                    "api_key_env = \"{}_KEY\"\n",
                    s.name.to_uppercase()
                ));
            }
            let mut sheet = format!(
                "provider = \"{}\"\neffective = \"2026-11-01\"\nsource = \"test\"\n",
                s.name
            );
            for (m, i, o) in &s.models {
                sheet.push_str(&format!(
                    "[models.\"{m}\"]\ninput_per_mtok = {i:?}\noutput_per_mtok = {o:?}\n"
                ));
                if s.embedding {
                    sheet.push_str("kind = \"embedding\"\n");
                }
                if let Some(q) = s.quality {
                    sheet.push_str(&format!("quality = {q:?}\n"));
                }
                if let Some(w) = s.context_window {
                    sheet.push_str(&format!("context_window = {w}\n"));
                }
                if let Some(list) = s.supports {
                    sheet.push_str(&format!("supports = {list}\n"));
                }
                if let Some((read, write)) = s.cache {
                    sheet.push_str(&format!(
                        "cached_input_per_mtok = {read:?}\ncache_write_per_mtok = {write:?}\n"
                    ));
                }
            }
            sheets.push(
                PriceSheet::parse(&sheet, Path::new(&format!("{}.toml", s.name))).expect("sheet"),
            );
            fakes.push(Arc::new(fake));
        }
        let config = Config::parse(&text, Path::new("test.toml")).expect("config");
        // Seeded: the same test draws the same routing decisions on every run.
        let hooks = gateway::Hooks {
            seed: Some(config.routing.seed.unwrap_or(1)),
            ..gateway::Hooks::default()
        };
        let gw = Gateway::build_with(&config, &sheets, env, None, hooks).expect("gateway builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(gateway::serve(listener, gw, async move {
            let _ = rx.await;
        }));
        Harness {
            addr,
            fakes,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn fake(&self, name: &str) -> &FakeProvider {
        self.fakes
            .iter()
            .find(|f| f.name() == name)
            .expect("known fake")
    }

    pub async fn chat(&self, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .expect("router answers")
    }

    /// The Prometheus exposition text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Signals shutdown; the server task can then be awaited.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_payloads(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(str::to_owned)
        .collect()
}

/// The concatenated `delta.content` of the chunks of an SSE body.
pub fn sse_content(body: &str) -> String {
    sse_payloads(body)
        .iter()
        .filter(|p| p.as_str() != "[DONE]")
        .filter_map(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

pub fn hello(model: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "Hello!"}]})
}

/// The router binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// Runs the binary with `args` to its end.
pub fn run_bin<S: AsRef<std::ffi::OsStr>>(
    args: impl IntoIterator<Item = S>,
) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs the binary with `args`, which must succeed; its standard output.
pub fn run_ok<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> String {
    let out = run_bin(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A `switchyard serve` process with its stdout and stderr collected.
pub struct Router {
    pub child: std::process::Child,
    pub url: String,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Router {
    /// Starts `switchyard serve --config CONFIG EXTRA..` with `env` added to its environment
    /// and waits for the address it prints.
    pub fn spawn(config: &Path, extra: &[&str], env: &[(&str, &str)]) -> Router {
        use std::io::{BufRead, BufReader, Read};
        use std::process::{Command, Stdio};
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("a first line");
        output
            .lock()
            .expect("output lock")
            .extend_from_slice(line.as_bytes());
        let url = line
            .trim()
            .strip_prefix("switchyard listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        let collect = |mut source: Box<dyn Read + Send>| {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = source.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .expect("output lock")
                        .extend_from_slice(&buf[..n]);
                }
            })
        };
        let stderr = child.stderr.take().expect("piped");
        let readers = vec![collect(Box::new(stdout)), collect(Box::new(stderr))];
        Router {
            child,
            url,
            output,
            readers,
        }
    }

    /// SIGTERM, then waits for a clean exit and for all its output.
    pub fn stop(mut self) -> Vec<u8> {
        std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        let status = self.child.wait().expect("exits");
        let output = self.drain();
        assert!(
            status.success(),
            "graceful exit, got {status}; output:\n{}",
            String::from_utf8_lossy(&output)
        );
        output
    }

    /// SIGKILL, then waits for it to be gone.
    pub fn kill(mut self) -> Vec<u8> {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
        self.drain()
    }

    fn drain(&mut self) -> Vec<u8> {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        std::mem::take(&mut *self.output.lock().expect("output lock"))
    }
}

/// GETs `url` and parses the JSON answer.
pub async fn get_json(client: &reqwest::Client, url: String) -> serde_json::Value {
    client
        .get(url)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json")
}

/// One endpoint's entry in a `/v1/endpoints` report.
pub fn endpoint_in<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["data"]
        .as_array()
        .expect("a list of endpoints")
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("{id} listed"))
}

/// Writes a price sheet for `provider` with models `(name, input, output)` into `dir`.
pub fn write_sheet(dir: &Path, provider: &str, models: &[(&str, f64, f64)]) {
    let mut sheet =
        format!("provider = \"{provider}\"\neffective = \"2026-11-01\"\nsource = \"test\"\n");
    for (m, i, o) in models {
        sheet.push_str(&format!(
            "[models.\"{m}\"]\ninput_per_mtok = {i:?}\noutput_per_mtok = {o:?}\n"
        ));
    }
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join(format!("{provider}.toml")), sheet).expect("sheet");
}

/// Debian's `chromium` (or `chromium-browser`, `google-chrome`) on PATH, for browser tests.
pub fn browser() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// The Python interpreter (`PYTHON`, else `python3`).
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Whether the Python package `module` can be imported; without it the test says it skipped
/// and should return, unless `required_env` is `1` (CI), where its absence fails the test.
pub fn python_package(module: &str, required_env: &str) -> bool {
    let found = std::process::Command::new(python())
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let required = std::env::var(required_env).is_ok_and(|v| v == "1");
        assert!(
            !required,
            "the `{module}` Python package is required but not importable"
        );
        eprintln!("skipped: `pip install {module}` to run this compatibility test");
    }
    found
}

/// Runs `tests/compat/{script}` with `args`; asserts it succeeded and said its checks passed,
/// and answers what it printed.
pub async fn run_compat_script(script: &str, args: &[String]) -> String {
    let path = format!("{}/tests/compat/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::process::Command::new(python())
        .arg(path)
        .args(args)
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
    eprintln!("{stdout}");
    stdout
}
