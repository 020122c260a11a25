//! The mutation suite of issue 14: a few thousand single-field mutations of
//! scenario files and of the capture bundles `run` writes, each chosen by a
//! fixed-seed PRNG (no OS randomness, so every run tries the same cases),
//! each run through the real code paths, which must end in exit 0 (the
//! mutation did not matter), 1 (a behaviour difference) or 2 (refused
//! input): never a panic, a hang or a write outside this test's own
//! temporary directory.
//!
//! The library API is driven in-process where it is what the binary runs
//! (`scenario::parse_str` for `lint`, `driver::run` for `run`,
//! `parse_bundle` and `storage::replay_bundle` for `replay`); every
//! [`BINARY_EVERY`]th case also runs the built `rehearse` binary in a
//! directory of its own, which must exit with the same code and write
//! nothing but its outputs. A hang would show as the binary outliving
//! [`HANG`] (the tool's own limits bound every case far below it) or as
//! this test never ending.
//!
//! A failing case prints its number, its mutation and the mutated text.

mod common;

use common::root;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rehearse::driver;
use rehearse::scenario::parse_str;
use rehearse::storage::{replay_bundle, BundleError};
use rehearse_runtime::replay::{parse_bundle, ReplayOptions};
use serde_json::{Map, Number, Value};

/// The PRNG's fixed seed.
const SEED: u64 = 0x5eed_0014;

/// Mutations per base scenario and per base bundle.
const PER_BASE: usize = 160;

/// One case in this many also runs the binary.
const BINARY_EVERY: usize = 32;

/// How long one binary run may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(60);

/// The scenarios mutated, and whose captures are mutated: a spread of step
/// kinds, expectations, the supervisor, restarts (the durable scratch
/// log), processes, the pipeline, `advance` and `repeat`.
const BASES: [&str; 8] = [
    "expect/events-and-receipt.yaml",
    "expect/records-process-pipeline.yaml",
    "durability/restart-crashed-lease.yaml",
    "durability/fault-survives-restart.yaml",
    "supervisor/repeat-episodes.yaml",
    "schedule/advance-fires-occurrences.yaml",
    "budget/exact-money.yaml",
    "process/abandon-while-leased.yaml",
];

/// SplitMix64: a small, fixed, portable generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One step of a path into a JSON value.
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Every node below the root, as paths.
fn nodes(value: &Value) -> Vec<Vec<Seg>> {
    let mut out = Vec::new();
    let mut stack: Vec<(Vec<Seg>, &Value)> = vec![(Vec::new(), value)];
    while let Some((path, node)) = stack.pop() {
        let children: Vec<(Seg, &Value)> = match node {
            Value::Object(map) => map.iter().map(|(k, v)| (Seg::Key(k.clone()), v)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Seg::Index(i), v))
                .collect(),
            _ => Vec::new(),
        };
        for (seg, child) in children {
            let mut child_path = path.clone();
            child_path.push(seg);
            out.push(child_path.clone());
            stack.push((child_path, child));
        }
    }
    out
}

fn node_mut<'a>(value: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    path.iter().fold(value, |node, seg| match seg {
        Seg::Key(key) => &mut node[key.as_str()],
        Seg::Index(index) => &mut node[*index],
    })
}

/// Values of other types, extreme numbers and hostile strings.
fn replacement(rng: &mut Rng, kind: usize, old: &Value) -> Value {
    let text = |s: &str| Value::String(s.to_owned());
    match kind {
        // Retype.
        0 => rng
            .pick(&[
                Value::Null,
                Value::Bool(true),
                Value::from(0),
                Value::from(1.5),
                text("text"),
                Value::Array(Vec::new()),
                Value::Object(Map::new()),
                Value::Array(vec![old.clone()]),
            ])
            .clone(),
        // Extreme numbers.
        1 => rng
            .pick(&[
                Value::from(i64::MAX),
                Value::from(i64::MIN),
                Value::from(u64::MAX),
                Value::from(-1),
                Value::from(0),
                Value::from(9_007_199_254_740_993_u64),
                Number::from_f64(1e308).map_or(Value::Null, Value::Number),
                Number::from_f64(-1e308).map_or(Value::Null, Value::Number),
                Number::from_f64(5e-324).map_or(Value::Null, Value::Number),
                Number::from_f64(0.1).map_or(Value::Null, Value::Number),
                Value::from(1_001),
            ])
            .clone(),
        // Long strings.
        2 => {
            let base = old.as_str().filter(|s| !s.is_empty()).unwrap_or("x");
            let times = *rng.pick(&[1_000, 20_000, 200_000]) / base.len().max(1) + 1;
            Value::String(base.repeat(times))
        }
        // Unicode and hostile names.
        3 => {
            let base = old.as_str().unwrap_or("x");
            let tail = *rng.pick(&[
                "\u{e9}",
                "\u{202e}evil",
                "\u{540d}\u{524d}",
                "e\u{301}",
                "\u{1f980}",
                "\u{0}",
                "\u{7}",
                "\n::add-mask::x\n",
                "/../../../../tmp/victim",
                "",
            ]);
            if rng.below(2) == 0 {
                Value::String(format!("{base}{tail}"))
            } else {
                Value::String(tail.to_owned())
            }
        }
        // Nesting: shallow enough for the guard or past its limit.
        _ => {
            let depth = *rng.pick(&[10, 70, 300]);
            (0..depth).fold(old.clone(), |inner, i| {
                if i % 2 == 0 {
                    Value::Array(vec![inner])
                } else {
                    Value::Object(Map::from_iter([("a".to_owned(), inner)]))
                }
            })
        }
    }
}

