//! Timeline pages in a real browser: headless Chromium (Debian's `chromium`
//! package; `.ci/run` installs it) loads pages of library scenarios, a
//! failed scenario and a hostile one, runs their scripts, and dumps the
//! DOM. Each page checks its own parts after its script ran (lanes, the
//! step table, a selected step's explanation and events) and writes the
//! result into the DOM; any script error is recorded there too, and any
//! console message in the browser's log fails the test.
//!
//! Without Chromium these tests fail and say how to install it: a browser
//! check that silently passes would prove nothing.

mod common;

use common::root;
use std::path::{Path, PathBuf};
use std::process::Command;

use rehearse::html;
use rehearse::scenario;
use rehearse::suite::{self, SuiteConfig};

/// The Chromium binary: `REHEARSE_CHROMIUM`, else `chromium` on the path.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("REHEARSE_CHROMIUM") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "chromium is not installed, so the timeline pages cannot be checked in a browser: \
             install it with `apt-get install -y chromium` (CI's .ci/run does), or point \
             REHEARSE_CHROMIUM at a Chromium binary"
        )
    })
}

/// Loads `page` headless, lets its scripts run, and returns the DOM and
/// the browser's console lines.
fn load(page: &Path) -> (String, Vec<String>) {
    let url = format!(
        "file://{}",
        page.canonicalize().expect("the page exists").display()
    );
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
            &url,
        ])
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let console = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| line.contains("CONSOLE") || line.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        console,
    )
}

