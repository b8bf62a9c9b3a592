//! Parquet encoding of one partition at flush time: events to an Arrow batch, then sort, Parquet
//! (zstd 6, dictionaries, page statistics) and the session index (`partition_file::encode`).

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use footfall_engine::event::to_record_batch;
use footfall_engine::partition_file::{encode, EncodeOptions};

const ROWS: usize = 100_000;

fn parquet_encode(c: &mut Criterion) {
    let events = common::stored_events(ROWS);
    let key = events[0].partition();
    let batch = to_record_batch(events.iter().enumerate().map(|(i, e)| (i as u64, e))).expect("record batch");
    let mut group = c.benchmark_group("parquet");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("to_record_batch_100k", |b| {
        b.iter(|| to_record_batch(events.iter().enumerate().map(|(i, e)| (i as u64, e))).expect("record batch"))
    });
    group.bench_function("encode_partition_100k", |b| {
        b.iter(|| encode(&key, std::slice::from_ref(&batch), EncodeOptions::default()).expect("encode"))
    });
    group.finish();
}

criterion_group!(benches, parquet_encode);
criterion_main!(benches);