/// Applies one mutation to one node chosen by `rng`; returns what it did.
fn mutate(value: &mut Value, rng: &mut Rng) -> String {
    let all = nodes(value);
    if all.is_empty() {
        *value = Value::Null;
        return "root -> null".to_owned();
    }
    let path = rng.pick(&all).clone();
    let (last, parent_path) = path.split_last().expect("a node below the root");
    let shown: Vec<String> = path
        .iter()
        .map(|seg| match seg {
            Seg::Key(key) => key.clone(),
            Seg::Index(index) => index.to_string(),
        })
        .collect();
    let shown = shown.join(".");
    let parent = node_mut(value, parent_path);
    let operation = rng.below(8);
    match (operation, last, parent) {
        (0, Seg::Key(key), Value::Object(map)) => {
            map.remove(key);
            format!("drop {shown}")
        }
        (0, Seg::Index(index), Value::Array(items)) => {
            items.remove(*index);
            format!("drop {shown}")
        }
        (1, Seg::Index(index), Value::Array(items)) => {
            let copy = items[*index].clone();
            items.insert(*index, copy);
            format!("duplicate {shown}")
        }
        (1, Seg::Key(key), Value::Object(map)) => {
            // A second key for the same value, spelled differently.
            let copy = map[key.as_str()].clone();
            map.insert(format!("{key}\u{200b}"), copy);
            format!("duplicate {shown} under a look-alike key")
        }
        (2, Seg::Key(key), Value::Object(map)) => {
            let old = map.remove(key).unwrap_or(Value::Null);
            let renamed = rng.pick(&["", "x", "\u{e9}", "_", "s"]).to_string();
            map.insert(format!("{key}{renamed}"), old);
            format!("rename {shown} (+{renamed:?})")
        }
        (operation, _, parent) => {
            let node = match last {
                Seg::Key(key) => &mut parent[key.as_str()],
                Seg::Index(index) => &mut parent[*index],
            };
            let kind = operation.saturating_sub(3);
            let replaced = replacement(rng, kind, node);
            let what = ["retype", "extreme", "long", "unicode", "nest"][kind.min(4)];
            *node = replaced;
            format!("{what} {shown}")
        }
    }
}

/// The exit code `rehearse lint` and then `rehearse run` give `text`, in
/// process: 2 for a refused file or a failed run, 1 for a run that
/// failed an expectation or an invariant, else 0. `(lint, run)`.
fn scenario_codes(text: &str) -> (i32, i32) {
    let Ok(scenario) = parse_str(text, "scenarios/mutant.yaml", "mutant") else {
        return (2, 2);
    };
    match driver::run(&scenario, "scenarios/mutant.yaml") {
        Ok(output) if output.passed() => (0, 0),
        Ok(_) => (0, 1),
        Err(_) => (0, 2),
    }
}

/// The exit code of `rehearse replay [--strict]` on `text`, in process.
fn replay_code(text: &str, strict: bool) -> i32 {
    let Ok(bundle) = parse_bundle(text) else {
        return 2;
    };
    match replay_bundle(&bundle, ReplayOptions { strict }) {
        Ok(_) => 0,
        Err(BundleError::Replay(error)) if !error.is_input_error() => 1,
        Err(_) => 2,
    }
}

