"""How ``opsctl`` prints executions and events: one line per event, plain tables, or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO


def as_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def table(rows: Sequence[Sequence[Any]], header: Sequence[str], out: TextIO) -> None:
    cells = [[str(c) if c is not None else "-" for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        out.write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n")


def _time(value: str | None) -> str:
    """``12:00:01`` of an ISO timestamp (the date is in ``get``)."""
    if not value or "T" not in value:
        return value or ""
    return value.split("T", 1)[1][:8]


def _target(data: dict[str, Any]) -> str:
    """Which target of a fleet step ended and how: ``web-1 failed exit 3 (40 ms)``."""
    text = f"{data.get('hostname') or data.get('asset_id')} {data.get('status')}"
    if data.get("exit_code") is not None:
        text += f" exit {data['exit_code']}"
    if data.get("duration_ms") is not None:
        text += f" ({data['duration_ms']} ms)"
    return text


def event_line(message: dict[str, Any]) -> str:
    """One line of a live or stored event (a socket message or a REST event)."""
    kind = str(message.get("type", ""))
    data = message.get("data") if "data" in message else message.get("details")
    data = data if isinstance(data, dict) else {}
    parts = [_time(message.get("created_at")), f"#{message.get('id')}", kind]
    if message.get("step_index") is not None:
        parts.append(f"[step {message['step_index']}]")
    if message.get("to_status"):
        parts.append(f"{message.get('from_status') or '-'} -> {message['to_status']}")
    if kind == "step_output":
        text = str(data.get("text", "")).rstrip("\n")
        stream = str(data.get("stream") or "stdout")
        return "\n".join(f"{' '.join(parts)} {stream}| {line}" for line in text.splitlines() or [""])
    if kind in ("target_completed", "target_failed"):
        parts.append(_target(data))
    elif kind == "fleet_batch_started":
        hosts = data.get("targets") or []
        parts.append(f"batch {data.get('batch')}: {len(hosts)} targets ({', '.join(map(str, hosts[:10]))}")
        parts[-1] += f" and {len(hosts) - 10} more)" if len(hosts) > 10 else ")"
    error = message.get("error_message") or data.get("error_message")
    if error:
        parts.append(f"error: {' '.join(str(error).split())}")
    elif data.get("reason"):
        parts.append(f"reason: {' '.join(str(data['reason']).split())}")
    progress = message.get("progress")
    if isinstance(progress, dict) and progress.get("steps_total"):
        counted = f"{progress.get('steps_done')}/{progress.get('steps_total')}"
        if progress.get("targets_total"):  # a plan with fleet steps counts its targets too
            counted += f", {progress.get('targets_done')}/{progress.get('targets_total')} targets"
        parts.append(f"({counted})")
    return " ".join(parts)


def execution_table(execution: dict[str, Any], out: TextIO) -> None:
    fields = [
        ("execution", execution.get("execution_id")),
        ("plan", execution.get("plan_name")),
        ("tenant", execution.get("tenant")),
        ("actor", execution.get("actor")),
        ("status", execution.get("status")),
        ("environment", execution.get("environment")),
        ("action class", execution.get("action_class")),
        ("approval level", execution.get("approval_level")),
        ("created", execution.get("created_at")),
        ("started", execution.get("started_at")),
        ("completed", execution.get("completed_at")),
        ("trace id", execution.get("trace_id")),
    ]
    approval = execution.get("approval")
    if isinstance(approval, dict):
        votes = approval.get("votes") or []
        approves = sum(1 for v in votes if v.get("decision") == "approve")
        text = f"{approval.get('state')}, {approves}/{approval.get('approval_level')} approvals"
        window = approval.get("run_window")
        if isinstance(window, dict):
            text += f", run window {window.get('start')} to {window.get('end')}"
        fields.append(("approval", text))
    if execution.get("error_message"):
        fields.append(("error", " ".join(str(execution["error_message"]).split())))
    table([(k, v) for k, v in fields], ("field", "value"), out)
    steps = execution.get("steps") or []
    if steps:
        out.write("\n")
        table(
            [
                (s.get("index"), s.get("name"), s.get("type"), s.get("status"), s.get("duration_ms"))
                for s in steps
            ],
            ("step", "name", "type", "status", "ms"),
            out,
        )


def executions_table(executions: Iterable[dict[str, Any]], out: TextIO) -> None:
    table(
        [
            (
                e.get("execution_id"),
                e.get("tenant"),
                e.get("status"),
                e.get("environment"),
                e.get("created_at"),
                e.get("plan_name"),
            )
            for e in executions
        ],
        ("execution", "tenant", "status", "env", "created", "plan"),
        out,
    )
