//! A guard over the YAML text before anything builds values from it: one
//! streaming pass over the parser's events, in time linear in the text,
//! that refuses what would make the later passes slow, huge or wrong, each
//! at the position it is written:
//!
//! - nesting deeper than [`MAX_DEPTH`] (stops at the first container too
//!   deep, however deep the rest goes);
//! - aliases that expand to more than [`MAX_ALIAS_BYTES`] (or the text's own
//!   size, if larger): the size of what each anchor stands for is counted
//!   once, so a "billion laughs" is refused at the first alias past the
//!   limit, before any of it is built;
//! - duplicate map keys, including keys written through an alias or with a
//!   tag (the later pass compares only plain keys as written);
//! - a quoted scalar tagged as a number, boolean or null (`!!float "0.1"`),
//!   which serde would read as a string: refused with what to write instead;
//! - an amount of money (`usd` and `avoided_usd` under `cost` or `spend`,
//!   `daily_usd`, `hourly_usd` and `run_usd` under `budget`) that its text
//!   does not state exactly: read from the text as an exact decimal
//!   ([`Money::parse_exact`]), refused with more than twelve decimal places,
//!   above [`MAX_USD`], or with more significant digits than the number
//!   the runtime carries holds exactly, so the amount admitted is the
//!   decimal written (docs/SCENARIOS.md, "Money").

use std::collections::BTreeMap;

use rehearse_runtime::config::MAX_USD;
use rehearse_runtime::money::{Money, MoneyTextError};
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span};

use super::layout::LayoutError;
use super::model::Position;

/// The deepest nesting of maps and lists a scenario may have.
pub const MAX_DEPTH: usize = 64;

/// How many bytes aliases may add to a document at least (scalars and one
/// byte per node): more when the text itself is larger.
pub const MAX_ALIAS_BYTES: u64 = 16 * 1024 * 1024;

/// An open map or list.
struct Open {
    /// The expanded size of the node so far.
    bytes: u64,
    anchor: usize,
    /// The map key this node is the value of, when it has one.
    under: Option<String>,
    /// For a map: which keys it has and where the next node goes.
    map: Option<MapState>,
}

/// Where a map is: whether the next node is a key, the keys seen with
/// their lines, and the last key read.
#[derive(Default)]
struct MapState {
    expecting_key: bool,
    keys: BTreeMap<String, usize>,
    last_key: Option<String>,
}

/// The guard's state over one document.
struct Guard {
    stack: Vec<Open>,
    /// The expanded size of each anchored node.
    anchors: BTreeMap<usize, u64>,
    /// The text of each anchored scalar, for keys written through aliases.
    scalar_anchors: BTreeMap<usize, String>,
    alias_bytes: u64,
    alias_limit: u64,
}

