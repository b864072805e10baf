"""SLA violation detection (docs/contract.md#monitoring): run by the ``sla_sweep`` schedule or called
directly.

Two kinds of violation:

- ``execution_timeout``: a running execution past its ``timeout_at`` (the deadline of its
  current attempt; every start sets it anew, so one parked at a gate step, queued again or
  waiting for a lock keeps its last attempt's deadline, which nothing enforces: no alert);
- ``queue_wait``: a queue item still ``pending`` longer than its SLA class allows
  (``settings.SLA_QUEUE_WAIT_SECONDS``), counted from when it became claimable.

Each violation produces one ``sla_alerts`` row and one ``sla_violation`` event, once: the
unique ``violation_key`` is the guard, and the event is written only by the transaction
that inserted the row, so two sweepers racing (two clusters) still alert once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import CharField, Exists, F, OuterRef, Q, TextField, Value
from django.db.models.functions import Cast, Coalesce, Concat, Greatest
from django.utils import timezone

from execution.enums import ActorType, ExecutionStatus, QueueStatus
from execution.models import Execution, QueueItem
from execution.services.events import event_record
from monitoring.models import SlaAlert

SWEEP_BATCH = 500


@dataclass
class SweepResult:
    alerts: list[SlaAlert]
    checked_executions: int
    checked_queue_items: int


def _alert_once(
    *,
    key: str,
    kind: str,
    execution: Execution,
    limit_seconds: float,
    observed_seconds: float,
    deadline_at: datetime,
    message: str,
) -> SlaAlert | None:
    """Insert the alert and its event in one transaction; None if this violation alerted before."""
    try:
        with transaction.atomic():
            # A concurrent sweeper inserting the same key blocks on the unique index until we
            # commit, then fails with IntegrityError: exactly one of us writes the event.
            alert = SlaAlert.objects.create(
                violation_key=key,
                kind=kind,
                execution_id=execution.execution_id,
                tenant_id=execution.tenant_id,
                sla_class=execution.sla_class,
                limit_seconds=round(limit_seconds, 3),
                observed_seconds=round(observed_seconds, 3),
                deadline_at=deadline_at,
                message=message,
            )
            event = event_record(
                execution=execution,
                event_type="sla_violation",
                actor_type=ActorType.SYSTEM,
                details={
                    "kind": kind,
                    "sla_class": execution.sla_class,
                    "limit_seconds": alert.limit_seconds,
                    "observed_seconds": alert.observed_seconds,
                    "alert_id": alert.pk,
                    "reason": message,
                },
            )
            alert.event_id = event.pk
            alert.save(update_fields=["event_id"])
            return alert
    except IntegrityError:
        return None


def sla_timeouts_detect(*, now: datetime) -> tuple[list[SlaAlert], int]:
    """Alert on running executions past ``timeout_at`` (their attempt's deadline)."""
    alerted = SlaAlert.objects.filter(
        execution_id=OuterRef("execution_id"),
        kind=SlaAlert.Kind.EXECUTION_TIMEOUT,
        deadline_at=OuterRef("timeout_at"),
    )
    overdue = list(
        Execution.objects.filter(status=ExecutionStatus.RUNNING, timeout_at__lt=now)
        .exclude(Exists(alerted))
        .order_by("timeout_at")[:SWEEP_BATCH]
    )
    alerts = []
    for execution in overdue:
        assert execution.timeout_at is not None
        started = execution.started_at or execution.created_at
        limit = (execution.timeout_at - started).total_seconds()
        observed = (now - started).total_seconds()
        alert = _alert_once(
            key=f"execution_timeout:{execution.execution_id}:{execution.timeout_at.isoformat()}",
            kind=SlaAlert.Kind.EXECUTION_TIMEOUT,
            execution=execution,
            limit_seconds=max(limit, 0.0),
            observed_seconds=observed,
            deadline_at=execution.timeout_at,
            message=(
                f"{execution.status} execution past its timeout_at by "
                f"{(now - execution.timeout_at).total_seconds():.1f}s"
            ),
        )
        if alert is not None:
            alerts.append(alert)
    return alerts, len(overdue)


def sla_queue_waits_detect(*, now: datetime) -> tuple[list[SlaAlert], int]:
    """Alert on pending queue items that have waited longer than their SLA class allows."""
    limits: dict[str, int] = settings.SLA_QUEUE_WAIT_SECONDS
    # Waiting starts when the item became claimable (back-off pushes available_at forward).
    waiting_since = Greatest(F("enqueued_at"), Coalesce(F("available_at"), F("enqueued_at")))
    condition = Q()
    for sla_class, seconds in limits.items():
        condition |= Q(sla_class=sla_class, waiting_since__lt=now - timedelta(seconds=seconds))
    key = Concat(
        Value("queue_wait:"),
        Cast("queue_id", TextField()),
        Value(":"),
        Cast("attempt_count", TextField()),
        output_field=CharField(),
    )
    items = list(
        QueueItem.objects.filter(status=QueueStatus.PENDING)
        .annotate(waiting_since=waiting_since, alert_key=key)
        .filter(condition)
        .exclude(Exists(SlaAlert.objects.filter(violation_key=OuterRef("alert_key"))))
        .select_related("execution")
        .order_by("waiting_since")[:SWEEP_BATCH]
    )
    alerts = []
    for item in items:
        since = item.waiting_since  # type: ignore[attr-defined]
        limit = limits[item.sla_class]
        observed = (now - since).total_seconds()
        alert = _alert_once(
            # One alert per item per attempt: a retried item that waits too long again alerts again.
            key=f"queue_wait:{item.queue_id}:{item.attempt_count}",
            kind=SlaAlert.Kind.QUEUE_WAIT,
            execution=item.execution,
            limit_seconds=limit,
            observed_seconds=observed,
            deadline_at=since,
            message=f"pending in the {item.sla_class} queue for {observed:.1f}s (SLA {limit}s)",
        )
        if alert is not None:
            alerts.append(alert)
    return alerts, len(items)


def sla_violations_detect(*, now: datetime | None = None) -> SweepResult:
    """Find every current SLA violation; alert (row + ``sla_violation`` event) on new ones."""
    now = now or timezone.now()
    timeout_alerts, executions = sla_timeouts_detect(now=now)
    queue_alerts, queue_items = sla_queue_waits_detect(now=now)
    return SweepResult(
        alerts=timeout_alerts + queue_alerts, checked_executions=executions, checked_queue_items=queue_items
    )
