//! Timeline pages: one self-contained HTML file per scenario (inline SVG,
//! CSS and script; nothing loaded from anywhere), and for `check` an index
//! of the scenarios it ran. A page shows each persona's lane, the
//! supervisor's lane and the budget chart; a click on a step shows its
//! explanation (see `explain`) and its events; a failed scenario's page
//! shows its golden diff event by event.
//!
//! Pages are deterministic (the same scenario gives the same bytes), every
//! text from a scenario is escaped (see `escape`), a content security policy
//! lets only the page's own scripts run, and files are written atomically.

mod diff;
mod escape;
mod index;
mod record;
mod timeline;

use std::fmt::Write;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::driver::{self, DriverError, RunOptions, RunOutput};
use crate::explain::{self, Explainer, Wanted};
use crate::golden;
use crate::scenario::Scenario;

pub use index::{write_check_pages, IndexEntry};

/// Embedded explanations and events stop at these sizes; a step past them
/// shows the `rehearse explain` command instead, so huge scenarios still
/// give pages a browser opens quickly.
const EXPLANATION_BYTES: usize = 6 << 20;
const EVENT_BYTES: usize = 3 << 20;

/// The most a golden file read for a page's diff may hold.
const GOLDEN_READ_LIMIT: u64 = 256 << 20;

const STYLE: &str = include_str!("html/page.css");
const SCRIPT: &str = include_str!("html/page.js");
/// Runs before anything else: records script errors in the DOM, where a
/// headless browser's DOM dump shows them.
const ERROR_HOOK: &str = "window.addEventListener('error',function(e){var d=document.documentElement;d.setAttribute('data-js-errors',String(Number(d.getAttribute('data-js-errors')||0)+1));d.setAttribute('data-js-error',String(e.message));});";

/// A rendered page.
#[derive(Debug)]
pub struct Page {
    pub html: String,
    /// Whether the run's expectations and invariants held (goldens aside).
    pub passed: bool,
}

/// One step as the page's script sees it.
#[derive(Serialize)]
struct StepData<'a> {
    step: usize,
    line: usize,
    at: &'a str,
    kind: &'a str,
    receipt: Option<&'a str>,
    decision: Option<&'a str>,
    /// `[first, count]` into `events`.
    events: Option<[usize; 2]>,
}

/// Everything the page's script reads.
#[derive(Serialize)]
struct PageData<'a> {
    source: &'a str,
    personas: Vec<&'a str>,
    steps: Vec<StepData<'a>>,
    /// Rendered explanations by step; `null` past the size limit.
    explanations: Vec<Option<String>>,
    /// `events.jsonl` lines; `null` past the size limit.
    events: Vec<Option<&'a str>>,
}

/// The page of `scenario` read from `source`; with `goldens` (its golden
/// directory), the page also compares the outputs with them.
pub fn render_page(
    scenario: &Scenario,
    source: &str,
    goldens: Option<&Path>,
) -> Result<Page, DriverError> {
    let names: Vec<String> = scenario.personas.keys().cloned().collect();
    let steps = scenario.steps.len();
    let explainer = Explainer::new(scenario, Wanted::All);
    let mut recorder = record::Recorder::new(explainer, steps, names.clone());
    let output = driver::run_observed(scenario, source, RunOptions::default(), &mut recorder)?;
    let mut explanations = recorder.explainer.finish();
    explain::settle(&mut explanations, &output.report);
    let mut frames = Vec::with_capacity(steps);
    let mut last = record::Frame::default();
    for frame in recorder.frames {
        if let Some(frame) = frame {
            last = frame;
        }
        frames.push(last.clone());
    }
    let config = scenario.runtime_config();
    let model = timeline::Model {
        report: &output.report,
        names,
        frames,
        receipts: recorder.receipts,
        leases: recorder.leases,
        budgets: config
            .personas
            .values()
            .map(|spec| timeline::Budget {
                daily_usd: spec.budget.daily_usd,
                hourly_usd: spec.budget.hourly_usd,
            })
            .collect(),
        rate_window_ms: config.supervisor.rate_window.map(|w| w.as_i64()),
        max_in_flight: config.supervisor.max_in_flight,
    };
    let golden_html = goldens.map(|dir| golden_section(dir, &output));
    let html = assemble(&model, &output, &explanations, golden_html.as_deref());
    Ok(Page {
        html,
        passed: output.passed(),
    })
}

