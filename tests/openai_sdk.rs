//! Compatibility: the official `openai` Python package, unmodified, against the router.
//!
//! Needs `python3` with `openai` installed. Without it the test says so and passes, unless
//! `SWITCHYARD_REQUIRE_OPENAI_SDK=1` (set by `.ci/run`, which installs the package), where
//! a missing package is a failure.

mod common;

use common::{spec, Harness};
use switchyard::fake::{reply_text, Behavior, Fault};

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn sdk_available() -> bool {
    std::process::Command::new(python())
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_sdk_works_unmodified() {
    if !sdk_available() {
        let required = std::env::var("SWITCHYARD_REQUIRE_OPENAI_SDK").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "the `openai` Python package is required but not importable"
        );
        eprintln!("skipped: `pip install openai` to run the OpenAI SDK compatibility test");
        return;
    }
    let failing = Behavior {
        fault: Fault::Status(500),
        ..Behavior::default()
    };
    // A preset that skips the failing provider: one attempt instead of two.
    let routing = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        routing.path().join("backup-only.toml"),
        "name = \"backup-only\"\nmodels = [\"backup/m\"]\n",
    )
    .expect("preset");
    let h = Harness::start(
        vec![
            spec("cheap", failing, &[("m", 0.1, 0.2)]),
            spec(
                "backup",
                Behavior {
                    output_tokens: 16,
                    ..Behavior::default()
                },
                &[("m", 1.0, 2.0)],
            ),
        ],
        &format!(
            "routing_dir = \"{}\"\n[routing]\npolicy = \"cheapest\"\n",
            routing.path().display()
        ),
    )
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/openai_sdk.py");
    let base = format!("http://{}", h.addr);
    let expected = reply_text("backup", "m", 16);
    let output = tokio::process::Command::new(python())
        .arg(script)
        .arg(&base)
        .arg(&expected)
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

/// Responses, embeddings and legacy completions through the official SDK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_sdk_works_on_the_other_surfaces() {
    if !sdk_available() {
        let required = std::env::var("SWITCHYARD_REQUIRE_OPENAI_SDK").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "the `openai` Python package is required but not importable"
        );
        eprintln!("skipped: `pip install openai` to run the OpenAI SDK compatibility test");
        return;
    }
    let mut chat = spec("x", Behavior::default(), &[("m", 1.0, 2.0)]);
    chat.responses = true;
    let h = Harness::start(
        vec![
            chat,
            common::embedding_spec("e", Behavior::default(), &[("embed", 0.02, 0.0)]),
        ],
        "",
    )
    .await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/compat/openai_surfaces.py"
    );
    let output = tokio::process::Command::new(python())
        .arg(script)
        .arg(format!("http://{}", h.addr))
        .arg(reply_text("x", "m", 8))
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
