//! Presets: routing settings changed live, by name, with no restart.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{get_json, header, write_sheet};
use serde_json::{json, Value};
use switchyard::config::Config;
use switchyard::fake::{Behavior, FakeProvider};
use switchyard::gateway::{self, Gateway};

const TOKEN: &str = "preset-admin-token";

struct Router {
    url: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
    _fakes: Vec<FakeProvider>,
}

fn preset(name: &str, models: &[&str], extra: &str) -> String {
    format!("name = \"{name}\"\nmodels = {models:?}\n{extra}")
}

async fn start() -> Router {
    let slow_stream = Behavior {
        token_interval: Duration::from_millis(50),
        output_tokens: 10,
        ..Behavior::default()
    };
    let a = FakeProvider::start("a", slow_stream.clone())
        .await
        .expect("fake");
    let b = FakeProvider::start("b", slow_stream).await.expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    write_sheet(&dir.path().join("pricing"), "a", &[("m", 1.0, 1.0)]);
    write_sheet(&dir.path().join("pricing"), "b", &[("m", 2.0, 2.0)]);
    std::fs::create_dir_all(dir.path().join("routing")).expect("mkdir");
    std::fs::write(
        dir.path().join("routing/team.toml"),
        preset("team", &["a/m"], "route = { max_attempts = 1 }\n"),
    )
    .expect("preset");
    let text = format!(
        "[server]\npricing_dir = \"{}\"\nrouting_dir = \"{}\"\nwatch_pricing = false\n\
         [[providers]]\nname = \"a\"\nbase_url = \"{}\"\n[[providers]]\nname = \"b\"\nbase_url = \"{}\"\n",
        dir.path().join("pricing").display(),
        dir.path().join("routing").display(),
        a.base_url(),
        b.base_url()
    );
    let config = Config::parse(&text, Path::new("t.toml")).expect("config");
    let sheets = switchyard::pricing::load_dir(&config.server.pricing_dir).expect("sheets");
    let env = |var: &str| (var == "SWITCHYARD_ADMIN_TOKEN").then(|| TOKEN.to_owned());
    let gw = Gateway::build(&config, &sheets, env, None).expect("gateway");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(gateway::serve(listener, gw, std::future::pending()));
    Router {
        url,
        client: reqwest::Client::new(),
        _dir: dir,
        _fakes: vec![a, b],
    }
}

