//! Live price updates: atomic under traffic, all or nothing, behind the admin token.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::{json, Value};
use switchyard::config::Config;
use switchyard::fake::{Behavior, FakeProvider};
use switchyard::gateway::{self, Gateway};

const TOKEN: &str = "admin-test-token";

fn sheet(input: &str, output: &str) -> String {
    format!(
        "provider = \"p\"\neffective = \"2026-11-01\"\nsource = \"test\"\n[models.m]\ninput_per_mtok = {input}\noutput_per_mtok = {output}\n"
    )
}

struct Router {
    url: String,
    client: reqwest::Client,
    dir: tempfile::TempDir,
    _fake: FakeProvider,
}

async fn start(token: Option<&'static str>) -> Router {
    let fake = FakeProvider::start(
        "p",
        Behavior {
            output_tokens: 7,
            ..Behavior::default()
        },
    )
    .await
    .expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("pricing")).expect("mkdir");
    std::fs::write(dir.path().join("pricing/p.toml"), sheet("1", "3")).expect("sheet");
    let text = format!(
        "[server]\npricing_dir = \"{}\"\nwatch_pricing = false\n[[providers]]\nname = \"p\"\nbase_url = \"{}\"\n",
        dir.path().join("pricing").display(),
        fake.base_url()
    );
    let config = Config::parse(&text, Path::new("t.toml")).expect("config");
    let sheets = switchyard::pricing::load_dir(&config.server.pricing_dir).expect("sheets");
    let env = move |var: &str| {
        (var == "SWITCHYARD_ADMIN_TOKEN")
            .then_some(token)
            .flatten()
            .map(str::to_owned)
    };
    let gw = Gateway::build(&config, &sheets, env, None).expect("gateway");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(gateway::serve(listener, gw, std::future::pending()));
    Router {
        url,
        client: reqwest::Client::new(),
        dir,
        _fake: fake,
    }
}

impl Router {
    async fn put(&self, body: String, token: &str) -> reqwest::Response {
        self.client
            .put(format!("{}/admin/pricing/p", self.url))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .expect("answer")
    }

    /// One request; its token counts and its cost.
    async fn ask(&self) -> (u64, u64, Decimal) {
        let req = json!({"model": "p/m", "messages": [{"role": "user", "content": "What does this cost?"}]});
        let r = self
            .client
            .post(format!("{}/v1/chat/completions", self.url))
            .json(&req)
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 200, "a request failed during a price update");
        let body: Value = r.json().await.expect("json");
        let u = &body["usage"];
        let cost: Decimal = u["cost"].to_string().parse().expect("a decimal cost");
        (
            u["prompt_tokens"].as_u64().expect("n"),
            u["completion_tokens"].as_u64().expect("n"),
            cost,
        )
    }
}

fn cost(prompt: u64, completion: u64, input: i64, output: i64) -> Decimal {
    (Decimal::from(prompt) * Decimal::from(input)
        + Decimal::from(completion) * Decimal::from(output))
        / Decimal::from(1_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_under_traffic_are_atomic_and_never_fail_a_request() {
    let router = Arc::new(start(Some(TOKEN)).await);
    let stop = Arc::new(AtomicBool::new(false));
    let mut traffic = Vec::new();
    for _ in 0..3 {
        let (router, stop) = (router.clone(), stop.clone());
        traffic.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                seen.push(router.ask().await);
            }
            seen
        }));
    }
    // Alternate between two versions: (1, 3) and (5, 7) USD per million tokens. A mixed table
    // would charge (1, 7) or (5, 3), which differ from both for any nonzero token counts.
    for i in 0..30 {
        let (input, output) = if i % 2 == 0 { ("5", "7") } else { ("1", "3") };
        let r = router.put(sheet(input, output), TOKEN).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    }
    stop.store(true, Ordering::Relaxed);
    let mut answers = 0;
    for t in traffic {
        for (prompt, completion, charged) in t.await.expect("traffic task") {
            answers += 1;
            let a = cost(prompt, completion, 1, 3);
            let b = cost(prompt, completion, 5, 7);
            assert!(
                charged == a || charged == b,
                "charged {charged}, versions give {a} or {b}"
            );
        }
    }
    eprintln!("{answers} answers during 30 price updates");
    assert!(
        answers >= 30,
        "too little traffic overlapped the updates: {answers}"
    );
    // The last version (i = 29: 1 and 3) is on disk and serving.
    let (p, c, charged) = router.ask().await;
    assert_eq!(charged, cost(p, c, 1, 3));
    let on_disk = std::fs::read_to_string(router.dir.path().join("pricing/p.toml")).expect("file");
    assert!(on_disk.contains("output_per_mtok = 3"));
}

