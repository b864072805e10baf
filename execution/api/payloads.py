"""JSON bodies of the API (docs/contract.md#submission). Every body leaves through ``mask_data``
(docs/contract.md#secrets-and-masking)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from execution.masking import mask_data
from execution.models import DeadLetter, Execution, ExecutionEvent, ExecutionStep, StepTarget

# A fleet step's targets listed inline in the execution's body; the rest through its targets URL.
TARGETS_INLINE = 100


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def step_payload(step: ExecutionStep) -> dict[str, Any]:
    return {
        "index": step.step_index,
        "name": step.step_name,
        "type": step.step_type,
        "status": step.status,
        "action_class": step.action_class,
        "target": {"asset_id": step.target_asset_id or None, "hostname": step.target_hostname or None},
        "started_at": _iso(step.started_at),
        "completed_at": _iso(step.completed_at),
        "duration_ms": step.duration_ms,
        "retry_count": step.retry_count,
        "max_retries": step.max_retries,
        "exit_code": step.exit_code,
        "output": step.output_data,
        "error_message": step.error_message,
    }


def target_payload(row: StepTarget) -> dict[str, Any]:
    return {
        "index": row.target_index,
        "asset_id": row.asset_id,
        "hostname": row.hostname,
        "status": row.status,
        "batch": row.batch,
        "attempts": row.attempts,
        "started_at": _iso(row.started_at),
        "completed_at": _iso(row.completed_at),
        "duration_ms": row.duration_ms,
        "exit_code": row.exit_code,
        "output": row.output,
        "error": row.error,
    }


def fleet_fields(execution: Execution) -> dict[int, dict[str, Any]]:
    """Per fleet step index: its first targets, the count per status and the targets URL
    (two queries; none for a plan without fleet steps)."""
    from django.db.models import Count

    steps = (execution.plan_snapshot or {}).get("steps") or []
    fleet = [
        i for i, step in enumerate(steps) if isinstance(step, dict) and isinstance(step.get("targets"), list)
    ]
    if not fleet:
        return {}
    eid = execution.execution_id
    out: dict[int, dict[str, Any]] = {
        i: {
            "targets": [],
            "targets_total": len(steps[i]["targets"]),
            "targets_by_status": {},
            "targets_url": f"/api/v1/executions/{eid}/steps/{i}/targets/",
        }
        for i in fleet
    }
    rows = StepTarget.objects.filter(execution_id=eid, target_index__lt=TARGETS_INLINE).order_by(
        "step_index", "target_index"
    )
    for row in rows:
        if row.step_index in out:
            out[row.step_index]["targets"].append(target_payload(row))
    counts = (
        StepTarget.objects.filter(execution_id=eid)
        .values_list("step_index", "status")
        .annotate(n=Count("id"))
    )
    for index, status, n in counts:
        if index in out:
            out[index]["targets_by_status"][status] = n
    return out


def approval_summary(execution: Execution) -> dict[str, Any] | None:
    from approvals.models import Approval
    from approvals.run_window import window_payload

    approval = Approval.objects.filter(execution=execution).first()
    if approval is None:
        return None
    votes = list(approval.votes.select_related("voter").order_by("created_at", "id"))
    return {
        "state": approval.state,
        "approval_level": approval.approval_level,
        "expires_at": _iso(approval.expires_at),
        "run_window": window_payload(approval),
        "votes": [
            {
                "voter": v.voter_name,
                "decision": v.decision,
                "comment": v.comment,
                "created_at": _iso(v.created_at),
            }
            for v in votes
        ],
    }


def links_for(execution: Execution) -> dict[str, str]:
    eid = execution.execution_id
    return {
        "self": f"/api/v1/executions/{eid}/",
        "events": f"/api/v1/executions/{eid}/events/",
        "cancel": f"/api/v1/executions/{eid}/cancel/",
        "websocket": f"/ws/executions/{eid}/",
        "page": f"/executions/{eid}/",
    }


def _progress(execution: Execution, steps: list[ExecutionStep], *, cached_history: bool) -> dict[str, Any]:
    from execution.services.progress import progress_for

    return progress_for(execution=execution, steps=steps, cached_history=cached_history)


def execution_payload(
    execution: Execution, *, with_steps: bool = True, steps: list[ExecutionStep] | None = None
) -> dict[str, Any]:
    """The docs/contract.md#submission body of an execution. ``steps``: its step rows when the caller has
    them (a
    fresh submission), so the body costs no query; progress then uses cached history only."""
    body: dict[str, Any] = {
        "execution_id": str(execution.execution_id),
        "tenant": execution.tenant.slug,
        "actor": execution.actor.get_username(),
        "plan_name": (execution.plan_snapshot or {}).get("name", ""),
        "status": execution.status,
        "execution_mode": execution.execution_mode,
        "sla_class": execution.sla_class,
        "action_class": execution.action_class,
        "approval_level": execution.approval_level,
        "priority": execution.priority,
        "environment": execution.environment,
        "dry_run": execution.dry_run,
        "tags": execution.tags or [],
        "metadata": execution.metadata or {},
        "trace_id": execution.trace_id,
        "parent_execution_id": str(execution.parent_execution_id) if execution.parent_execution_id else None,
        "plan_hash": execution.plan_hash,
        "runbook": execution.runbook["slug"] if execution.runbook else None,
        "runbook_version": execution.runbook["version"] if execution.runbook else None,
        "params": execution.runbook["params"] if execution.runbook else None,
        "created_at": _iso(execution.created_at),
        "started_at": _iso(execution.started_at),
        "completed_at": _iso(execution.completed_at),
        "timeout_at": _iso(execution.timeout_at),
        "error_message": execution.error_message,
        "links": links_for(execution),
    }
    if with_steps:
        rows = steps if steps is not None else list(execution.steps.all().order_by("step_index"))
        fleet = fleet_fields(execution)
        body["steps"] = [{**step_payload(s), **fleet.get(s.step_index, {})} for s in rows]
        # Only a plan with an approval level has an approval row.
        body["approval"] = approval_summary(execution) if execution.approval_level else None
        progress = _progress(execution, rows, cached_history=steps is not None)
        if progress is not None:
            body["progress"] = progress
    return mask_data(body)  # type: ignore[no-any-return]


def event_payload(event: ExecutionEvent) -> dict[str, Any]:
    return mask_data(  # type: ignore[no-any-return]
        {
            "id": event.pk,
            "event_id": str(event.event_id),
            "type": event.event_type,
            "execution_id": str(event.execution_id),
            "step_index": event.step_index,
            "from_status": event.from_status,
            "to_status": event.to_status,
            "actor": event.actor.get_username() if event.actor else None,
            "actor_type": event.actor_type,
            "details": event.details or {},
            "error_message": event.error_message,
            "created_at": _iso(event.created_at),
        }
    )


def dead_letter_payload(entry: DeadLetter) -> dict[str, Any]:
    return mask_data(  # type: ignore[no-any-return]
        {
            "dlq_id": str(entry.dlq_id),
            "execution_id": str(entry.execution.execution_id),
            "tenant": entry.execution.tenant.slug,
            "failure_reason": entry.failure_reason,
            "attempt_count": entry.attempt_count,
            "last_error": entry.last_error,
            "sla_class": entry.sla_class,
            "failed_at": _iso(entry.failed_at),
            "requeued": entry.requeued,
            "requeued_at": _iso(entry.requeued_at),
            "requeued_by": entry.requeued_by.get_username() if entry.requeued_by else None,
            "archived": entry.archived,
        }
    )