fn page_data<'a>(
    output: &'a RunOutput,
    explanations: &[explain::Explanation],
    personas: &'a [String],
) -> PageData<'a> {
    let report = &output.report;
    let steps = report
        .steps
        .iter()
        .map(|s| StepData {
            step: s.step,
            line: s.line,
            at: &s.at,
            kind: &s.kind,
            receipt: s.receipt.as_deref(),
            decision: s.decision.as_ref().map(|d| d.decision.as_str()),
            events: s.events.map(|r| [r.first, r.count]),
        })
        .collect();
    let mut budget = EXPLANATION_BYTES;
    let explanations = explanations
        .iter()
        .map(|e| {
            let text = explain::render(e);
            budget = budget.checked_sub(text.len())?;
            Some(text)
        })
        .collect();
    let mut budget = EVENT_BYTES;
    let events = output
        .events_jsonl
        .lines()
        .map(|line| {
            budget = budget.checked_sub(line.len())?;
            Some(line)
        })
        .collect();
    PageData {
        source: &report.source,
        personas: personas.iter().map(String::as_str).collect(),
        steps,
        explanations,
        events,
    }
}

/// The golden comparison of a page: each golden file that differs.
fn golden_section(dir: &Path, output: &RunOutput) -> String {
    let mut out = String::new();
    // Events first: they say what changed; the report and capture follow.
    let mut files = output.files();
    files.sort_by_key(|(file, _)| *file != "events.jsonl");
    for (file, actual) in files {
        let path = dir.join(file);
        let golden = match read_limited(&path) {
            Ok(Some(text)) => text,
            Ok(None) => {
                let _ = write!(out, "<p>{}: no golden yet</p>", escape::esc(file));
                continue;
            }
            Err(error) => {
                let _ = write!(
                    out,
                    "<p>{}: {}</p>",
                    escape::esc(file),
                    escape::esc(&error.to_string())
                );
                continue;
            }
        };
        if golden == actual {
            continue;
        }
        let _ = write!(
            out,
            "<h3>{} differs from its golden</h3>",
            escape::esc(file)
        );
        if file == "events.jsonl" {
            let steps = &output.report.steps;
            let step_of = |index: usize| {
                steps
                    .iter()
                    .find(|s| s.events.is_some_and(|r| r.indices().contains(&index)))
                    .map(|s| s.step)
            };
            out.push_str(&diff::events_html(&golden, actual, &step_of));
        } else {
            let text = golden::unified_diff(&golden, actual, file);
            out.push_str(&diff::unified_html(&text));
        }
    }
    if out.is_empty() {
        out.push_str("<p>every output matches its golden</p>");
    }
    out
}

/// Reads a golden file of at most [`GOLDEN_READ_LIMIT`] bytes; `None` when
/// there is none.
fn read_limited(path: &Path) -> io::Result<Option<String>> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut text = String::new();
    file.take(GOLDEN_READ_LIMIT + 1).read_to_string(&mut text)?;
    if text.len() as u64 > GOLDEN_READ_LIMIT {
        return Err(io::Error::other(format!(
            "`{}` is larger than {GOLDEN_READ_LIMIT} bytes",
            path.display()
        )));
    }
    Ok(Some(text))
}

