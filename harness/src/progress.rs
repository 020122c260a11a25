//! A progress counter for long checks: one line on standard error, redrawn
//! in place, drawn only when both output streams are terminals and only once
//! a run has taken longer than a second, so piped or captured output never
//! holds a carriage return or an escape code from it.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a run goes before the counter appears: short runs stay quiet.
pub const DEFAULT_DELAY: Duration = Duration::from_secs(1);

/// How often the counter is redrawn once it shows.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

/// The width of the bar between the brackets, in characters.
const BAR_WIDTH: usize = 24;

/// Clears the current terminal line after a carriage return.
const CLEAR_LINE: &str = "\r\x1b[2K";

/// Where a counter may be drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// Draw nothing.
    Hidden,
    /// Draw on standard error.
    Stderr,
}

impl Display {
    /// `Stderr` when standard output and standard error are both terminals
    /// and `TERM` is not `dumb`; `Hidden` otherwise.
    pub fn detect() -> Self {
        let dumb = std::env::var_os("TERM").is_some_and(|term| term == "dumb");
        Self::choose(
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
            dumb,
        )
    }

    /// The decision behind `detect`, given what it looks at.
    pub fn choose(stdout_is_terminal: bool, stderr_is_terminal: bool, dumb_terminal: bool) -> Self {
        if stdout_is_terminal && stderr_is_terminal && !dumb_terminal {
            Self::Stderr
        } else {
            Self::Hidden
        }
    }
}

/// When and how often a counter draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub delay: Duration,
    pub interval: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            delay: DEFAULT_DELAY,
            interval: DEFAULT_INTERVAL,
        }
    }
}

/// A running counter: workers call `inc` as each item finishes; `finish`
/// (or drop) stops the drawing thread and clears the line it drew.
#[derive(Debug)]
pub struct Progress {
    done: Arc<AtomicUsize>,
    stop: Option<mpsc::Sender<()>>,
    drawer: Option<JoinHandle<()>>,
}

impl Progress {
    /// A counter over `total` items shown as `display` says, with the
    /// default timing.
    pub fn start(label: &'static str, total: usize, display: Display) -> Self {
        match display {
            Display::Hidden => Self::hidden(),
            Display::Stderr => Self::start_on(label, total, Timing::default(), std::io::stderr()),
        }
    }

    /// A counter that draws nothing.
    pub fn hidden() -> Self {
        Self {
            done: Arc::new(AtomicUsize::new(0)),
            stop: None,
            drawer: None,
        }
    }

    /// A counter named `label` drawing on `sink` with `timing`.
    pub fn start_on(
        label: &'static str,
        total: usize,
        timing: Timing,
        sink: impl Write + Send + 'static,
    ) -> Self {
        let done = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = mpsc::channel::<()>();
        let counted = Arc::clone(&done);
        let drawer = std::thread::spawn(move || {
            draw_until_stopped(label, total, timing, &counted, &stopped, sink);
        });
        Self {
            done,
            stop: Some(stop),
            drawer: Some(drawer),
        }
    }

    /// Counts one finished item.
    pub fn inc(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// How many items have finished.
    pub fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    /// Stops drawing and clears the counter's line.
    pub fn finish(mut self) {
        self.stop_drawing();
    }

    fn stop_drawing(&mut self) {
        // Dropping the sender wakes the drawer at once.
        self.stop.take();
        if let Some(drawer) = self.drawer.take() {
            // A drawer that panicked only loses the counter, never results.
            let _ = drawer.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_drawing();
    }
}

fn draw_until_stopped(
    label: &str,
    total: usize,
    timing: Timing,
    done: &AtomicUsize,
    stopped: &mpsc::Receiver<()>,
    mut sink: impl Write,
) {
    if !matches!(
        stopped.recv_timeout(timing.delay),
        Err(RecvTimeoutError::Timeout)
    ) {
        // The run ended within the delay: draw nothing at all.
        return;
    }
    let mut drawn = None;
    loop {
        let now = done.load(Ordering::Relaxed);
        // Redraw only when the count moved, so an idle terminal stays still.
        if drawn != Some(now) {
            drawn = Some(now);
            // A terminal that stops accepting writes only loses the counter.
            let _ = write!(sink, "{CLEAR_LINE}{}", render(label, now, total));
            let _ = sink.flush();
        }
        if !matches!(
            stopped.recv_timeout(timing.interval),
            Err(RecvTimeoutError::Timeout)
        ) {
            break;
        }
    }
    let _ = write!(sink, "{CLEAR_LINE}");
    let _ = sink.flush();
}

/// The counter's line: `check [#########---------------] 12/32`, named
/// after the command that counts.
pub fn render(label: &str, done: usize, total: usize) -> String {
    let done = done.min(total);
    // An empty run is complete: a full bar.
    let filled = (done * BAR_WIDTH).checked_div(total).unwrap_or(BAR_WIDTH);
    format!(
        "{label} [{}{}] {done}/{total}",
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Instant;

    /// A sink the test can read while the drawer writes to it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn the_line_shows_a_bar_and_a_count() {
        let cases = [
            ("check", 0, 4, "check [------------------------] 0/4"),
            ("check", 1, 4, "check [######------------------] 1/4"),
            ("check", 4, 4, "check [########################] 4/4"),
            ("check", 9, 4, "check [########################] 4/4"),
            ("explore", 0, 0, "explore [########################] 0/0"),
        ];
        for (label, done, total, line) in cases {
            assert_eq!(render(label, done, total), line, "{label} {done}/{total}");
        }
    }

    #[test]
    fn only_two_terminals_get_a_counter() {
        assert_eq!(Display::choose(true, true, false), Display::Stderr);
        assert_eq!(Display::choose(false, true, false), Display::Hidden);
        assert_eq!(Display::choose(true, false, false), Display::Hidden);
        assert_eq!(Display::choose(false, false, false), Display::Hidden);
        assert_eq!(Display::choose(true, true, true), Display::Hidden);
    }

    #[test]
    fn a_run_shorter_than_the_delay_draws_nothing() {
        let sink = Shared::default();
        let timing = Timing {
            delay: Duration::from_secs(3600),
            interval: DEFAULT_INTERVAL,
        };
        let progress = Progress::start_on("check", 3, timing, sink.clone());
        progress.inc();
        progress.finish();
        assert_eq!(sink.text(), "");
    }

    #[test]
    fn a_long_run_draws_in_place_and_clears_its_line() {
        let sink = Shared::default();
        let timing = Timing {
            delay: Duration::ZERO,
            interval: Duration::from_millis(1),
        };
        let progress = Progress::start_on("check", 2, timing, sink.clone());
        progress.inc();
        progress.inc();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sink.text().contains("2/2") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        progress.finish();
        let text = sink.text();
        assert!(
            text.starts_with(CLEAR_LINE) && text.ends_with(CLEAR_LINE),
            "{text:?}"
        );
        assert!(
            text.contains(&format!("{CLEAR_LINE}{}", render("check", 2, 2))),
            "{text:?}"
        );
        assert!(
            !text.contains('\n'),
            "the counter stays on one line: {text:?}"
        );
    }

    #[test]
    fn a_hidden_counter_still_counts() {
        let progress = Progress::start("check", 5, Display::Hidden);
        progress.inc();
        progress.inc();
        assert_eq!(progress.done(), 2);
    }
}
