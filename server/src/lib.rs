//! Footfall's server: configuration, ingest parsing and enrichment, identity and sessions, and the
//! HTTP API. The `footfall` binary (`main.rs`) wires these together; benchmarks reach the ingest
//! path through this library.

pub mod accounts;
pub mod config;
pub mod enrich;
pub mod http;
pub mod ingest;
pub mod metadata;
pub mod privacy;
pub mod sessions;
pub mod stats;
