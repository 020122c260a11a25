//! The timeline as inline SVG: one column per step (times between steps are
//! interpolated), a lane per persona (state, leases, runs, queued work), a
//! supervisor lane (in-flight slots, deferrals with an arrow to the pump
//! that ran them, rate windows), and a budget chart (spend per day and hour
//! against the limits). Marks closer than a pixel are merged, so a page of
//! many thousand steps stays small.

use std::collections::BTreeMap;
use std::fmt::Write;

use rehearse_runtime::format_ms;
use rehearse_runtime::persona::Lifecycle;

use super::escape::esc;
use super::record::{Frame, LeaseBar};
use crate::report::Report;

/// The plot's left edge (lane labels sit left of it) and width.
const LEFT: f64 = 190.0;
const WIDTH: f64 = 1180.0;
const ROW: f64 = 16.0;

/// What the timeline is drawn from.
#[derive(Debug)]
pub(super) struct Model<'a> {
    pub report: &'a Report,
    pub names: Vec<String>,
    /// After every step (carried over steps that only check).
    pub frames: Vec<Frame>,
    pub receipts: Vec<Vec<(usize, String)>>,
    pub leases: Vec<LeaseBar>,
    pub budgets: Vec<Budget>,
    pub rate_window_ms: Option<i64>,
    pub max_in_flight: Option<u64>,
}

/// A persona's limits, for the budget chart.
#[derive(Clone, Debug, Default)]
pub(super) struct Budget {
    pub daily_usd: Option<f64>,
    pub hourly_usd: Option<f64>,
}

/// Step columns and the time axis.
struct Axis {
    times: Vec<i64>,
}

impl Axis {
    /// One column per step of the model's report, at the step's time.
    fn of(model: &Model<'_>) -> Self {
        Self {
            times: model
                .report
                .steps
                .iter()
                .map(|s| rehearse_runtime::clock::parse_rfc3339_ms(&s.at).unwrap_or(0))
                .collect(),
        }
    }

    fn n(&self) -> usize {
        self.times.len().max(1)
    }

    fn col(&self) -> f64 {
        WIDTH / self.n() as f64
    }

    /// The centre of step `i`'s column.
    fn x(&self, i: usize) -> f64 {
        LEFT + (i as f64 + 0.5) * self.col()
    }

    /// Where what holds after step `i` begins to be drawn: the step's
    /// column centre (the right edge past the last step), so a state is
    /// never drawn before the step that caused it.
    fn edge(&self, i: usize) -> f64 {
        if i >= self.times.len() {
            LEFT + WIDTH
        } else {
            self.x(i)
        }
    }

    /// Where time `t` falls: between the columns of the steps around it,
    /// at the right edge when it is after the last step.
    fn at(&self, t: i64) -> f64 {
        let j = self.times.partition_point(|&s| s < t);
        if j == 0 {
            return self.x(0);
        }
        if j == self.times.len() {
            return LEFT + WIDTH;
        }
        let (t0, t1) = (self.times[j - 1], self.times[j]);
        let frac = if t1 > t0 {
            (t - t0) as f64 / (t1 - t0) as f64
        } else {
            1.0
        };
        self.x(j - 1) + frac * (self.x(j) - self.x(j - 1))
    }
}

/// Marks of one row merged by pixel: the first step, how many, the class.
#[derive(Default)]
struct Marks {
    by_pixel: BTreeMap<i64, (usize, usize, String, String)>,
}

impl Marks {
    fn add(&mut self, x: f64, step: usize, class: &str, title: String) {
        let entry = self
            .by_pixel
            .entry(x.floor() as i64)
            .or_insert_with(|| (step, 0, class.to_string(), title));
        entry.1 += 1;
    }

    fn draw(&self, out: &mut String, axis: &Axis, y: f64, h: f64) {
        let w = (axis.col() * 0.7).clamp(1.0, 14.0);
        for (px, (step, count, class, title)) in &self.by_pixel {
            let title = if *count > 1 {
                format!("{title} (+{} more here)", count - 1)
            } else {
                title.clone()
            };
            let _ = write!(
                out,
                r#"<rect class="{class}" data-step="{}" x="{:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}"><title>{}</title></rect>"#,
                step + 1,
                *px as f64 + 0.5 - w / 2.0,
                esc(&title)
            );
        }
    }
}

