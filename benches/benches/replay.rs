//! Capture replay throughput: parse a bundle of n pull-request episodes
//! (serialised once, outside the timing) and replay it strictly on a fresh
//! in-memory log.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rehearse_benches::{capture_json, replay_json};

fn parse_and_replay(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay");
    group.sample_size(10);
    for n in [10_000u64, 100_000] {
        let text = capture_json(n);
        group.throughput(Throughput::Elements(n));
        group.bench_function(format!("parse_and_replay/{n}"), |b| {
            b.iter(|| replay_json(&text));
        });
    }
    group.finish();
}

criterion_group!(benches, parse_and_replay);
criterion_main!(benches);
