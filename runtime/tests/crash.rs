//! Kills a process that appends to a file log with SIGKILL at seeded moments
//! and checks, after every kill, that the reopened log holds exactly a prefix
//! of whole batches and that folding it gives the prefix's state.
//!
//! The writer is this test binary itself, started again with an environment
//! variable naming the log directory: it runs the same test, sees the
//! variable and appends until it is killed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rehearse_runtime::file_log::{cut_tail, log_path, verify_file, VerifySummary};
use rehearse_runtime::{EventLog, FileLog, FileLogOptions, LogEvent, Recovery, StoredEvent, Topic};
use serde_json::json;

/// Set in a child's environment to the log directory it must append to.
const WRITER_DIR_VAR: &str = "REHEARSE_CRASH_TEST_WRITER_DIR";

/// This test's name, which a child is told to run.
const TEST_NAME: &str = "sigkill_during_appends_leaves_a_prefix_of_whole_batches";

const KILLS: u64 = 32;

/// A writer stops by itself after this many batches, so a child left behind
/// by a broken parent cannot fill the disk.
const MAX_BATCHES: u64 = 1_000_000;

const SEED: u64 = 0x5EED_C8A5_4001;

const TOPICS: [&str; 2] = ["crash.a", "crash.b"];

#[test]
fn sigkill_during_appends_leaves_a_prefix_of_whole_batches() {
    if let Some(dir) = std::env::var_os(WRITER_DIR_VAR) {
        run_writer(Path::new(&dir));
    }
    let started = Instant::now();
    let dir = TempDir::new("sigkill");
    let mut rng = SplitMix(SEED);
    let mut batches_seen = 0;
    let mut torn_by_kill = 0;
    for round in 0..KILLS {
        let mut child = spawn_writer(&dir.0);
        let start_batch = wait_until_ready(&mut child);
        assert_eq!(
            start_batch, batches_seen,
            "the writer reopened what we checked"
        );
        std::thread::sleep(Duration::from_millis(3 + rng.next() % 48));
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "writer exited by itself with {status}: {}",
                stderr_of(&mut child)
            );
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "writer ended with {status}");
        }

        let recovery = reopen_and_check(&dir.0, round);
        assert!(
            recovery.batches >= batches_seen,
            "round {round}: {} batches after the kill, {batches_seen} before",
            recovery.batches
        );
        torn_by_kill += u64::from(recovery.cut.is_some());
        batches_seen = recovery.batches;

        // Every third round also tears the tail by hand, as the scenario step
        // `restart: {torn_tail_bytes: N}` does, so the repair path runs even
        // when the kill landed between two appends. A record is longer than
        // 150 bytes, so cutting at most 300 damages one or two batches.
        if round % 3 == 2 && batches_seen > 0 {
            cut_tail(&dir.0, 1 + rng.next() % 300).unwrap();
            let recovery = reopen_and_check(&dir.0, round);
            let lost = batches_seen - recovery.batches;
            assert!(
                (1..=2).contains(&lost),
                "round {round}: lost {lost} batches"
            );
            batches_seen = recovery.batches;
        }
    }
    assert!(batches_seen > 0, "no writer ever appended a batch");
    eprintln!(
        "{KILLS} kills, {batches_seen} batches kept, {torn_by_kill} tails torn by a kill, {:?}",
        started.elapsed()
    );
}

/// Opens the log in `dir` as a restart would and checks that it holds
/// exactly batches `0..k` for some `k`, whole and in order, and that the file
/// verifies with the same counts.
fn reopen_and_check(dir: &Path, round: u64) -> Recovery {
    let (log, recovery) = FileLog::open(dir, FileLogOptions::default()).unwrap();
    let batches = recovery.batches;
    assert_eq!(
        log.all(),
        expected_events(batches).as_slice(),
        "round {round}"
    );
    assert_eq!(fold(log.all()), expected_fold(batches), "round {round}");
    assert_eq!(
        verify_file(log_path(dir)).unwrap(),
        VerifySummary {
            events: recovery.events,
            batches,
            topics: expected_fold(batches).counts.len() as u64,
            bytes: recovery.bytes,
        },
        "round {round}"
    );
    recovery
}

/// The child's side: appends batch after batch to the log in `dir` until it
/// is killed.
fn run_writer(dir: &Path) -> ! {
    // The parent holds the other end of stdin; when it goes away, so do we.
    std::thread::spawn(|| {
        let mut byte = [0u8; 1];
        let _ = std::io::stdin().read(&mut byte);
        std::process::exit(3);
    });
    let (mut log, recovery) = FileLog::open(dir, FileLogOptions::default()).unwrap();
    let mut next = recovery.batches;
    println!("writer ready at batch {next}");
    while next < MAX_BATCHES {
        log.append_batch(batch(next)).unwrap();
        next += 1;
    }
    std::process::exit(4);
}

fn spawn_writer(dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(WRITER_DIR_VAR, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the child's stdout up to its ready line and returns the batch it
/// starts appending at.
fn wait_until_ready(child: &mut Child) -> u64 {
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        // The test harness prints the test's name without a newline before
        // the test runs, so the ready message ends a line rather than
        // starting one.
        if let Some((_, batch)) = line.unwrap().split_once("writer ready at batch ") {
            return batch.parse().unwrap();
        }
    }
    let status = child.wait().unwrap();
    panic!(
        "writer exited with {status} before it was ready: {}",
        stderr_of(child)
    );
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    text
}

/// Batch `i`: `1 + i % 4` events alternating between the two topics.
fn batch(i: u64) -> Vec<(Topic, LogEvent)> {
    (0..1 + i % 4)
        .map(|index| {
            let topic = Topic::new(TOPICS[(index % 2) as usize]).unwrap();
            let event = LogEvent {
                kind: "crash.append".into(),
                payload: json!({"batch": i, "index": index}).into(),
                headers: BTreeMap::from([("writer".to_string(), "child".to_string())]).into(),
                occurred_at_ms: i64::try_from(i).unwrap(),
            };
            (topic, event)
        })
        .collect()
}

/// Every event of batches `0..batches`, as stored, built without the log.
fn expected_events(batches: u64) -> Vec<StoredEvent> {
    let mut ids: BTreeMap<Topic, u64> = BTreeMap::new();
    let mut events = Vec::new();
    for i in 0..batches {
        for (topic, event) in batch(i) {
            let id = ids.entry(topic.clone()).or_insert(0);
            *id += 1;
            events.push(StoredEvent::new(topic, *id, event));
        }
    }
    events
}

/// The reference state: events per topic and the last batch seen.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fold {
    counts: BTreeMap<String, u64>,
    last_batch: Option<u64>,
}

fn fold(events: &[StoredEvent]) -> Fold {
    let mut state = Fold::default();
    for event in events {
        *state.counts.entry(event.topic.to_string()).or_default() += 1;
        state.last_batch = event.payload["batch"].as_u64();
    }
    state
}

/// The fold of batches `0..batches`, counted arithmetically.
fn expected_fold(batches: u64) -> Fold {
    let mut counts = BTreeMap::new();
    for i in 0..batches {
        let size = 1 + i % 4;
        *counts.entry(TOPICS[0].to_string()).or_default() += size.div_ceil(2);
        if size > 1 {
            *counts.entry(TOPICS[1].to_string()).or_default() += size / 2;
        }
    }
    Fold {
        counts,
        last_batch: batches.checked_sub(1),
    }
}

/// A seeded pseudo-random stream: no OS randomness in tests either.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("rehearse-crash-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