fn lifecycle_class(lifecycle: Lifecycle) -> &'static str {
    match lifecycle {
        Lifecycle::Running => "st-running",
        Lifecycle::Paused => "st-paused",
        Lifecycle::Disabled => "st-disabled",
        Lifecycle::Failed => "st-failed",
        Lifecycle::Draining => "st-paused",
        Lifecycle::Inactive | Lifecycle::Starting | Lifecycle::Idle => "st-idle",
    }
}

fn receipt_class(receipt: &str) -> &'static str {
    match receipt {
        "completed" => "rc-completed",
        "failed" | "error" => "rc-failed",
        "crashed" => "rc-crashed",
        "queued" => "rc-queued",
        "budget_exhausted" => "rc-budget",
        "duplicate" => "rc-duplicate",
        "lease_busy" => "rc-busy",
        "dead_lettered" => "rc-dead",
        _ => "rc-other",
    }
}

fn label(out: &mut String, y: f64, text: &str, class: &str) {
    let _ = write!(
        out,
        r#"<text class="{class}" x="{:.1}" y="{:.1}">{}</text>"#,
        LEFT - 8.0,
        y + ROW * 0.72,
        esc(text)
    );
}

/// The whole timeline SVG.
pub(super) fn svg(model: &Model<'_>) -> String {
    let axis = Axis::of(model);
    let mut body = String::new();
    let mut y = 8.0;
    y = draw_axis(&mut body, &axis, y);
    for (index, name) in model.names.iter().enumerate() {
        y = draw_persona(&mut body, model, &axis, index, name, y);
    }
    y = draw_supervisor(&mut body, model, &axis, y);
    let height = y + 8.0;
    let mut out = String::with_capacity(body.len() + 1024);
    let _ = write!(
        out,
        r##"<svg id="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0} {height:.0}" width="100%" data-left="{LEFT}" data-width="{WIDTH}" data-steps="{n}"><defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" class="arrowhead"/></marker></defs>"##,
        w = LEFT + WIDTH + 20.0,
        n = axis.times.len()
    );
    out.push_str(&body);
    let _ = write!(
        out,
        r#"<line id="cursor" x1="-10" x2="-10" y1="0" y2="{height:.0}"/><rect id="hit" x="{LEFT}" y="0" width="{WIDTH}" height="{height:.0}"/></svg>"#
    );
    out
}

