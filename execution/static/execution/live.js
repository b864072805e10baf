/* Live operator pages (§11): plain JavaScript, no build step.
 *
 * OpsLive.socket() keeps one WebSocket open: it remembers the id of the last event it
 * handled and reconnects with ?after=<that id> (back-off 0.5 s .. 10 s), so the server
 * replays exactly what was missed. The page says "offline" while it is disconnected.
 */
(function () {
  "use strict";

  var FINAL_CLOSE = { 4400: "bad request", 4401: "not logged in", 4403: "forbidden", 4404: "not found" };
  var STEP_STATUS = { step_started: "running", step_completed: "completed", step_failed: "failed",
                      step_skipped: "cancelled", step_cancelled: "cancelled", step_timeout: "timeout" };

  function setLive(el, state, text) {
    if (!el) return;
    el.setAttribute("data-state", state);
    el.textContent = text;
  }

  function socket(path, after, onEvent, statusEl) {
    var lastId = Number(after) || 0;
    var delay = 500;
    var stopped = false;
    function open() {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var ws = new WebSocket(scheme + location.host + path + "?after=" + lastId);
      setLive(statusEl, "connecting", "connecting…");
      ws.onopen = function () { delay = 500; setLive(statusEl, "online", "live"); };
      ws.onmessage = function (msg) {
        var event;
        try { event = JSON.parse(msg.data); } catch (e) { return; }
        if (typeof event.id !== "number" || event.id <= lastId) return;  // never twice
        lastId = event.id;
        onEvent(event);
      };
      ws.onclose = function (e) {
        if (FINAL_CLOSE[e.code]) {
          stopped = true;
          setLive(statusEl, "closed", "offline: " + FINAL_CLOSE[e.code]);
          return;
        }
        if (stopped) return;
        setLive(statusEl, "offline", "offline – reconnecting in " + Math.round(delay / 1000 * 10) / 10 + " s");
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 10000);
      };
    }
    open();
    return { lastId: function () { return lastId; } };
  }

  function setStatus(el, status) {
    if (!el || !status) return;
    el.textContent = status;
    el.className = el.className.replace(/\bstatus-\S+/g, "").trim() + " status-" + status;
  }

  function progressText(p) {
    var text = p.percent + "% · " + p.steps_done + "/" + p.steps_total + " steps";
    if (p.eta_seconds) text += " · ETA " + p.eta_seconds + "s";
    return text;
  }

  function executionDetailPage(root) {
    var id = root.getAttribute("data-execution-id");
    var statusEl = document.getElementById("execution-status");
    var fill = document.getElementById("progress-fill");
    var bar = document.getElementById("progress-bar");
    var ptext = document.getElementById("progress-text");
    var log = document.getElementById("event-log");
    function stepRow(index) { return root.querySelector('tr[data-step-index="' + index + '"]'); }
    function onEvent(ev) {
      if (ev.step_index === null || ev.step_index === undefined) {
        if (ev.to_status) setStatus(statusEl, ev.to_status);
        if (["completed", "failed", "cancelled", "timeout", "partial", "rejected"].indexOf(ev.to_status) >= 0) {
          var form = document.getElementById("cancel-form");
          if (form) form.hidden = true;
        }
        if (ev.to_status === "cancelled") {  // §13: the steps not run end cancelled
          root.querySelectorAll('[data-role="step-status"]').forEach(function (el) {
            if (el.textContent === "queued" || el.textContent === "running") setStatus(el, "cancelled");
          });
        }
      } else {
        var row = stepRow(ev.step_index);
        if (row && ev.type === "step_output") {
          var pre = root.querySelector('tr[data-output-for="' + ev.step_index + '"] pre');
          if (pre && ev.data && typeof ev.data.text === "string") {
            pre.hidden = false;
            pre.textContent += ev.data.text;
            pre.scrollTop = pre.scrollHeight;
          }
        } else if (row) {
          var status = ev.type.indexOf("step_") === 0 ? ev.to_status || STEP_STATUS[ev.type] : null;
          setStatus(row.querySelector('[data-role="step-status"]'), status);
          if (ev.data && typeof ev.data.duration_ms === "number") {
            row.querySelector('[data-role="duration"]').textContent = ev.data.duration_ms + " ms";
          }
        }
      }
      if (ev.progress) {
        fill.style.width = ev.progress.percent + "%";
        bar.setAttribute("aria-valuenow", ev.progress.percent);
        ptext.textContent = progressText(ev.progress);
      }
      if (log && ev.type !== "step_output") {
        var li = document.createElement("li");
        var change = ev.to_status ? (ev.from_status ? ev.from_status + " → " : "→ ") + ev.to_status : "";
        li.textContent = "#" + ev.id + " " + ev.type + (ev.step_index !== null ? " (step " + ev.step_index + ")" : "") +
          (change ? " · " + change : "");
        log.appendChild(li);
      }
    }
    socket("/ws/executions/" + id + "/", root.getAttribute("data-after"), onEvent, document.getElementById("live-status"));
  }

  function executionsListPage(root) {
    var tenants = JSON.parse(document.getElementById("live-tenants").textContent);
    var tbody = root.querySelector("tbody");
    var statusEl = document.getElementById("live-status");
    function rowFor(ev) {
      var row = tbody.querySelector('tr[data-execution-id="' + ev.execution_id + '"]');
      if (row) return row;
      var empty = tbody.querySelector("tr.empty");
      if (empty) empty.remove();
      row = document.createElement("tr");
      row.setAttribute("data-execution-id", ev.execution_id);
      var cells = ["", "", "", "", "", "", ""];
      cells.forEach(function () { row.appendChild(document.createElement("td")); });
      var a = document.createElement("a");
      a.href = "/executions/" + ev.execution_id + "/";
      a.innerHTML = "<code></code>";
      a.firstChild.textContent = ev.execution_id.slice(0, 8);
      row.cells[0].appendChild(a);
      row.cells[1].textContent = (ev.data && ev.data.plan_name) || "(new)";
      row.cells[2].textContent = ev.tenant || "";
      var badge = document.createElement("span");
      badge.className = "status";
      badge.setAttribute("data-role", "status");
      row.cells[4].appendChild(badge);
      row.cells[5].setAttribute("data-role", "progress");
      row.cells[6].textContent = (ev.created_at || "").replace("T", " ").slice(0, 19);
      tbody.insertBefore(row, tbody.firstChild);
      return row;
    }
    function onEvent(tenant) {
      return function (ev) {
        ev.tenant = tenant;
        var row = rowFor(ev);
        if ((ev.step_index === null || ev.step_index === undefined) && ev.to_status) {
          setStatus(row.querySelector('[data-role="status"]'), ev.to_status);
        }
        if (ev.progress) row.querySelector('[data-role="progress"]').textContent = progressText(ev.progress);
        row.classList.add("flash");
        setTimeout(function () { row.classList.remove("flash"); }, 800);
      };
    }
    tenants.forEach(function (t) {
      socket("/ws/tenants/" + encodeURIComponent(t.slug) + "/executions/", t.after, onEvent(t.slug), statusEl);
    });
    if (!tenants.length) setLive(statusEl, "closed", "no tenant to follow");
  }

  window.OpsLive = { socket: socket, executionDetailPage: executionDetailPage, executionsListPage: executionsListPage };
})();
