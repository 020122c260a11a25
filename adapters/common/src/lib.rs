//! What the upstream adapters share: reading and answering the
//! certification protocol's JSON Lines (docs/PROTOCOL.md) with a size limit
//! per line, and rehearse's duration syntax as `capture.json` writes it
//! (docs/SCENARIOS.md).

use std::io::{BufRead, Read, Write};

use serde_json::{json, Value};

/// The protocol both adapters speak.
pub const PROTOCOL: &str = "rehearse-protocol/1";

/// The longest line read, from the harness or from a log: 16 MiB.
pub const MAX_LINE_BYTES: u64 = 16 * 1024 * 1024;

/// Milliseconds of a rehearse duration (`5m`, `1h30m`, `250ms`, or a bare
/// number of milliseconds).
pub fn duration_ms(value: &Value) -> Result<u64, String> {
    if let Some(ms) = value.as_u64() {
        return Ok(ms);
    }
    let text = value
        .as_str()
        .ok_or_else(|| format!("a duration is a string with units, found {value}"))?;
    let (mut total, mut digits) = (0u64, String::new());
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                1
            }
            ('s', _) => 1_000,
            ('m', _) => 60_000,
            ('h', _) => 3_600_000,
            ('d', _) => 86_400_000,
            _ => return Err(format!("`{text}` is not a duration")),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{text}` is not a duration"))?;
        total = n
            .checked_mul(unit)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| format!("`{text}` is out of range"))?;
        digits.clear();
    }
    if digits.is_empty() {
        Ok(total)
    } else {
        Err(format!("`{text}` has a number without a unit"))
    }
}

/// Reads one line of at most [`MAX_LINE_BYTES`]; `None` at the end.
pub fn read_line(input: &mut impl BufRead) -> Result<Option<String>, String> {
    let mut bytes = Vec::new();
    let read = input
        .by_ref()
        .take(MAX_LINE_BYTES + 1)
        .read_until(b'\n', &mut bytes)
        .map_err(|error| error.to_string())?;
    if read == 0 {
        return Ok(None);
    }
    if bytes.len() as u64 > MAX_LINE_BYTES {
        return Err(format!("a line is longer than {MAX_LINE_BYTES} bytes"));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| "a line is not UTF-8".to_string())
}

/// Answers requests from `input` on `out`, one line each, until `end` (then
/// `bye`) or the end of the input. `answer` gives a request's answer, `None`
/// for `end`; its error is answered as `{"type": "error"}`. A line that is
/// not JSON or is too long ends the loop with an error.
pub fn serve(
    input: &mut impl BufRead,
    out: &mut impl Write,
    mut answer: impl FnMut(&Value) -> Result<Option<Value>, String>,
) -> Result<(), String> {
    while let Some(line) = read_line(input)? {
        let request: Value = serde_json::from_str(&line)
            .map_err(|error| format!("a request is not JSON: {error}"))?;
        let (reply, last) = match answer(&request) {
            Ok(Some(reply)) => (reply, false),
            Ok(None) => (json!({"type": "bye"}), true),
            Err(message) => (json!({"type": "error", "message": message}), false),
        };
        writeln!(out, "{reply}")
            .and_then(|()| out.flush())
            .map_err(|error| error.to_string())?;
        if last {
            return Ok(());
        }
    }
    Ok(())
}

/// The `hello` answer: who the implementation is and what it supports
/// (`capabilities`: its `steps`, `outcomes` and `answers`).
pub fn hello(name: &str, version: &str, capabilities: Value) -> Value {
    json!({
        "type": "hello",
        "protocol": PROTOCOL,
        "implementation": {"name": name, "version": version},
        "capabilities": capabilities,
    })
}

/// [`serve`] on standard input and output.
pub fn serve_stdio(
    answer: impl FnMut(&Value) -> Result<Option<Value>, String>,
) -> Result<(), String> {
    let (mut input, mut out) = (std::io::stdin().lock(), std::io::stdout().lock());
    serve(&mut input, &mut out, answer)
}

/// The exit of adapter `name`: 0 after a served session, else the error on
/// standard error and 2.
pub fn exit(name: &str, served: Result<(), String>) -> std::process::ExitCode {
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{name}: {message}");
            std::process::ExitCode::from(2)
        }
    }
}

/// One request, by its `type`.
#[derive(Debug, PartialEq)]
pub enum Request<'a> {
    Hello,
    /// `configure`, with its `config`.
    Configure(&'a Value),
    Op,
    Query,
    End,
    /// Any other `type` (empty when there is none).
    Other(&'a str),
}

impl<'a> Request<'a> {
    /// Reads a request's `type`; a `configure` without `config` is an error.
    pub fn of(request: &'a Value) -> Result<Self, String> {
        let kind = request
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok(match kind {
            "hello" => Self::Hello,
            "configure" => Self::Configure(
                request
                    .get("config")
                    .ok_or("`configure` without `config`")?,
            ),
            "op" => Self::Op,
            "query" => Self::Query,
            "end" => Self::End,
            other => Self::Other(other),
        })
    }

    /// The error answered to a request that cannot come now (an `op`
    /// before `configure`) or is not in the protocol.
    pub fn unexpected(&self) -> String {
        let kind = match self {
            Self::Hello => "hello",
            Self::Configure(_) => "configure",
            Self::Op => "op",
            Self::Query => "query",
            Self::End => "end",
            Self::Other(other) => other,
        };
        format!("unexpected request `{kind}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_rehearse_writes_them() {
        assert_eq!(duration_ms(&json!("5m")), Ok(300_000));
        assert_eq!(duration_ms(&json!("1h30m")), Ok(5_400_000));
        assert_eq!(duration_ms(&json!("250ms")), Ok(250));
        assert_eq!(duration_ms(&json!(0)), Ok(0));
        for bad in [
            json!("5"),
            json!("5x"),
            json!("99999999999999999999d"),
            json!(null),
            json!(-1),
        ] {
            assert!(duration_ms(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_loop_answers_each_line_and_stops_at_end() {
        let mut input = "{\"type\":\"a\"}\n{\"type\":\"end\"}\n{\"type\":\"never\"}\n".as_bytes();
        let mut out = Vec::new();
        serve(&mut input, &mut out, |request| {
            match request["type"].as_str() {
                Some("end") => Ok(None),
                _ => Err("no".to_string()),
            }
        })
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"message\":\"no\",\"type\":\"error\"}\n{\"type\":\"bye\"}\n"
        );
    }

    #[test]
    fn requests_are_read_by_their_type() {
        let config = json!({"personas": {}});
        let configure = json!({"type": "configure", "config": config});
        assert_eq!(Request::of(&configure), Ok(Request::Configure(&config)));
        assert!(Request::of(&json!({"type": "configure"})).is_err());
        let op = json!({"type": "op"});
        assert_eq!(
            Request::of(&op).unwrap().unexpected(),
            "unexpected request `op`"
        );
        let untyped = json!({});
        assert_eq!(Request::of(&untyped), Ok(Request::Other("")));
        assert_eq!(Request::Other("").unexpected(), "unexpected request ``");
    }

    #[test]
    fn garbage_lines_end_the_loop_with_an_error() {
        let mut out = Vec::new();
        assert!(serve(&mut "not json\n".as_bytes(), &mut out, |_| Ok(None)).is_err());
        assert!(serve(&mut &[0xff, b'\n'][..], &mut out, |_| Ok(None)).is_err());
        assert!(out.is_empty());
    }
}