/// A private working directory for the binary: `tmp/` is its `TMPDIR`.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(dir.path().join("tmp")).expect("tmp/");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the binary in the sandbox, killing it after [`HANG`]; returns
    /// its exit code (`None` if a signal ended it).
    fn rehearse(&self, args: &[&str]) -> Option<i32> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rehearse"))
            .args(args)
            .current_dir(self.path())
            .env("TMPDIR", self.path().join("tmp"))
            .env("NO_COLOR", "1")
            .env("CI", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the rehearse binary runs");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("the child is waited for") {
                return status.code();
            }
            if started.elapsed() > HANG {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`rehearse {}` hung (over {HANG:?})", args.join(" "));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Every path under the sandbox except those under `allowed`, sorted.
    fn unexpected(&self, allowed: &[&str]) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![self.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("a sandbox directory") {
                let path = entry.expect("an entry").path();
                let relative = path.strip_prefix(self.path()).expect("inside");
                let relative = relative.to_string_lossy().into_owned();
                if allowed.iter().any(|allowed| {
                    relative == *allowed || relative.starts_with(&format!("{allowed}/"))
                }) {
                    continue;
                }
                if path.is_dir() && !path.is_symlink() && relative == "tmp" {
                    stack.push(path);
                    continue;
                }
                found.push(PathBuf::from(relative));
            }
        }
        found.sort();
        found
    }
}

/// What a failing case shows: its number, its mutation, the start of its
/// text.
fn describe(index: usize, mutation: &str, text: &str) -> String {
    let head: String = text.chars().take(2_000).collect();
    format!("case {index}: {mutation}\n{head}")
}

/// Runs `check` on case `index`, reporting the case if it panics.
fn guarded<T>(index: usize, mutation: &str, text: &str, check: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(check)) {
        Ok(result) => result,
        Err(panic) => {
            eprintln!("PANIC in {}", describe(index, mutation, text));
            std::panic::resume_unwind(panic)
        }
    }
}

/// The base scenario texts, each re-emitted from its parsed form (the form
/// mutants are written in), with a check that the re-emitted base passes.
fn bases() -> Vec<(String, Value)> {
    BASES
        .iter()
        .map(|name| {
            let path = root().join("scenarios").join(name);
            let text = std::fs::read_to_string(&path).expect("a base scenario");
            let value: Value = serde_yaml::from_str(&text).expect("a base scenario is YAML");
            let emitted = serde_yaml::to_string(&value).expect("YAML out");
            assert_eq!(
                scenario_codes(&emitted),
                (0, 0),
                "{name} re-emitted:\n{emitted}"
            );
            (name.to_string(), value)
        })
        .collect()
}

/// Counts of the outcomes, for the summary line.
#[derive(Default)]
struct Tally {
    cases: usize,
    codes: [usize; 3],
    binary: usize,
    slowest: (Duration, String),
}

impl Tally {
    fn note(&mut self, code: i32, took: Duration, mutation: &str) {
        assert!((0..=2).contains(&code), "exit code {code}");
        self.cases += 1;
        self.codes[code as usize] += 1;
        if took > self.slowest.0 {
            self.slowest = (took, mutation.to_owned());
        }
    }
}

fn scenario_mutants(bases: &[(String, Value)], sandbox: &Sandbox) -> Tally {
    let mut rng = Rng(SEED);
    let mut tally = Tally::default();
    for (base_name, base) in bases {
        for n in 0..PER_BASE {
            let index = tally.cases;
            let mut value = base.clone();
            let mutation = format!("{base_name}: {}", mutate(&mut value, &mut rng));
            let text = serde_yaml::to_string(&value).expect("YAML out");
            let started = Instant::now();
            let (lint, run) = guarded(index, &mutation, &text, || scenario_codes(&text));
            tally.note(run, started.elapsed(), &mutation);
            if n % BINARY_EVERY == 0 {
                let file = sandbox.path().join("mutant.yaml");
                std::fs::write(&file, &text).expect("the mutant is written");
                let lint_binary = sandbox.rehearse(&["lint", "mutant.yaml"]);
                let run_binary = sandbox.rehearse(&["run", "mutant.yaml", "--out", "out"]);
                let shown = describe(index, &mutation, &text);
                assert_eq!(lint_binary, Some(lint), "lint: {shown}");
                assert_eq!(run_binary, Some(run), "run: {shown}");
                let unexpected = sandbox.unexpected(&["mutant.yaml", "out"]);
                assert!(unexpected.is_empty(), "wrote {unexpected:?}: {shown}");
                std::fs::remove_dir_all(sandbox.path().join("out")).ok();
                tally.binary += 1;
            }
        }
    }
    tally
}

/// A capture as one JSON value to mutate: the bundle itself when it is one
/// JSON document, or the list of its lines when it is JSON Lines (so the
/// suite mutates whichever form `run` writes).
fn capture_value(text: &str) -> (Value, bool) {
    if let Ok(value) = serde_json::from_str(text) {
        return (value, false);
    }
    let lines = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("a capture line is JSON"))
        .collect();
    (Value::Array(lines), true)
}

/// The text of a capture value, in the form it was read in.
fn capture_text(value: &Value, lines: bool) -> String {
    match (value, lines) {
        (Value::Array(items), true) => items.iter().map(|item| format!("{item}\n")).collect(),
        _ => serde_json::to_string(value).expect("JSON out"),
    }
}

