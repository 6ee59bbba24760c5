//! Compatibility: the official `anthropic` Python package, unmodified, against the router,
//! served by an Anthropic-protocol provider and, translated, by an OpenAI-protocol one.
//!
//! Needs `python3` with `anthropic` installed. Without it the test says so and passes,
//! unless `SWITCHYARD_REQUIRE_ANTHROPIC_SDK=1` (set by `.ci/run`, which installs the
//! package), where a missing package is a failure.

mod common;

use common::{anthropic_spec, spec, Harness};
use switchyard::fake::{reply_text, Behavior};

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_anthropic_python_sdk_works_unmodified() {
    let available = std::process::Command::new(python())
        .args(["-c", "import anthropic"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        let required = std::env::var("SWITCHYARD_REQUIRE_ANTHROPIC_SDK").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "the `anthropic` Python package is required but not importable"
        );
        eprintln!("skipped: `pip install anthropic` to run the Anthropic SDK compatibility test");
        return;
    }
    let h = Harness::start(
        vec![
            anthropic_spec("an", Behavior::default(), &[("m", 1.0, 1.0)]),
            spec("oa", Behavior::default(), &[("m", 2.0, 2.0)]),
        ],
        "[routing]\npolicy = \"cheapest\"\n",
    )
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/anthropic_sdk.py");
    let output = tokio::process::Command::new(python())
        .arg(script)
        .arg(format!("http://{}", h.addr))
        .arg(reply_text("an", "m", 8))
        .arg(reply_text("oa", "m", 8))
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
    eprintln!("{stdout}");
}
