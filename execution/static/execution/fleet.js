/* The execution page's fleet grids (docs/fleet.md "The execution page"): plain JavaScript.
 *
 * The page renders every target of a fleet step as one cell (templates/executions/_fleet_grid.html);
 * this script changes cells in place and never rebuilds the grid. A target_completed or
 * target_failed (or target_waiting) event sets its target's status in memory at once; a
 * timer paints what changed (the cells' status and CSS order: failed first, then running,
 * then waiting, then the rest, and the counts) at most once a second, whatever the rate of
 * events.
 *
 * A target's start has no event, and targets skipped when a step stops are written without
 * one: the grid asks the page's statuses URL (every status by target index) after news of its
 * step, every few seconds while the step runs, and once more when the step or the execution
 * ends. An answer never undoes an event that arrived after it was asked.
 *
 * A click on a cell shows that target's record (masked output, error, exit code) from the
 * API's targets endpoint, the same read right as the page.
 */
(function () {
  "use strict";

  var FINISHED = ["completed", "failed", "cancelled", "timeout", "partial", "rejected"];
  var STEP_ENDS = ["step_completed", "step_failed", "step_cancelled", "step_timeout", "step_skipped"];
  var PAINT_MS = 1000;   // at most one repaint (and one question) per grid per second
  var POLL_MS = 3000;    // while the step runs, ask at least this often
  var TICK_MS = 250;     // how often the timer looks (a late timer never brings two paints closer)

  function fetchJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  }

  function seconds(ms) { return typeof ms === "number" ? (ms / 1000).toFixed(2) + " s" : ""; }

  function fleetGrid(section) {
    var total = Number(section.getAttribute("data-total")) || 0;
    var ranks = JSON.parse(section.getAttribute("data-ranks") || "{}");
    var rest = Object.keys(ranks).length;
    var box = section.querySelector('[data-role="grid"]');
    var panel = section.querySelector('[data-role="target"]');
    var cells = [], statuses = [], painted = [], touched = [];
    var seq = 0, changed = false, busy = false, wanted = false, selected = null, shown = 0;
    var lastAsked = -Infinity, lastPainted = -Infinity;
    var running = section.getAttribute("data-running") === "true";

    Array.prototype.forEach.call(box.querySelectorAll(".cell"), function (cell) {
      var i = Number(cell.getAttribute("data-index"));
      cells[i] = cell;
      statuses[i] = painted[i] = cell.getAttribute("data-status");
    });

    // ``asOf``: the event count when the answer was asked (an answer), undefined for an event.
    function set(i, status, asOf) {
      if (cells[i] === undefined || typeof status !== "string") return;
      if (asOf === undefined) touched[i] = ++seq;
      else if ((touched[i] || 0) > asOf) return;  // an event newer than this answer
      if (statuses[i] !== status) { statuses[i] = status; changed = true; }
    }

    function paint(now) {
      if (!changed) return;
      changed = false;
      lastPainted = now;
      var counts = {}, reshow = false;
      for (var i = 0; i < statuses.length; i++) {
        var st = statuses[i];
        if (st === undefined) continue;
        counts[st] = (counts[st] || 0) + 1;
        if (painted[i] === st) continue;
        var cell = cells[i];
        cell.setAttribute("data-status", st);
        cell.title = cell.getAttribute("data-host") + " · " + st;
        cell.style.order = String((ranks[st] !== undefined ? ranks[st] : rest) * total + i);
        painted[i] = st;
        if (selected === i) reshow = true;
      }
      section.querySelectorAll(".fleet-filter [data-filter]").forEach(function (button) {
        var st = button.getAttribute("data-filter");
        if (st === "all") return;
        var n = counts[st] || 0;
        button.querySelector("[data-count]").textContent = String(n);
        button.hidden = n === 0 && button.getAttribute("aria-pressed") !== "true";
      });
      if (reshow) show(selected);
    }

    function ask(now) {
      busy = true;
      wanted = false;
      lastAsked = now;
      var asOf = seq;
      fetchJson(section.getAttribute("data-statuses-url"))
        .then(function (answer) {
          (answer.statuses || []).forEach(function (st, i) { set(i, st, asOf); });
        })
        .catch(function () { wanted = true; })  // asked again on a later tick
        .then(function () { busy = false; });
    }

    function show(i) {
      selected = i;
      var asked = ++shown;
      box.querySelectorAll('.cell[aria-pressed="true"]').forEach(function (c) { c.removeAttribute("aria-pressed"); });
      cells[i].setAttribute("aria-pressed", "true");
      panel.hidden = false;
      var host = panel.querySelector('[data-role="host"]');
      var status = panel.querySelector('[data-role="status"]');
      var facts = panel.querySelector('[data-role="facts"]');
      var error = panel.querySelector('[data-role="error"]');
      var output = panel.querySelector('[data-role="output"]');
      host.textContent = cells[i].getAttribute("data-host");
      facts.textContent = "loading…";
      fetchJson(section.getAttribute("data-targets-url") + "?limit=1&offset=" + i)
        .then(function (page) {
          if (asked !== shown) return;  // another cell was clicked since
          var t = (page.results || [])[0];
          if (!t || t.index !== i) { facts.textContent = "no such target"; return; }
          host.textContent = t.hostname || t.asset_id;
          status.textContent = t.status;
          status.className = "status status-" + t.status;
          var parts = ["asset " + t.asset_id, "batch " + t.batch, "attempts " + t.attempts];
          if (t.exit_code !== null && t.exit_code !== undefined) parts.push("exit " + t.exit_code);
          if (t.duration_ms !== null && t.duration_ms !== undefined) parts.push(seconds(t.duration_ms));
          facts.textContent = parts.join(" · ");
          error.hidden = !t.error;
          error.textContent = t.error || "";
          error.className = t.status === "waiting" ? "note-box" : "error-box";  // the lock's holder
          output.textContent = t.output || (t.status === "pending" || t.status === "running" ? "(no output yet)" : "(no output)");
        })
        .catch(function (e) { if (asked === shown) facts.textContent = "could not load it: " + e.message; });
    }

    section.querySelector(".fleet-filter").addEventListener("click", function (e) {
      var button = e.target.closest("[data-filter]");
      if (!button) return;
      section.querySelectorAll(".fleet-filter [data-filter]").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
      button.setAttribute("aria-pressed", "true");
      box.setAttribute("data-filter", button.getAttribute("data-filter"));
      changed = true;  // the counts hide the buttons of absent statuses again
      paint(performance.now());
    });
    box.addEventListener("click", function (e) {
      var cell = e.target.closest(".cell");
      if (cell) show(Number(cell.getAttribute("data-index")));
    });
    panel.querySelector('[data-role="close"]').addEventListener("click", function () {
      panel.hidden = true;
      selected = null;
      box.querySelectorAll('.cell[aria-pressed="true"]').forEach(function (c) { c.removeAttribute("aria-pressed"); });
    });

    return {
      event: function (ev) {
        var d = ev.data || {};
        if (ev.type === "target_completed" || ev.type === "target_failed") set(d.target_index, d.status);
        if (ev.type === "target_waiting") set(d.target_index, "waiting");
        if (ev.type === "step_started") running = true;
        if (STEP_ENDS.indexOf(ev.type) >= 0) running = false;
        wanted = true;
      },
      settle: function () { running = false; wanted = true; },
      tick: function (now) {
        if (now - lastPainted >= PAINT_MS) paint(now);
        if (busy || now - lastAsked < PAINT_MS) return;
        if (wanted || (running && now - lastAsked >= POLL_MS)) ask(now);
      }
    };
  }

  // The page's listener of every event (OpsLive.executionDetailPage calls it for the stored
  // history, then live): events up to the page's rendering are in the cells already.
  function grids(root) {
    var after = Number(root.getAttribute("data-after")) || 0;
    var byStep = {};
    root.querySelectorAll("section[data-fleet-step]").forEach(function (section) {
      byStep[section.getAttribute("data-fleet-step")] = fleetGrid(section);
    });
    setInterval(function () {
      var now = performance.now();
      Object.keys(byStep).forEach(function (k) { byStep[k].tick(now); });
    }, TICK_MS);
    return function (ev) {
      if (ev.id <= after) return;
      if (ev.step_index === null || ev.step_index === undefined) {
        if (FINISHED.indexOf(ev.to_status) >= 0) Object.keys(byStep).forEach(function (k) { byStep[k].settle(); });
        return;
      }
      var grid = byStep[String(ev.step_index)];
      if (grid) grid.event(ev);
    };
  }

  window.OpsFleet = { grids: grids };
})();