/// `'sha256-…'` of a script, for the content security policy.
fn script_hash(script: &str) -> String {
    format!("'sha256-{}'", base64(&Sha256::digest(script.as_bytes())))
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The page's `<head>`: title, policy, style, error hook.
pub(crate) fn head(title: &str, scripts: &[&str]) -> String {
    let hashes: Vec<String> = scripts.iter().map(|s| script_hash(s)).collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src {}\"><title>{}</title><style>{STYLE}</style><script>{ERROR_HOOK}</script></head>\n",
        hashes.join(" "),
        escape::esc(title)
    )
}

fn assemble(
    model: &timeline::Model<'_>,
    output: &RunOutput,
    explanations: &[explain::Explanation],
    golden: Option<&str>,
) -> String {
    let report = &output.report;
    let data = escape::script_json(&page_data(output, explanations, &model.names));
    let mut out = head(
        &format!("rehearse: {}", report.scenario),
        &[ERROR_HOOK, SCRIPT],
    );
    out.push_str("<body>");
    out.push_str(&header(output));
    out.push_str("<main>");
    out.push_str(LEGEND);
    let _ = write!(
        out,
        r#"<section><h2>Timeline</h2><div class="scroll">{}</div></section>"#,
        timeline::svg(model)
    );
    let budget = timeline::budget_svg(model);
    if !budget.is_empty() {
        let _ = write!(
            out,
            r#"<section><h2>Budget: spend today (solid red) and this hour (orange) against daily_usd and hourly_usd</h2><div class="scroll">{budget}</div></section>"#
        );
    }
    if let Some(golden) = golden {
        let _ = write!(
            out,
            r#"<section id="golden"><h2>Goldens</h2>{golden}</section>"#
        );
    }
    out.push_str(r#"<section class="columns"><div><h2>Steps</h2><div><button id="prev" type="button">previous</button> <button id="next" type="button">next</button> <span id="page-label"></span></div><table class="steps"><thead><tr><th>step</th><th>line</th><th>at</th><th>kind</th><th>receipt</th><th>decision</th><th>events</th></tr></thead><tbody id="steps-body"></tbody></table></div><div><h2>Selected step</h2><div id="detail">Click a step on the timeline or in the table.</div></div></section>"#);
    out.push_str(r#"<footer><output id="selfcheck" data-status="pending">self-check did not run</output></footer></main>"#);
    let _ = write!(
        out,
        r#"<script type="application/json" id="rehearse-data">{data}</script><script>{SCRIPT}</script></body></html>"#
    );
    out.push('\n');
    out
}

const LEGEND: &str = r#"<div class="legend"><span><i class="st" style="background:#dfe8f3"></i>idle</span><span><i style="background:#7fb3ea"></i>running</span><span><i style="background:#f6c86b"></i>paused</span><span><i style="background:#9aa3b2"></i>disabled</span><span><i style="background:#f08a7e"></i>failed</span><span><i style="background:#2f9e55"></i>completed</span><span><i style="background:#d64541"></i>failed run</span><span><i style="background:#e67e22"></i>crashed</span><span><i style="background:#e0a526"></i>queued</span><span><i style="background:#8e44ad"></i>budget exhausted / deferral</span><span><i style="background:#7f8c8d"></i>duplicate</span><span><i style="background:#4f6fb0"></i>lease</span><span><i style="background:#16a085"></i>in flight</span><span><i style="background:#2980b9"></i>rate window</span></div>"#;

fn header(output: &RunOutput) -> String {
    let report = &output.report;
    let summary = &report.summary;
    let verdict = if output.passed() {
        r#"<span class="verdict-pass">expectations held</span>"#
    } else {
        r#"<span class="verdict-fail">FAILED</span>"#
    };
    let mut out = format!(
        r#"<header><h1>{}</h1><div class="meta">{} &middot; seed {} &middot; start {} &middot; {} backend &middot; {} steps, {} events, {} expectations, {} failed &middot; {verdict}</div>"#,
        escape::esc(&report.scenario),
        escape::esc(&report.source),
        report.seed,
        escape::esc(&report.start),
        escape::esc(&report.backend),
        summary.steps,
        summary.events,
        summary.expectations,
        summary.failed_expectations
    );
    if let Some(description) = &report.description {
        let _ = write!(
            out,
            r#"<div class="meta">{}</div>"#,
            escape::esc(description)
        );
    }
    let mut problems = String::new();
    for (step, expectation) in report.failures() {
        let _ = write!(
            problems,
            r##"<li><a href="#step-{0}">step {0}</a> (line {1}): <code>{2}</code> expected {3}, actual {4}</li>"##,
            step.step,
            step.line,
            escape::esc(&expectation.path),
            escape::esc(&expectation.expected.to_string()),
            escape::esc(&expectation.actual.to_string())
        );
    }
    for violation in &report.invariant_violations {
        let _ = write!(
            problems,
            r##"<li><a href="#step-{0}">step {0}</a>: invariant {1}: {2}</li>"##,
            violation.step,
            escape::esc(&violation.invariant),
            escape::esc(&violation.message)
        );
    }
    if !problems.is_empty() {
        let _ = write!(out, r#"<ul class="problems">{problems}</ul>"#);
    }
    out.push_str("</header>");
    out
}

/// A file name made of a scenario name: characters outside
/// `[A-Za-z0-9._-]` become `_`, and a name that is empty or only dots is
/// refused, so no name becomes a path outside the output directory.
pub fn page_file_name(name: &str) -> Option<String> {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    (!clean.trim_matches('.').is_empty()).then(|| format!("{clean}.html"))
}

/// The page path of a scenario at `relative` (a path under the scenarios
/// root): its normal components, each cleaned, `.yaml` replaced by `.html`.
pub fn page_path(dir: &Path, relative: &str) -> Option<PathBuf> {
    let mut parts: Vec<String> = Path::new(relative)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let last = parts.pop()?;
    let stem = last
        .strip_suffix(".yaml")
        .or_else(|| last.strip_suffix(".yml"))
        .unwrap_or(&last);
    let mut path = dir.to_path_buf();
    for part in parts {
        let clean = page_file_name(&part)?;
        path.push(clean.trim_end_matches(".html"));
    }
    path.push(page_file_name(stem)?);
    Some(path)
}

/// Writes the page of `scenario` as `DIR/<name>.html`, atomically; returns
/// its path.
pub fn write_run_page(dir: &Path, scenario: &Scenario, source: &str) -> io::Result<PathBuf> {
    let name = page_file_name(&scenario.name).ok_or_else(|| {
        io::Error::other(format!("no page name for scenario `{}`", scenario.name))
    })?;
    let page = render_page(scenario, source, None).map_err(|e| io::Error::other(e.to_string()))?;
    let path = dir.join(name);
    crate::atomic::write(&path, page.html.as_bytes())?;
    Ok(path)
}

/// [`write_run_page`] for the scenario file at `path`, named `source`.
pub fn write_run_file_page(dir: &Path, path: &Path, source: &str) -> io::Result<PathBuf> {
    let scenario =
        crate::scenario::parse_scenario(path).map_err(|e| io::Error::other(e.to_string()))?;
    write_run_page(dir, &scenario, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn names_never_leave_the_directory() {
        assert_eq!(
            page_file_name("spec-example").as_deref(),
            Some("spec-example.html")
        );
        assert_eq!(
            page_file_name("../x</script>").as_deref(),
            Some(".._x__script_.html")
        );
        assert_eq!(page_file_name(".."), None);
        let dir = Path::new("out");
        assert_eq!(
            page_path(dir, "a/b.yaml"),
            Some(PathBuf::from("out/a/b.html"))
        );
        assert_eq!(
            page_path(dir, "../../etc/x.yaml"),
            Some(PathBuf::from("out/etc/x.html"))
        );
    }
}