#[tokio::test]
async fn a_bad_update_changes_nothing_and_says_why() {
    let router = start(Some(TOKEN)).await;
    let before = std::fs::read_to_string(router.dir.path().join("pricing/p.toml")).expect("file");
    for (bad, expect) in [
        (sheet("-1", "3"), "`input_per_mtok`: -1 is negative"),
        (
            sheet("1", "3").replace("provider = \"p\"", "provider = \"q\""),
            "does not match the file name",
        ),
        (
            sheet("1", "3").replace("input_per_mtok", "input_per_mtk"),
            "unknown field `input_per_mtk`",
        ),
        (
            "provider = \"p\"\neffective = \"2026-11-01\"\nsource = \"x\"\nmodels = {}\n"
                .to_owned(),
            "lists no models",
        ),
    ] {
        let r = router.put(bad, TOKEN).await;
        assert_eq!(r.status(), 422);
        let body: Value = r.json().await.expect("json");
        let msg = body["error"]["message"].as_str().expect("message");
        assert!(
            msg.contains(expect) && msg.contains("p.toml"),
            "expected `{expect}` and the file in: {msg}"
        );
    }
    let after = std::fs::read_to_string(router.dir.path().join("pricing/p.toml")).expect("file");
    assert_eq!(before, after, "a refused update must not touch the file");
    let (p, c, charged) = router.ask().await;
    assert_eq!(
        charged,
        cost(p, c, 1, 3),
        "the previous prices keep serving"
    );

    // A file edited on disk is picked up by POST /admin/pricing/reload; a broken one is not.
    let path = router.dir.path().join("pricing/p.toml");
    std::fs::write(&path, sheet("2", "4")).expect("write");
    let r = router
        .client
        .post(format!("{}/admin/pricing/reload", router.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    let (p, c, charged) = router.ask().await;
    assert_eq!(charged, cost(p, c, 2, 4));
    std::fs::write(&path, "not toml [").expect("write");
    let r = router
        .client
        .post(format!("{}/admin/pricing/reload", router.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 422);
    let (p, c, charged) = router.ask().await;
    assert_eq!(charged, cost(p, c, 2, 4));

    let history: Value = router
        .client
        .get(format!("{}/admin/pricing/history", router.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let versions = history["data"].as_array().expect("list");
    assert_eq!(
        versions.len(),
        1,
        "only accepted versions are recorded: {history}"
    );
    assert_eq!(versions[0]["trigger"], "POST /admin/pricing/reload");
    assert!(versions[0]["text"]["p"]
        .as_str()
        .expect("text")
        .contains("output_per_mtok = 4"));
}

#[tokio::test]
async fn admin_routes_need_the_token() {
    let router = start(Some(TOKEN)).await;
    let r = router.put(sheet("9", "9"), "wrong").await;
    assert_eq!(r.status(), 401);
    let r = router
        .client
        .post(format!("{}/admin/pricing/reload", router.url))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 401);
    let (p, c, charged) = router.ask().await;
    assert_eq!(charged, cost(p, c, 1, 3));

    let open = start(None).await;
    let r = open.put(sheet("9", "9"), "anything").await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.expect("json");
    assert!(body["error"]["message"]
        .as_str()
        .expect("msg")
        .contains("SWITCHYARD_ADMIN_TOKEN"));
}
