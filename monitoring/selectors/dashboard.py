"""What the /monitoring/ page shows, scoped to the tenants the user may see."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db.models import F
from django.utils import timezone

from execution.enums import FINISHED_STATUSES, ExecutionStatus
from execution.models import Membership, Tenant, WorkerHeartbeat
from execution.selectors import tenant_ids_of, worker_state
from execution.services.limits import limits_usage
from monitoring.models import SlaAlert
from monitoring.selectors import figures
from monitoring.selectors.summary import metrics_summary

ALERT_LIMIT = 50
ACKNOWLEDGED_LIMIT = 10
WORKER_LIMIT = 50
DASHBOARD_WINDOW = timedelta(hours=1)


def monitoring_tenant_ids(user: Any) -> list[int]:
    """The tenants whose figures ``user`` sees: where the policy grants READ through a
    membership, a superuser's too (docs/contract.md#tenant-administration)."""
    return tenant_ids_of(user)


def monitoring_allowed(user: Any) -> bool:
    """Staff and tenant members see the dashboard: the workers, and their tenants' figures."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_staff or Membership.objects.filter(user_id=user.pk).exists())


def alerts_visible(
    tenant_ids: Sequence[int], limit: int = ALERT_LIMIT, *, acknowledged: bool = False
) -> list[SlaAlert]:
    """Active (unacknowledged) alerts, or the most recently acknowledged ones."""
    alerts = SlaAlert.objects.select_related("execution", "tenant", "acknowledged_by")
    alerts = alerts.filter(tenant_id__in=list(tenant_ids), acknowledged_at__isnull=not acknowledged)
    alerts = (
        alerts.order_by("-acknowledged_at", "-id") if acknowledged else alerts.order_by("-detected_at", "-id")
    )
    return list(alerts[:limit])


def workers_recent(limit: int = WORKER_LIMIT) -> list[dict[str, Any]]:
    """Worker rows, live ones first; each with its heartbeat age and whether it counts as alive."""
    now = timezone.now()
    rows = []
    ordering = (F("stopped_at").asc(nulls_first=True), F("last_seen_at").desc())
    for worker in WorkerHeartbeat.objects.order_by(*ordering)[:limit]:
        age = (now - worker.last_seen_at).total_seconds()
        rows.append({"worker": worker, "age_seconds": age, "state": worker_state(worker, now=now)})
    return rows


def dashboard_data(*, user: Any) -> dict[str, Any]:
    tenant_ids = monitoring_tenant_ids(user)
    # Unfinished: rows now; finished: every end so far (pruning takes nothing off).
    by_status = {s.value: 0 for s in ExecutionStatus}
    counts = figures.executions_current(tenant_ids) | figures.executions_finished(tenant_ids)
    for (_tenant, status), count in counts.items():
        by_status[status] += count
    tenants = Tenant.objects.filter(pk__in=tenant_ids).order_by("slug")
    alerts = alerts_visible(tenant_ids)
    finished = {s.value for s in FINISHED_STATUSES}
    return {
        "scope": ", ".join(t.slug for t in tenants) or "no tenant",
        "by_status": by_status,
        "summary": metrics_summary(window=DASHBOARD_WINDOW, tenant_ids=tenant_ids),
        "queue": figures.queue_by_sla_class(tenant_ids),
        "dlq": figures.dlq_size_by_sla_class(tenant_ids),
        "scalars": figures.scalar_counts(tenant_ids),
        "histograms": figures.execution_duration_histograms(tenant_ids),
        "alerts": [{"alert": a, "open": a.execution.status not in finished} for a in alerts],
        "open_alerts": len(alerts),
        "acknowledged": alerts_visible(tenant_ids, ACKNOWLEDGED_LIMIT, acknowledged=True),
        "workers": workers_recent(),
        "limits": limits_usage(tenant_ids=tenant_ids),
    }