/// The attributes of the page's self-check element.
fn self_check(dom: &str) -> &str {
    let start = dom
        .find(r#"<output id="selfcheck""#)
        .expect("the page has its self-check");
    let end = dom[start..]
        .find("</output>")
        .map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

/// Asserts a page loaded cleanly and passed its own checks, with a lane
/// for each persona and the supervisor.
fn assert_clean(page: &Path, personas: &[&str], steps: usize) -> String {
    let (dom, console) = load(page);
    assert!(
        console.is_empty(),
        "{}: console messages: {console:#?}",
        page.display()
    );
    let html_tag = &dom[dom.find("<html").expect("an html element")..];
    let html_tag = &html_tag[..html_tag.find('>').unwrap()];
    assert!(
        !html_tag.contains("data-js-error"),
        "{}: script error: {html_tag}",
        page.display()
    );
    assert!(
        html_tag.contains("data-ready-ms"),
        "{}: the page's script did not finish",
        page.display()
    );
    let check = self_check(&dom);
    assert!(
        check.contains(r#"data-status="ok""#),
        "{}: {check}",
        page.display()
    );
    assert!(
        check.contains(&format!(r#"data-steps="{steps}""#)),
        "{}: {check}",
        page.display()
    );
    for persona in personas {
        assert!(
            check.contains(&format!("persona:{persona}")),
            "{}: no lane for {persona}: {check}",
            page.display()
        );
    }
    assert!(check.contains("supervisor"), "{}: {check}", page.display());
    assert!(
        dom.contains(r#"<tr data-step="1""#),
        "{}: no step rows",
        page.display()
    );
    assert!(
        dom.contains(r#"id="detail" data-selected="#),
        "{}: no step was shown",
        page.display()
    );
    dom
}

fn config(scenarios: &Path, snapshots: &Path) -> SuiteConfig {
    SuiteConfig {
        paths: vec![scenarios.to_path_buf()],
        scenarios_root: scenarios.to_path_buf(),
        snapshots_root: snapshots.to_path_buf(),
        jobs: 2,
        partition: None,
        find_orphans: false,
    }
}

#[test]
fn library_pages_show_their_lanes_and_steps_without_errors() {
    let root = root();
    let out = tempfile::tempdir().unwrap();
    let cases = [
        ("supervisor/spec-example.yaml", vec!["merge_captain"]),
        ("supervisor/rate-limit-delay.yaml", vec!["bot"]),
        ("supervisor/in-flight-through-crash.yaml", vec![]),
        ("supervisor/retries-walk-attempts.yaml", vec![]),
        ("multi/independent-budgets.yaml", vec![]),
        ("durability/restart-torn-tail.yaml", vec![]),
        ("pipeline/handoff-ack.yaml", vec![]),
        ("process/fencing-after-expiry.yaml", vec![]),
    ];
    for (relative, personas) in cases {
        let path = root.join("scenarios").join(relative);
        let parsed = scenario::parse_scenario(&path).unwrap();
        let names: Vec<&str> = if personas.is_empty() {
            parsed.personas.keys().map(String::as_str).collect()
        } else {
            personas
        };
        let file = html::write_run_page(out.path(), &parsed, relative).unwrap();
        let dom = assert_clean(&file, &names, parsed.steps.len());
        assert!(dom.contains(r#"data-lane="axis""#));
    }
}

#[test]
fn check_pages_link_every_scenario_and_show_a_failed_golden_event_by_event() {
    let root = root();
    let work = tempfile::tempdir().unwrap();
    let (scenarios, snapshots) = (work.path().join("scenarios"), work.path().join("snapshots"));
    for group in ["supervisor", "lease"] {
        copy_dir(&root.join("scenarios").join(group), &scenarios.join(group));
        copy_dir(&root.join("snapshots").join(group), &snapshots.join(group));
    }
    // Change one golden event: the page must show that field changed.
    let events = snapshots.join("supervisor/spec-example/events.jsonl");
    let text = std::fs::read_to_string(&events).unwrap();
    std::fs::write(
        &events,
        text.replacen("\"cost_usd\":0.01", "\"cost_usd\":0.02", 1),
    )
    .unwrap();
    let config = config(&scenarios, &snapshots);
    let results: Vec<_> = suite::selected(&config)
        .unwrap()
        .iter()
        .map(|path| suite::check_one(&config, path, false))
        .collect();
    let html_dir = work.path().join("html");
    html::write_check_pages(&html_dir, &results, &config).unwrap();

    let (index, console) = load(&html_dir.join("index.html"));
    assert!(console.is_empty(), "index console: {console:#?}");
    for result in &results {
        let href = result.name.replace(".yaml", ".html");
        assert!(
            index.contains(&format!(r#"<a href="{href}">"#)),
            "index lacks {href}"
        );
    }
    assert!(
        index.contains(r#"<tr data-verdict="fail"><td><a href="supervisor/spec-example.html">"#)
    );

    let page = html_dir.join("supervisor/spec-example.html");
    let dom = assert_clean(&page, &["merge_captain"], 8);
    assert!(dom.contains("events.jsonl differs from its golden"));
    assert!(dom.contains(r#"<tr class="field-changed"><td>payload.cost.cost_usd</td><td>0.02</td><td>0.01</td></tr>"#), "no highlighted field in the golden diff");
}

#[test]
fn hostile_text_from_a_scenario_never_becomes_markup() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("hostile.yaml");
    std::fs::write(&file, HOSTILE).unwrap();
    let parsed = scenario::parse_scenario(&file).unwrap();
    let page = html::write_run_page(work.path(), &parsed, "hostile.yaml").unwrap();
    let persona = "p&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;";
    let dom = assert_clean(&page, &[persona], 1);
    assert!(!dom.contains("<img"), "an <img> element was injected");
    assert!(!dom.contains("<b>"), "a <b> element was injected");
    // The description's script would retitle the page.
    assert!(
        dom.contains("<title>rehearse: hostile</title>"),
        "injected script ran"
    );
    assert!(
        dom.contains("&lt;/script&gt;&lt;script&gt;document.title"),
        "the description is shown as text"
    );
}

const HOSTILE: &str = r#"version: 1
name: hostile
description: "</script><script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
start: 2026-04-24T12:00:00Z
personas:
  "p</script><img src=x onerror=alert(1)>":
    entry_workflow: "wf<img src=x onerror=alert(2)>"
    budget: { daily_usd: 0.05 }
steps:
  - at: 0s
    trigger:
      persona: "p</script><img src=x onerror=alert(1)>"
      provider: "web<script>alert(3)</script>"
      kind: "</script><img src=x onerror=alert(4)>"
      metadata: { dedupe_key: "</script><img src=x onerror=alert(5)>", "<b>k": "\u2028</script>" }
      cost: { usd: 0.01 }
    expect: { receipt: "</script><img src=x onerror=alert(6)>" }
"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn pages_are_the_same_bytes_every_time() {
    let path = root().join("scenarios/supervisor/rate-limit-delay.yaml");
    let parsed = scenario::parse_scenario(&path).unwrap();
    let first = html::render_page(&parsed, "x.yaml", None).unwrap().html;
    let second = html::render_page(&parsed, "x.yaml", None).unwrap().html;
    assert_eq!(first, second);
}
