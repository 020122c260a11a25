//! Where things are in a scenario file.
//!
//! serde_yaml reports positions only in its errors, so a second, event-level
//! pass with saphyr-parser records where each step and persona starts, finds
//! the position of any path for errors found after parsing, and refuses
//! duplicate keys, which serde would silently resolve to the last one.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use saphyr_parser::{Event, Parser, Span};

use super::model::Position;

/// One segment of a path into the YAML document.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg<'a> {
    Key(Cow<'a, str>),
    Index(usize),
}

/// A path into the document: to a value, or with `key` set, to the key
/// naming the last segment.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YamlPath {
    pub segs: Vec<Seg<'static>>,
    pub key: bool,
}

impl YamlPath {
    /// The document's root.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path followed by the map key `key`.
    pub fn field(mut self, key: &str) -> Self {
        self.segs.push(Seg::Key(Cow::Owned(key.to_owned())));
        self
    }

    /// This path followed by the list index `index`.
    pub fn index(mut self, index: usize) -> Self {
        self.segs.push(Seg::Index(index));
        self
    }

    /// The key that names this path's last segment, rather than its value.
    pub fn as_key(mut self) -> Self {
        self.key = true;
        self
    }
}

impl fmt::Display for YamlPath {
    /// Writes the path as serde_yaml does: `steps[3].trigger.persona`, `.` for the root.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segs.is_empty() {
            return f.write_str(".");
        }
        for (i, seg) in self.segs.iter().enumerate() {
            match seg {
                Seg::Key(key) if i == 0 => f.write_str(key)?,
                Seg::Key(key) => write!(f, ".{key}")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A problem found by the layout pass, at a position.
#[derive(Debug)]
pub(crate) struct LayoutError {
    pub position: Position,
    pub message: String,
}

/// Where each step and persona starts.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    /// One position per item of the top-level `steps` list, in order.
    pub steps: Vec<Position>,
    /// The position of each persona's name under `personas`.
    pub personas: BTreeMap<String, Position>,
}

/// Records the positions of steps and personas, refusing duplicate keys and
/// a second document.
pub(crate) fn layout(text: &str) -> Result<Layout, LayoutError> {
    let mut layout = Layout::default();
    walk(text, &mut |path, is_key, position| match path {
        [Seg::Key(section), Seg::Index(_)] if section == "steps" && !is_key => {
            layout.steps.push(position);
        }
        [Seg::Key(section), Seg::Key(name)] if section == "personas" && is_key => {
            layout.personas.insert(name.to_string(), position);
        }
        _ => {}
    })?;
    Ok(layout)
}

/// The position of each target, or of its deepest ancestor present in the
/// file when the target itself is not written (a defaulted field, a value
/// that came from an alias). `None` only for an empty document.
pub(crate) fn locate(text: &str, targets: &[YamlPath]) -> Vec<Option<Position>> {
    // For each depth on the current branch, the targets whose path still
    // matches it; a subtree no target enters costs one empty list per node.
    let mut active: Vec<Vec<usize>> = Vec::new();
    let mut best: Vec<Option<(usize, bool, Position)>> = vec![None; targets.len()];
    // A document the layout pass refused still has useful positions before
    // the refusal, so the walk's own error is ignored here.
    let _ = walk(text, &mut |path, is_key, position| {
        let depth = path.len();
        let matching: Vec<usize> = if depth == 0 {
            (0..targets.len()).collect()
        } else {
            active
                .get(depth - 1)
                .map(|parent| {
                    parent
                        .iter()
                        .copied()
                        .filter(|&t| targets[t].segs.get(depth - 1) == Some(&path[depth - 1]))
                        .collect()
                })
                .unwrap_or_default()
        };
        for &t in &matching {
            let exact = targets[t].segs.len() == depth && targets[t].key == is_key;
            let better = match best[t] {
                None => true,
                Some((_, true, _)) => false,
                Some((old_depth, false, _)) => exact || depth > old_depth,
            };
            if better {
                best[t] = Some((depth, exact, position));
            }
        }
        active.truncate(depth);
        active.push(matching);
    });
    best.into_iter()
        .map(|found| found.map(|(_, _, position)| position))
        .collect()
}

/// Where, in the map whose node starts at `map_at`, the last of `keys` is
/// written (its value with `value`, else the key itself): for errors that
/// serde reports at the start of the map they are about.
pub(crate) fn key_in_map(
    text: &str,
    map_at: Position,
    keys: &[&str],
    value: bool,
) -> Option<Position> {
    let mut map_path: Option<Vec<Seg<'_>>> = None;
    let mut found = None;
    // As in `locate`, a refused document still has positions before the
    // refusal.
    let _ = walk(text, &mut |path, is_key, position| match &map_path {
        None if !is_key && position == map_at => map_path = Some(path.to_vec()),
        Some(base) if path.len() == base.len() + 1 && path.starts_with(base) && is_key != value => {
            if matches!(path.last(), Some(Seg::Key(key)) if keys.contains(&key.as_ref())) {
                found = Some(position);
            }
        }
        _ => {}
    });
    found
}

/// What a node is to its parent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Root,
    Key,
    Value,
}

