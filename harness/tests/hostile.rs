//! Hostile inputs: each test performs one attack from the adversarial
//! review of the CI gate (see `docs/SECURITY.md`) against the built
//! `rehearse`, inside a temporary directory of its own, and asserts the safe
//! outcome: nothing outside that directory touched, exit 2 with a message
//! naming the input, in bounded time.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{rehearse_command, root, tree, Library};
use std::time::{Duration, Instant};

/// A scenario that restarts, so it runs on the durable scratch log.
const RESTART: &str = "scenarios/durability/restart-paused-queue.yaml";
/// A plain scenario.
const PLAIN: &str = "scenarios/lease/crash-then-busy.yaml";

/// The library of these tests: a `common::Library` copy of real scenarios,
/// run outside CI with its own `TMPDIR`.
impl Library {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = rehearse_command(self.dir.path(), "false");
        command
            .args(args)
            .env("TMPDIR", self.path("tmp"))
            .stdin(Stdio::null());
        command
    }

    /// Runs `rehearse ARGS`, killing it after 60 seconds.
    fn run(&self, args: &[&str]) -> Output {
        run_bounded(self.command(args), Duration::from_secs(60))
    }
}

/// Runs `command` to its end, failing the test if it takes longer than
/// `limit` (a hang is a finding).
fn run_bounded(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rehearse starts");
    let started = Instant::now();
    loop {
        if child
            .try_wait()
            .expect("the child can be waited on")
            .is_some()
        {
            return child.wait_with_output().expect("output is collected");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output is collected");
            panic!(
                "rehearse ran for more than {limit:?}: {:?}\nstderr: {}",
                command,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("rehearse exits with a code")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A capture of `scenario` from a fresh `rehearse run`, read whole.
fn capture_of(library: &Library, scenario: &str) -> rehearse_runtime::capture::CaptureBundle {
    let output = library.run(&["run", "--out", "out", scenario]);
    assert!(code(&output) <= 1, "{}", stderr(&output));
    let name = Path::new(scenario).file_stem().unwrap().to_string_lossy();
    let text = fs::read_to_string(library.path(&format!("out/{name}/capture.jsonl"))).unwrap();
    rehearse_runtime::replay::parse_bundle(&text).unwrap()
}

/// Finding 1: a bundle's `scenario` never becomes a path: a name that
/// climbs out of the temporary directory, on a bundle that restarts (so
/// replay uses a durable scratch log), deletes nothing, with or without
/// `--strict`, whether the hashes match or not.
#[test]
fn f01_bundle_scenario_name_never_becomes_a_path() {
    let library = Library::copied(&[RESTART]);
    let victim = library.path("victim");
    fs::create_dir_all(&victim).unwrap();
    fs::write(victim.join("precious.txt"), "keep me").unwrap();
    let mut bundle = capture_of(&library, RESTART);
    let climb = format!("x/../../../../../../../..{}", victim.display());
    bundle.scenario = climb;
    fs::write(library.path("evil.json"), bundle.to_jsonl()).unwrap();
    bundle.events[0].payload_hash = "0".repeat(64);
    fs::write(library.path("evil-hash.json"), bundle.to_jsonl()).unwrap();
    for args in [
        ["replay", "evil.json"].as_slice(),
        &["replay", "--strict", "evil.json"],
        &["replay", "evil-hash.json"],
        &["replay", "--strict", "evil-hash.json"],
    ] {
        let output = library.run(args);
        assert!(code(&output) <= 2, "{args:?}: {}", stderr(&output));
        assert_eq!(
            fs::read_to_string(victim.join("precious.txt")).unwrap(),
            "keep me",
            "{args:?}"
        );
    }
    assert_no_scratch_left(&library);
}

fn assert_no_scratch_left(library: &Library) {
    let left: Vec<_> = fs::read_dir(library.path("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "scratch directories left behind: {left:?}");
}

/// Finding 2: scratch directories are new and private: what sits in
/// `TMPDIR` under the old predictable names (a directory holding a long
/// log, a symbolic link) is neither reused nor followed, a killed run's
/// scratch directory is removed by the next run, and nothing is left.
#[test]
fn f02_scratch_directories_are_fresh_private_and_removed() {
    let library = Library::copied(&[RESTART]);
    let outside = library.path("outside");
    fs::create_dir_all(&outside).unwrap();
    // Old-style names for the next few process ids, and a dead process's
    // scratch directory (no process has id 2147483632).
    let tmp = library.path("tmp");
    for n in 0..4 {
        let stale = tmp.join(format!("rehearse-{}-{n}-restart-paused-queue", 1));
        fs::create_dir_all(&stale).unwrap();
        fs::write(stale.join("events.jsonl"), "garbage\n".repeat(3402)).unwrap();
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, tmp.join("rehearse-scratch-2147483631-link")).unwrap();
    fs::create_dir_all(tmp.join("rehearse-scratch-2147483632-abc")).unwrap();
    fs::write(tmp.join("rehearse-scratch-2147483632-abc/log"), "x").unwrap();
    let output = library.run(&["run", "--out", "out", RESTART]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    // The run's outputs are those of the real library's goldens.
    let golden = root().join("snapshots/durability/restart-paused-queue/events.jsonl");
    assert_eq!(
        fs::read_to_string(library.path("out/restart-paused-queue/events.jsonl")).unwrap(),
        fs::read_to_string(golden).unwrap()
    );
    assert!(!tmp.join("rehearse-scratch-2147483632-abc").exists());
    assert!(fs::read_dir(&outside).unwrap().next().is_none());
    let left: Vec<String> = fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("rehearse-scratch-") && !name.ends_with("-link"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

/// Finding 3: a report target that is a FIFO or a symbolic link is refused
/// (exit 2, naming it), never renamed over, never written through.
#[cfg(unix)]
#[test]
fn f03_non_regular_targets_are_refused() {
    let library = Library::copied(&[PLAIN]);
    let bless = library.run(&["bless"]);
    assert_eq!(code(&bless), 0, "{}", stderr(&bless));
    let fifo = library.path("report.fifo");
    mkfifo(&fifo);
    let secret = library.path("secret.xml");
    fs::write(&secret, "untouched").unwrap();
    let link = library.path("report.xml");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    for target in ["report.fifo", "report.xml"] {
        let output = library.run(&["check", "--junit", target]);
        assert_eq!(code(&output), 2, "{target}: {}", stderr(&output));
        assert!(stderr(&output).contains(target), "{}", stderr(&output));
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(&secret).unwrap(), "untouched");
    // `run --out` into a directory that is a link to elsewhere.
    let elsewhere = library.path("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::create_dir_all(library.path("out")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, library.path("out/crash-then-busy")).unwrap();
    let output = library.run(&["run", "--out", "out", PLAIN]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("crash-then-busy"),
        "{}",
        stderr(&output)
    );
    assert!(fs::read_dir(&elsewhere).unwrap().next().is_none());
}

/// Finding 4: links inside `snapshots/` are never followed: a golden
/// directory linked elsewhere is not written through, and a golden linked
/// to a secret is never printed, in CI or not.
#[cfg(unix)]
#[test]
fn f04_links_inside_snapshots_are_not_followed() {
    let library = Library::copied(&[PLAIN]);
    let outside = library.path("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(library.path("snapshots/lease")).unwrap();
    std::os::unix::fs::symlink(&outside, library.path("snapshots/lease/crash-then-busy")).unwrap();
    let output = library.run(&["bless"]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("symbolic link"),
        "{}",
        stderr(&output)
    );
    assert!(fs::read_dir(&outside).unwrap().next().is_none());
    // A golden file linked to a secret.
    fs::remove_file(library.path("snapshots/lease/crash-then-busy")).unwrap();
    assert_eq!(code(&library.run(&["bless"])), 0);
    let secret = library.path("secret.txt");
    fs::write(&secret, "TOP-SECRET-TOKEN\n").unwrap();
    let golden = library.path("snapshots/lease/crash-then-busy/report.json");
    fs::remove_file(&golden).unwrap();
    std::os::unix::fs::symlink(&secret, &golden).unwrap();
    for ci in ["true", "false"] {
        let output = library.command(&["check"]).env("CI", ci).output().unwrap();
        assert_eq!(code(&output), 2, "{}", stderr(&output));
        let all = stdout(&output) + &stderr(&output);
        assert!(!all.contains("TOP-SECRET"), "the secret was printed: {all}");
        assert!(all.contains("symbolic link"), "{all}");
    }
    assert_eq!(fs::read_to_string(&secret).unwrap(), "TOP-SECRET-TOKEN\n");
}

/// Finding 7: litter of killed runs (`.X.tmp-PID` files, staging
/// directories) is removed by the next bless, and a bless that fails part
/// way leaves the old set whole.
#[test]
fn f07_litter_is_cleaned_and_failed_sets_leave_the_old_one() {
    let library = Library::copied(&[PLAIN]);
    assert_eq!(code(&library.run(&["bless"])), 0);
    let set = library.path("snapshots/lease/crash-then-busy");
    let before = tree(&set);
    // Litter as killed writers leave it, old style and new style.
    fs::write(set.join(".report.json.tmp-2147483632"), "half").unwrap();
    let stage = library.path("snapshots/lease/.crash-then-busy.stage-2147483632-3");
    fs::create_dir_all(&stage).unwrap();
    fs::write(stage.join("report.json"), "half").unwrap();
    // Change the scenario so the next bless writes a new set.
    let scenario = library.path(PLAIN);
    let text = fs::read_to_string(&scenario).unwrap();
    fs::write(&scenario, text.replacen("number: 2 ", "number: 22 ", 1)).unwrap();
    let output = library.run(&["bless"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(!stage.exists(), "the stage of a dead writer is removed");
    let names: Vec<String> = fs::read_dir(&set)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["capture.jsonl", "events.jsonl", "report.json", "runs.jsonl"]
    );
    assert_ne!(tree(&set), before, "the new set replaced the old");
    let siblings: Vec<_> = fs::read_dir(library.path("snapshots/lease"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(siblings.len(), 1, "{siblings:?}");
}

/// Finding 7, the failing disk: a bless whose writes fail (a file-size
/// limit in the child stands in for a full disk) leaves the old set whole,
/// and `run --out` keeps the old outputs, `runs.jsonl` included.
#[cfg(unix)]
#[test]
fn f07_a_full_disk_leaves_old_sets_whole() {
    let library = Library::copied(&[PLAIN]);
    assert_eq!(code(&library.run(&["bless"])), 0);
    assert_eq!(code(&library.run(&["run", "--out", "out", PLAIN])), 0);
    let set = library.path("snapshots/lease/crash-then-busy");
    let out = library.path("out/crash-then-busy");
    let (set_before, out_before) = (tree(&set), tree(&out));
    assert!(out_before.iter().any(|(p, _)| p.ends_with("runs.jsonl")));
    let scenario = library.path(PLAIN);
    let text = fs::read_to_string(&scenario).unwrap();
    fs::write(&scenario, text.replacen("number: 2 ", "number: 22 ", 1)).unwrap();
    for args in ["bless", &format!("run --out out {PLAIN}")] {
        let output = limited(&library, args, 4);
        assert_eq!(code(&output), 2, "{args}: {}", stderr(&output));
    }
    assert_eq!(tree(&set), set_before);
    assert_eq!(tree(&out), out_before);
}

/// Runs `rehearse ARGS` with files limited to `kib` KiB (writes past it fail
/// with "File too large" instead of killing the process).
#[cfg(unix)]
fn limited(library: &Library, args: &str, kib: u32) -> Output {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {}; exec \"$0\" {args}",
            kib * 2
        ))
        .arg(env!("CARGO_BIN_EXE_rehearse"))
        .current_dir(library.dir.path())
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .env("TMPDIR", library.path("tmp"))
        .stdin(Stdio::null());
    run_bounded(command, Duration::from_secs(60))
}

/// Finding 6: a failing scratch log (a file-size limit standing in for a
/// full disk) fails the run with an environment error naming neither the
/// process id nor the scratch path, and no golden is written.
#[cfg(unix)]
#[test]
fn f06_environment_failures_never_become_goldens() {
    let library = Library::copied(&[RESTART]);
    let output = limited(&library, "bless", 1);
    let message = stderr(&output);
    assert_eq!(code(&output), 2, "{message}");
    assert!(message.contains("environment error"), "{message}");
    assert!(message.contains("restart-paused-queue"), "{message}");
    assert!(
        !message.contains(&library.path("tmp").display().to_string()),
        "{message}"
    );
    assert!(!message.contains("rehearse-scratch-"), "{message}");
    assert!(
        tree(&library.path("snapshots")).is_empty(),
        "no golden was written"
    );
    assert_no_scratch_left(&library);
}

/// Finding 8: two scenarios whose goldens map to one place are an error
/// naming both, and nothing is blessed.
#[test]
fn f08_two_scenarios_for_one_golden_set_are_refused() {
    let library = Library::copied(&[PLAIN]);
    fs::copy(
        library.path(PLAIN),
        library.path("scenarios/lease/crash-then-busy.yml"),
    )
    .unwrap();
    let output = library.run(&["bless"]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("crash-then-busy.yaml") && message.contains("crash-then-busy.yml"),
        "{message}"
    );
    assert!(tree(&library.path("snapshots")).is_empty());
    let output = library.run(&["check"]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    // One stem in two `invalid/` folders.
    let library = Library::copied(&["scenarios/invalid/bad-name.yaml"]);
    fs::create_dir_all(library.path("scenarios/invalid/more")).unwrap();
    fs::copy(
        library.path("scenarios/invalid/bad-name.yaml"),
        library.path("scenarios/invalid/more/bad-name.yaml"),
    )
    .unwrap();
    let output = library.run(&["bless"]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("more/bad-name.yaml"),
        "{}",
        stderr(&output)
    );
    assert!(tree(&library.path("snapshots")).is_empty());
}

/// Finding 11 (files): a FIFO named `*.yaml` in the library is refused by
/// name, never opened, so `check` and `bless` end at once.
#[cfg(unix)]
#[test]
fn f11_a_fifo_scenario_is_refused_not_hung_on() {
    let library = Library::copied(&[PLAIN]);
    mkfifo(&library.path("scenarios/lease/fifo.yaml"));
    for args in [
        ["check", "scenarios"],
        ["bless", "scenarios"],
        ["lint", "scenarios/lease/fifo.yaml"],
    ] {
        let command = args[0];
        let output = run_bounded(library.command(&args), Duration::from_secs(20));
        assert_eq!(code(&output), 2, "{command}: {}", stderr(&output));
        assert!(stderr(&output).contains("fifo.yaml"), "{}", stderr(&output));
    }
    let output = run_bounded(
        library.command(&["run", "scenarios/lease/fifo.yaml"]),
        Duration::from_secs(20),
    );
    assert_eq!(code(&output), 2, "{}", stderr(&output));
}

/// A small valid scenario that the YAML and limit attacks edit.
const BASE: &str = "\
version: 1
name: base
start: 2026-04-24T12:00:00Z
personas:
  bot:
    entry_workflow: workflows/bot.harn#run
    lease_ttl: 5m
    budget: { daily_usd: 1.0, max_tokens: 1000 }
steps:
  - at: 0s
    trigger:
      persona: bot
      provider: github
      kind: pull_request
      metadata: { repository: acme/widgets, number: \"1\" }
      cost: { usd: 0.01, tokens: 10 }
  - at: 1s
    spend: { persona: bot, usd: 0.005, tokens: 3 }
";

/// Lints `text` as `scenarios/attack.yaml` of a fresh library: exit code,
/// stderr and how long it took.
fn lint(text: &str) -> (i32, String, Duration) {
    let library = Library::copied(&[]);
    fs::write(library.path("scenarios/attack.yaml"), text).unwrap();
    let started = Instant::now();
    let output = library.run(&["lint", "scenarios/attack.yaml"]);
    (code(&output), stderr(&output), started.elapsed())
}

/// Asserts `text` is refused (exit 2) at `line`, with a message holding
/// `needle`, within ten seconds.
fn refused_at(text: &str, line: usize, needle: &str) {
    let (code, message, took) = lint(text);
    assert_eq!(code, 2, "{message}");
    assert!(
        message.contains(&format!("scenarios/attack.yaml:{line}:")),
        "expected line {line}: {message}"
    );
    assert!(message.contains(needle), "expected `{needle}`: {message}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// `BASE` with each `(from, to)` edit (`from` must occur) is refused at
/// `line` with a message containing `needle`.
fn refused_edits(edits: &[(&str, &str, usize, &str)]) {
    for &(from, to, line, needle) in edits {
        assert!(BASE.contains(from), "`{from}` is not in the base scenario");
        refused_at(&BASE.replace(from, to), line, needle);
    }
}

#[test]
fn base_scenario_lints() {
    let (code, message, _) = lint(BASE);
    assert_eq!(code, 0, "{message}");
}

/// Finding 11: 100,000 nested `[` are refused at once, not after minutes.
#[test]
fn f11_deep_nesting_is_refused_in_linear_time() {
    refused_at(&"[".repeat(100_000), 1, "nested more than 64 deep");
    let mut text = BASE.to_string();
    text.push_str(&format!("description: {}\n", "[".repeat(70)));
    refused_at(&text, 19, "nested more than 64 deep");
}

/// Finding 11: a 1 MB string aliased 1,000 times is refused at the first
/// alias past the limit, quickly, without building a gigabyte.
#[test]
fn f11_alias_expansion_is_bounded() {
    let mut text = BASE.replace(
        "name: base",
        &format!("name: base\nx-big: &big {}", "x".repeat(1 << 20)),
    );
    text.push_str("x-many: [");
    text.push_str(&vec!["*big"; 1000].join(", "));
    text.push_str("]\n");
    refused_at(&text, 20, "aliases expand to more than");
}

/// Findings 11 and 15: duplicate keys written through an alias or a tag are
/// refused where the second one is written, not accepted or put at 1:1.
#[test]
fn f11_duplicate_keys_via_aliases_and_tags_are_refused_in_place() {
    refused_edits(&[
        (
            "name: base",
            "&k name: base\n*k : other",
            3,
            "duplicate key `name`",
        ),
        (
            "start: 2026",
            "!!str name: other\nstart: 2026",
            3,
            "duplicate key `name`",
        ),
    ]);
}

/// Finding 15: a fractional duration and a quoted number tagged as one get
/// precise messages at their place.
#[test]
fn f15_errors_point_at_the_problem() {
    refused_edits(&[
        (
            "at: 1s",
            "at: 1.5s",
            17,
            "fractional number in duration `1.5s`",
        ),
        (
            "usd: 0.005",
            "usd: !!float \"0.005\"",
            18,
            "tagged `!!float`",
        ),
    ]);
}

/// Finding 13: sums and durations that would overflow are refused as input.
#[test]
fn f13_overflowing_amounts_are_refused() {
    refused_edits(&[
        (
            "lease_ttl: 5m",
            "lease_ttl: 9223372036854775807ms",
            7,
            "`lease_ttl`",
        ),
        ("usd: 0.005", "usd: 1e308", 18, "above the limit"),
        ("tokens: 3", "tokens: 18446744073709551615", 18, "`tokens`"),
        (
            "max_tokens: 1000",
            "max_tokens: 18446744073709551615",
            8,
            "`max_tokens`",
        ),
    ]);
}

/// Findings 10 and 13: a bundle's amounts are held to the same limits (a
/// resealed bundle with a huge spend is refused, exit 2), and a bundle read
/// is capped (a 300 MB file, a FIFO) without reading it whole or hanging.
#[test]
fn f10_bundle_reads_and_amounts_are_bounded() {
    let library = Library::copied(&[PLAIN]);
    let mut bundle = capture_of(&library, PLAIN);
    let op = bundle.events[0].payload["trigger"]["cost"]["tokens"].clone();
    assert!(op.is_u64());
    bundle.events[0]
        .payload
        .edit(|payload| payload["trigger"]["cost"]["tokens"] = serde_json::json!(u64::MAX));
    bundle.events[0].payload_hash = rehearse_runtime::hash::payload_hash(&bundle.events[0].payload);
    fs::write(library.path("huge.json"), bundle.to_jsonl()).unwrap();
    let output = library.run(&["replay", "huge.json"]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(stderr(&output).contains("`tokens`"), "{}", stderr(&output));
    let big = fs::File::create(library.path("big.json")).unwrap();
    big.set_len(300 * 1024 * 1024).unwrap();
    let started = Instant::now();
    let output = library.run(&["replay", "big.json"]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("expected at most"),
        "{}",
        stderr(&output)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    #[cfg(unix)]
    {
        mkfifo(&library.path("pipe.json"));
        let output = library.run(&["replay", "pipe.json"]);
        assert_eq!(code(&output), 2, "{}", stderr(&output));
        assert!(stderr(&output).contains("FIFO"), "{}", stderr(&output));
    }
}
