//! WAL append: one group commit of 1,000 events through `WalWriter` — postcard encoding, framing,
//! write and fsync — on the machine's real disk, as every batched request pays it.

mod common;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use footfall_engine::event::Event;
use footfall_engine::wal::writer::{CommitSink, WalWriter, WalWriterConfig};
use footfall_engine::SegmentId;

/// Discards what was committed: the buffer's cost is not the WAL's.
struct Discard;

impl CommitSink for Discard {
    fn committed(&self, _first_event_id: u64, _events: Vec<Event>) {}
    fn sealed(&self, _sealed: SegmentId) {}
}

fn wal_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = WalWriterConfig {
        dir: dir.path().to_path_buf(),
        segment_max_bytes: 256 << 20,
        queue_capacity: 4096,
        max_group_events: 100_000,
    };
    let writer = WalWriter::start(config, SegmentId(1), 0, Arc::new(Discard)).expect("WAL writer");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let events = common::stored_events(1_000);
    let mut group = c.benchmark_group("wal");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("append_1000_fsynced", |b| {
        b.iter(|| runtime.block_on(writer.append(events.clone())).expect("append"))
    });
    group.finish();
    writer.shutdown();
}

criterion_group!(benches, wal_append);
criterion_main!(benches);
