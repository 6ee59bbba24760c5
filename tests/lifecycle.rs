//! What lives across events: price reloads by SIGHUP and by a file change (real binary),
//! statistics across a catalog reload, a client's spend across a restart, and the request
//! deadline across attempts.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{get_json, header, hello, spec, write_sheet, Harness, Router};
use serde_json::Value;
use switchyard::fake::{Behavior, FakeProvider};

/// The input price of `p/m` in the router's model list.
async fn input_price(client: &reqwest::Client, url: &str) -> f64 {
    let models = get_json(client, format!("{url}/v1/models")).await;
    models["data"]
        .as_array()
        .expect("list")
        .iter()
        .find(|m| m["id"] == "p/m")
        .and_then(|m| m["pricing"]["input_per_mtok"].as_f64())
        .expect("p/m is listed with a price")
}

/// Polls until `check` holds (at most 20 s): file watchers and signals act on their own time.
async fn eventually<F: std::future::Future<Output = bool>>(mut check: impl FnMut() -> F) -> bool {
    for _ in 0..200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn config(dir: &Path, base_url: &str, extra: &str) -> PathBuf {
    write_sheet(&dir.join("pricing"), "p", &[("m", 1.0, 1.0)]);
    let path = dir.join("switchyard.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\npricing_dir = \"{}\"\n{extra}\n\
             [[providers]]\nname = \"p\"\nbase_url = \"{base_url}\"\n",
            dir.join("state").display(),
            dir.join("pricing").display(),
        ),
    )
    .expect("config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_prices_and_a_bad_sheet_keeps_the_old_ones() {
    let fake = FakeProvider::start("p", Behavior::default())
        .await
        .expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(dir.path(), &fake.base_url(), "watch_pricing = false");
    let router = Router::spawn(&path, &[], &[]);
    let client = reqwest::Client::new();
    assert_eq!(input_price(&client, &router.url).await, 1.0);
    let hup = || {
        std::process::Command::new("kill")
            .arg("-HUP")
            .arg(router.child.id().to_string())
            .status()
            .expect("kill runs")
    };
    write_sheet(&dir.path().join("pricing"), "p", &[("m", 2.5, 1.0)]);
    // Without the signal nothing changes (the watcher is off).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(input_price(&client, &router.url).await, 1.0);
    hup();
    assert!(eventually(|| async { input_price(&client, &router.url).await == 2.5 }).await);
    // A bad sheet and a SIGHUP: refused, the previous prices keep serving.
    std::fs::write(dir.path().join("pricing/p.toml"), "provider = \"p\"\n").expect("write");
    hup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(input_price(&client, &router.url).await, 2.5);
    let output = String::from_utf8_lossy(&router.stop()).into_owned();
    assert!(output.contains("SIGHUP reload refused"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_sheet_file_is_picked_up_by_the_watcher() {
    let fake = FakeProvider::start("p", Behavior::default())
        .await
        .expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(dir.path(), &fake.base_url(), "watch_pricing = true");
    let router = Router::spawn(&path, &[], &[]);
    let client = reqwest::Client::new();
    assert_eq!(input_price(&client, &router.url).await, 1.0);
    // The router says it listens before its watcher is registered, so a write in between
    // goes unseen: write again each second until a reload shows (at most 20 s).
    let mut reloaded = false;
    for _ in 0..20 {
        write_sheet(&dir.path().join("pricing"), "p", &[("m", 3.0, 1.0)]);
        tokio::time::sleep(Duration::from_secs(1)).await;
        if input_price(&client, &router.url).await == 3.0 {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "the watcher did not reload");
    router.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_survive_a_catalog_reload() {
    let fake = FakeProvider::start("p", Behavior::default())
        .await
        .expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(dir.path(), &fake.base_url(), "watch_pricing = false");
    let router = Router::spawn(&path, &[], &[("SWITCHYARD_ADMIN_TOKEN", "t0ken")]);
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let r = client
            .post(format!("{}/v1/chat/completions", router.url))
            .json(&hello("m"))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 200);
    }
    write_sheet(
        &dir.path().join("pricing"),
        "p",
        &[("m", 2.0, 2.0), ("n", 1.0, 1.0)],
    );
    let r = client
        .post(format!("{}/admin/pricing/reload", router.url))
        .bearer_auth("t0ken")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    let report = get_json(&client, format!("{}/v1/endpoints", router.url)).await;
    let m = report["data"]
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["id"] == "p/m")
        .expect("p/m is still there");
    assert_eq!(m["attempts"], 5, "{m}");
    assert_eq!(m["successes"], 5, "{m}");
    assert!(m["learned"]["total_median_ms"].as_f64().is_some(), "{m}");
    router.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_spend_survives_a_restart() {
    let fake = FakeProvider::start("p", Behavior::default())
        .await
        .expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    let clients = "[[clients]]\nname = \"app\"\nkey_env = \"APP_KEY\"\nspend_limit_usd = \"100\"\n";
    let path = config(dir.path(), &fake.base_url(), "");
    let text = std::fs::read_to_string(&path).expect("config") + clients;
    std::fs::write(&path, text).expect("config");
    let env = [
        ("APP_KEY", "sy-app-key"),
        ("SWITCHYARD_ADMIN_TOKEN", "t0ken"),
    ];
    let client = reqwest::Client::new();
    let spent = |url: String| {
        let client = client.clone();
        async move {
            let v: Value = client
                .get(format!("{url}/admin/clients"))
                .bearer_auth("t0ken")
                .send()
                .await
                .expect("answer")
                .json()
                .await
                .expect("json");
            v["clients"][0]["spent_usd"]
                .as_str()
                .expect("decimal")
                .to_owned()
        }
    };
    let router = Router::spawn(&path, &[], &env);
    for _ in 0..3 {
        let r = client
            .post(format!("{}/v1/chat/completions", router.url))
            .bearer_auth("sy-app-key")
            .json(&hello("m"))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 200);
    }
    let before = spent(router.url.clone()).await;
    assert_ne!(before, "0", "the answers cost something");
    router.stop();
    let router = Router::spawn(&path, &[], &env);
    assert_eq!(spent(router.url.clone()).await, before);
    router.stop();
}

#[tokio::test]
async fn the_total_timeout_ends_the_attempts() {
    // Each provider takes 600 ms; the first-byte limit is 1 s, the whole request 1 s: the
    // second attempt starts, and the deadline ends it before a third.
    let slow = Behavior {
        ttft: Duration::from_millis(600),
        ..Behavior::default()
    };
    let h = Harness::start(
        vec![
            spec("a", slow.clone(), &[("m", 1.0, 1.0)]),
            spec("b", slow.clone(), &[("m", 2.0, 2.0)]),
            spec("c", slow, &[("m", 3.0, 3.0)]),
        ],
        "[upstream]\nfirst_byte_timeout = \"450ms\"\ntotal_timeout = \"1s\"\n[routing]\npolicy = \"cheapest\"\n",
    )
    .await;
    let r = h.chat(hello("m")).await;
    assert_eq!(r.status(), 502);
    let attempts: u32 = header(&r, "x-switchyard-attempts").parse().expect("count");
    assert_eq!(
        attempts, 3,
        "450 ms each: three attempts fit before the deadline"
    );
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "all_attempts_failed");
    // With the deadline shorter than two attempts, the second is cut by it.
    let h2 = Harness::start(
        vec![spec("a", Behavior { ttft: Duration::from_millis(600), ..Behavior::default() }, &[("m", 1.0, 1.0)]),
             spec("b", Behavior { ttft: Duration::from_millis(600), ..Behavior::default() }, &[("m", 2.0, 2.0)]),
             spec("c", Behavior { ttft: Duration::from_millis(600), ..Behavior::default() }, &[("m", 3.0, 3.0)])],
        "[upstream]\nfirst_byte_timeout = \"450ms\"\ntotal_timeout = \"700ms\"\n[routing]\npolicy = \"cheapest\"\n",
    )
    .await;
    let r = h2.chat(hello("m")).await;
    assert_eq!(r.status(), 502);
    assert_eq!(header(&r, "x-switchyard-attempts"), "2");
    let v: Value = r.json().await.expect("json");
    let message = v["error"]["message"].as_str().expect("message");
    assert!(message.contains("before the request deadline"), "{message}");
    assert_eq!(h2.fake("c").requests(), 0, "no attempt after the deadline");
}
