//! Harness for Footfall's end-to-end tests.
//!
//! The tests drive the real `footfall` binary over HTTP: [`Server`] starts it
//! on a free loopback port with its own temporary data directory, and [`Api`]
//! wraps the HTTP interface with small, assertion-heavy helpers.
//!
//! The binary is taken from `FOOTFALL_BIN` when set, otherwise from the same
//! target directory as the running test executable
//! (`target/debug/deps/e2e-xxxx` → `target/debug/footfall`).

mod api;
mod faults;
mod server;
mod util;

pub use api::{
    assert_error_body, json_body, Api, IngestOutcome, RawResponse, ERROR_CODE_FORBIDDEN, ERROR_CODE_UNAUTHORIZED,
};
pub use faults::{require_mount, FaultProxy, Tmpfs};
pub use server::{binary, Server, ServerOpts};
pub use util::{files_containing, files_under, free_port, random_token, today_utc, value_f64, value_i64, value_str};

/// A recent Chrome on Linux: a plain browser that no bot filter should drop.
pub const UA_CHROME: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

/// A recent Firefox on Windows: a second, different plain browser.
pub const UA_FIREFOX: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0";
