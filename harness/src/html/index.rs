//! `check --html DIR`: a page per scenario and an index linking them, with
//! each scenario's verdict.

use std::fmt::Write;
use std::io;
use std::path::Path;

use super::escape::esc;
use super::{head, page_path, render_page};
use crate::suite::{self, ScenarioResult, SuiteConfig, Verdict};

/// One scenario as the index lists it.
#[derive(Debug)]
pub struct IndexEntry {
    pub name: String,
    pub verdict: &'static str,
    /// The page, relative to the index; `None` when none was written.
    pub href: Option<String>,
    pub note: String,
}

fn verdict_name(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail { .. } => "fail",
        Verdict::New => "new",
        Verdict::Error { .. } => "error",
    }
}

/// Writes a page for every scenario of `results` under `dir` (named after
/// its path under the scenarios root) and `dir/index.html`, each file
/// atomically. A scenario that cannot run gets no page; the index says why.
pub fn write_check_pages(
    dir: &Path,
    results: &[ScenarioResult],
    config: &SuiteConfig,
) -> io::Result<()> {
    let mut entries = Vec::with_capacity(results.len());
    for result in results {
        let path = Path::new(&result.source);
        let mut entry = IndexEntry {
            name: result.name.clone(),
            verdict: verdict_name(&result.verdict),
            href: None,
            note: String::new(),
        };
        if let Verdict::Error { message, .. } = &result.verdict {
            entry.note = message.clone();
        } else if suite::is_invalid_case(config, path) {
            entry.note = "an invalid scenario: its golden is its lint error".to_string();
        } else {
            write_page(dir, result, config, &mut entry)?;
        }
        entries.push(entry);
    }
    crate::atomic::write(&dir.join("index.html"), index_html(&entries).as_bytes())
}

fn write_page(
    dir: &Path,
    result: &ScenarioResult,
    config: &SuiteConfig,
    entry: &mut IndexEntry,
) -> io::Result<()> {
    let path = Path::new(&result.source);
    let Some(page_file) = page_path(dir, &result.name) else {
        entry.note = "no page: the name gives no file name".to_string();
        return Ok(());
    };
    let scenario = match crate::scenario::parse_scenario(path) {
        Ok(scenario) => scenario,
        Err(error) => {
            entry.note = error.to_string();
            return Ok(());
        }
    };
    let goldens = crate::golden::golden_dir(&config.snapshots_root, &config.scenarios_root, path);
    match render_page(&scenario, &result.source, Some(&goldens)) {
        Ok(page) => {
            crate::atomic::write(&page_file, page.html.as_bytes())?;
            let relative = page_file.strip_prefix(dir).unwrap_or(&page_file);
            entry.href = Some(relative.to_string_lossy().replace('\\', "/"));
        }
        Err(error) => entry.note = error.to_string(),
    }
    Ok(())
}

fn index_html(entries: &[IndexEntry]) -> String {
    let passed = entries.iter().filter(|e| e.verdict == "pass").count();
    let mut out = head("rehearse check", &[super::ERROR_HOOK]);
    let _ = write!(
        out,
        r#"<body><header><h1>rehearse check</h1><div class="meta">{passed} passed, {} not passed, of {}</div></header><main><table class="steps" id="index"><thead><tr><th>scenario</th><th>verdict</th><th>note</th></tr></thead><tbody>"#,
        entries.len() - passed,
        entries.len()
    );
    // Failed scenarios first, then the rest, each group in library order.
    let order = entries
        .iter()
        .filter(|e| e.verdict != "pass")
        .chain(entries.iter().filter(|e| e.verdict == "pass"));
    for entry in order {
        let name = match &entry.href {
            Some(href) => format!(r#"<a href="{}">{}</a>"#, esc(href), esc(&entry.name)),
            None => esc(&entry.name),
        };
        let class = if entry.verdict == "pass" {
            "verdict-pass"
        } else {
            "verdict-fail"
        };
        let _ = write!(
            out,
            r#"<tr data-verdict="{0}"><td>{name}</td><td class="{class}">{0}</td><td>{1}</td></tr>"#,
            entry.verdict,
            esc(&entry.note)
        );
    }
    out.push_str("</tbody></table></main></body></html>\n");
    out
}
