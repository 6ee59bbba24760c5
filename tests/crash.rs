//! Crash safety: SIGKILL the real binary while traffic flows and snapshots are being written,
//! restart, and find the learned state intact up to the last completed save; damage the
//! store's files and get a clear refusal instead of a silent fresh start.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{get_json, write_sheet, Router, BIN};
use serde_json::{json, Value};
use switchyard::fake::{Behavior, FakeProvider};

fn setup(dir: &Path, base_url: &str) -> std::path::PathBuf {
    write_sheet(&dir.join("pricing"), "p", &[("m", 1.0, 1.0)]);
    let config = dir.join("switchyard.toml");
    // Saves every 10 ms: under load a save is nearly always under way when the kill lands.
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n[stats]\nflush_interval = \"10ms\"\n\
             [[providers]]\nname = \"p\"\nbase_url = \"{base_url}\"\n"
        ),
    )
    .expect("config");
    config
}

/// Requests in a loop (JSON and streams alternating) until the router goes away.
async fn traffic(url: String) {
    let client = reqwest::Client::new();
    for i in 0u64.. {
        let body = json!({"model": "m", "stream": i % 2 == 1,
            "messages": [{"role": "user", "content": "hi"}]});
        let sent = client
            .post(format!("{url}/v1/chat/completions"))
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(r) => {
                if r.bytes().await.is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

fn attempts(report: &Value) -> u64 {
    report["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["attempts"].as_u64().expect("count"))
        .sum()
}

#[tokio::test]
async fn sigkill_under_load_keeps_everything_up_to_the_last_save() {
    let fake = FakeProvider::start(
        "p",
        Behavior {
            token_interval: Duration::from_millis(2),
            ..Behavior::default()
        },
    )
    .await
    .expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = setup(dir.path(), &fake.base_url());
    let client = reqwest::Client::new();
    let mut restored_before = 0;
    for (cycle, run_ms) in [170u64, 330, 90, 450, 260].into_iter().enumerate() {
        let router = Router::spawn(&config, &[], &[]);
        let url = router.url.clone();
        let restored = attempts(&get_json(&client, format!("{url}/v1/endpoints")).await);
        assert!(
            restored >= restored_before,
            "cycle {cycle}: restored {restored} attempts, fewer than the {restored_before} saved before"
        );
        let load: Vec<_> = (0..4).map(|_| tokio::spawn(traffic(url.clone()))).collect();
        tokio::time::sleep(Duration::from_millis(run_ms)).await;
        // Whatever this reports had reached the disk before the kill. On a loaded machine
        // the first answers (and so the first save covering them) may take longer than
        // `run_ms`: wait for one, then kill while the traffic and the saves go on.
        let waited = std::time::Instant::now();
        let saved = loop {
            let health = get_json(&client, format!("{url}/healthz")).await;
            let saved = health["state"]["saved_attempts"].as_u64().unwrap_or(0);
            if saved > restored || waited.elapsed() > Duration::from_secs(20) {
                break saved;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        router.kill();
        for task in load {
            task.await.expect("traffic task");
        }
        assert!(
            saved > restored,
            "cycle {cycle}: no save covered new traffic within 20 s"
        );
        restored_before = saved;
    }
    let router = Router::spawn(&config, &[], &[]);
    let restored = attempts(&get_json(&client, format!("{}/v1/endpoints", router.url)).await);
    assert!(
        restored >= restored_before,
        "{restored} < {restored_before}"
    );
    router.stop();
}

#[tokio::test]
async fn a_damaged_store_is_refused_with_a_clear_message() {
    let fake = FakeProvider::start("p", Behavior::default())
        .await
        .expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = setup(dir.path(), &fake.base_url());
    let router = Router::spawn(&config, &[], &[]);
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let r = client
            .post(format!("{}/v1/chat/completions", router.url))
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 200);
    }
    router.stop();

    // Flip bytes in the oldest saved snapshot in the log: sled takes a bad entry for the
    // end of its log and would silently drop every save after it.
    let db = dir.path().join("state/stats.sled/db");
    let mut bytes = std::fs::read(&db).expect("store file");
    let at = memchr::memmem::find(&bytes, b"\"endpoints\"").expect("a snapshot in the log");
    for b in &mut bytes[at..at + 8] {
        *b ^= 0x5a;
    }
    std::fs::write(&db, bytes).expect("damaged");

    let run = tokio::process::Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("a damaged store was accepted: the router kept running")
        .expect("runs");
    assert!(!out.status.success(), "a damaged store was accepted");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("damaged"), "{stderr}");
    assert!(stderr.contains("stats.sled"), "{stderr}");
    assert!(stderr.contains("--reset-state"), "{stderr}");

    // Starting afresh deliberately works.
    let router = Router::spawn(&config, &["--reset-state"], &[]);
    let report = get_json(&client, format!("{}/v1/endpoints", router.url)).await;
    assert_eq!(attempts(&report), 0);
    router.stop();
}
