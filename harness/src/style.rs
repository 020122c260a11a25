//! Terminal styling: colour only when the stream is a terminal and
//! `NO_COLOR` is unset or empty.

use std::io::IsTerminal;

/// Whether to colour output on one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Styling for standard output.
    pub fn stdout() -> Self {
        Self::new(std::io::stdout().is_terminal())
    }

    /// Styling for standard error.
    pub fn stderr() -> Self {
        Self::new(std::io::stderr().is_terminal())
    }

    fn new(is_terminal: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            color: is_terminal && !no_color,
        }
    }

    /// No colour at all.
    pub fn plain() -> Self {
        Self { color: false }
    }

    pub fn enabled(self) -> bool {
        self.color
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    /// Colours a unified diff line by line: removals red, additions green,
    /// hunk headers dim.
    pub fn diff(self, diff: &str) -> String {
        if !self.color {
            return diff.to_string();
        }
        diff.lines()
            .map(|line| {
                if line.starts_with("+++") || line.starts_with("---") {
                    self.bold(line)
                } else if line.starts_with('+') {
                    self.green(line)
                } else if line.starts_with('-') {
                    self.red(line)
                } else if line.starts_with("@@") {
                    self.dim(line)
                } else {
                    line.to_string()
                }
            })
            .map(|line| line + "\n")
            .collect()
    }
}

/// `n` and a noun, plural unless `n` is 1: `1 hunk`, `3 hunks`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_style_never_emits_escapes() {
        let style = Style::plain();
        assert_eq!(style.red("x"), "x");
        assert_eq!(style.diff("-a\n+b\n"), "-a\n+b\n");
    }

    #[test]
    fn counts_are_plural_unless_one() {
        assert_eq!(count(1, "hunk"), "1 hunk");
        assert_eq!(count(0, "hunk"), "0 hunks");
        assert_eq!(count(3, "failed expectation"), "3 failed expectations");
    }
}