fn draw_axis(out: &mut String, axis: &Axis, y: f64) -> f64 {
    let n = axis.times.len();
    let every = [
        1usize, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
    ]
    .into_iter()
    .find(|k| n / k <= 24)
    .unwrap_or(n.max(1));
    let _ = write!(out, r#"<g data-lane="axis">"#);
    label(out, y, "step / time", "lane-label");
    for i in (0..n).step_by(every) {
        let x = axis.x(i);
        let time = format_ms(axis.times[i]);
        let short = time.get(11..19).unwrap_or(&time);
        let _ = write!(
            out,
            r#"<line class="tick" x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}"/><text class="tick-label" x="{x:.1}" y="{:.1}">{}</text><text class="tick-time" x="{x:.1}" y="{:.1}">{}</text>"#,
            y + 22.0,
            y + 28.0,
            y + 10.0,
            i + 1,
            y + 20.0,
            esc(short)
        );
    }
    out.push_str("</g>");
    y + 34.0
}

/// A persona's lane: state band, leases, runs, queued work.
fn draw_persona(
    out: &mut String,
    model: &Model<'_>,
    axis: &Axis,
    index: usize,
    name: &str,
    y: f64,
) -> f64 {
    let _ = write!(out, r#"<g data-lane="persona:{}">"#, esc(name));
    let _ = write!(
        out,
        r#"<rect class="lane-bg" x="0" y="{:.1}" width="{:.0}" height="{:.1}"/>"#,
        y - 2.0,
        LEFT + WIDTH + 20.0,
        ROW * 5.0 + 8.0
    );
    let _ = write!(
        out,
        r#"<text class="persona-name" x="8" y="{:.1}">persona {}</text>"#,
        y + ROW * 0.72,
        esc(name)
    );
    let y = y + ROW;
    let frame = |i: usize| model.frames.get(i).and_then(|f| f.personas.get(index));
    // State band, run-length encoded.
    label(out, y, "state", "row-label");
    let mut i = 0;
    while i < axis.times.len() {
        let state = frame(i).map_or(Lifecycle::Idle, |f| f.lifecycle);
        let mut j = i + 1;
        while j < axis.times.len() && frame(j).map_or(Lifecycle::Idle, |f| f.lifecycle) == state {
            j += 1;
        }
        let name = serde_json::to_value(state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<rect class="{}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>steps {}-{}: {}</title></rect>"#,
            lifecycle_class(state),
            axis.edge(i),
            y + 2.0,
            axis.edge(j) - axis.edge(i),
            ROW - 4.0,
            i + 1,
            j,
            esc(&name)
        );
        i = j;
    }
    draw_leases(out, model, axis, index, y + ROW);
    draw_runs(out, model, axis, index, y + 2.0 * ROW);
    draw_queue(out, model, axis, index, y + 3.0 * ROW);
    out.push_str("</g>");
    y + 4.0 * ROW + 12.0
}

fn draw_leases(out: &mut String, model: &Model<'_>, axis: &Axis, index: usize, y: f64) {
    label(out, y, "leases", "row-label");
    let mut marks = Marks::default();
    for lease in model.leases.iter().filter(|l| l.persona == index) {
        let x0 = axis.x(lease.step);
        let (x1, how) = match lease.ended {
            Some((step, at)) if step == lease.step => {
                (x0, format!("released at {}", format_ms(at)))
            }
            Some((_, at)) => (axis.at(at), format!("ended at {}", format_ms(at))),
            None => (axis.at(lease.expires_ms), "never released".to_string()),
        };
        let title = format!(
            "lease {} acquired {} (step {}), expires {}, {how}",
            lease.id,
            format_ms(lease.acquired_ms),
            lease.step + 1,
            format_ms(lease.expires_ms)
        );
        if x1 - x0 < 3.0 {
            marks.add(x0, lease.step, "lease", title);
            continue;
        }
        let _ = write!(
            out,
            r#"<rect class="lease long" data-step="{}" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
            lease.step + 1,
            y + 3.0,
            x1 - x0,
            ROW - 6.0,
            esc(&title)
        );
    }
    marks.draw(out, axis, y + 3.0, ROW - 6.0);
}

fn draw_runs(out: &mut String, model: &Model<'_>, axis: &Axis, index: usize, y: f64) {
    label(out, y, "runs", "row-label");
    let mut marks = Marks::default();
    for (step, receipts) in model.receipts.iter().enumerate() {
        for (persona, receipt) in receipts {
            if *persona == index {
                let title = format!("step {}: {receipt}", step + 1);
                marks.add(axis.x(step), step, receipt_class(receipt), title);
            }
        }
    }
    marks.draw(out, axis, y + 2.0, ROW - 4.0);
}

fn draw_queue(out: &mut String, model: &Model<'_>, axis: &Axis, index: usize, y: f64) {
    label(out, y, "queued work", "row-label");
    let depth = |i: usize| {
        model
            .frames
            .get(i)
            .and_then(|f| f.personas.get(index))
            .map_or(0, |f| f.queued)
    };
    let max = (0..axis.times.len()).map(depth).max().unwrap_or(0);
    if max == 0 {
        return;
    }
    let mut i = 0;
    while i < axis.times.len() {
        let d = depth(i);
        let mut j = i + 1;
        while j < axis.times.len() && depth(j) == d {
            j += 1;
        }
        if d > 0 {
            let h = (ROW - 4.0) * d as f64 / max as f64;
            let _ = write!(
                out,
                r#"<rect class="queue" x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>steps {}-{}: {d} queued</title></rect>"#,
                axis.edge(i),
                y + ROW - 2.0 - h,
                axis.edge(j) - axis.edge(i),
                i + 1,
                j
            );
        }
        i = j;
    }
}

/// The supervisor lane: in-flight slots, deferrals, rate windows.
fn draw_supervisor(out: &mut String, model: &Model<'_>, axis: &Axis, y: f64) -> f64 {
    out.push_str(r#"<g data-lane="supervisor">"#);
    let _ = write!(
        out,
        r#"<text class="persona-name" x="8" y="{:.1}">supervisor</text>"#,
        y + ROW * 0.72
    );
    let y = draw_in_flight(out, model, axis, y + ROW);
    let y = draw_deferrals(out, model, axis, y);
    let y = draw_rate(out, model, axis, y);
    out.push_str("</g>");
    y + 6.0
}

fn draw_in_flight(out: &mut String, model: &Model<'_>, axis: &Axis, y: f64) -> f64 {
    // Each episode's bar starts at the first step it was seen in flight.
    let mut first_seen: BTreeMap<u64, (usize, i64)> = BTreeMap::new();
    for (i, frame) in model.frames.iter().enumerate() {
        for &(episode, until) in &frame.in_flight {
            first_seen.entry(episode).or_insert((i, until));
        }
    }
    let slots_wanted = model.max_in_flight.map_or(1, |m| m.clamp(1, 8) as usize);
    let mut slot_ends: Vec<f64> = vec![f64::MIN; slots_wanted];
    let mut bars = String::new();
    for (episode, (step, until)) in &first_seen {
        let (x0, x1) = (axis.x(*step), axis.at(*until).max(axis.x(*step) + 2.0));
        let slot = slot_ends
            .iter()
            .position(|&end| end <= x0)
            .unwrap_or_else(|| {
                slot_ends.push(f64::MIN);
                slot_ends.len() - 1
            });
        slot_ends[slot] = x1;
        let _ = write!(
            bars,
            r#"<rect class="inflight" data-step="{}" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>episode {episode} in flight from step {} until {}</title></rect>"#,
            step + 1,
            y + slot.min(7) as f64 * ROW + 3.0,
            x1 - x0,
            ROW - 6.0,
            step + 1,
            format_ms(*until)
        );
    }
    let rows = slot_ends.len().min(8);
    let cap = model
        .max_in_flight
        .map_or("no max_in_flight".to_string(), |m| {
            format!("max_in_flight {m}")
        });
    for slot in 0..rows {
        let text = if slot == 0 {
            format!("in flight ({cap})")
        } else {
            String::new()
        };
        label(out, y + slot as f64 * ROW, &text, "row-label");
        let _ = write!(
            out,
            r#"<line class="slot" x1="{LEFT}" x2="{:.0}" y1="{:.1}" y2="{:.1}"/>"#,
            LEFT + WIDTH,
            y + (slot as f64 + 1.0) * ROW,
            y + (slot as f64 + 1.0) * ROW
        );
    }
    out.push_str(&bars);
    y + rows as f64 * ROW
}

/// An arrow from every deferred step to the pump that ran its episode.
fn draw_deferrals(out: &mut String, model: &Model<'_>, axis: &Axis, y: f64) -> f64 {
    label(out, y, "deferrals", "row-label");
    let h = ROW * 2.0;
    let mut deferred_at: BTreeMap<u64, usize> = BTreeMap::new();
    let mut marks = Marks::default();
    for (i, step) in model.report.steps.iter().enumerate() {
        let Some(decision) = &step.decision else {
            continue;
        };
        let Some(episode) = decision.episode_id else {
            continue;
        };
        let defer = decision.decision.as_str() == "defer";
        if step.kind != "pump" && defer {
            deferred_at.insert(episode, i);
            let title = format!(
                "step {}: episode {episode} deferred to {}",
                i + 1,
                decision.schedule_at_ms.map(format_ms).unwrap_or_default()
            );
            marks.add(axis.x(i), i, "deferred", title);
        } else if step.kind == "pump" && defer {
            let title = format!("step {}: pump re-deferred episode {episode}", i + 1);
            marks.add(axis.x(i), i, "redeferred", title);
        } else if step.kind == "pump" {
            if let Some(from) = deferred_at.remove(&episode) {
                let (x0, x1) = (axis.x(from), axis.x(i));
                let _ = write!(
                    out,
                    r#"<path class="deferral" data-step="{}" d="M{x0:.1},{:.1} C{x0:.1},{:.1} {x1:.1},{:.1} {x1:.1},{:.1}" marker-end="url(#arrow)"><title>episode {episode}: deferred at step {}, run by the pump at step {}</title></path>"#,
                    i + 1,
                    y + h - 3.0,
                    y + 2.0,
                    y + 2.0,
                    y + h - 3.0,
                    from + 1,
                    i + 1
                );
            }
        }
    }
    marks.draw(out, axis, y + h - 8.0, 6.0);
    y + h
}

fn draw_rate(out: &mut String, model: &Model<'_>, axis: &Axis, y: f64) -> f64 {
    let Some(window) = model.rate_window_ms else {
        return y;
    };
    label(out, y, &format!("rate window ({window} ms)"), "row-label");
    let mut seen: Vec<i64> = model
        .frames
        .iter()
        .flat_map(|f| f.window.iter().copied())
        .collect();
    seen.dedup();
    seen.sort_unstable();
    seen.dedup();
    for (k, at) in seen.iter().enumerate() {
        let (x0, x1) = (axis.at(*at), axis.at(at + window));
        let _ = write!(
            out,
            r#"<rect class="window" x="{x0:.1}" y="{:.1}" width="{:.1}" height="4"><title>invocation at {}: in the window until {}</title></rect>"#,
            y + 2.0 + (k % 3) as f64 * 4.5,
            (x1 - x0).max(1.0),
            format_ms(*at),
            format_ms(at + window)
        );
    }
    y + ROW
}

/// The budget chart: per persona, spend today and this hour after every
/// step, against the daily and hourly limits.
pub(super) fn budget_svg(model: &Model<'_>) -> String {
    let axis = Axis::of(model);
    let chart_h = 90.0;
    let mut out = String::new();
    let mut y = 10.0;
    for (index, name) in model.names.iter().enumerate() {
        let budget = model.budgets.get(index).cloned().unwrap_or_default();
        let values: Vec<(f64, f64)> = model
            .frames
            .iter()
            .map(|f| {
                f.personas
                    .get(index)
                    .map_or((0.0, 0.0), |p| (p.today_usd, p.hour_usd))
            })
            .collect();
        let spent = values
            .iter()
            .flat_map(|&(d, h)| [d, h])
            .fold(0.0f64, f64::max);
        // A limit far above the spend would flatten the spend to a line:
        // such a limit is drawn at the top edge and labelled as above it.
        let top = [budget.daily_usd, budget.hourly_usd]
            .into_iter()
            .flatten()
            .filter(|&limit| spent == 0.0 || limit <= 4.0 * spent)
            .fold(spent, f64::max);
        if top <= 0.0 {
            continue;
        }
        let _ = write!(
            out,
            r#"<text class="persona-name" x="8" y="{:.1}">persona {}</text>"#,
            y + 12.0,
            esc(name)
        );
        draw_budget(
            &mut out,
            &axis,
            &budget,
            &values,
            top * 1.15,
            y + 20.0,
            chart_h,
        );
        y += chart_h + 40.0;
    }
    if out.is_empty() {
        return String::new();
    }
    format!(
        r#"<svg id="budget" data-lane="budget" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0} {y:.0}" width="100%">{out}</svg>"#,
        w = LEFT + WIDTH + 20.0
    )
}

fn draw_budget(
    out: &mut String,
    axis: &Axis,
    budget: &Budget,
    values: &[(f64, f64)],
    top: f64,
    y: f64,
    h: f64,
) {
    let y_of = |v: f64| y + h - h * v / top;
    let _ = write!(
        out,
        r#"<text class="row-label" x="{:.1}" y="{:.1}">0 USD</text><rect class="chart-bg" x="{LEFT}" y="{y:.1}" width="{WIDTH}" height="{h:.1}"/><text class="chart-top" x="{:.1}" y="{:.1}">top of chart: {:.4} USD</text>"#,
        LEFT - 8.0,
        y + h,
        LEFT + 4.0,
        y + 10.0,
        top
    );
    for (limit, class, text) in [
        (budget.daily_usd, "limit-day", "daily_usd"),
        (budget.hourly_usd, "limit-hour", "hourly_usd"),
    ] {
        if let Some(limit) = limit {
            let (ly, above) = if limit > top {
                (y, " (above the chart)")
            } else {
                (y_of(limit), "")
            };
            let _ = write!(
                out,
                r#"<line class="{class}" x1="{LEFT}" x2="{:.0}" y1="{ly:.1}" y2="{ly:.1}"><title>{text} {limit}</title></line><text class="row-label" x="{:.1}" y="{:.1}">{text} {limit}{above}</text>"#,
                LEFT + WIDTH,
                LEFT - 8.0,
                ly + 4.0
            );
        }
    }
    for (pick, class) in [(0usize, "spend-day"), (1, "spend-hour")] {
        let mut points = String::new();
        let mut last_px = i64::MIN;
        for (i, v) in values.iter().enumerate() {
            let value = if pick == 0 { v.0 } else { v.1 };
            let px = axis.edge(i + 1).floor() as i64;
            // One point per pixel column keeps long scenarios small.
            if px == last_px && i + 1 != values.len() {
                continue;
            }
            last_px = px;
            let _ = write!(
                points,
                "{:.1},{:.1} {:.1},{:.1} ",
                axis.edge(i),
                y_of(value),
                axis.edge(i + 1),
                y_of(value)
            );
        }
        let _ = write!(
            out,
            r#"<polyline class="{class}" points="{}"/>"#,
            points.trim_end()
        );
    }
}
