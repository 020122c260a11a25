//! Durable log read throughput over a log of one million events, written
//! once outside the timing: the streaming `verify_file`, and `FileLog::open`,
//! which reads, checks and recovers every record into memory.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rehearse_benches::write_file_log;
use rehearse_runtime::file_log::{log_path, verify_file, FileLog, FileLogOptions};

const EVENTS: u64 = 1_000_000;

fn read_and_verify(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("rehearse-bench-file-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("the bench directory is created");
    let events = write_file_log(&dir, EVENTS);
    let path = log_path(&dir);

    let mut group = c.benchmark_group("file_log");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    group.bench_function("verify_file/1M", |b| {
        b.iter(|| {
            let summary = verify_file(&path).expect("the bench log verifies");
            assert_eq!(summary.events, events);
        });
    });
    group.bench_function("open/1M", |b| {
        b.iter_batched(
            || (),
            |()| {
                let (log, recovery) =
                    FileLog::open(&dir, FileLogOptions::default()).expect("the bench log opens");
                assert_eq!(recovery.events, events);
                log
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
    std::fs::remove_dir_all(&dir).expect("the bench directory is removed");
}

criterion_group!(benches, read_and_verify);
criterion_main!(benches);
