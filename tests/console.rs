//! The presets console in a real browser, driven like a person would: headless Chromium over
//! the DevTools protocol opens `/dashboard`, picks a preset, edits it and saves (the next
//! request routes by it), types a bad value (the validation message shows inline), asks for a
//! preview, and the page logs no error. A screenshot is saved (`console-test.png` in cargo's test scratch directory, `target/tmp`).
//!
//! Needs Chromium on PATH; without it the test says it skipped, unless
//! `SWITCHYARD_REQUIRE_CHROMIUM=1` (set by `.ci/run`, which installs it).

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{browser, header, hello, spec, Harness};
use serde_json::{json, Value};
use switchyard::fake::Behavior;
use tungstenite::{Message, WebSocket};

const TOKEN: &str = "console-test-token";

/// A DevTools session on one page: commands by id, events collected on the way.
struct DevTools {
    socket: WebSocket<TcpStream>,
    next_id: u64,
    /// Console errors and uncaught exceptions the page reported.
    problems: Vec<String>,
}

impl DevTools {
    fn connect(ws_url: &str) -> DevTools {
        let rest = ws_url.strip_prefix("ws://").expect("a ws:// url");
        let host = rest.split('/').next().expect("host:port");
        let stream = TcpStream::connect(host).expect("DevTools port");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let (socket, _) = tungstenite::client(ws_url, stream).expect("WebSocket handshake");
        DevTools {
            socket,
            next_id: 0,
            problems: Vec::new(),
        }
    }

