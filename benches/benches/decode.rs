//! Event decoding: `parse_native` over a 1,000-event NDJSON body of generated traffic, the first
//! step of every `POST /api/v1/events` request.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use footfall_server::ingest::{parse_native, Framing};

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (label, core_only) in [("core_types", true), ("all_types", false)] {
        let body = common::ndjson_body(1_000, core_only);
        group.throughput(Throughput::Elements(1_000));
        group.bench_function(format!("parse_native_1000_{label}"), |b| {
            b.iter(|| parse_native(std::hint::black_box(&body), Framing::Lines, 1_795_000_000_000))
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
