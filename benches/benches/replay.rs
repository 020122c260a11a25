//! Capture replay throughput: replay a capture of n pull-request episodes
//! (serialised once, outside the timing) strictly on a fresh in-memory log:
//! a version 3 capture in one streaming pass (parsing on a second thread),
//! and the same episodes as a version 2 bundle parsed whole first.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rehearse_benches::{capture_json_v2, capture_jsonl, replay_capture};

fn parse_and_replay(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay");
    group.sample_size(10);
    for n in [10_000u64, 100_000] {
        let jsonl = capture_jsonl(n);
        group.throughput(Throughput::Elements(n));
        group.bench_function(format!("stream_v3/{n}"), |b| {
            b.iter(|| replay_capture(&jsonl));
        });
        drop(jsonl);
        if n <= 10_000 {
            let v2 = capture_json_v2(n);
            group.bench_function(format!("parse_and_replay_v2/{n}"), |b| {
                b.iter(|| replay_capture(v2.as_bytes()));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, parse_and_replay);
criterion_main!(benches);