enum Frame<'a> {
    Seq {
        next: usize,
        role: Role,
    },
    Map {
        /// The key whose value comes next, once the key has been read.
        pending: Option<Cow<'a, str>>,
        expecting_key: bool,
        keys: BTreeMap<Cow<'a, str>, Position>,
        role: Role,
    },
}

fn position(span: &Span) -> Position {
    Position {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// Calls `on_node(path, is_key, position)` for every node in document
/// order: map keys (with the key as the path's last segment) and values.
/// Iterative, so nesting depth costs no stack.
fn walk<'a>(
    text: &'a str,
    on_node: &mut dyn FnMut(&[Seg<'a>], bool, Position),
) -> Result<(), LayoutError> {
    let mut walker = Walker {
        frames: Vec::new(),
        path: Vec::new(),
        on_node,
    };
    let mut documents = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|error| LayoutError {
            position: Position {
                line: error.marker().line(),
                column: error.marker().col() + 1,
            },
            message: error.info().to_owned(),
        })?;
        let at = position(&span);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(LayoutError {
                        position: at,
                        message: "a second YAML document, expected one scenario per file"
                            .to_owned(),
                    });
                }
            }
            Event::Scalar(value, ..) => walker.scalar(value, at)?,
            Event::Alias(_) => walker.alias(at),
            Event::SequenceStart(..) => walker.open(true, at),
            Event::MappingStart(..) => walker.open(false, at),
            Event::SequenceEnd | Event::MappingEnd => walker.close(),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
    Ok(())
}

/// The state of a `walk`: the open containers, the path to the current
/// node, and the callback every node is shown to.
struct Walker<'a, 'f> {
    frames: Vec<Frame<'a>>,
    path: Vec<Seg<'a>>,
    on_node: &'f mut dyn FnMut(&[Seg<'a>], bool, Position),
}

impl<'a> Walker<'a, '_> {
    /// A scalar: a map key (refused when the map already has it) or a value.
    fn scalar(&mut self, value: Cow<'a, str>, at: Position) -> Result<(), LayoutError> {
        let (seg, role) = child(&mut self.frames);
        if role != Role::Key {
            self.visit_leaf(seg, at);
            return Ok(());
        }
        if let Some(Frame::Map { keys, .. }) = self.frames.last_mut() {
            if value != "<<" {
                if let Some(first) = keys.get(&value) {
                    return Err(LayoutError {
                        position: at,
                        message: format!(
                            "duplicate key `{value}`, first written at line {}, expected each key once",
                            first.line
                        ),
                    });
                }
                keys.insert(value.clone(), at);
            }
        }
        self.path.push(Seg::Key(value.clone()));
        (self.on_node)(&self.path, true, at);
        self.path.pop();
        key_done(&mut self.frames, value);
        Ok(())
    }

    /// An alias: a key whose name is unknown here, or a value.
    fn alias(&mut self, at: Position) {
        let (seg, role) = child(&mut self.frames);
        if role == Role::Key {
            key_done(&mut self.frames, Cow::Borrowed("?"));
        } else {
            self.visit_leaf(seg, at);
        }
    }

    /// The start of a sequence (`seq`) or a map. The root container has no
    /// segment of its own; every other container's segment stays on the
    /// path until its end event.
    fn open(&mut self, seq: bool, at: Position) {
        let (seg, role) = child(&mut self.frames);
        if let Some(seg) = seg {
            self.path.push(seg);
        }
        (self.on_node)(&self.path, role == Role::Key, at);
        self.frames.push(if seq {
            Frame::Seq { next: 0, role }
        } else {
            Frame::Map {
                pending: None,
                expecting_key: true,
                keys: BTreeMap::new(),
                role,
            }
        });
    }

    /// The end of the innermost container.
    fn close(&mut self) {
        let role = match self.frames.pop() {
            Some(Frame::Seq { role, .. } | Frame::Map { role, .. }) => role,
            None => Role::Root,
        };
        if role != Role::Root {
            self.path.pop();
        }
        if role == Role::Key {
            key_done(&mut self.frames, Cow::Borrowed("?"));
        } else {
            value_done(&mut self.frames);
        }
    }

    /// A value with no children: shown at its segment, then the map it is
    /// in expects a key again.
    fn visit_leaf(&mut self, seg: Option<Seg<'a>>, at: Position) {
        let pushed = seg.is_some();
        if let Some(seg) = seg {
            self.path.push(seg);
        }
        (self.on_node)(&self.path, false, at);
        if pushed {
            self.path.pop();
        }
        value_done(&mut self.frames);
    }
}

