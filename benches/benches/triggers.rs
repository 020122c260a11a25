//! Trigger throughput through `Runtime::execute`: n distinct pull requests
//! for one persona, and the seed's strategy (fold the whole log before every
//! operation) on the same workload for comparison.
//!
//! `seed_strategy/10000` is quadratic: one iteration takes minutes and
//! criterion insists on ten samples, so the whole arm runs for the better
//! part of an hour. Leave it out with a filter
//! (`cargo bench -p rehearse-benches --bench triggers -- 'incremental|/1000$'`)
//! and time it once with `peak_memory seed 10000` instead.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rehearse_benches::{run_triggers, run_triggers_seed_strategy, runtime, triggers};

fn incremental(c: &mut Criterion) {
    let mut group = c.benchmark_group("triggers");
    for n in [1_000u64, 10_000, 100_000] {
        let ops = triggers(n);
        group.throughput(Throughput::Elements(n));
        if n >= 100_000 {
            group.sample_size(10);
        }
        group.bench_function(format!("incremental/{n}"), |b| {
            // The runtime is built outside the timing and dropped after it,
            // so only the operations are measured.
            b.iter_batched(
                runtime,
                |mut rt| {
                    run_triggers(&mut rt, &ops);
                    rt
                },
                BatchSize::PerIteration,
            );
        });
    }
    // The seed strategy is quadratic: ten samples are plenty.
    group.sample_size(10);
    for n in [1_000u64, 10_000] {
        let ops = triggers(n);
        group.throughput(Throughput::Elements(n));
        group.bench_function(format!("seed_strategy/{n}"), |b| {
            b.iter_batched(
                runtime,
                |mut rt| {
                    run_triggers_seed_strategy(&mut rt, &ops);
                    rt
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, incremental);
criterion_main!(benches);
