//! `rehearse check` over the bundled scenario library: every scenario run,
//! compared with its goldens and replayed, on one worker thread so the
//! figure is per core.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rehearse::check::{self, CheckOptions};
use rehearse::progress::Display;
use rehearse::suite::{discover, SuiteConfig};

fn check_library(c: &mut Criterion) {
    // Goldens name scenarios by their path as the CLI sees it from the
    // workspace root, so the suite runs from there with relative paths.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::set_current_dir(&root).expect("the workspace root exists");
    // As in CI, a library that drifted fails without leaving `.new` goldens
    // behind in snapshots/.
    std::env::set_var("CI", "true");
    let config = SuiteConfig::whole_library();
    let scenarios = discover(&config.paths).expect("the scenario library is readable");
    let mut group = c.benchmark_group("check");
    group.sample_size(10);
    group.throughput(Throughput::Elements(scenarios.len() as u64));
    group.bench_function("library", |b| {
        b.iter(|| {
            let report = check::run(&config, &CheckOptions::default(), Display::Hidden)
                .expect("the library checks");
            assert_eq!(report.failed, 0, "the library no longer passes its goldens");
            report
        });
    });
    group.finish();
}

criterion_group!(benches, check_library);
criterion_main!(benches);
