//! The fleet with a real `redis-server` (started here on a free port) and two real router
//! processes: what one replica learns the other uses, client limits hold for the fleet, a
//! price update reaches every replica, and Redis dying or stopping fails no request.
//!
//! Without `redis-server` on PATH these tests say they skipped, unless
//! `SWITCHYARD_REQUIRE_REDIS=1` (as CI sets), where its absence fails them.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{get_json, header, hello, write_sheet, Router};
use serde_json::Value;
use switchyard::fake::{Behavior, FakeProvider};

/// A `redis-server` of this test's own.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts one on a free port, or `None` (test skipped) without the program.
    fn start() -> Option<Redis> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                std::env::var("SWITCHYARD_REQUIRE_REDIS").as_deref() != Ok("1"),
                "redis-server is required (SWITCHYARD_REQUIRE_REDIS=1) but not on PATH"
            );
            eprintln!("skipped: redis-server is not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Redis::spawn(port);
        Some(Redis { child, port })
    }

    fn spawn(port: u16) -> Child {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{sig}");
    }

    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    fn restart(&mut self) {
        self.child = Redis::spawn(self.port);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One replica's directory and config: providers `cheap` and `dear` serving model `m`.
fn replica_config(
    dir: &Path,
    redis: &Redis,
    providers: &[(&str, &str, f64)],
    extra: &str,
) -> PathBuf {
    for (name, _, price) in providers {
        write_sheet(&dir.join("pricing"), name, &[("m", *price, *price)]);
    }
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\npricing_dir = \"{}\"\n\
         admin_token_env = \"FLEET_ADMIN\"\n\n\
         [fleet]\nredis_url = \"{}\"\nsync_interval = \"250ms\"\n\n{extra}\n",
        dir.join("state").display(),
        dir.join("pricing").display(),
        redis.url(),
    );
    for (name, url, _) in providers {
        text.push_str(&format!(
            "[[providers]]\nname = \"{name}\"\nbase_url = \"{url}\"\n"
        ));
    }
    let path = dir.join("switchyard.toml");
    std::fs::write(&path, text).expect("config");
    path
}

const ADMIN: (&str, &str) = ("FLEET_ADMIN", "admin-secret");

/// Two replicas over `providers`, each with its own directory.
fn two_replicas(
    redis: &Redis,
    providers: &[(&str, &str, f64)],
    extra: &str,
    env: &[(&str, &str)],
) -> (Vec<Router>, Vec<tempfile::TempDir>) {
    let mut env = env.to_vec();
    env.push(ADMIN);
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let routers = dirs
        .iter()
        .map(|d| {
            Router::spawn(
                &replica_config(d.path(), redis, providers, extra),
                &[],
                &env,
            )
        })
        .collect();
    (routers, dirs)
}

async fn healthz(client: &reqwest::Client, url: &str) -> Value {
    get_json(client, format!("{url}/healthz")).await
}

