//! Compatibility: the official `anthropic` Python package, unmodified, against the router,
//! served by an Anthropic-protocol provider and, translated, by an OpenAI-protocol one.
//!
//! Needs `python3` with `anthropic` installed. Without it the test says so and passes,
//! unless `SWITCHYARD_REQUIRE_ANTHROPIC_SDK=1` (set by `.ci/run`, which installs the
//! package), where a missing package is a failure.

mod common;

use common::{anthropic_spec, spec, Harness};
use switchyard::fake::{reply_text, Behavior};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_anthropic_python_sdk_works_unmodified() {
    if !common::python_package("anthropic", "SWITCHYARD_REQUIRE_ANTHROPIC_SDK") {
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
    let args = [
        format!("http://{}", h.addr),
        reply_text("an", "m", 8),
        reply_text("oa", "m", 8),
    ];
    common::run_compat_script("anthropic_sdk.py", &args).await;
}
