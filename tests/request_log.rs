//! The request log, with the real binary: every request leaves a line; the lines survive a
//! SIGKILL and a restart; `switchyard log export` writes them as valid JSON lines; a
//! decision the in-memory ring no longer holds (here: after a restart) is served from the
//! log; and no line holds a provider key or the prompt's text.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{header, run_ok, write_sheet, Router};
use serde_json::{json, Value};
use switchyard::fake::{Behavior, FakeProvider};

const KEY: &str = "sk-live-provider-secret-0123456789";
const PROMPT: &str = "the-prompt-text-that-must-never-be-logged";

fn setup(dir: &Path, base_url: &str) -> std::path::PathBuf {
    write_sheet(&dir.join("pricing"), "p", &[("m", 1.0, 2.0)]);
    let config = dir.join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n\
             [[providers]]\nname = \"p\"\nbase_url = \"{base_url}\"\napi_key_env = \"P_KEY\"\n"
        ),
    )
    .expect("config");
    config
}

fn export(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let state = dir.join("state");
    let state = state.to_str().expect("a utf-8 path");
    let args = ["log", "export", "--state-dir", state, "--format", "jsonl"];
    run_ok(args.iter().chain(extra))
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

fn requests(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["kind"] == "request").collect()
}

async fn ask(client: &reqwest::Client, url: &str, stream: bool, model: &str) -> (u16, String) {
    let r = client
        .post(format!("{url}/v1/chat/completions"))
        .json(
            &json!({"model": model, "stream": stream, "route": {"max_attempts": 2},
            "messages": [{"role": "user", "content": PROMPT}]}),
        )
        .send()
        .await
        .expect("answers");
    let id = header(&r, "x-request-id").to_owned();
    let status = r.status().as_u16();
    r.bytes().await.expect("body");
    (status, id)
}

/// Polls the export until it holds `n` requests.
async fn until_logged(dir: &Path, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let lines = export(dir, &[]);
        if requests(&lines).len() >= n {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{n} requests never reached the log");
}

#[tokio::test]
async fn the_log_survives_sigkill_and_restart_exports_json_lines_and_serves_old_decisions() {
    let fake = FakeProvider::start("p", Behavior::default())
        .await
        .expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = setup(dir.path(), &fake.base_url());
    let client = reqwest::Client::new();
    let env = [("P_KEY", KEY)];

    let router = Router::spawn(&config, &[], &env);
    let mut ids = Vec::new();
    for i in 0..10 {
        let (status, id) = ask(&client, &router.url, i % 2 == 1, "m").await;
        assert_eq!(status, 200);
        ids.push(id);
    }
    // Refused by the router (an unknown model): logged too, without attempts.
    let (status, refused) = ask(&client, &router.url, false, "no-such-model").await;
    assert_eq!(status, 404);
    let before_kill = until_logged(dir.path(), 11).await;
    let out = router.kill();
    assert!(!String::from_utf8_lossy(&out).contains(KEY));

    // Everything written before the kill is there.
    let after_kill = export(dir.path(), &[]);
    assert_eq!(after_kill, before_kill);
    assert!(matches!(after_kill[0]["kind"].as_str(), Some("catalog")));
    let logged = requests(&after_kill);
    assert_eq!(logged.len(), 11);
    for (line, id) in logged.iter().zip(ids.iter().chain([&refused])) {
        assert_eq!(line["id"], id.as_str());
    }
    let first = logged[0];
    assert_eq!(first["outcome"], "answered");
    assert_eq!(first["attempts"][0]["endpoint"], "p/m");
    assert_eq!(first["attempts"][0]["outcome"], "answered");
    assert!(
        first["cost_usd"].as_f64().is_some_and(|c| c > 0.0),
        "{first}"
    );
    assert!(first["prompt_bytes"].as_u64().is_some_and(|b| b > 0));
    assert_eq!(first["hints"]["route"]["max_attempts"], 2);
    let streamed = logged[1];
    assert_eq!(streamed["stream"], true);
    assert!(streamed["ttft_ms"].as_f64().is_some(), "{streamed}");
    assert_eq!(logged[10]["outcome"], "refused");
    assert_eq!(logged[10]["status"], 404);

    // A restart appends; its ring is empty, so an old decision comes from the log.
    let router = Router::spawn(&config, &[], &env);
    let (status, _) = ask(&client, &router.url, false, "m").await;
    assert_eq!(status, 200);
    let old = common::get_json(&client, format!("{}/v1/decisions/{}", router.url, ids[3])).await;
    assert_eq!(old["source"], "request_log", "{old}");
    assert_eq!(old["id"], ids[3].as_str());
    let missing = client
        .get(format!("{}/v1/decisions/req_0000000000000000", router.url))
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status(), 404);
    router.stop();
    let all = export(dir.path(), &[]);
    assert_eq!(requests(&all).len(), 12);
    // `--until` an hour ago: nothing of this test.
    assert!(requests(&export(dir.path(), &["--until", "1h"])).is_empty());

    // The export replays.
    let file = dir.path().join("export.jsonl");
    export(dir.path(), &["--out", file.to_str().expect("utf-8 path")]);
    let file = file.to_str().expect("a utf-8 path");
    let table = run_ok(["simulate", "--replay", file]);
    assert!(
        table.contains("recorded") && table.contains("p/m"),
        "{table}"
    );

    // Neither a key nor the prompt is anywhere in the log's files.
    for entry in std::fs::read_dir(dir.path().join("state/log")).expect("log dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(KEY), "a key in the log");
        assert!(!text.contains(PROMPT), "the prompt in the log");
    }
}
