/* Live operator pages (docs/contract.md#live-progress, docs/contract.md#operator-console): plain JavaScript, no build step.
 *
 * OpsLive.socket() keeps one WebSocket open: it remembers the id of the last event it
 * handled and reconnects with ?after=<that id> (back-off 0.5 s .. 10 s), so the server
 * replays exactly what was missed. The page says "offline" while it is disconnected.
 *
 * The execution page first renders the stored history (embedded as the same messages the
 * socket sends) through the very function that renders live events, then goes live after
 * the last stored id: a reload shows exactly what a client that watched live saw.
 */
(function () {
  "use strict";

  var FINAL_CLOSE = { 4400: "bad request", 4401: "not logged in", 4403: "forbidden", 4404: "not found" };
  var STEP_STATUS = { step_started: "running", step_completed: "completed", step_failed: "failed",
                      step_skipped: "cancelled", step_cancelled: "cancelled", step_timeout: "timeout" };
  var FINISHED = ["completed", "failed", "cancelled", "timeout", "partial", "rejected"];

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
    el.textContent = status === "not_run" ? "not run" : status;
    el.className = el.className.replace(/\bstatus-\S+/g, "").trim() + " status-" + status;
  }

  function clock(iso) { return (iso || "").slice(11, 19); }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function eventLine(ev) {
    // The list numbers its lines (1., 2., ...): the event's id stays in data-event-id only.
    var parts = [clock(ev.created_at), ev.type];
    if (ev.step_index !== null && ev.step_index !== undefined) parts.push("(step " + ev.step_index + ")");
    if (ev.to_status) parts.push("· " + (ev.from_status ? ev.from_status + " → " : "→ ") + ev.to_status);
    var d = ev.data || {};
    if (d.actor) parts.push("· by " + d.actor);
    if (ev.type === "target_completed" || ev.type === "target_failed") parts.push("· " + d.hostname + " " + d.status);
    if (ev.type === "target_waiting") parts.push("· " + d.hostname + " waiting");
    if (ev.type === "fleet_batch_started" && d.targets) {
      // As opsctl --follow prints it: the batch, how many targets, the first ten hosts.
      parts.push("· batch " + d.batch + ": " + d.targets.length + " targets (" + d.targets.slice(0, 10).join(", ") +
        (d.targets.length > 10 ? " and " + (d.targets.length - 10) + " more)" : ")"));
    }
    if (ev.type === "approval_vote") parts.push("· " + d.decision + (d.comment ? ": " + d.comment : ""));
    if (d.reason) parts.push("· " + d.reason);
    if (d.error_message && d.error_message !== d.reason) parts.push("· " + d.error_message);
    return parts.join(" ");
  }

  // ``listeners``: further handlers of every event, stored then live (the fleet grids).
  function executionDetailPage(root, listeners) {
    var id = root.getAttribute("data-execution-id");
    var after = Number(root.getAttribute("data-after")) || 0;
    var statusEl = document.getElementById("execution-status");
    var fill = document.getElementById("progress-fill");
    var bar = document.getElementById("progress-bar");
    var ptext = document.getElementById("progress-text");
    var log = document.getElementById("event-log");
    // The approval block (state, who decided, votes) as the server renders it, after each
    // vote, decision, expiry or cancellation.
    var approvalBlock = document.getElementById("approval-block") ? refetchOn(["approval-block"], isApprovalNews) : null;
    // stepRuns["<step>:<attempt>"] = {start, end, outcome}: when the step itself ran in that attempt.
    var attempt = 0, attemptStarted = {}, attemptEnded = {}, stepRuns = {}, etaDeadline = null, etaSeconds = null, lastProgress = null;
    var execStatus = statusEl.getAttribute("data-status");

    // Which lock the execution waits for and who holds it (a lock_wait event), until it
    // takes its locks, starts or ends.
    function lockWait(d) {
      var box = document.getElementById("lock-wait");
      if (!box) return;
      box.hidden = !d;
      if (!d) return;
      box.querySelector('[data-role="lock-reason"]').textContent = d.reason || ("asset " + d.asset_id);
      var holder = d.holder_execution_id && d.holder_execution_id !== "unknown" ? d.holder_execution_id : "";
      var wrap = box.querySelector('[data-role="lock-holder"]');
      wrap.hidden = !holder;
      if (holder) {
        var link = box.querySelector('[data-role="lock-holder-link"]');
        link.href = "/executions/" + holder + "/";
        link.textContent = holder.slice(0, 8);
      }
    }
    function stepRow(index) { return root.querySelector('tr[data-step-index="' + index + '"]'); }
    function stepStatuses() {
      return Array.prototype.map.call(root.querySelectorAll('[data-role="step-status"]'),
        function (s) { return s.getAttribute("data-status") || s.textContent; });
    }
    function setStep(elx, status) { if (elx && status) { setStatus(elx, status); elx.setAttribute("data-status", status); } }

    function renderBar() {
      var statuses = stepStatuses(), total = statuses.length;
      var completed = statuses.filter(function (s) { return s === "completed"; }).length;
      var failed = statuses.filter(function (s) { return s === "failed" || s === "timeout"; }).length;
      var finished = FINISHED.indexOf(execStatus) >= 0;
      var percent, text;
      if (finished) {
        percent = execStatus === "completed" ? 100 : (total ? Math.floor(completed * 100 / total) : 0);
        text = execStatus + " · " + completed + "/" + total + " steps completed";
        if (failed) text += " · " + failed + " failed";
        bar.setAttribute("data-outcome", execStatus);
        etaDeadline = null;
      } else {
        var p = lastProgress || { percent: 0, steps_done: 0, steps_total: total };
        percent = p.percent;
        text = p.percent + "% · " + p.steps_done + "/" + p.steps_total + " steps";
        if (typeof p.targets_total === "number") text += " · " + p.targets_done + "/" + p.targets_total + " targets";
        if (execStatus === "running" && etaDeadline !== null) {
          var left = (etaDeadline - Date.now()) / 1000;
          // Never "ETA 0:00": under a second left, the estimate is past.
          text += left >= 1 ? " · ETA " + duration(left) : " · overdue";
        } else if (execStatus !== "running" && etaSeconds !== null) {
          // Waiting (for votes, a lock, a run window, a gate): the clock starts when it runs.
          text += " · about " + duration(etaSeconds) + " once it runs";
        }
        bar.removeAttribute("data-outcome");
      }
      fill.style.width = percent + "%";
      bar.setAttribute("aria-valuenow", percent);
      ptext.textContent = text;
    }

    function outputBox(index) {
      var cell = root.querySelector('tr[data-output-for="' + index + '"] [data-role="attempts"]');
      if (!cell) return null;
      var n = Math.max(attempt, 1);
      var box = cell.querySelector('[data-attempt="' + n + '"]');
      if (!box) {
        // The newest attempt is open; earlier ones fold away (a click opens them again).
        cell.querySelectorAll("details[open]").forEach(function (d) { d.removeAttribute("open"); });
        box = el("details", { "class": "attempt", "data-attempt": String(n), open: "" });
        box.appendChild(el("summary", {}, ""));
        box.appendChild(el("pre", { "data-stream": "stdout", "aria-label": "stdout", hidden: "" }));
        box.appendChild(el("pre", { "data-stream": "stderr", "class": "stderr-pane", "aria-label": "stderr", hidden: "" }));
        cell.appendChild(box);
        cell.closest("tr").hidden = false;
        summarize(n);
      }
      return box;
    }

    // "Attempt 2 · 04:38:48 → 04:38:49 (0.3 s) · failed · retried": when the step ran in that
    // attempt and how it ended (the attempt's own end added when it was retried or handed back),
    // never another step's outcome: a step that completed before another failed reads completed.
    function summarize(n) {
      root.querySelectorAll('[data-attempt="' + n + '"] > summary').forEach(function (summary) {
        var index = summary.closest("tr").getAttribute("data-output-for");
        var run = stepRuns[index + ":" + n] || {}, ended = attemptEnded[n];
        var text = "Attempt " + n, start = run.start || attemptStarted[n];
        var end = run.end ? { at: run.end, outcome: run.outcome } : (run.start ? null : ended);
        if (start) text += " · " + clock(start);
        if (start && end) {
          var seconds = (Date.parse(end.at) - Date.parse(start)) / 1000;
          text += " → " + clock(end.at) + " (" + seconds.toFixed(1) + " s) · " + end.outcome;
          if (run.end && ended && ended.outcome === "retried") text += " · retried";
        }
        summary.textContent = text;
      });
    }

    function appendOutput(ev) {
      var d = ev.data || {};
      if (typeof d.text !== "string") return;
      var box = outputBox(ev.step_index);
      if (!box) return;
      var stream = d.stream === "stderr" ? "stderr" : "stdout";
      var pre = box.querySelector('pre[data-stream="' + stream + '"]');
      pre.hidden = false;
      var line = el("span", { "class": stream === "stderr" ? "stderr" : "" });
      line.appendChild(el("span", { "class": "ts" }, "[" + clock(ev.created_at) + "] "));
      line.appendChild(document.createTextNode(d.text + (d.truncated ? " […" + d.dropped_chars + " characters dropped]" : "")));
      if (d.text && d.text.slice(-1) !== "\n") line.appendChild(document.createTextNode("\n"));
      pre.appendChild(line);
      pre.scrollTop = pre.scrollHeight;
    }

    function onEvent(ev) {
      var live = ev.id > after;
      if (ev.type === "started") { attempt += 1; attemptStarted[attempt] = ev.created_at; }
      else if (ev.step_index === null && ev.from_status === "running" && ev.to_status && attempt > 0 && !attemptEnded[attempt]) {
        attemptEnded[attempt] = { at: ev.created_at, outcome: ev.type === "retry_scheduled" ? "retried" : ev.to_status };
        summarize(attempt);
      }
      if (ev.type === "step_output") {
        appendOutput(ev);
      } else if (ev.step_index === null || ev.step_index === undefined) {
        if (ev.to_status) {
          execStatus = ev.to_status;
          setStatus(statusEl, ev.to_status);
          statusEl.setAttribute("data-status", ev.to_status);
        }
        if (FINISHED.indexOf(ev.to_status) >= 0) lockWait(null);
        if (FINISHED.indexOf(ev.to_status) >= 0) {
          var form = document.getElementById("cancel-form");
          if (form) form.hidden = true;
          root.querySelectorAll('[data-role="step-status"]').forEach(function (s) {
            var st = s.getAttribute("data-status");
            if (st === "queued") setStep(s, "not_run");
            else if (st === "running" && ev.to_status === "cancelled") setStep(s, "cancelled");
          });
          if (live && ev.data && ev.data.error_message) {
            var box = document.getElementById("error-box");
            if (box) { box.hidden = false; box.querySelector("span").textContent = ev.data.error_message; }
          }
        }
        if (live && approvalBlock && isApprovalNews(ev)) approvalBlock(ev);
      } else {
        var key = ev.step_index + ":" + Math.max(attempt, 1);
        if (ev.type === "step_started") stepRuns[key] = { start: ev.created_at };
        else if (STEP_STATUS[ev.type] && stepRuns[key] && !stepRuns[key].end) {
          stepRuns[key].end = ev.created_at;
          stepRuns[key].outcome = ev.to_status || STEP_STATUS[ev.type];
          summarize(Math.max(attempt, 1));
        }
        var row = stepRow(ev.step_index);
        if (row) {
          var status = ev.type.indexOf("step_") === 0 ? ev.to_status || STEP_STATUS[ev.type] : null;
          setStep(row.querySelector('[data-role="step-status"]'), status);
          if (ev.data && typeof ev.data.duration_ms === "number") {
            row.querySelector('[data-role="duration"]').textContent = (ev.data.duration_ms / 1000).toFixed(2) + " s";
          }
        }
      }
      if (ev.progress) {
        lastProgress = ev.progress;
        // Each estimate restarts the countdown; without one the running countdown goes on.
        if (typeof ev.progress.eta_seconds === "number" && ev.progress.eta_seconds > 0) {
          etaSeconds = ev.progress.eta_seconds;
          etaDeadline = Date.now() + etaSeconds * 1000;
        } else if (ev.to_status === "running" && ev.step_index == null && etaSeconds !== null) {
          // It starts (or goes on after a wait) with the last estimate still to run.
          etaDeadline = Date.now() + etaSeconds * 1000;
        }
      }
      if (ev.type === "lock_wait") lockWait(ev.data || {});
      else if (ev.type === "lock_acquired" || ev.type === "started") lockWait(null);
      if (log && ev.type !== "step_output") log.appendChild(el("li", { "data-event-id": String(ev.id) }, eventLine(ev)));
      (listeners || []).forEach(function (listener) { listener(ev); });
      renderBar();
    }

    var history = JSON.parse(document.getElementById("execution-history").textContent);
    history.forEach(onEvent);
    renderBar();
    setInterval(function () { if (etaDeadline !== null) renderBar(); }, 1000);
    socket("/ws/executions/" + id + "/", after, onEvent, document.getElementById("live-status"));
  }

  // The tenants' streams of a list page (one socket per tenant), handed to each handler.
  function tenantStreams(statusEl) {
    var tenants = JSON.parse(document.getElementById("live-tenants").textContent);
    var handlers = [];
    tenants.forEach(function (t) {
      socket("/ws/tenants/" + encodeURIComponent(t.slug) + "/executions/", t.after, function (ev) {
        handlers.forEach(function (h) { h(ev); });
      }, statusEl);
    });
    if (!tenants.length) setLive(statusEl, "closed", "no tenant to follow");
    return { on: function (handler) { handlers.push(handler); } };
  }

  function isStatusChange(ev) {
    return (ev.step_index === null || ev.step_index === undefined) && !!ev.to_status;
  }

  // A list of executions that follows its tenants: rows that come to match the list's filter
  // appear, rows that no longer match (a failed run under "Active") leave, the others change.
  function executionsList(rootId) {
    var root = document.getElementById(rootId);
    var filter = root.getAttribute("data-filter") || "";
    var emptyText = root.getAttribute("data-empty") || "";
    var wanted = {}, declined = {}, timer = null;
    function tbody() { var r = document.getElementById(rootId); return r && r.querySelector("tbody"); }
    function fetchRows() {
      timer = null;
      var ids = Object.keys(wanted);
      wanted = {};
      if (!ids.length) return;
      var url = "/executions/rows/?ids=" + ids.join(",") + (filter ? "&" + filter : "");
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.text() : null; }).then(function (html) {
        var body = tbody();
        if (html === null || !body) return;  // not answered: the rows stay as they are
        var tmp = document.createElement("tbody");
        tmp.innerHTML = html;
        var answered = {};
        Array.prototype.slice.call(tmp.querySelectorAll("tr[data-execution-id]")).reverse().forEach(function (row) {
          var rid = row.getAttribute("data-execution-id");
          answered[rid] = true;
          var old = body.querySelector('tr[data-execution-id="' + rid + '"]');
          if (old) { old.replaceWith(row); } else { body.insertBefore(row, body.firstChild); }
          var empty = body.querySelector("tr.empty");
          if (empty) empty.remove();
          flash(row);
        });
        ids.forEach(function (rid) {
          if (answered[rid]) { delete declined[rid]; return; }
          declined[rid] = true;
          var gone = body.querySelector('tr[data-execution-id="' + rid + '"]');
          if (gone) gone.remove();  // it no longer matches this list's filter
        });
        if (!body.querySelector("tr[data-execution-id]") && !body.querySelector("tr.empty") && emptyText) {
          var tr = el("tr", { "class": "empty" });
          tr.appendChild(el("td", { colspan: "8", "class": "muted" }, emptyText));
          body.appendChild(tr);
        }
      });
    }
    function ask(executionId) {
      wanted[executionId] = true;
      if (timer === null) timer = setTimeout(fetchRows, 300);
    }
    function flash(row) {
      row.classList.add("flash");
      setTimeout(function () { row.classList.remove("flash"); }, 800);
    }
    return function onEvent(ev) {
      var body = tbody();
      if (!body) return;
      var row = body.querySelector('tr[data-execution-id="' + ev.execution_id + '"]');
      if (!row) {  // a row this list does not show yet: ask the server whether it matches the filter
        if (declined[ev.execution_id] && !isStatusChange(ev)) return;  // asked already; only a new status may change the answer
        ask(ev.execution_id);
        return;
      }
      if (isStatusChange(ev)) {
        // The server says whether the row still matches and how it stands (steps completed).
        setStatus(row.querySelector('[data-role="status"]'), ev.to_status);
        row.querySelector('[data-role="progress"]').textContent = "";
        ask(ev.execution_id);
        return;
      }
      if (ev.progress && FINISHED.indexOf(row.querySelector('[data-role="status"]').textContent) < 0) {
        row.querySelector('[data-role="progress"]').textContent =
          ev.progress.percent + "% · " + ev.progress.steps_done + "/" + ev.progress.steps_total;
      }
      flash(row);
    };
  }

  function executionsListPage(root) {
    tenantStreams(document.getElementById("live-status")).on(executionsList(root.id));
  }

  // Parts of a page the server renders again (this page's own URL) when ``wanted(event)``:
  // what a reload would show, swapped in place (coalesced: at most one fetch in flight).
  function refetchOn(ids, wanted) {
    var timer = null, busy = false, again = false;
    function fetchParts() {
      timer = null;
      if (busy) { again = true; return; }
      busy = true;
      fetch(location.pathname + location.search, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          var tmp = document.createElement("div");
          tmp.innerHTML = html;
          ids.forEach(function (partId) {
            var part = document.getElementById(partId), fresh = tmp.querySelector("#" + partId);
            if (part && fresh) part.replaceWith(fresh);
          });
        })
        .catch(function () {})
        .then(function () {
          busy = false;
          if (again) { again = false; fetchParts(); }
        });
    }
    return function (ev) {
      if (wanted(ev) && timer === null) timer = setTimeout(fetchParts, 200);
    };
  }

  function isApprovalNews(ev) {
    return ev.type.indexOf("approval_") === 0 ||
      (isStatusChange(ev) && (ev.to_status === "pending_approval" || ev.from_status === "pending_approval"));
  }

  // ``/``: the active list follows every row; the cards, the approvals awaiting a vote and
  // the failures are rendered again on each status change or approval news.
  function homePage() {
    var streams = tenantStreams(document.getElementById("live-status"));
    streams.on(executionsList("executions-root"));
    streams.on(refetchOn(["home-cards", "approvals", "failures-root"], function (ev) {
      return isStatusChange(ev) || isApprovalNews(ev);
    }));
  }

  // ``/approvals/``: new requests appear, decided, expired and cancelled ones leave.
  function approvalsListPage() {
    tenantStreams(document.getElementById("live-status")).on(refetchOn(["approvals-root"], isApprovalNews));
  }

  function refreshInPlace(rootId, url, seconds, statusId) {
    var statusEl = document.getElementById(statusId);
    function tick() {
      var root = document.getElementById(rootId), focus = document.activeElement;
      if (root && focus && root.contains(focus) && /^(INPUT|TEXTAREA|SELECT)$/.test(focus.tagName) && focus.value) {
        setTimeout(tick, seconds * 1000);  // never wipe what the operator is typing
        return;
      }
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          var root = document.getElementById(rootId);
          var tmp = document.createElement("div");
          tmp.innerHTML = html;
          var fresh = tmp.querySelector("#" + rootId);
          if (root && fresh) root.replaceWith(fresh);
          setLive(statusEl, "online", "updated " + new Date().toTimeString().slice(0, 8));
        })
        .catch(function () { setLive(statusEl, "offline", "update failed; retrying"); })
        .then(function () { setTimeout(tick, seconds * 1000); });
    }
    setTimeout(tick, seconds * 1000);
  }

  window.OpsLive = { socket: socket, executionDetailPage: executionDetailPage,
                     executionsListPage: executionsListPage, homePage: homePage,
                     approvalsListPage: approvalsListPage, refreshInPlace: refreshInPlace };
})();
