//! Scenario errors: each names the file as the user gave it, the line and
//! column, and says what was expected.

use std::io;

use super::model::Position;

/// Why a scenario file could not be read or is not a valid scenario.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read at all.
    #[error("{path}: failed to read scenario file: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    /// The file was read and is not a valid scenario.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
}

impl ScenarioError {
    pub(crate) fn invalid(path: &str, position: Position, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            line: position.line,
            column: position.column,
            message: message.into(),
        }
    }

    /// The file as the user named it.
    pub fn path(&self) -> &str {
        match self {
            Self::Read { path, .. } | Self::Invalid { path, .. } => path,
        }
    }

    /// Where in the file the problem is; `None` when the file was not read.
    pub fn position(&self) -> Option<Position> {
        match self {
            Self::Read { .. } => None,
            Self::Invalid { line, column, .. } => Some(Position {
                line: *line,
                column: *column,
            }),
        }
    }

    /// The message without the path and position.
    pub fn message(&self) -> String {
        match self {
            Self::Read { source, .. } => format!("failed to read scenario file: {source}"),
            Self::Invalid { message, .. } => message.clone(),
        }
    }
}

/// Turns a serde_yaml error into a position and a message in the house
/// style: the position moves out of the text ("… at line 3 column 5") and
/// serde_yaml's path prefix ("personas.a: …") is dropped, since the position
/// already says where.
pub(crate) fn from_yaml(error: &serde_yaml::Error) -> (Option<Position>, String) {
    let mut message = error.to_string();
    let position = error.location().map(|location| Position {
        line: location.line(),
        column: location.column(),
    });
    if let Some(position) = position {
        let suffix = format!(" at line {} column {}", position.line, position.column);
        if let Some(found) = message.find(&suffix) {
            message.replace_range(found..found + suffix.len(), "");
        }
    }
    let message = strip_path(&message);
    let message = match message {
        "recursion limit exceeded" => {
            "nesting deeper than serde_yaml's limit of 128 levels, expected a shallower document"
                .to_owned()
        }
        "repetition limit exceeded" => {
            "aliases expand past serde_yaml's repetition limit, expected fewer alias expansions"
                .to_owned()
        }
        "missing field `version`" => {
            "missing field `version`, expected the format version `version: 1`".to_owned()
        }
        "missing field `start`" => {
            "missing field `start`, expected the scenario clock's origin such as `start: 2026-04-24T12:00:00Z`"
                .to_owned()
        }
        other => plain_types(other),
    };
    (position, message)
}

/// Drops a leading `path: ` that serde_yaml adds: a path is one word of
/// keys, indices and dots, while every message starts with words separated
/// by spaces, so a first `: ` preceded by a space-free word is a path.
fn strip_path(message: &str) -> &str {
    match message.split_once(": ") {
        Some((prefix, rest))
            if !prefix.is_empty()
                && !prefix.contains(char::is_whitespace)
                && !prefix.contains('`') =>
        {
            rest
        }
        _ => message,
    }
}

/// Names Rust's primitive types the way a scenario author thinks of them.
fn plain_types(message: &str) -> String {
    const NAMES: [(&str, &str); 8] = [
        ("expected u64", "expected a whole number of at least 0"),
        ("expected u32", "expected a whole number of at least 0"),
        ("expected u16", "expected a whole number of at least 0"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected usize", "expected a whole number of at least 0"),
        ("expected unit", "expected nothing"),
    ];
    for (rust, plain) in NAMES {
        if let Some(head) = message.strip_suffix(rust) {
            return format!("{head}{plain}");
        }
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_dropped_and_messages_kept() {
        assert_eq!(
            strip_path("personas.a: unknown field `ttl`, expected one of `x`"),
            "unknown field `ttl`, expected one of `x`"
        );
        assert_eq!(
            strip_path("steps[0].trigger: invalid type: integer `5`, expected a map"),
            "invalid type: integer `5`, expected a map"
        );
        assert_eq!(
            strip_path("invalid type: sequence, expected a map"),
            "invalid type: sequence, expected a map"
        );
        assert_eq!(
            plain_types("invalid type: string \"x\", expected u64"),
            "invalid type: string \"x\", expected a whole number of at least 0"
        );
    }

    #[test]
    fn displays_path_line_column_message() {
        let error = ScenarioError::invalid(
            "scenarios/x.yaml",
            Position { line: 3, column: 5 },
            "unknown field `ttl`",
        );
        assert_eq!(
            error.to_string(),
            "scenarios/x.yaml:3:5: unknown field `ttl`"
        );
        assert_eq!(error.position(), Some(Position { line: 3, column: 5 }));
    }
}
