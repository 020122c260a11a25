//! Reading a scenario file: limits, YAML into the raw model, positions,
//! defaults and resolved times, then validation, with every error at the
//! line and column it is about.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::de::RawScenario;
use super::error::{from_yaml, ScenarioError};
use super::layout::{key_in_map, layout, locate, Layout, LayoutError, YamlPath};
use super::model::{Position, Scenario, Step, FORMAT_VERSION};
use super::sequence::repeat_error_keys;
use super::validate::{name_problem, validate};

/// The largest scenario file read: 512 MiB.
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

const FIRST: Position = Position { line: 1, column: 1 };

/// Reads and validates the scenario file at `path`. Errors name the path as
/// given; the name defaults to the file stem.
pub fn parse_scenario(path: &Path) -> Result<Scenario, ScenarioError> {
    let display = path.display().to_string();
    let read_error = |source| ScenarioError::Read {
        path: display.clone(),
        source,
    };
    // A FIFO or a device is refused before it is opened: opening a FIFO
    // would wait forever for a writer.
    let kind = std::fs::metadata(path).map_err(read_error)?.file_type();
    if !kind.is_file() {
        let what = crate::atomic::describe(&kind);
        return Err(read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {what}, expected a YAML file"),
        )));
    }
    let file = File::open(path).map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large(&display, metadata.len()));
    }
    let mut bytes = Vec::new();
    // The file may grow between the size check and the read; reading one byte
    // past the limit tells.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(&display, bytes.len() as u64));
    }
    let text = String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        ScenarioError::invalid(
            &display,
            end_of(valid),
            format!("invalid UTF-8 at byte {}, expected UTF-8 text", valid.len()),
        )
    })?;
    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_str(&text, &display, &stem)
}

fn too_large(path: &str, len: u64) -> ScenarioError {
    ScenarioError::invalid(
        path,
        FIRST,
        format!("scenario file is {len} bytes, expected at most {MAX_FILE_BYTES} (512 MiB)"),
    )
}

/// The position just after `text`.
fn end_of(text: &str) -> Position {
    let line = text.matches('\n').count() + 1;
    let last_line = text.rsplit('\n').next().unwrap_or_default();
    Position {
        line,
        column: last_line.chars().count() + 1,
    }
}

/// Parses and validates scenario text. `display_path` names the file in
/// errors; `stem` is the default name.
pub fn parse_str(text: &str, display_path: &str, stem: &str) -> Result<Scenario, ScenarioError> {
    let invalid = |position: Position, message: String| {
        ScenarioError::invalid(display_path, position, message)
    };
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(display_path, text.len() as u64));
    }
    // Editors do not count a byte-order mark as a column, and libyaml reads
    // one as the start of a second document, so it is dropped first.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if is_blank(text) {
        return Err(invalid(
            FIRST,
            format!("empty scenario, expected a map with `version: {FORMAT_VERSION}`, `start` and `steps`"),
        ));
    }
    // Depth, alias expansion, duplicate keys via aliases and tags, amounts
    // of money: refused here, in linear time, before anything builds values
    // (see `guard.rs`).
    super::guard::check(text).map_err(|found| invalid(found.position, found.message))?;
    let (raw, found) = read_and_lay_out(text);
    let raw = raw.map_err(|error| {
        let (position, message) = yaml_error(text, &error);
        invalid(position, message)
    })?;
    let found = found.map_err(|found| invalid(found.position, found.message))?;
    let name = match raw.name.clone() {
        Some(name) => name,
        None => default_name(stem).map_err(|error| invalid(FIRST, error.to_string()))?,
    };
    let scenario = build(raw, name, text, found);
    let issues = validate(&scenario);
    if issues.is_empty() {
        return Ok(scenario);
    }
    // Report the problem written first in the file, as a compiler would.
    let paths: Vec<YamlPath> = issues.iter().map(|issue| issue.path.clone()).collect();
    let positions = locate(text, &paths);
    let (position, issue) = positions
        .into_iter()
        .map(|position| position.unwrap_or(FIRST))
        .zip(issues)
        .min_by_key(|(position, _)| *position)
        .unwrap_or_else(|| unreachable!("validation returned at least one issue"));
    Err(invalid(position, issue.message))
}

/// The text at which the layout pass runs on a second thread, beside
/// serde_yaml's (1 MiB, about 7,000 steps): below it the two passes take a
/// few milliseconds and a thread would cost more than it saves.
pub const PARALLEL_LAYOUT_BYTES: usize = 1024 * 1024;

