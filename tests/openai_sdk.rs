//! Compatibility: the official `openai` Python package, unmodified, against the router.
//!
//! Needs `python3` with `openai` installed. Without it the test says so and passes, unless
//! `SWITCHYARD_REQUIRE_OPENAI_SDK=1` (set by `.ci/run`, which installs the package), where
//! a missing package is a failure.

mod common;

use common::{spec, Harness};
use switchyard::fake::{reply_text, Behavior, Fault};

fn sdk_available() -> bool {
    common::python_package("openai", "SWITCHYARD_REQUIRE_OPENAI_SDK")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_sdk_works_unmodified() {
    if !sdk_available() {
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
    let args = [format!("http://{}", h.addr), reply_text("backup", "m", 16)];
    common::run_compat_script("openai_sdk.py", &args).await;
}

/// Responses, embeddings and legacy completions through the official SDK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_sdk_works_on_the_other_surfaces() {
    if !sdk_available() {
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
    let args = [format!("http://{}", h.addr), reply_text("x", "m", 8)];
    common::run_compat_script("openai_surfaces.py", &args).await;
}