fn at(span: &Span) -> Position {
    Position {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

fn refuse(position: Position, message: String) -> LayoutError {
    LayoutError { position, message }
}

fn too_deep(position: Position) -> LayoutError {
    refuse(
        position,
        format!("maps and lists nested more than {MAX_DEPTH} deep, expected a flatter scenario"),
    )
}

/// Checks `text` as described in the module documentation. Parse errors
/// are left to the passes that follow (they report them as they always
/// did); only the guard's own refusals are returned.
pub(crate) fn check(text: &str) -> Result<(), LayoutError> {
    let mut guard = Guard {
        stack: Vec::new(),
        anchors: BTreeMap::new(),
        scalar_anchors: BTreeMap::new(),
        alias_bytes: 0,
        alias_limit: MAX_ALIAS_BYTES.max(text.len() as u64),
    };
    // Where the text after the last event delivered starts.
    let mut resume = Marker::new(0, 1, 0);
    for event in Parser::new_from_str(text) {
        let (event, span) = match event {
            Ok(found) => found,
            // The scanner reads ahead and stops at its own flow-level limit
            // (255) before the events reach ours: the containers it read
            // ahead are counted here, to refuse the first one too deep.
            Err(error) if error.info().contains("recursion limit") => {
                let stopped = Position {
                    line: error.marker().line(),
                    column: error.marker().col() + 1,
                };
                let position = first_too_deep(text, resume, guard.stack.len()).unwrap_or(stopped);
                return Err(too_deep(position));
            }
            Err(_) => return Ok(()),
        };
        resume = span.end;
        guard.event(event, &span)?;
    }
    Ok(())
}

/// The position of the first flow container (`[` or `{`) after `from` that
/// opens past [`MAX_DEPTH`], given `depth` containers open at `from`.
/// Quoted scalars and comments are skipped; plain scalars cannot hold flow
/// indicators inside flow collections.
fn first_too_deep(text: &str, from: Marker, depth: usize) -> Option<Position> {
    let mut depth = depth;
    let (mut line, mut column) = (from.line(), from.col());
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut previous = ' ';
    let mut chars = text.chars().skip(from.index()).peekable();
    while let Some(c) = chars.next() {
        let here = Position {
            line,
            column: column + 1,
        };
        if c == '\n' {
            (line, column) = (line + 1, 0);
            comment = false;
        } else {
            column += 1;
        }
        match (quote, c) {
            _ if comment => {}
            // An escaped character is skipped (a line break is counted above).
            (Some('"'), '\\') if chars.next_if(|next| *next != '\n').is_some() => {
                column += 1;
            }
            (Some(open), _) if c == open => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') if previous.is_whitespace() => comment = true,
            (None, '[' | '{') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(here);
                }
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        previous = c;
    }
    None
}

impl Guard {
    fn event(&mut self, event: Event<'_>, span: &Span) -> Result<(), LayoutError> {
        match event {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let is_map = matches!(event, Event::MappingStart(..));
                let under = self.child_key(None, span)?;
                if self.stack.len() >= MAX_DEPTH {
                    return Err(too_deep(at(span)));
                }
                self.stack.push(Open {
                    bytes: 1,
                    anchor,
                    under,
                    map: is_map.then(|| MapState {
                        expecting_key: true,
                        ..MapState::default()
                    }),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(open) = self.stack.pop() {
                    self.finish(open.bytes, open.anchor);
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                if let Some(tag) = tag.filter(|tag| tag.is_yaml_core_schema()) {
                    let typed = matches!(tag.suffix.as_str(), "int" | "float" | "bool" | "null");
                    if typed && style != ScalarStyle::Plain {
                        return Err(refuse(
                            at(span),
                            format!(
                                "a quoted value tagged `!!{}`, expected the value written plainly without a tag, such as `0.1` or `true`",
                                tag.suffix
                            ),
                        ));
                    }
                }
                let under = self.child_key(Some(&value), span)?;
                if let (Some(key), ScalarStyle::Plain) = (under, style) {
                    self.check_money(&key, &value, span)?;
                }
                if anchor != 0 {
                    self.scalar_anchors.insert(anchor, value.to_string());
                }
                self.finish(value.len() as u64 + 1, anchor);
            }
            Event::Alias(anchor) => {
                let key = self.scalar_anchors.get(&anchor).cloned();
                self.child_key(key.as_deref(), span)?;
                let bytes = self.anchors.get(&anchor).copied().unwrap_or(1);
                self.alias_bytes = self.alias_bytes.saturating_add(bytes);
                if self.alias_bytes > self.alias_limit {
                    return Err(refuse(
                        at(span),
                        format!(
                            "aliases expand to more than {} bytes, expected each anchor used a few times",
                            self.alias_limit
                        ),
                    ));
                }
                self.finish(bytes, 0);
            }
            Event::DocumentStart(_) => {
                self.stack.clear();
            }
            _ => {}
        }
        Ok(())
    }

    /// A node of `bytes` ended: it counts into its parent, and into its
    /// anchor when it has one.
    fn finish(&mut self, bytes: u64, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, bytes);
        }
        if let Some(parent) = self.stack.last_mut() {
            parent.bytes = parent.bytes.saturating_add(bytes);
        }
    }

    /// Records a node under the innermost map: when it is a key (`key` is
    /// its text, `None` for a map or list as a key), refuses a key seen
    /// before in the same map; when it is a value, returns its key.
    fn child_key(&mut self, key: Option<&str>, span: &Span) -> Result<Option<String>, LayoutError> {
        let Some(Open { map: Some(map), .. }) = self.stack.last_mut() else {
            return Ok(None);
        };
        let is_key = map.expecting_key;
        map.expecting_key = !is_key;
        if !is_key {
            return Ok(map.last_key.take());
        }
        map.last_key = key.map(str::to_owned);
        let Some(key) = key.filter(|key| *key != "<<") else {
            return Ok(None);
        };
        let keys = &mut map.keys;
        let position = at(span);
        if let Some(first) = keys.get(key) {
            return Err(refuse(
                position,
                format!(
                    "duplicate key `{key}`, first written at line {first}, expected each key once"
                ),
            ));
        }
        keys.insert(key.to_string(), position.line);
        Ok(None)
    }

    /// Refuses a plain scalar under the map key `key` that is an amount of
    /// money its text does not state exactly (see the module
    /// documentation). What is not a decimal, and negative amounts, are
    /// left to the passes after, which refuse them as before.
    fn check_money(&self, key: &str, text: &str, span: &Span) -> Result<(), LayoutError> {
        let parent = self.stack.last().and_then(|open| open.under.as_deref());
        let is_money = match parent {
            Some("cost" | "spend") => matches!(key, "usd" | "avoided_usd"),
            Some("budget") => matches!(key, "daily_usd" | "hourly_usd" | "run_usd"),
            _ => false,
        };
        if !is_money || text.starts_with('-') {
            return Ok(());
        }
        let above = || {
            format!("amount `{text}` for `{key}` is above the limit, expected at most {MAX_USD}")
        };
        let exact = match Money::parse_exact(text) {
            Ok(exact) => exact,
            Err(MoneyTextError::NotDecimal) => return Ok(()),
            Err(MoneyTextError::TooLarge) => return Err(refuse(at(span), above())),
            Err(MoneyTextError::TooManyPlaces(places)) => {
                return Err(refuse(
                    at(span),
                    format!(
                        "amount `{text}` for `{key}` has {places} decimal places, expected at most 12 (amounts are exact to 10^-12 USD)"
                    ),
                ))
            }
        };
        if exact > Money::from_f64(MAX_USD) {
            return Err(refuse(at(span), above()));
        }
        // The runtime carries amounts as the nearest `f64` and reads them
        // back as its shortest decimal: only amounts that survive that
        // unchanged are admitted.
        let carried = text.parse::<f64>().map(Money::from_f64);
        if carried != Ok(exact) {
            return Err(refuse(
                at(span),
                format!(
                    "amount `{text}` for `{key}` has more significant digits than an amount holds exactly, expected at most 15"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> (usize, usize, String) {
        let error = check(text).unwrap_err();
        (error.position.line, error.position.column, error.message)
    }

    #[test]
    fn deep_nesting_stops_early_and_in_linear_time() {
        let text = "[".repeat(100_000);
        let started = std::time::Instant::now();
        let (line, _, message) = refused(&text);
        assert_eq!(line, 1);
        assert!(message.contains("nested more than 64 deep"), "{message}");
        // The 65th container, not where the scanner's read-ahead stopped.
        assert_eq!(refused(&text).1, MAX_DEPTH + 1);
        let shallow = "[".repeat(MAX_DEPTH + 1);
        assert_eq!(refused(&shallow).1, MAX_DEPTH + 1);
        // Brackets in quotes and comments do not count.
        let quoted = format!("x: {}\"[[[[\", {}", "[".repeat(60), "[".repeat(300));
        assert_eq!(refused(&quoted).1, 75);
        let lines = format!("a:\n  b: {}", "[\"]\", # [\n    ".repeat(400));
        assert_eq!(refused(&lines).0, 2 + 62);
        assert!(started.elapsed().as_secs() < 5);
    }

    #[test]
    fn alias_expansion_is_bounded() {
        let big = "x".repeat(1024 * 1024);
        let mut text = format!("a: &s {big}\nb: [");
        text.push_str(&vec!["*s"; 1000].join(", "));
        text.push_str("]\n");
        let started = std::time::Instant::now();
        let (line, _, message) = refused(&text);
        assert_eq!(line, 2);
        assert!(message.contains("aliases expand"), "{message}");
        assert!(started.elapsed().as_secs() < 5);
        // A billion laughs, nested.
        let mut laughs = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let refs = vec![format!("*l{}", i - 1); 9].join(", ");
            laughs.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
        }
        assert!(refused(&laughs).2.contains("aliases expand"));
    }

    #[test]
    fn duplicate_keys_through_aliases_and_tags_are_found_where_written() {
        assert_eq!(
            refused("seed: 0\nname: &n seed\n*n : 2\n"),
            (
                3,
                1,
                "duplicate key `seed`, first written at line 1, expected each key once".to_string()
            )
        );
        assert_eq!(refused("seed: 1\n!!str seed: 2\n").0, 2);
        assert!(check("a: &x 1\nb: *x\n").is_ok());
    }

    #[test]
    fn quoted_numbers_with_number_tags_are_refused_precisely() {
        let (line, column, message) = refused("a:\n  b: !!float \"0.1\"\n");
        assert_eq!((line, column), (2, 6));
        assert!(message.contains("`!!float`"), "{message}");
        assert!(check("a: !!float 0.1\n").is_ok());
    }

    #[test]
    fn amounts_are_read_exactly_from_the_text() {
        let budget = |value: &str| format!("p:\n  budget: {{daily_usd: 0.5, run_usd: {value}}}\n");
        for fine in [
            "0.02",
            "1e-3",
            "1000000000",
            "123456789.123456",
            "null",
            "-1",
            ".inf",
        ] {
            assert!(check(&budget(fine)).is_ok(), "{fine}");
        }
        assert_eq!(
            refused(&budget("0.0000000000001")),
            (
                2,
                37,
                "amount `0.0000000000001` for `run_usd` has 13 decimal places, expected at most 12 (amounts are exact to 10^-12 USD)".to_string()
            )
        );
        assert!(refused(&budget("1000000000.000000000001"))
            .2
            .contains("above the limit"));
        assert!(refused(&budget("1e400")).2.contains("above the limit"));
        assert!(refused(&budget("123456789.123456789"))
            .2
            .contains("significant digits"));
        let cost =
            "steps:\n  - trigger:\n      cost: {usd: 0.1000000000000000055511151231257827}\n";
        assert_eq!(refused(cost).0, 3);
        // The same key elsewhere is not an amount.
        assert!(check("expect:\n  usd: 0.1000000000000000055511151231257827\n").is_ok());
    }
}
