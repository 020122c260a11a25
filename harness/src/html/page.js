// The timeline page's behaviour: select a step (click the timeline, a row
// of the step table, or #step-N), show its explanation and its events, and
// check the page's own parts, recording the result in the DOM.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("rehearse-data").textContent);
  var steps = data.steps;
  var PAGE = 100;
  var page = 0;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function stepRow(s) {
    var tr = el("tr");
    tr.setAttribute("data-step", String(s.step));
    [s.step, s.line, s.at, s.kind, s.receipt || "", s.decision || "",
     s.events ? s.events[1] : ""].forEach(function (v) {
      tr.appendChild(el("td", null, String(v)));
    });
    tr.addEventListener("click", function () { select(s.step); });
    return tr;
  }

  function renderTable() {
    var body = document.getElementById("steps-body");
    body.textContent = "";
    var start = page * PAGE;
    steps.slice(start, start + PAGE).forEach(function (s) { body.appendChild(stepRow(s)); });
    var pages = Math.max(1, Math.ceil(steps.length / PAGE));
    document.getElementById("page-label").textContent =
      "steps " + (steps.length ? start + 1 : 0) + "-" + Math.min(start + PAGE, steps.length) +
      " of " + steps.length + " (page " + (page + 1) + " of " + pages + ")";
  }

  function eventBlock(index) {
    var line = data.events[index];
    var box = el("div", "event");
    if (line === undefined || line === null) {
      box.textContent = "events.jsonl line " + (index + 1) + ": not embedded in this page";
      return box;
    }
    var parsed = JSON.parse(line);
    box.appendChild(el("div", "event-head", "line " + (index + 1) + "  " + parsed.kind +
      "  " + parsed.topic + "#" + parsed.id));
    box.appendChild(el("pre", null, JSON.stringify(parsed.payload, null, 2)));
    return box;
  }

  function select(n) {
    var s = steps[n - 1];
    if (!s) return false;
    var panel = document.getElementById("detail");
    panel.textContent = "";
    panel.setAttribute("data-selected", String(n));
    panel.appendChild(el("h3", null, "step " + s.step + " (line " + s.line + ", " + s.at + "): " + s.kind));
    var text = data.explanations[n - 1];
    panel.appendChild(el("pre", "explanation", text === null
      ? "explanation not embedded (the page keeps its size bounded); run: rehearse explain " + data.source + " --step " + n
      : text));
    var events = el("div", "events");
    if (s.events) {
      events.appendChild(el("h4", null, s.events[1] + " event(s) appended (events.jsonl lines " +
        (s.events[0] + 1) + "-" + (s.events[0] + s.events[1]) + ")"));
      for (var i = s.events[0]; i < s.events[0] + s.events[1]; i++) events.appendChild(eventBlock(i));
    }
    panel.appendChild(events);
    var svg = document.getElementById("timeline");
    var left = Number(svg.getAttribute("data-left"));
    var width = Number(svg.getAttribute("data-width"));
    var x = left + (n - 0.5) * width / Math.max(steps.length, 1);
    var cursor = document.getElementById("cursor");
    cursor.setAttribute("x1", String(x));
    cursor.setAttribute("x2", String(x));
    var wanted = Math.floor((n - 1) / PAGE);
    if (wanted !== page) { page = wanted; renderTable(); }
    var rows = document.querySelectorAll("#steps-body tr");
    for (var r = 0; r < rows.length; r++) {
      rows[r].classList.toggle("selected", rows[r].getAttribute("data-step") === String(n));
    }
    return true;
  }

  function stepAt(evt) {
    var svg = document.getElementById("timeline");
    var pt = svg.createSVGPoint();
    pt.x = evt.clientX; pt.y = evt.clientY;
    var p = pt.matrixTransform(svg.getScreenCTM().inverse());
    var left = Number(svg.getAttribute("data-left"));
    var width = Number(svg.getAttribute("data-width"));
    var n = Math.floor((p.x - left) / width * steps.length) + 1;
    return Math.min(Math.max(n, 1), steps.length);
  }

  function fromHash() {
    var m = /^#step-(\d+)$/.exec(location.hash);
    if (m) select(Number(m[1]));
  }

  function selfCheck() {
    var problems = [];
    var lanes = document.querySelectorAll("[data-lane]");
    var names = [];
    for (var i = 0; i < lanes.length; i++) names.push(lanes[i].getAttribute("data-lane"));
    data.personas.forEach(function (p) {
      if (names.indexOf("persona:" + p) < 0) problems.push("no lane for persona " + p);
    });
    if (names.indexOf("supervisor") < 0) problems.push("no supervisor lane");
    if (Number(document.getElementById("timeline").getAttribute("data-steps")) !== steps.length)
      problems.push("the timeline's step count differs from the data");
    if (steps.length !== data.explanations.length) problems.push("explanations do not cover the steps");
    var rows = document.querySelectorAll("#steps-body tr[data-step]").length;
    if (rows !== Math.min(PAGE, steps.length)) problems.push("step table has " + rows + " rows");
    var first = steps.filter(function (s) { return s.events; })[0];
    if (first) {
      select(first.step);
      var shown = document.querySelectorAll("#detail .event").length;
      if (shown !== first.events[1]) problems.push("step " + first.step + " shows " + shown + " events");
      if (!document.querySelector("#detail .explanation").textContent) problems.push("empty explanation");
    }
    var out = document.getElementById("selfcheck");
    out.setAttribute("data-status", problems.length ? "fail" : "ok");
    out.setAttribute("data-lanes", names.join(" "));
    out.setAttribute("data-steps", String(steps.length));
    out.textContent = problems.length ? "self-check failed: " + problems.join("; ") : "self-check ok";
  }

  document.getElementById("hit").addEventListener("click", function (evt) { select(stepAt(evt)); });
  document.getElementById("prev").addEventListener("click", function () {
    if (page > 0) { page--; renderTable(); }
  });
  document.getElementById("next").addEventListener("click", function () {
    if ((page + 1) * PAGE < steps.length) { page++; renderTable(); }
  });
  window.addEventListener("hashchange", fromHash);
  renderTable();
  selfCheck();
  if (location.hash) fromHash();
  document.documentElement.setAttribute("data-ready-ms", String(Math.round(performance.now())));
})();
