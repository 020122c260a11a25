//! `rehearse run` end to end, less the parse of a YAML file: a load
//! scenario of n triggers (one `repeat` step, `benches/scenarios/`) run
//! through the supervisor with every invariant checked after every
//! trigger, its four output files streamed into a stage, fsynced once each
//! and swapped into place. `benches/measure-run` times the whole process.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rehearse_benches::{load_scenario, run_scenario};

fn run(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("rehearse-bench-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("the bench directory can be made");
    let mut group = c.benchmark_group("run");
    group.sample_size(10);
    for n in [1_000u64, 10_000] {
        let file = dir.join(format!("load-{n}.yaml"));
        std::fs::write(&file, load_scenario(n)).expect("the bench scenario can be written");
        let out = dir.join(format!("out-{n}"));
        group.throughput(Throughput::Elements(n));
        group.bench_function(format!("load/{n}"), |b| {
            b.iter(|| run_scenario(&file, &out));
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, run);
criterion_main!(benches);
