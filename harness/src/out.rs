//! Writing reports to standard output, where a closed pipe is a normal end:
//! `rehearse check | head -1` and `rehearse check | true` must exit with the
//! check's own status, so a failed write is dropped instead of panicking as
//! `println!` does. The exit status still tells the outcome. Standard
//! error is treated the same way: `main.rs` reports errors through
//! [`stderr_line`], so a closed standard error never turns an error into a
//! panic or changes the exit status.

use std::fmt;
use std::io::Write;

/// Writes `args` and a newline to standard output, ignoring write errors.
pub fn line(args: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_fmt(args);
    let _ = stdout.write_all(b"\n");
}

/// Writes `args` to standard output, ignoring write errors.
pub fn text(args: fmt::Arguments<'_>) {
    let _ = std::io::stdout().lock().write_fmt(args);
}

/// Writes `text` and a newline to standard error, ignoring write errors.
pub fn stderr_line(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.write_all(b"\n");
}

/// `println!` that treats a closed standard output as a normal end.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}

/// `print!` that treats a closed standard output as a normal end.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::text(format_args!($($arg)*))
    };
}