/// The bundle `run` writes for each base, as a value to mutate.
fn base_bundles(bases: &[(String, Value)]) -> Vec<(String, Value, bool)> {
    bases
        .iter()
        .map(|(name, value)| {
            let text = serde_yaml::to_string(value).expect("YAML out");
            let scenario = parse_str(&text, name, "base").expect("a base parses");
            let output = driver::run(&scenario, name).expect("a base runs");
            let (bundle, lines) = capture_value(&output.capture_json);
            assert_eq!(
                replay_code(&capture_text(&bundle, lines), true),
                0,
                "{name}"
            );
            (name.clone(), bundle, lines)
        })
        .collect()
}

/// A mutated bundle with its seal recomputed, so the mutation reaches past
/// the seal check into validation and replay; `None` when the mutated
/// contents no longer read as a bundle at all.
fn resealed(value: &Value) -> Option<String> {
    let mut unsealed = value.clone();
    unsealed.as_object_mut()?.remove("seal");
    let bundle = rehearse_runtime::seal::read_unsealed(unsealed).ok()?;
    serde_json::to_string(&bundle).ok()
}

fn bundle_mutants(bundles: &[(String, Value, bool)], sandbox: &Sandbox) -> Tally {
    let mut rng = Rng(SEED ^ 0xb0_0d1e);
    let mut tally = Tally::default();
    for (base_name, base, lines) in bundles {
        for n in 0..PER_BASE {
            let index = tally.cases;
            let mut value = base.clone();
            let mutation = format!("{base_name} capture: {}", mutate(&mut value, &mut rng));
            // Half the cases keep the broken seal, half are resealed (a
            // JSON document; JSON Lines are mutated as written).
            let reseal = (n % 2 == 1 && !lines).then(|| resealed(&value)).flatten();
            let (text, mutation) = match reseal {
                Some(text) => (text, format!("{mutation}, resealed")),
                None => (capture_text(&value, *lines), mutation),
            };
            let strict = n % 3 == 0;
            let started = Instant::now();
            let code = guarded(index, &mutation, &text, || replay_code(&text, strict));
            tally.note(code, started.elapsed(), &mutation);
            if n % BINARY_EVERY == 1 {
                std::fs::write(sandbox.path().join("mutant.json"), &text).expect("written");
                let mut args = vec!["replay", "mutant.json"];
                if strict {
                    args.push("--strict");
                }
                let shown = describe(index, &mutation, &text);
                assert_eq!(sandbox.rehearse(&args), Some(code), "replay: {shown}");
                let unexpected = sandbox.unexpected(&["mutant.json"]);
                assert!(unexpected.is_empty(), "wrote {unexpected:?}: {shown}");
                tally.binary += 1;
            }
        }
    }
    tally
}

/// Every mutation ends in 0, 1 or 2, in process and in the sampled binary
/// runs alike, and leaves no scratch directory behind.
#[test]
fn mutations_end_in_0_1_or_2() {
    // The in-process runs keep their scratch logs in a sandbox of their
    // own, so litter would show; set before any thread of this test starts.
    let (in_process, scenario_box, bundle_box) = (Sandbox::new(), Sandbox::new(), Sandbox::new());
    std::env::set_var("TMPDIR", in_process.path().join("tmp"));
    let started = Instant::now();
    let bases = bases();
    let bundles = base_bundles(&bases);
    let (scenarios, captures) = std::thread::scope(|scope| {
        let scenarios = scope.spawn(|| scenario_mutants(&bases, &scenario_box));
        let captures = bundle_mutants(&bundles, &bundle_box);
        (scenarios.join(), captures)
    });
    let scenarios = scenarios.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    for (what, tally) in [("scenario", &scenarios), ("bundle", &captures)] {
        eprintln!(
            "{what} mutations: {} (exit 0: {}, 1: {}, 2: {}), {} through the binary, slowest in process {:?} ({})",
            tally.cases, tally.codes[0], tally.codes[1], tally.codes[2], tally.binary, tally.slowest.0, tally.slowest.1
        );
    }
    eprintln!("mutation suite: {:?}", started.elapsed());
    assert_eq!(scenarios.cases + captures.cases, 2 * BASES.len() * PER_BASE);
    // Both kinds of outcome occur: the suite reaches past the refusals.
    assert!(scenarios.codes[0] > 0 && scenarios.codes[2] > 0);
    assert!(captures.codes[0] > 0 && captures.codes[2] > 0);
    for (sandbox, allowed) in [
        (&in_process, ""),
        (&scenario_box, "mutant.yaml"),
        (&bundle_box, "mutant.json"),
    ] {
        let litter = sandbox.unexpected(&[allowed]);
        assert!(litter.is_empty(), "left behind: {litter:?}");
    }
}