/// The segment and role of the next node under the innermost container.
fn child<'a>(frames: &mut [Frame<'a>]) -> (Option<Seg<'a>>, Role) {
    match frames.last_mut() {
        None => (None, Role::Root),
        Some(Frame::Seq { next, .. }) => {
            let seg = Seg::Index(*next);
            *next += 1;
            (Some(seg), Role::Value)
        }
        Some(Frame::Map {
            expecting_key: true,
            ..
        }) => (Some(Seg::Key(Cow::Borrowed("?"))), Role::Key),
        Some(Frame::Map { pending, .. }) => (
            Some(Seg::Key(pending.take().unwrap_or(Cow::Borrowed("?")))),
            Role::Value,
        ),
    }
}

fn key_done<'a>(frames: &mut [Frame<'a>], key: Cow<'a, str>) {
    if let Some(Frame::Map {
        pending,
        expecting_key,
        ..
    }) = frames.last_mut()
    {
        *pending = Some(key);
        *expecting_key = false;
    }
}

fn value_done(frames: &mut [Frame<'_>]) {
    if let Some(Frame::Map { expecting_key, .. }) = frames.last_mut() {
        *expecting_key = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "version: 1\npersonas:\n  a: {entry_workflow: w}\nsteps:\n  - at: 0s\n    pause: a\n  - {at: 1s, trigger: {persona: b}}\n";

    #[test]
    fn records_steps_and_personas() {
        let layout = layout(TEXT).unwrap();
        assert_eq!(
            layout.steps,
            vec![
                Position { line: 5, column: 5 },
                Position { line: 7, column: 5 }
            ]
        );
        assert_eq!(layout.personas["a"], Position { line: 3, column: 3 });
    }

    #[test]
    fn locates_values_keys_and_nearest_ancestors() {
        let targets = [
            YamlPath::root()
                .field("steps")
                .index(1)
                .field("trigger")
                .field("persona"),
            YamlPath::root().field("personas").field("a").as_key(),
            YamlPath::root()
                .field("steps")
                .index(0)
                .field("expect")
                .field("persona"),
            YamlPath::root(),
        ];
        let found = locate(TEXT, &targets);
        assert_eq!(
            found,
            vec![
                Some(Position {
                    line: 7,
                    column: 33
                }),
                Some(Position { line: 3, column: 3 }),
                Some(Position { line: 5, column: 5 }),
                Some(Position { line: 1, column: 1 }),
            ]
        );
        assert_eq!(targets[0].to_string(), "steps[1].trigger.persona");
    }

    #[test]
    fn refuses_duplicate_keys_and_second_documents() {
        let error = layout("personas:\n  a: {}\n  a: {}\n").unwrap_err();
        assert_eq!(error.position, Position { line: 3, column: 3 });
        assert_eq!(
            error.message,
            "duplicate key `a`, first written at line 2, expected each key once"
        );
        let error = layout("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(error.position, Position { line: 2, column: 1 });
    }
}
