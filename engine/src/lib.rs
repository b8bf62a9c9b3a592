//! Footfall's storage engine: durable ingest into a write-ahead log, an in-memory Arrow buffer per
//! (project, day), Parquet partitions on object storage, a manifest catalog, and roaring session
//! indexes. See `docs/architecture.md` for how the pieces connect.

pub mod buffer;
pub mod catalog;
pub mod compaction;
pub mod engine;
pub mod envelope;
pub mod event;
pub mod ids;
pub mod page_reports;
pub mod partition_file;
pub mod paths;
pub mod session_index;
pub mod storage;
pub mod wal;

pub use compaction::CompactionPolicy;
pub use engine::{CompactionReport, Engine, EngineConfig, EngineError, FlushReport, Snapshot};
pub use event::{Event, EventType};
pub use ids::{Day, FileId, PartitionKey, ProjectId, SegmentId, ShortId};
