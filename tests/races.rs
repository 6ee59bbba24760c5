//! The two races a review found, each driven until it would show: concurrent price updates
//! for different providers, and SIGTERM while the learned state is being saved.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{get_json, write_sheet, Router};
use serde_json::json;
use switchyard::config::Config;
use switchyard::gateway::{self, Gateway};

const TOKEN: &str = "race-admin-token";
const PROVIDERS: usize = 6;

/// Every `PUT /admin/pricing/{provider}` of a concurrent burst, each for a different
/// provider, is in the catalog afterwards: one writer at a time, so no update installs a
/// catalog built from a directory read before another update's file was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_for_different_providers_all_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pricing = dir.path().join("pricing");
    let mut text = format!(
        "[server]\npricing_dir = \"{}\"\nwatch_pricing = false\n",
        pricing.display()
    );
    for i in 0..PROVIDERS {
        write_sheet(&pricing, &format!("p{i}"), &[("m", 1.0, 1.0)]);
        text.push_str(&format!(
            "[[providers]]\nname = \"p{i}\"\nbase_url = \"http://127.0.0.1:9/v1\"\n"
        ));
    }
    let config = Config::parse(&text, Path::new("t.toml")).expect("config");
    let sheets = switchyard::pricing::load_dir(&config.server.pricing_dir).expect("sheets");
    let env = |var: &str| (var == "SWITCHYARD_ADMIN_TOKEN").then(|| TOKEN.to_owned());
    let gw = Gateway::build(&config, &sheets, env, None).expect("gateway");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(gateway::serve(listener, gw, std::future::pending()));
    let client = reqwest::Client::new();

    for round in 0..10 {
        let puts = (0..PROVIDERS).map(|i| {
            let client = client.clone();
            let url = format!("{url}/admin/pricing/p{i}");
            let sheet = format!(
                "provider = \"p{i}\"\neffective = \"2026-11-01\"\nsource = \"test\"\n\
                 [models.m]\ninput_per_mtok = 1.0\noutput_per_mtok = 1.0\n\
                 [models.r{round}]\ninput_per_mtok = 2.0\noutput_per_mtok = 2.0\n"
            );
            async move {
                let r = client
                    .put(url)
                    .bearer_auth(TOKEN)
                    .body(sheet)
                    .send()
                    .await
                    .expect("answer");
                assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
            }
        });
        futures_util::future::join_all(puts).await;
        let models = get_json(&client, format!("{url}/v1/models")).await;
        let ids: Vec<&str> = models["data"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|m| m["id"].as_str())
            .collect();
        for i in 0..PROVIDERS {
            let want = format!("p{i}/r{round}");
            assert!(
                ids.contains(&want.as_str()),
                "round {round}: {want} was accepted but is not in the catalog: {ids:?}"
            );
        }
    }
}

/// SIGTERM while saves run every millisecond, sixty times: no save fails and the last start
/// finds every attempt. (Before, the final save could run beside a periodic one still on the
/// blocking pool: both wrote the marker's temporary file, one rename failed, and the marker
/// could end up ahead of the data, which the next start refuses as damaged. With the old
/// shutdown this test failed in one of two runs on the development machine.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_saves_never_damages_the_store() {
    let fake = switchyard::fake::FakeProvider::start("p", Default::default())
        .await
        .expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    write_sheet(&dir.path().join("pricing"), "p", &[("m", 1.0, 1.0)]);
    let config = dir.path().join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\npricing_dir = \"{}\"\n\
             [stats]\nflush_interval = \"1ms\"\n[[providers]]\nname = \"p\"\nbase_url = \"{}\"\n",
            dir.path().join("state").display(),
            dir.path().join("pricing").display(),
            fake.base_url()
        ),
    )
    .expect("config");
    let client = reqwest::Client::new();
    let mut answered = 0u64;
    for round in 0..60 {
        let router = Router::spawn(&config, &[], &[]);
        for _ in 0..20 {
            let r = client
                .post(format!("{}/v1/chat/completions", router.url))
                .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .expect("answer");
            assert_eq!(r.status(), 200);
            answered += 1;
        }
        tokio::time::sleep(Duration::from_millis(20 * (round % 3))).await;
        let output = router.stop();
        let text = String::from_utf8_lossy(&output);
        assert!(
            !text.contains("saving statistics failed"),
            "round {round}: {text}"
        );
    }
    // The last start saw everything the previous ones answered.
    let router = Router::spawn(&config, &[], &[]);
    let report = get_json(&client, format!("{}/v1/endpoints", router.url)).await;
    assert_eq!(report["data"][0]["attempts"].as_u64(), Some(answered));
    router.stop();
}
