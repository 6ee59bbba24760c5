//! Secrets stay secret: recognisable provider keys, a client key and the admin token go
//! through the real binary under every kind of traffic, and then every output is searched
//! for them: response bodies and headers, stdout and stderr at trace level, the metrics,
//! decision records, reports, the sled store's files, and `Debug` output.

mod common;

use std::path::Path;

use common::{write_sheet, Router, BIN};
use serde_json::{json, Value};
use switchyard::auth::{digest, to_hex};
use switchyard::fake::{Behavior, FakeProvider, Fault};

const PROVIDER_KEY: &str = "sk-LEAKCHECK-provider-7f3a9c2e5b1d";
const ECHO_KEY: &str = "sk-LEAKCHECK-echoed-44c1e09a";
const CLIENT_KEY: &str = "sy-LEAKCHECK-client-d2b7a6";
const ADMIN_TOKEN: &str = "LEAKCHECK-admin-91e3f0";
const SECRETS: [&str; 4] = [PROVIDER_KEY, ECHO_KEY, CLIENT_KEY, ADMIN_TOKEN];

fn assert_clean(what: &str, bytes: &[u8]) {
    for secret in SECRETS {
        assert!(
            memchr::memmem::find(bytes, secret.as_bytes()).is_none(),
            "{what} contains `{secret}`:\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test]
async fn no_secret_appears_in_any_output() {
    let good = FakeProvider::start("good", Behavior::default())
        .await
        .expect("fake");
    // Quotes the key it got in a 401 (fails over) and in a 400 (relayed to the client).
    let echo401 = FakeProvider::start(
        "echo401",
        Behavior {
            fault: Fault::EchoAuthorization(401),
            ..Behavior::default()
        },
    )
    .await
    .expect("fake");
    let echo400 = FakeProvider::start(
        "echo400",
        Behavior {
            fault: Fault::EchoAuthorization(400),
            ..Behavior::default()
        },
    )
    .await
    .expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    let pricing = dir.path().join("pricing");
    write_sheet(&pricing, "good", &[("m", 1.0, 2.0)]);
    write_sheet(&pricing, "echo401", &[("m", 0.1, 0.2)]);
    write_sheet(&pricing, "echo400", &[("picky", 0.1, 0.2)]);
    let config = dir.path().join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\nadmin_token_env = \"LEAK_ADMIN\"\n\
             [stats]\nflush_interval = \"100ms\"\n[routing]\npolicy = \"cheapest\"\n\
             [[clients]]\nname = \"app\"\nkey_sha256 = \"{}\"\n\
             [[providers]]\nname = \"good\"\nbase_url = \"{}\"\napi_key_env = \"LEAK_GOOD\"\n\
             [[providers]]\nname = \"echo401\"\nbase_url = \"{}\"\napi_key_env = \"LEAK_ECHO\"\n\
             [[providers]]\nname = \"echo400\"\nbase_url = \"{}\"\napi_key_env = \"LEAK_ECHO\"\n",
            to_hex(&digest(CLIENT_KEY.as_bytes())),
            good.base_url(),
            echo401.base_url(),
            echo400.base_url(),
        ),
    )
    .expect("config");
    let env = [
        ("LEAK_GOOD", PROVIDER_KEY),
        ("LEAK_ECHO", ECHO_KEY),
        ("LEAK_ADMIN", ADMIN_TOKEN),
        ("RUST_LOG", "trace"),
    ];
    let router = Router::spawn(&config, &[], &env);
    let url = router.url.clone();
    let client = reqwest::Client::new();
    let mut seen: Vec<u8> = Vec::new();
    fn record(seen: &mut Vec<u8>, r: &reqwest::Response) {
        seen.extend_from_slice(format!("{:?}\n", r.headers()).as_bytes());
    }

    let chat = |body: Value, key: &str| {
        client
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(key)
            // A hint header the router reads: hints travel into decision records, which are
            // searched too.
            .header("x-route-max-cost-usd", "0.5")
            .json(&body)
            .send()
    };
    let hi = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let mut ids = Vec::new();
    let mut stream = hi("m");
    stream["stream"] = true.into();
    stream["stream_options"] = json!({"include_usage": true});
    for (body, key, status) in [
        (hi("m"), CLIENT_KEY, 200),        // echo401 fails over to good
        (stream.clone(), CLIENT_KEY, 200), // the same, streamed
        (hi("picky"), CLIENT_KEY, 400),    // echo400's quoting error, relayed
        (hi("nonexistent"), CLIENT_KEY, 404),
        (json!({"model": 3}), CLIENT_KEY, 400),
        (hi("m"), ADMIN_TOKEN, 401),  // the admin token is no client key
        (hi("m"), PROVIDER_KEY, 401), // nor is a provider key
    ] {
        let r = chat(body, key).await.expect("answer");
        assert_eq!(r.status(), status);
        record(&mut seen, &r);
        if let Some(id) = r.headers().get("x-request-id") {
            ids.push(id.to_str().expect("ascii").to_owned());
        }
        let text = r.bytes().await.expect("body");
        if status == 400 && text.windows(9).any(|w| w == b"not accep") {
            assert!(
                memchr::memmem::find(&text, b"[redacted]").is_some(),
                "the echoed key was not redacted"
            );
        }
        seen.extend_from_slice(&text);
    }
    // The router did send the keys upstream, so the search below is not vacuous.
    assert_eq!(
        good.last_authorization().as_deref(),
        Some(format!("Bearer {PROVIDER_KEY}").as_str())
    );
    assert_eq!(
        echo400.last_authorization().as_deref(),
        Some(format!("Bearer {ECHO_KEY}").as_str())
    );

    let mut gets: Vec<(String, &str)> = vec![
        (format!("{url}/v1/models"), CLIENT_KEY),
        (format!("{url}/v1/endpoints"), CLIENT_KEY),
        (format!("{url}/metrics"), CLIENT_KEY),
        (format!("{url}/healthz"), CLIENT_KEY),
        (format!("{url}/admin/pricing/history"), ADMIN_TOKEN),
        (format!("{url}/admin/clients"), ADMIN_TOKEN),
        (format!("{url}/admin/pricing/history"), "wrong-token"),
    ];
    for id in &ids {
        gets.push((format!("{url}/v1/decisions/{id}"), CLIENT_KEY));
    }
    for (u, key) in &gets {
        let r = client.get(u).bearer_auth(key).send().await.expect("answer");
        record(&mut seen, &r);
        seen.extend_from_slice(&r.bytes().await.expect("body"));
    }
    // The header was read: the first decision record carries its limit.
    let first = client
        .get(format!("{url}/v1/decisions/{}", ids[0]))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .expect("answer")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(first["constraints"]["max_cost_usd"], 0.5, "{first}");
    let r = client
        .post(format!("{url}/admin/pricing/reload"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("reload");
    assert_eq!(r.status(), 200);
    seen.extend_from_slice(&r.bytes().await.expect("body"));
    assert_clean("the responses", &seen);

    let logs = router.stop();
    let text = String::from_utf8_lossy(&logs);
    assert!(
        text.contains("TRACE") && text.contains("attempt failed"),
        "the router did not log at trace level:\n{text}"
    );
    assert_clean("stdout and stderr", &logs);

    let mut files = Vec::new();
    files_under(&dir.path().join("state"), &mut files);
    assert!(!files.is_empty(), "the store wrote nothing");
    for f in files {
        assert_clean(
            &f.display().to_string(),
            &std::fs::read(&f).expect("readable"),
        );
    }
    let out = std::process::Command::new(BIN)
        .args(["stats", "--json", "--state-dir"])
        .arg(dir.path().join("state"))
        .output()
        .expect("stats runs");
    assert!(out.status.success());
    assert_clean("switchyard stats", &out.stdout);

    // Debug output of the parsed config and the catalog built with the keys.
    let cfg = switchyard::config::Config::load(&config).expect("config");
    let sheets = switchyard::pricing::load_dir(&pricing).expect("sheets");
    let lookup = |var: &str| {
        env.iter()
            .find(|(k, _)| *k == var)
            .map(|(_, v)| v.to_string())
    };
    let catalog = switchyard::catalog::Catalog::build(&cfg, &sheets, &lookup).expect("catalog");
    assert_clean("Debug output", format!("{cfg:?} {catalog:?}").as_bytes());
}