    fn send(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket.send(Message::text(msg)).expect("send");
        loop {
            let Message::Text(text) = self.socket.read().expect("a DevTools message") else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).expect("JSON");
            match v["method"].as_str() {
                Some("Runtime.exceptionThrown") => self
                    .problems
                    .push(v["params"]["exceptionDetails"].to_string()),
                Some("Runtime.consoleAPICalled") if v["params"]["type"] == "error" => {
                    self.problems.push(v["params"]["args"].to_string())
                }
                _ => {}
            }
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.send(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits (up to 15 s) until `condition`, a JS expression, is true; returns whether it was.
    fn until(&mut self, condition: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.eval(&format!("Boolean({condition})")) == json!(true) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Sets the editor's text as typing would (an `input` event) and clicks a button.
    fn type_and_click(&mut self, text: &str, button: &str) {
        let text = serde_json::to_string(text).expect("a JSON string");
        self.eval(&format!(
            "(() => {{ const t = document.getElementById('preset-text'); t.value = {text};\
             t.dispatchEvent(new Event('input')); document.getElementById('{button}').click(); }})()"
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_presets_console_edits_validates_and_previews_in_chromium() {
    let Some(chromium) = browser() else {
        if std::env::var("SWITCHYARD_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1") {
            panic!("SWITCHYARD_REQUIRE_CHROMIUM=1 but no chromium on PATH");
        }
        eprintln!("skipped: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let routing = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        routing.path().join("team.toml"),
        "name = \"team\"\ndescription = \"the team's default\"\nmodels = [\"fast/m\"]\n",
    )
    .expect("preset");
    let h = Harness::start_with_env(
        vec![
            spec("fast", Behavior::default(), &[("m", 1.0, 2.0)]),
            spec("slow", Behavior::default(), &[("m", 0.5, 1.0)]),
        ],
        &format!(
            "admin_token_env = \"CONSOLE_TOKEN\"\nrouting_dir = \"{}\"\n",
            routing.path().display()
        ),
        |var| (var == "CONSOLE_TOKEN").then(|| TOKEN.to_owned()),
    )
    .await;
    let before = h.chat(hello("@preset/team")).await;
    assert_eq!(header(&before, "x-switchyard-endpoint"), "fast/m");

    // Chromium with its DevTools port on a free port of ours.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("addr")
        .port();
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = std::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1600",
            &format!("--remote-debugging-port={port}"),
            &format!("--user-data-dir={}", profile.path().display()),
            "about:blank",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium starts");
    let client = reqwest::Client::new();
    let mut ws_url = None;
    for _ in 0..100 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/json/list"))
            .send()
            .await
        {
            if let Ok(targets) = r.json::<Vec<Value>>().await {
                ws_url = targets
                    .iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_owned));
                if ws_url.is_some() {
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ws_url = ws_url.expect("Chromium's DevTools answered with a page");
    let page = format!("http://{}/dashboard#token={TOKEN}", h.addr);

    // The browser session runs on a thread of its own; the router keeps serving meanwhile.
    let session = tokio::task::spawn_blocking(move || {
        let mut dt = DevTools::connect(&ws_url);
        dt.send("Runtime.enable", json!({}));
        dt.send("Page.enable", json!({}));
        dt.send("Page.navigate", json!({"url": page}));
        assert!(
            dt.until("document.querySelector('[data-preset=team]')"),
            "the preset is listed"
        );
        dt.eval("document.querySelector('[data-preset=team]').click()");
        assert!(dt.until("document.getElementById('preset-text').value.includes('fast/m')"));

        // Edit and save: the message says it was applied.
        let edited = "name = \"team\"\nmodels = [\"slow/m\"]\n";
        dt.type_and_click(edited, "preset-save");
        assert!(dt.until("document.getElementById('preset-message').dataset.kind === 'ok'"));
        let saved = dt.eval("document.getElementById('preset-message').textContent");

        // A bad value: the router's validation message shows inline.
        let bad = "name = \"team\"\nmodels = [\"slow/m\"]\nroute = { max_latency_ms = -1 }\n";
        dt.type_and_click(bad, "preset-save");
        assert!(dt.until("document.getElementById('preset-message').dataset.kind === 'error'"));
        let refused = dt.eval("document.getElementById('preset-message').textContent");

        // The preview runs the selector on a sample request, nothing sent upstream.
        dt.eval("document.getElementById('preset-preview').click()");
        assert!(dt.until("document.getElementById('preset-preview-out').dataset.pick"));
        let pick = dt.eval("document.getElementById('preset-preview-out').dataset.pick");
        let history = dt.eval("document.getElementById('preset-history').children.length");
        let errors = dt.eval("document.body.dataset.errors || ''");
        let shot = dt.send("Page.captureScreenshot", json!({"format": "png"}));
        (saved, refused, pick, history, errors, shot, dt.problems)
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let (saved, refused, pick, history, errors, shot, problems) = session.expect("the session ran");

    assert!(
        saved.as_str().is_some_and(|m| m.contains("version 1")),
        "{saved}"
    );
    let refused = refused.as_str().expect("text");
    assert!(
        refused.contains("route.max_latency_ms") && refused.contains("team.toml"),
        "{refused}"
    );
    assert_eq!(pick, "slow/m");
    assert_eq!(history, 1, "one accepted change");
    assert_eq!(errors, "", "the page caught errors");
    assert!(problems.is_empty(), "console errors: {problems:?}");
    // Applied: the next request routes by the edited preset; the refused edit changed nothing.
    let after = h.chat(hello("@preset/team")).await;
    assert_eq!(header(&after, "x-switchyard-endpoint"), "slow/m");
    let fast_requests = h.fake("fast").requests();
    assert_eq!(fast_requests, 1, "the preview sent nothing upstream");

    use base64_png::decode;
    let png = decode(shot["data"].as_str().expect("base64 PNG"));
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-test.png");
    std::fs::write(&path, png).expect("screenshot written");
}

/// Base64 (standard alphabet) without another dependency: only for the screenshot.
mod base64_png {
    pub fn decode(text: &str) -> Vec<u8> {
        let value = |c: u8| -> Option<u32> {
            Some(match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => return None,
            } as u32)
        };
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        let (mut acc, mut bits) = (0u32, 0);
        for v in text.bytes().filter_map(value) {
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }
}
