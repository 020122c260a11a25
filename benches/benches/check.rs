//! `rehearse check` over the bundled scenario library: every scenario run,
//! compared with its goldens and replayed, on one worker thread so the
//! figure is per core.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rehearse::cli::check::run_suite;
use rehearse::progress::Display;
use rehearse::suite::{discover, SuiteConfig};

fn check_library(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = SuiteConfig {
        paths: vec![root.join("scenarios")],
        scenarios_root: root.join("scenarios"),
        snapshots_root: root.join("snapshots"),
        jobs: 1,
        partition: None,
        find_orphans: true,
    };
    let scenarios = discover(&config.paths).expect("the scenario library is readable");
    let mut group = c.benchmark_group("check");
    group.sample_size(10);
    group.throughput(Throughput::Elements(scenarios.len() as u64));
    group.bench_function("library", |b| {
        b.iter(|| {
            let report = run_suite(&config, Display::Hidden).expect("the library checks");
            assert_eq!(report.failed, 0, "the library no longer passes its goldens");
            report
        });
    });
    group.finish();
}

criterion_group!(benches, check_library);
criterion_main!(benches);
