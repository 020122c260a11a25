//! The implementation under test as a child process: one request line
//! written to its standard input, one answer line read from its standard
//! output within the timeout. Everything that can go wrong with the child
//! (silence, an early exit, a line that is not an answer) is a [`Failure`],
//! never behaviour.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::protocol::{Answer, Request, MAX_LINE_BYTES};

/// How much of the child's standard error is kept for the report.
pub const STDERR_TAIL_BYTES: usize = 64 << 10;

/// Why the child gave no usable answer, or declined.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Failure {
    #[error("timeout: no answer to `{request}` within {seconds}s")]
    Timeout { request: String, seconds: f64 },
    #[error("crash: the implementation {status} before answering `{request}`{stderr}")]
    Crash {
        request: String,
        status: String,
        stderr: String,
    },
    #[error("malformed answer to `{request}`: {message}")]
    Malformed { request: String, message: String },
    #[error("protocol error: {message}")]
    Protocol { message: String },
    #[error("unsupported: {message}")]
    Unsupported { message: String },
}

impl Failure {
    /// `timeout`, `crash`, `malformed`, `protocol` or `unsupported`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Crash { .. } => "crash",
            Self::Malformed { .. } => "malformed",
            Self::Protocol { .. } => "protocol",
            Self::Unsupported { .. } => "unsupported",
        }
    }
}

/// One read from the child's standard output.
enum Read1 {
    Line(Vec<u8>),
    TooLong,
    End,
}

/// A running implementation.
#[derive(Debug)]
pub struct Child {
    child: std::process::Child,
    /// Lines for the writer thread; `None` once standard input is closed.
    stdin: Option<SyncSender<Vec<u8>>>,
    /// `None` once the child is being dropped, so a blocked reader ends.
    lines: Option<Receiver<Read1>>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    readers: Vec<JoinHandle<()>>,
    timeout: Duration,
}

impl std::fmt::Debug for Read1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Read1")
    }
}

impl Child {
    /// Starts `argv` with piped standard streams.
    pub fn spawn(argv: &[String], timeout: Duration) -> std::io::Result<Self> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| std::io::Error::other("an empty command line"))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let stdin = child.stdin.take().expect("piped stdin");
        // Bounded: a child that writes without end is not buffered without end.
        let (send, lines) = mpsc::sync_channel(1);
        let (write, to_write) = mpsc::sync_channel(1);
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr);
        let readers = vec![
            std::thread::spawn(move || read_lines(stdout, &send)),
            std::thread::spawn(move || keep_tail(stderr_pipe, &tail)),
            // Writes happen off this thread, so a child that never reads
            // its input meets the answer timeout instead of blocking us.
            std::thread::spawn(move || write_lines(stdin, &to_write)),
        ];
        Ok(Self {
            stdin: Some(write),
            child,
            lines: Some(lines),
            stderr,
            readers,
            timeout,
        })
    }

    /// Sends `request` and waits for its answer.
    pub fn request(&mut self, request: &Request) -> Result<Answer, Failure> {
        let name = request_name(request);
        let mut line = serde_json::to_string(request).expect("a request serialises");
        line.push('\n');
        let written = self
            .stdin
            .as_ref()
            .is_some_and(|stdin| stdin.send(line.into_bytes()).is_ok());
        if !written {
            return Err(self.crashed(name));
        }
        let answer = match self.lines.as_ref() {
            Some(lines) => lines.recv_timeout(self.timeout),
            None => Err(RecvTimeoutError::Disconnected),
        };
        let bytes = match answer {
            Ok(Read1::Line(bytes)) => bytes,
            Ok(Read1::TooLong) => {
                return Err(Failure::Malformed {
                    request: name.to_string(),
                    message: format!("a line longer than {MAX_LINE_BYTES} bytes"),
                })
            }
            Ok(Read1::End) | Err(RecvTimeoutError::Disconnected) => return Err(self.crashed(name)),
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                return Err(Failure::Timeout {
                    request: name.to_string(),
                    seconds: self.timeout.as_secs_f64(),
                });
            }
        };
        let text = String::from_utf8(bytes).map_err(|_| Failure::Malformed {
            request: name.to_string(),
            message: "the line is not UTF-8".to_string(),
        })?;
        serde_json::from_str(text.trim_end_matches(['\r', '\n'])).map_err(|error| {
            Failure::Malformed {
                request: name.to_string(),
                message: format!("{error}: {}", excerpt(&text)),
            }
        })
    }

    /// Says `end`, waits for `bye` and for the child to exit; a child that
    /// lingers is killed.
    pub fn finish(mut self) -> Result<(), Failure> {
        let answer = self.request(&Request::End {})?;
        if !matches!(answer, Answer::Bye {}) {
            return Err(unexpected("end", &answer));
        }
        self.stdin = None;
        Ok(())
    }

    /// The failure of a child that is gone: its exit status and the tail
    /// of its standard error.
    fn crashed(&mut self, request: &str) -> Failure {
        self.stdin = None;
        let status = wait_briefly(&mut self.child, self.timeout).map_or_else(
            || "closed its output".to_string(),
            |s| format!("exited ({s})"),
        );
        let tail = self.stderr_tail();
        Failure::Crash {
            request: request.to_string(),
            status,
            stderr: if tail.is_empty() {
                String::new()
            } else {
                format!("; its standard error ends with:\n{tail}")
            },
        }
    }

    /// The last bytes of the child's standard error, as text.
    pub fn stderr_tail(&self) -> String {
        let tail = self
            .stderr
            .lock()
            .map(|t| t.iter().copied().collect::<Vec<u8>>());
        String::from_utf8_lossy(&tail.unwrap_or_default())
            .trim_end()
            .to_string()
    }

    fn kill(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stdin = None;
        self.lines = None;
        if wait_briefly(&mut self.child, self.timeout).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

/// The exit status once the child has exited, waiting at most `timeout`.
fn wait_briefly(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let step = Duration::from_millis(10);
    let mut waited = Duration::ZERO;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if waited < timeout => {
                std::thread::sleep(step);
                waited += step;
            }
            _ => return None,
        }
    }
}

