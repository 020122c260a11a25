//! The invariants that are absences, checked on the source: the runtime
//! reads no clock, no OS randomness, iterates no hash-ordered collection,
//! and touches no CLI, YAML or environment. Test code (files named
//! `tests.rs` and everything after a `#[cfg(test)]`) is exempt.

use std::path::Path;

const FORBIDDEN: [(&str, &str); 10] = [
    ("SystemTime", "the wall clock"),
    ("Instant::now", "the wall clock"),
    ("now_v7", "ids from the wall clock and OS randomness"),
    ("thread_rng", "OS randomness"),
    ("getrandom", "OS randomness"),
    ("HashMap", "hash-order iteration"),
    ("HashSet", "hash-order iteration"),
    ("std::env::var", "the environment"),
    ("clap::", "the command line"),
    ("serde_yaml", "YAML, which is the harness's business"),
];

/// The one place a hash collection may stand: `keyset.rs`, a set asked
/// only whether it holds a key, whose `Debug` sorts. It must offer no way
/// to iterate it (checked below).
const HASHED_SET_MODULE: &str = "keyset.rs";

fn scan(dir: &Path, found: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            scan(&path, found);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs")
            || path.file_name().is_some_and(|n| n == "tests.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let production = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (number, line) in production.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for (token, why) in FORBIDDEN {
                let allowed =
                    token == "HashSet" && path.file_name().is_some_and(|n| n == HASHED_SET_MODULE);
                if code.contains(token) && !allowed {
                    found.push(format!(
                        "{}:{}: `{token}` ({why})",
                        path.display(),
                        number + 1
                    ));
                }
            }
        }
    }
}

#[test]
fn the_runtime_source_has_no_clock_randomness_hash_order_or_cli() {
    let mut found = Vec::new();
    scan(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    assert!(
        found.is_empty(),
        "forbidden in runtime/src:\n{}",
        found.join("\n")
    );
}

/// The hashed set offers membership only: nothing that hands out its keys
/// in hash order.
#[test]
fn the_hashed_set_cannot_be_iterated() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(HASHED_SET_MODULE);
    let text = std::fs::read_to_string(&path).unwrap();
    let production = text.split("#[cfg(test)]").next().unwrap_or_default();
    for way in [
        "IntoIterator for",
        "fn iter",
        "impl Iterator",
        "fn drain",
        "fn into_inner",
        "pub HashSet",
        "Deref for",
        "Serialize",
    ] {
        assert!(
            !production.contains(way),
            "{HASHED_SET_MODULE} offers `{way}`"
        );
    }
}

#[test]
fn the_scan_finds_what_it_forbids() {
    let dir = std::env::temp_dir().join(format!("rehearse-absences-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.rs"), "fn f() { let _ = std::time::SystemTime::now(); }\n#[cfg(test)]\nfn g() { HashMap::new(); }\n").unwrap();
    let mut found = Vec::new();
    scan(&dir, &mut found);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with("bad.rs:1: `SystemTime` (the wall clock)"),
        "{found:?}"
    );
}