/// Polls `check` every 50 ms for at most `limit`; answers how long it took to hold.
async fn within<F: std::future::Future<Output = bool>>(
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Both replicas see each other.
async fn wait_for_fleet(client: &reqwest::Client, routers: &[Router]) {
    for r in routers {
        let url = r.url.clone();
        let met = within(Duration::from_secs(10), || {
            let url = url.clone();
            async move { healthz(client, &url).await["fleet"]["replicas"] == 2 }
        })
        .await;
        assert!(met.is_some(), "{url} never saw its peer");
    }
}

/// Sends `n` requests with `key` round robin across `routers`, `gap_ms` apart; counts the
/// admitted (200) ones, `on_ok` seeing each, and fails on anything but 200 or 429.
async fn admitted_of(
    client: &reqwest::Client,
    routers: &[Router],
    key: &str,
    n: usize,
    gap_ms: u64,
    on_ok: impl Fn(&reqwest::Response),
) -> usize {
    let mut admitted = 0;
    for i in 0..n {
        let r = chat(client, &routers[i % routers.len()].url, Some(key)).await;
        match r.status().as_u16() {
            200 => {
                on_ok(&r);
                admitted += 1;
            }
            429 => {}
            s => panic!("unexpected status {s}"),
        }
        tokio::time::sleep(Duration::from_millis(gap_ms)).await;
    }
    admitted
}

async fn chat(client: &reqwest::Client, url: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = client
        .post(format!("{url}/v1/chat/completions"))
        .json(&hello("m"));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_failing_through_one_replica_is_avoided_by_the_other() {
    let Some(redis) = Redis::start() else { return };
    let cheap = FakeProvider::start("cheap", Behavior::default())
        .await
        .expect("fake");
    let dear = FakeProvider::start("dear", Behavior::default())
        .await
        .expect("fake");
    let providers = [
        ("cheap", cheap.base_url(), 1.0),
        ("dear", dear.base_url(), 10.0),
    ];
    let providers: Vec<_> = providers
        .iter()
        .map(|(n, u, p)| (*n, u.as_str(), *p))
        .collect();
    let (routers, _dirs) = two_replicas(&redis, &providers, "", &[]);
    let client = reqwest::Client::new();
    wait_for_fleet(&client, &routers).await;
    let (a, b) = (&routers[0].url, &routers[1].url);
    // Only A sends it traffic while it fails: A's clients ask for it by id (`cheap/m`), so
    // each of their requests tries it and gets the failure (a 502); A rests it after the
    // burst.
    cheap.set_behavior(Behavior {
        error_rate: 1.0,
        ..Behavior::default()
    });
    let first_failure = Instant::now();
    for _ in 0..6 {
        let r = client
            .post(format!("{a}/v1/chat/completions"))
            .json(&hello("cheap/m"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(r.status(), 502, "the only candidate fails");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let tried = cheap.requests();
    assert!(tried >= 6, "A tried the failing provider {tried} times");
    // B learns it within 2 s without a request of its own...
    let endpoint = |url: String, id: &'static str| {
        let client = client.clone();
        async move {
            let all = get_json(&client, format!("{url}/v1/endpoints")).await;
            all["data"]
                .as_array()
                .expect("list")
                .iter()
                .find(|e| e["id"] == id)
                .expect("listed")
                .clone()
        }
    };
    let learned = within(Duration::from_secs(2) - first_failure.elapsed(), || {
        let e = endpoint(b.clone(), "cheap/m");
        async move {
            let f = e.await["fleet"]["decayed_failures"].as_f64();
            f.is_some_and(|f| f > tried as f64 * 0.9)
        }
    })
    .await;
    let learned = learned.map(|_| first_failure.elapsed());
    eprintln!("A's {tried} failures reached B {learned:?} after the first");
    assert!(learned.is_some(), "B never saw A's failures");
    // ...and never sends it a request while A's rest lasts: B's first attempts all go to
    // the dear one. (Alone, B would try the cheapest endpoint it never tried, first.)
    for _ in 0..20 {
        let r = chat(&client, b, None).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-switchyard-endpoint"), "dear/m");
        assert_eq!(header(&r, "x-switchyard-attempts"), "1");
    }
    assert_eq!(
        cheap.requests(),
        tried,
        "B sent the failing provider a request"
    );
    let entry = endpoint(b.clone(), "cheap/m").await;
    assert_eq!(entry["attempts"], 0, "{entry}");
    assert_eq!(entry["fleet"]["peer_replicas"], 1, "{entry}");
    for r in routers {
        r.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_for_the_fleet() {
    let Some(redis) = Redis::start() else { return };
    let p = FakeProvider::start("p", Behavior::default())
        .await
        .expect("fake");
    let url = p.base_url();
    let key = "fleet-client-key";
    let clients =
        "[[clients]]\nname = \"team\"\nkey_env = \"TEAM_KEY\"\nrequests_per_minute = 20\n";
    let (routers, _dirs) = two_replicas(&redis, &[("p", &url, 1.0)], clients, &[("TEAM_KEY", key)]);
    let client = reqwest::Client::new();
    wait_for_fleet(&client, &routers).await;
    // 1.5 times the limit, round robin, 4 a second for 7.5 s.
    let start = Instant::now();
    let admitted = admitted_of(&client, &routers, key, 30, 250, |_| ()).await;
    let elapsed = start.elapsed().as_secs_f64();
    // One router admits the burst (20) plus what refills meanwhile (20 a minute); the fleet
    // may add what the other replica admits in one sync interval (2 requests a second for
    // 0.25 s, plus a round trip): 1 or 2 — allowed 3, for a sync a loaded machine delays by up
    // to a second. Alone, the two would admit all 30.
    let refill = (elapsed * 20.0 / 60.0).ceil() as usize;
    eprintln!(
        "admitted {admitted} of 30 in {elapsed:.1} s (one router: {})",
        20 + refill
    );
    assert!(admitted >= 20, "the fleet admitted only {admitted}");
    assert!(admitted <= 20 + refill + 3, "the fleet admitted {admitted}");
    for r in routers {
        r.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spend_limit_holds_for_the_fleet() {
    let Some(redis) = Redis::start() else { return };
    let p = FakeProvider::start("p", Behavior::default())
        .await
        .expect("fake");
    let url = p.base_url();
    let key = "fleet-spend-key";
    // What one answer costs at $1000 per million tokens: the fake counts a quarter token
    // per byte of the messages and answers 8 tokens.
    let prompt = hello("m")["messages"].to_string().len().div_ceil(4) as f64;
    let cost = (prompt + 8.0) * 1000.0 / 1e6;
    let limit = cost * 9.5;
    let clients = format!(
        "[[clients]]\nname = \"spender\"\nkey_env = \"SPEND_KEY\"\nspend_limit_usd = {limit:.9}\n"
    );
    let (routers, _dirs) = two_replicas(
        &redis,
        &[("p", &url, 1000.0)],
        &clients,
        &[("SPEND_KEY", key)],
    );
    let client = reqwest::Client::new();
    wait_for_fleet(&client, &routers).await;
    let first_cost = std::sync::Mutex::new(None);
    let admitted = admitted_of(&client, &routers, key, 30, 150, |r| {
        first_cost
            .lock()
            .expect("lock")
            .get_or_insert_with(|| header(r, "x-switchyard-cost-usd").to_owned());
    })
    .await;
    let charged: f64 = first_cost
        .lock()
        .expect("lock")
        .clone()
        .expect("answered")
        .parse()
        .expect("a cost");
    assert!((charged - cost).abs() < 1e-9, "{charged} vs {cost}");
    // One router completes 10 (the one crossing the limit is charged); the fleet may add what
    // the other replica admits within one sync interval (250 ms at one request per 300 ms)
    // and a round trip: 1 — allowed 2, for a sync a loaded machine delays. Alone, each
    // replica would admit 10 (20 in all).
    eprintln!("admitted {admitted} of 30 (one router: 10, two alone: 20)");
    assert!(
        (10..=12).contains(&admitted),
        "the fleet admitted {admitted}"
    );
    for r in routers {
        r.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_put_on_one_replica_is_served_by_the_other() {
    let Some(redis) = Redis::start() else { return };
    let p = FakeProvider::start("p", Behavior::default())
        .await
        .expect("fake");
    let url = p.base_url();
    let (routers, _dirs) = two_replicas(&redis, &[("p", &url, 1.0)], "", &[]);
    let client = reqwest::Client::new();
    wait_for_fleet(&client, &routers).await;
    let price = |url: String| {
        let client = client.clone();
        async move {
            let models = get_json(&client, format!("{url}/v1/models")).await;
            models["data"]
                .as_array()
                .expect("list")
                .iter()
                .find(|m| m["id"] == "p/m")
                .and_then(|m| m["pricing"]["input_per_mtok"].as_f64())
        }
    };
    assert_eq!(price(routers[1].url.clone()).await, Some(1.0));
    let sheet = "provider = \"p\"\neffective = \"2026-11-30\"\nsource = \"test\"\n\
                 [models.\"m\"]\ninput_per_mtok = 7.5\noutput_per_mtok = 9.0\n";
    let put = client
        .put(format!("{}/admin/pricing/p", routers[0].url))
        .bearer_auth(ADMIN.1)
        .body(sheet)
        .send()
        .await
        .expect("answer");
    assert_eq!(put.status(), 200);
    let b = routers[1].url.clone();
    let took = within(Duration::from_secs(2), || {
        let b = b.clone();
        let price = &price;
        async move { price(b).await == Some(7.5) }
    })
    .await;
    eprintln!("the price reached B after {took:?}");
    assert!(took.is_some(), "B still serves the old price after 2 s");
    // B wrote it to its own directory, so a restart keeps it.
    let written = std::fs::read_to_string(_dirs[1].path().join("pricing/p.toml")).expect("sheet");
    assert!(written.contains("7.5"));
    // A sheet refused on A never reaches B.
    let bad = client
        .put(format!("{}/admin/pricing/p", routers[0].url))
        .bearer_auth(ADMIN.1)
        .body("provider = \"p\"\n[models.\"m\"]\ninput_per_mtok = -1\n")
        .send()
        .await
        .expect("answer");
    assert_eq!(bad.status(), 422);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(price(b).await, Some(7.5));
    for r in routers {
        r.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_or_stopped_fails_no_request_and_the_fleet_recovers() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let p = FakeProvider::start("p", Behavior::default())
        .await
        .expect("fake");
    let url = p.base_url();
    let key = "fleet-outage-key";
    let clients =
        "[[clients]]\nname = \"team\"\nkey_env = \"TEAM_KEY\"\nrequests_per_minute = 100000\n";
    let (routers, _dirs) = two_replicas(&redis, &[("p", &url, 1.0)], clients, &[("TEAM_KEY", key)]);
    let client = reqwest::Client::new();
    wait_for_fleet(&client, &routers).await;
    let urls: Vec<String> = routers.iter().map(|r| r.url.clone()).collect();
    // Requests at a steady pace through both replicas while `during` runs.
    let traffic = |secs: f64| {
        let (client, urls) = (client.clone(), urls.clone());
        async move {
            let (mut ok, mut slowest) = (0, Duration::ZERO);
            let start = Instant::now();
            let mut i = 0;
            while start.elapsed().as_secs_f64() < secs {
                let t = Instant::now();
                let r = chat(&client, &urls[i % 2], Some(key)).await;
                assert_eq!(r.status(), 200, "a request failed during a Redis outage");
                slowest = slowest.max(t.elapsed());
                ok += 1;
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ok, slowest)
        }
    };
    let connected = |want: bool| {
        let (client, urls) = (client.clone(), urls.clone());
        async move {
            within(Duration::from_secs(10), || {
                let (client, urls) = (client.clone(), urls.clone());
                async move {
                    for u in &urls {
                        if healthz(&client, u).await["fleet"]["connected"] != want {
                            return false;
                        }
                    }
                    true
                }
            })
            .await
        }
    };
    // Stopped (SIGSTOP): it accepts connections but answers nothing.
    redis.signal("STOP");
    let (ok, slowest) = traffic(3.0).await;
    assert!(
        connected(false).await.is_some(),
        "healthz never said the fleet was down"
    );
    let metrics = client
        .get(format!("{}/metrics", urls[0]))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("switchyard_fleet_connected 0"),
        "{metrics}"
    );
    assert!(metrics.contains("switchyard_fleet_replicas 2"));
    redis.signal("CONT");
    let back = connected(true).await;
    eprintln!("SIGSTOP: {ok} requests, slowest {slowest:?}; reconnected after {back:?}");
    assert!(back.is_some(), "the fleet did not reconnect after SIGCONT");
    // No request waited on Redis (a sync waits up to a second).
    assert!(
        slowest < Duration::from_secs(1),
        "slowest request {slowest:?}"
    );
    // Killed: connections refused.
    redis.kill();
    let (ok, slowest) = traffic(2.0).await;
    assert!(connected(false).await.is_some());
    redis.restart();
    let back = connected(true).await;
    eprintln!("SIGKILL: {ok} requests, slowest {slowest:?}; reconnected after {back:?}");
    assert!(
        back.is_some(),
        "the fleet did not reconnect after a restart"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "slowest request {slowest:?}"
    );
    // And the replicas found each other again in the new (empty) Redis.
    wait_for_fleet(&client, &routers).await;
    let health = healthz(&client, &urls[0]).await;
    assert!(health["fleet"]["sync_failures"].as_u64().expect("count") > 0);
    for r in routers {
        r.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_starts_and_serves_while_redis_is_unreachable() {
    let p = FakeProvider::start("p", Behavior::default())
        .await
        .expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    write_sheet(&dir.path().join("pricing"), "p", &[("m", 1.0, 1.0)]);
    let path = dir.path().join("switchyard.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\npricing_dir = \"{}\"\n\
             [fleet]\nredis_url_env = \"FLEET_REDIS\"\nsync_interval = \"100ms\"\n\
             [[providers]]\nname = \"p\"\nbase_url = \"{}\"\n",
            dir.path().join("state").display(),
            dir.path().join("pricing").display(),
            p.base_url()
        ),
    )
    .expect("config");
    let secret_url = format!("redis://:hunter2-secret@127.0.0.1:{port}/");
    let router = Router::spawn(&path, &[], &[("FLEET_REDIS", &secret_url)]);
    let client = reqwest::Client::new();
    for _ in 0..5 {
        assert_eq!(chat(&client, &router.url, None).await.status(), 200);
    }
    let failing = within(Duration::from_secs(5), || async {
        let h = healthz(&client, &router.url).await;
        h["fleet"]["connected"] == false && h["fleet"]["sync_failures"].as_u64() >= Some(1)
    })
    .await;
    assert!(failing.is_some(), "healthz never reported the failed syncs");
    let metrics = client
        .get(format!("{}/metrics", router.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("switchyard_fleet_sync_failures_total "),
        "{metrics}"
    );
    let output = String::from_utf8(router.stop()).expect("utf8");
    assert!(output.contains("fleet: Redis sync failed"), "{output}");
    // The URL's password is never printed.
    assert!(!output.contains("hunter2"), "{output}");
    assert!(!metrics.contains("hunter2"));
}