impl Router {
    async fn chat(&self, model: &str, stream: bool) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/chat/completions", self.url))
            .json(&json!({"model": model, "stream": stream,
                "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .expect("answer")
    }

    async fn put(&self, name: &str, text: String) -> reqwest::Response {
        self.client
            .put(format!("{}/admin/routing/{name}", self.url))
            .bearer_auth(TOKEN)
            .body(text)
            .send()
            .await
            .expect("answer")
    }

    /// An admin request (with the token) to `path`.
    async fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("answer")
    }

    /// An admin GET, as JSON.
    async fn admin_json(&self, path: &str) -> Value {
        self.admin(reqwest::Method::GET, path)
            .await
            .json()
            .await
            .expect("json")
    }

    async fn decision(&self, r: &reqwest::Response) -> Value {
        let id = header(r, "x-request-id");
        get_json(&self.client, format!("{}/v1/decisions/{id}", self.url)).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_changes_the_next_request_and_a_stream_keeps_its_version() {
    let r = start().await;
    let first = r.chat("@preset/team", false).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-switchyard-endpoint"), "a/m");
    let d = r.decision(&first).await;
    assert_eq!(d["preset"], json!({"name": "team", "version": 0}), "{d}");

    // A stream starts on version 0, then the preset changes under it.
    let stream = r.chat("@preset/team", true).await;
    assert_eq!(header(&stream, "x-switchyard-endpoint"), "a/m");
    let put = r
        .put(
            "team",
            preset("team", &["b/m"], "policy = \"round-robin\"\n"),
        )
        .await;
    assert_eq!(
        put.status(),
        200,
        "{}",
        put.text().await.unwrap_or_default()
    );
    let d = r.decision(&stream).await;
    let body = stream.text().await.expect("the stream completes");
    assert!(body.contains("[DONE]"), "{body}");
    assert_eq!(
        d["preset"]["version"], 0,
        "the stream kept the version it started with"
    );

    let next = r.chat("@preset/team", false).await;
    assert_eq!(header(&next, "x-switchyard-endpoint"), "b/m");
    let d = r.decision(&next).await;
    assert_eq!(d["preset"], json!({"name": "team", "version": 1}), "{d}");
    assert_eq!(d["policy"], "round-robin", "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_preset_is_refused_with_file_and_field_and_the_old_one_keeps_serving() {
    let r = start().await;
    for (text, field) in [
        (
            preset("team", &["b/m"], "route = { max_latency_ms = -5 }\n"),
            "route.max_latency_ms",
        ),
        (preset("team", &["zz/m"], ""), "models[0]"),
        (preset("team", &["b/m"], "polcy = \"cheapest\"\n"), "polcy"),
    ] {
        let put = r.put("team", text).await;
        assert_eq!(put.status(), 422);
        let v: Value = put.json().await.expect("json");
        let message = v["error"]["message"].as_str().expect("message");
        assert!(
            message.contains(field) && message.contains("team.toml"),
            "{message}"
        );
        assert_eq!(v["error"]["code"], "invalid_preset");
    }
    let still = r.chat("@preset/team", false).await;
    assert_eq!(header(&still, "x-switchyard-endpoint"), "a/m");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_never_lose_one_and_unknown_presets_are_404() {
    let r = start().await;
    let names: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    let puts = names.iter().map(|n| r.put(n, preset(n, &["m"], "")));
    for put in futures_util::future::join_all(puts).await {
        assert_eq!(put.status(), 200);
    }
    let list = r.admin_json("/admin/routing").await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for i in 0..8 {
        assert!(names.contains(&format!("p{i}").as_str()), "{names:?}");
    }
    assert_eq!(list["version"], 8);
    // Listed with the models, and gone once deleted.
    let models = get_json(&r.client, format!("{}/v1/models", r.url)).await;
    assert!(models["data"]
        .as_array()
        .expect("list")
        .iter()
        .any(|m| m["id"] == "@preset/p3" && m["kind"] == "preset"));
    let del = r.admin(reqwest::Method::DELETE, "/admin/routing/p3").await;
    assert_eq!(del.status(), 200);
    for model in ["@preset/p3", "@preset/nope"] {
        let gone = r.chat(model, false).await;
        assert_eq!(gone.status(), 404, "{model}");
        let v: Value = gone.json().await.expect("json");
        assert_eq!(v["error"]["code"], "model_not_found");
    }
    let history = r.admin_json("/admin/routing/history").await;
    assert_eq!(history["data"].as_array().expect("list").len(), 9);
    assert_eq!(history["data"][0]["trigger"], "DELETE p3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_preset_changes_the_default_policy_live_and_presets_serve_as_live_groups() {
    let r = start().await;
    let d = r.decision(&r.chat("m", false).await).await;
    assert_eq!(d["policy"], "thompson", "the config's policy");
    let put = r
        .put(
            "default",
            "name = \"default\"\npolicy = \"round-robin\"\n".into(),
        )
        .await;
    assert_eq!(
        put.status(),
        200,
        "{}",
        put.text().await.unwrap_or_default()
    );
    let d = r.decision(&r.chat("m", false).await).await;
    assert_eq!(d["policy"], "round-robin", "{d}");
    assert_eq!(d["preset"]["name"], "default");
    // A live group: a preset reached by its plain name.
    let put = r
        .put(
            "pair",
            "name = \"pair\"\ngroup = true\nmodels = [\"a/m\", \"b/m\"]\n".into(),
        )
        .await;
    assert_eq!(put.status(), 200);
    let answer = r.chat("pair", false).await;
    assert_eq!(answer.status(), 200);
    let d = r.decision(&answer).await;
    assert_eq!(d["preset"]["name"], "pair");
    // Deleting the default preset gives the config's policy back.
    let del = r
        .admin(reqwest::Method::DELETE, "/admin/routing/default")
        .await;
    assert_eq!(del.status(), 200);
    let d = r.decision(&r.chat("m", false).await).await;
    assert_eq!(d["policy"], "thompson");
    // A preset may not take a model's name.
    let put = r
        .put("m", "name = \"m\"\nmodels = [\"a/m\"]\n".into())
        .await;
    assert_eq!(put.status(), 422);
}
