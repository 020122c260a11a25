//! Trigger throughput through `Runtime::execute`: n distinct pull requests
//! for one persona, and the refolding strategy of the modelled persona
//! runtime (fold the whole log before every operation) on the same workload
//! for comparison.
//!
//! `refold/10000` is quadratic: one iteration takes about nine
//! minutes here and criterion insists on ten samples, so that arm alone would
//! run for an hour and a half. It runs only with `REHEARSE_BENCH_REFOLD_10K=1`;
//! otherwise time it once with
//! `cargo run --release -p rehearse-benches --example peak_memory -- refold 10000`.
//!
//! The runtime runs here on the allocator `rehearse` ships with (mimalloc,
//! harness/src/main.rs), so the figures are the runtime's as the command
//! runs it; the runtime allocates a few dozen times a trigger, and glibc's
//! allocator takes about a quarter longer over the same work.

/// The allocator of the `rehearse` binary (harness/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rehearse_benches::{
    run_triggers, run_triggers_refolding, run_triggers_released, runtime, runtime_windowed,
    triggers,
};
use rehearse_runtime::engine::Runtime;
use rehearse_runtime::Op;

fn incremental(c: &mut Criterion) {
    let mut group = c.benchmark_group("triggers");
    // `incremental` keeps the whole log in memory, as the modelled runtime
    // does; `released` keeps no history, each operation's events released
    // once it has run: the runtime as `rehearse run` and `rehearse replay`
    // drive it. 2,000 is the yardstick for the runtime alone
    // (under 4 ms). Refolding is quadratic: ten samples are plenty.
    let with_10k = std::env::var_os("REHEARSE_BENCH_REFOLD_10K").is_some_and(|v| v == "1");
    let refold_sizes: &[u64] = if with_10k { &[1_000, 10_000] } else { &[1_000] };
    type Arm<'a> = (&'a str, fn() -> Runtime, fn(&mut Runtime, &[Op]), &'a [u64]);
    let arms: [Arm; 3] = [
        (
            "incremental",
            runtime,
            run_triggers,
            &[1_000, 2_000, 10_000, 100_000],
        ),
        (
            "released",
            runtime_windowed,
            run_triggers_released,
            &[2_000, 100_000],
        ),
        ("refold", runtime, run_triggers_refolding, refold_sizes),
    ];
    for (name, make, run, sizes) in arms {
        for &n in sizes {
            let ops = triggers(n);
            group.throughput(Throughput::Elements(n));
            let few = n >= 100_000 || name == "refold";
            group.sample_size(if few { 10 } else { 100 });
            group.bench_function(format!("{name}/{n}"), |b| {
                // The runtime is built outside the timing and dropped after
                // it, so only the operations are measured.
                b.iter_batched(
                    make,
                    |mut rt| {
                        run(&mut rt, &ops);
                        rt
                    },
                    BatchSize::PerIteration,
                );
            });
        }
    }
    group.finish();
}

criterion_group!(benches, incremental);
criterion_main!(benches);
