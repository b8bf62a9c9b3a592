//! End-to-end tests: the built `footfall` binary driven over HTTP.
//!
//! Every test starts its own server(s) on a temporary data directory via
//! `footfall_tests::Server`. Build the binary first
//! (`cargo build --bin footfall`); `tests/run.sh` does everything, including
//! the S3 emulator that `s3_storage` needs.

mod accounts;
mod bad_input;
mod compaction;
mod concurrency;
mod durability;
mod event_model;
mod hostile;
mod ingest;
mod isolation;
mod ops;
mod plausible;
mod privacy;
mod pruning;
mod s3;
mod soak;
mod storage_faults;
mod visits;

use serde_json::{json, Value};

/// A native pageview for `project` at `url`.
pub fn pageview(project: &str, url: &str) -> Value {
    json!({"project": project, "type": "pageview", "url": url})
}

/// A native custom event.
pub fn custom_event(project: &str, name: &str, url: &str, props: Value) -> Value {
    json!({"project": project, "type": "event", "name": name, "url": url, "props": props})
}
