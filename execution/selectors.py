"""Reads for every door: "visible to this user" is written here once, beside the policy.

Visible = in a tenant where the policy's READ right holds (any role, active user); another
tenant's rows are simply absent (docs/contract.md#rbac: a 404, never a 403).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from approvals.models import Approval, GateApproval
from execution.models import DeadLetter, Execution, ExecutionEvent, WorkerHeartbeat
from execution.models.workers import CLUSTER_PREFIX
from execution.policy import Right, tenant_ids_where


def tenant_ids_of(user: Any) -> list[int]:
    """Tenants whose executions ``user`` may read."""
    return tenant_ids_where(user, Right.READ)


def executions_visible_to(user: Any) -> QuerySet[Execution]:
    """Executions of the user's tenants, newest first."""
    return (
        Execution.objects.filter(tenant_id__in=tenant_ids_of(user))
        .select_related("tenant", "actor")
        .order_by("-created_at", "-id")
    )


def execution_events_after(*, execution: Execution, after: int | None) -> QuerySet[ExecutionEvent]:
    events = ExecutionEvent.objects.filter(execution_id=execution.execution_id).order_by("id")  # type: ignore[misc]
    return events.filter(id__gt=after) if after is not None else events


def dead_letters_visible_to(user: Any) -> QuerySet[DeadLetter]:
    """Dead letters of the user's tenants (archived too), newest failure first."""
    return (
        DeadLetter.objects.filter(execution__tenant_id__in=tenant_ids_of(user))
        .select_related("execution", "execution__tenant", "requeued_by")
        .order_by("-failed_at", "-id")
    )


def approvals_visible_to(user: Any) -> QuerySet[Approval]:
    """Approvals of the user's tenants."""
    return Approval.objects.filter(execution__tenant_id__in=tenant_ids_of(user)).select_related(
        "execution", "execution__tenant", "execution__actor", "approver"
    )


def gate_approvals_visible_to(user: Any) -> QuerySet[GateApproval]:
    """Approvals of the gate steps of the user's tenants' executions (docs/approvals.md#gates)."""
    return GateApproval.objects.filter(execution__tenant_id__in=tenant_ids_of(user)).select_related(
        "execution", "execution__tenant", "execution__actor", "approver"
    )


# --- workers: alive or lost, by the age of their heartbeat (docs/contract.md#truth) -------


def _alive_since(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=settings.MONITORING_WORKER_STALE_SECONDS)


def worker_clusters_alive() -> QuerySet[WorkerHeartbeat]:
    """The worker clusters counted alive: not stopped, heartbeat younger than
    ``MONITORING_WORKER_STALE_SECONDS``. A cluster heartbeats idle or busy, so this never
    depends on recent work. ``/readyz``, ``/metrics`` (``opsconductor_workers_alive``) and
    ``/monitoring/`` count these."""
    return WorkerHeartbeat.objects.filter(
        worker_id__startswith=CLUSTER_PREFIX, stopped_at__isnull=True, last_seen_at__gte=_alive_since()
    )


def worker_state(worker: WorkerHeartbeat, *, now: datetime | None = None) -> str:
    """``stopped`` (it said so), ``alive`` (heartbeat within the age) or ``lost``: the same
    rule as :func:`worker_clusters_alive`, for one row (the dashboard, the admin)."""
    if worker.stopped_at is not None:
        return "stopped"
    return "alive" if worker.last_seen_at >= _alive_since(now) else "lost"
