//! The hashing a replay does per episode, one item at a time: the effect
//! hash of each log event a trigger appends (serialised, then sha256), the
//! payload hash of its operation, and sha256 alone over a message of the
//! same size, the floor the other two stand on.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rehearse_benches::{run_triggers, runtime, triggers, EVENTS_PER_TRIGGER};
use rehearse_runtime::hash::{effect_hash, payload_hash};

fn hashing(c: &mut Criterion) {
    let mut rt = runtime();
    run_triggers(&mut rt, &triggers(1));
    let events = rt.log().all().to_vec();
    assert_eq!(events.len() as u64, EVENTS_PER_TRIGGER);
    let payload = serde_json::to_value(&triggers(1)[0]).expect("an operation serialises");
    let bytes: usize = events
        .iter()
        .map(|e| serde_json::to_vec(e).expect("an event serialises").len())
        .sum();
    let message = vec![b'x'; bytes / events.len()];
    let mut group = c.benchmark_group("hashing");
    group.throughput(Throughput::Elements(EVENTS_PER_TRIGGER));
    group.bench_function("effect_hashes_of_one_trigger", |b| {
        b.iter(|| events.iter().map(effect_hash).count());
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("payload_hash_of_one_trigger", |b| {
        b.iter(|| payload_hash(&payload));
    });
    group.bench_function(format!("sha256_only/{}_bytes", message.len()), |b| {
        b.iter(|| {
            use sha2::Digest;
            sha2::Sha256::digest(&message)
        });
    });
    group.finish();
}

criterion_group!(benches, hashing);
criterion_main!(benches);