/// Reads the child's standard output line by line into `send`, each line
/// at most [`MAX_LINE_BYTES`].
fn read_lines(stdout: impl Read, send: &SyncSender<Read1>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut line = Vec::new();
        let limit = MAX_LINE_BYTES as u64 + 1;
        match (&mut reader).take(limit).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => {
                let _ = send.send(Read1::End);
                return;
            }
            Ok(_) if line.last() != Some(&b'\n') && line.len() > MAX_LINE_BYTES => {
                let _ = send.send(Read1::TooLong);
                return;
            }
            Ok(_) => {
                if send.send(Read1::Line(line)).is_err() {
                    return;
                }
            }
        }
    }
}

/// Writes each line from `lines` to the child's standard input until the
/// sender is gone or the child stops reading.
fn write_lines(mut stdin: ChildStdin, lines: &Receiver<Vec<u8>>) {
    while let Ok(line) = lines.recv() {
        if stdin.write_all(&line).and_then(|()| stdin.flush()).is_err() {
            return;
        }
    }
}

/// Keeps the last [`STDERR_TAIL_BYTES`] of the child's standard error.
fn keep_tail(stderr: impl Read, tail: &Mutex<VecDeque<u8>>) {
    let mut reader = BufReader::new(stderr);
    let mut buffer = [0u8; 4096];
    while let Ok(read) = reader.read(&mut buffer) {
        if read == 0 {
            return;
        }
        let Ok(mut kept) = tail.lock() else { return };
        kept.extend(&buffer[..read]);
        let excess = kept.len().saturating_sub(STDERR_TAIL_BYTES);
        kept.drain(..excess);
    }
}

/// The request's `type`, for messages.
pub fn request_name(request: &Request) -> &'static str {
    match request {
        Request::Hello { .. } => "hello",
        Request::Configure { .. } => "configure",
        Request::Op { .. } => "op",
        Request::Query(_) => "query",
        Request::End {} => "end",
    }
}

/// The failure for an answer of the wrong type: `unsupported` and `error`
/// keep their meaning, anything else is malformed.
pub fn unexpected(request: &str, answer: &Answer) -> Failure {
    match answer {
        Answer::Unsupported { message } => Failure::Unsupported {
            message: message.clone(),
        },
        Answer::Error { message } => Failure::Protocol {
            message: format!("the implementation answered `{request}` with an error: {message}"),
        },
        other => Failure::Malformed {
            request: request.to_string(),
            message: format!(
                "expected the answer to `{request}`, got `{}`",
                serde_json::to_value(other)
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from))
                    .unwrap_or_default()
            ),
        },
    }
}

/// The start of a line, for messages.
fn excerpt(text: &str) -> String {
    let text = text.trim_end();
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("`{}…`", &text[..at]),
        None => format!("`{text}`"),
    }
}
