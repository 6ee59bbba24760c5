//! The dashboard in a real browser: headless Chromium loads `/dashboard` from a router with
//! traffic, the charts must render with data, the console must stay free of errors, and a
//! screenshot is saved (`target/dashboard-test.png`).
//!
//! Needs Debian's `chromium` (or `chromium-browser`, `google-chrome`) on PATH. Without one the
//! browser test says it skipped, unless `SWITCHYARD_REQUIRE_CHROMIUM=1` (CI installs Chromium
//! and sets it), in which case it fails.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{browser, hello, spec, Harness};
use serde_json::Value;
use switchyard::fake::Behavior;

const TOKEN: &str = "dashboard-test-token";

/// A router with two endpoints and 24 requests of traffic over several sampling rounds; returns
/// it with the number of requests answered. A third of the requests name each endpoint, so
/// both carry traffic whatever the selector learns (`slow` fails a fifth of its attempts, and
/// a pinned request has nowhere to fall back to).
async fn router_with_traffic() -> (Harness, u64) {
    let fast = Behavior {
        ttft: Duration::from_millis(5),
        token_interval: Duration::from_millis(1),
        ..Behavior::default()
    };
    let slow = Behavior {
        ttft: Duration::from_millis(30),
        error_rate: 0.2,
        ..Behavior::default()
    };
    let h = Harness::start_with_env(
        vec![
            spec("fast", fast, &[("m", 1.0, 2.0)]),
            spec("slow", slow, &[("m", 0.2, 0.4)]),
        ],
        "admin_token_env = \"DASH_TOKEN\"\n[stats]\nsample_interval = \"150ms\"\n",
        |var| (var == "DASH_TOKEN").then(|| TOKEN.to_owned()),
    )
    .await;
    let mut answered = 0;
    for i in 0..24 {
        let model = ["m", "slow/m", "fast/m"][i % 3];
        let mut body = hello(model);
        body["stream"] = (i % 2 == 0).into();
        let r = h.chat(body).await;
        let status = r.status().as_u16();
        assert!(
            status == 200 || (status == 502 && model == "slow/m"),
            "{model}: {status}"
        );
        answered += u64::from(status == 200);
        let _ = r.bytes().await;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    (h, answered)
}

#[tokio::test]
async fn the_page_is_served_and_its_data_needs_the_admin_token() {
    let (h, answered) = router_with_traffic().await;
    let page = h
        .client
        .get(h.url("/dashboard"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let csp = common::header(&page, "content-security-policy").to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let html = page.text().await.expect("html");
    assert!(
        html.contains("/dashboard/app.js") && !html.contains("http"),
        "external assets"
    );
    for asset in ["/dashboard/app.js", "/dashboard/style.css"] {
        let r = h.client.get(h.url(asset)).send().await.expect("asset");
        assert_eq!(r.status(), 200, "{asset}");
    }
    let denied = h
        .client
        .get(h.url("/dashboard/data"))
        .send()
        .await
        .expect("data");
    assert_eq!(denied.status(), 401);
    let data: Value = h
        .client
        .get(h.url("/dashboard/data"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("data")
        .json()
        .await
        .expect("json");
    assert_eq!(data["requests"]["answered"], answered);
    assert_eq!(data["endpoints"].as_array().expect("list").len(), 2);
    let fast = data["timeline"]["fast/m"].as_array().expect("series");
    assert!(fast.len() >= 3, "{} points", fast.len());
    assert!(!data["decisions"].as_array().expect("list").is_empty());
    assert_eq!(data["prices"][0]["provider"], "fast");
}

#[tokio::test]
async fn the_dashboard_renders_with_data_in_chromium_without_console_errors() {
    let Some(chromium) = browser() else {
        if std::env::var("SWITCHYARD_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
            panic!("SWITCHYARD_REQUIRE_CHROMIUM=1 but no chromium on PATH");
        }
        eprintln!("skipped: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let (h, _) = router_with_traffic().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("{}#token={TOKEN}", h.url("/dashboard"));
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("dashboard-test.png");
    let run = |extra: Vec<String>| {
        let mut cmd = tokio::process::Command::new(&chromium);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1400,1100",
            "--virtual-time-budget=6000",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(&url)
        .kill_on_drop(true);
        async move {
            tokio::time::timeout(Duration::from_secs(90), cmd.output())
                .await
                .expect("chromium finished in time")
                .expect("chromium runs")
        }
    };
    let out = run(vec!["--dump-dom".into()]).await;
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page never rendered data:\n{dom}\n{log}"
    );
    assert!(
        !dom.contains("data-errors"),
        "the page caught errors:\n{dom}"
    );
    for line in log.lines() {
        assert!(
            !line.contains("CONSOLE") && !line.contains("Refused to") && !line.contains("Uncaught"),
            "console: {line}"
        );
    }
    for chart in ["chart-ttft", "chart-total", "chart-success", "chart-share"] {
        let at = dom.find(&format!("id=\"{chart}\"")).expect("chart present");
        let tag = &dom[at..at + dom[at..].find('>').expect("tag end")];
        let attr = |name: &str| -> u64 {
            let key = format!("data-{name}=\"");
            let start = tag
                .find(&key)
                .unwrap_or_else(|| panic!("{chart}: no {name} in {tag}"))
                + key.len();
            tag[start..start + tag[start..].find('"').expect("quote")]
                .parse()
                .expect("a number")
        };
        assert!(attr("series") >= 1, "{chart} draws no series: {tag}");
        assert!(
            attr("points") >= 2,
            "{chart} draws fewer than 2 points: {tag}"
        );
    }
    // Both endpoints are in the table, and the decisions and prices are listed.
    for id in ["fast/m", "slow/m"] {
        assert!(
            dom.contains(&format!("<td>{id}</td>")),
            "{id} not in the table:\n{dom}"
        );
    }
    assert!(dom.matches("req_").count() >= 5, "recent decisions missing");

    let _ = std::fs::remove_file(&screenshot);
    let out = run(vec![format!("--screenshot={}", screenshot.display())]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", screenshot.display());
}