/// The raw scenario serde_yaml reads from `text`, and the layout pass's
/// positions. The passes are independent reads of the same text: for a
/// long scenario the layout pass (a fifth of the time of a 100,000-step
/// file) runs beside serde_yaml's (half of it) rather than after it, or
/// after it when a thread cannot be had. The caller reports serde's error
/// before the layout's, as when they ran one after the other.
fn read_and_lay_out(
    text: &str,
) -> (
    Result<RawScenario, serde_yaml::Error>,
    Result<Layout, LayoutError>,
) {
    if text.len() < PARALLEL_LAYOUT_BYTES {
        return (serde_yaml::from_str(text), layout(text));
    }
    std::thread::scope(|scope| {
        let beside = std::thread::Builder::new()
            .name("rehearse-layout".to_owned())
            .spawn_scoped(scope, || layout(text));
        let raw = serde_yaml::from_str(text);
        let found = match beside {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => layout(text),
        };
        (raw, found)
    })
}

/// Where a serde_yaml error is and what it says, with the position made
/// precise where serde's is not: a control character at its place, a
/// second document (which serde gives no position), an error of `repeat`'s
/// own at the key it is about rather than the map's start.
fn yaml_error(text: &str, error: &serde_yaml::Error) -> (Position, String) {
    let (position, message) = from_yaml(error);
    if message.starts_with("control characters are not allowed") {
        if let Some((position, control)) = first_control(text) {
            let message = format!(
                "control character U+{:04X} is not allowed, expected YAML text",
                u32::from(control)
            );
            return (position, message);
        }
    }
    let Some(position) = position else {
        return match layout(text) {
            Err(found) => (found.position, found.message),
            Ok(_) => (FIRST, message),
        };
    };
    let precise = repeat_error_keys(&message)
        .and_then(|(keys, value)| key_in_map(text, position, &keys, value));
    (precise.unwrap_or(position), message)
}

/// The name a scenario without `name:` takes: its file stem, when that is
/// a valid name.
fn default_name(stem: &str) -> Result<String, StemNotAName> {
    if name_problem(stem).is_some() {
        return Err(StemNotAName(stem.to_owned()));
    }
    Ok(stem.to_owned())
}

/// A file stem that cannot be the name of a scenario without `name:`.
#[derive(Debug, thiserror::Error)]
#[error("the scenario name defaults to the file stem `{0}`, which is not `[a-z0-9_-]+`, expected a `name:` field or a file named like `pause-resume_2.yaml`")]
struct StemNotAName(String);

/// The scenario of `raw`, each step with its resolved time and its place
/// in `text`.
fn build(raw: RawScenario, name: String, text: &str, found: Layout) -> Scenario {
    let start_ms = raw.start.0;
    let step_positions = if found.steps.len() == raw.steps.0.len() {
        found.steps
    } else {
        // Steps that came from an alias have no place of their own; they
        // point at the `steps` list.
        let list = locate(text, &[YamlPath::root().field("steps")])
            .pop()
            .flatten()
            .unwrap_or(FIRST);
        vec![list; raw.steps.0.len()]
    };
    let steps = raw
        .steps
        .0
        .into_iter()
        .zip(step_positions)
        .map(|(step, position)| Step {
            // An overflowing time saturates here and validation reports it
            // as out of range.
            at_ms: step.at.resolve(start_ms).unwrap_or(i64::MAX),
            at: step.at,
            op: step.op,
            sequence: step.sequence,
            expect: step.expect,
            line: position.line,
            column: position.column,
        })
        .collect();
    Scenario {
        version: raw.version.0,
        name,
        description: raw.description,
        start_ms,
        seed: raw.seed,
        personas: raw.personas,
        supervisor: raw.supervisor,
        steps,
        persona_positions: found.personas,
    }
}

/// The first character YAML does not allow in a document, and where it is.
fn first_control(text: &str) -> Option<(Position, char)> {
    let (offset, control) = text.char_indices().find(|(_, c)| {
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{85}'))
            || matches!(c, '\u{fffe}' | '\u{ffff}')
    })?;
    Some((end_of(&text[..offset]), control))
}

/// Whether the text has nothing but blank lines and comments.
fn is_blank(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|line| line.is_empty() || line.starts_with('#'))
}
