//! Shared pieces of Footfall's benchmarks: the realistic traffic generator behind `footfall-gen`,
//! and reading its NDJSON back into request bodies for `ingest-bench`.

pub mod ndjson;
pub mod traffic;
