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
}

pub fn spec(name: &'static str, behavior: Behavior, models: &[(&'static str, f64, f64)]) -> Spec {
    Spec {
        name,
        behavior,
        models: models.to_vec(),
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
            }
            sheets.push(
                PriceSheet::parse(&sheet, Path::new(&format!("{}.toml", s.name))).expect("sheet"),
            );
            fakes.push(Arc::new(fake));
        }
        let config = Config::parse(&text, Path::new("test.toml")).expect("config");
        let gw = Gateway::build(&config, &sheets, env, None).expect("gateway builds");
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
