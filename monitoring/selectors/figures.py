"""Figures exported on /metrics (all tenants) and shown on the dashboard (scoped)."""

# ruff: noqa: S608 - only constant SQL fragments are interpolated; every value is a parameter.

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from execution.enums import ExecutionStatus, SlaClass
from monitoring.selectors.sql import ENDED_STATUSES, fetch_all, tenant_filter

EXECUTION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# Run time of an execution's last attempt: a retried or requeued execution is timed from the
# start of the attempt that ended it (the queue item's claim), not from its first start, so
# back-off waits and earlier attempts never inflate the percentiles.
EXECUTIONS_WITH_ATTEMPT = "executions e LEFT JOIN execution_queue q ON q.execution_id = e.execution_id"
ATTEMPT_STARTED = "GREATEST(e.started_at, COALESCE(q.attempt_started_at, e.started_at))"
EXECUTION_SECONDS = f"EXTRACT(EPOCH FROM (e.completed_at - {ATTEMPT_STARTED}))"
# When a queue item became claimable: back-off and lock waits push available_at forward, and
# that waiting is not waiting for a worker (the SLA sweep measures queue waits the same way).
WAITING_SINCE = "GREATEST(q.enqueued_at, COALESCE(q.available_at, q.enqueued_at))"
STEP_SECONDS = "COALESCE(s.duration_ms / 1000.0, EXTRACT(EPOCH FROM (s.completed_at - s.started_at)))"


@dataclass
class Histogram:
    """Cumulative bucket counts (``le`` -> count, without +Inf), total count and sum."""

    buckets: list[tuple[float, int]] = field(default_factory=list)
    count: int = 0
    total: float = 0.0


def executions_by_tenant_status(tenant_ids: Sequence[int] | None = None) -> dict[tuple[str, str], int]:
    """(tenant slug, status) -> executions; every status present (0) for every tenant listed."""
    where, params = tenant_filter("e.tenant_id", tenant_ids)
    rows = fetch_all(
        "SELECT t.slug, e.status::text, count(*) FROM executions e JOIN tenants t ON t.id = e.tenant_id "
        f"WHERE true{where} GROUP BY t.slug, e.status",
        params,
    )
    counts = {(slug, status): int(n) for slug, status, n in rows}
    for slug in {slug for slug, _ in counts}:
        for status in ExecutionStatus:
            counts.setdefault((slug, status.value), 0)
    return counts


def _histograms(
    sql_from: str, value: str, label: str, buckets: Sequence[float], params: list[Any]
) -> dict[str, Histogram]:
    bucket_columns = ", ".join(f"count(*) FILTER (WHERE v <= {float(b)!r})" for b in buckets)
    rows = fetch_all(
        f"SELECT label, count(*), COALESCE(sum(v), 0), {bucket_columns} FROM ("
        f"SELECT {label} AS label, {value} AS v {sql_from}) AS d GROUP BY label ORDER BY label",
        params,
    )
    result = {}
    for row in rows:
        result[str(row[0])] = Histogram(
            buckets=[(b, int(n)) for b, n in zip(buckets, row[3:], strict=True)],
            count=int(row[1]),
            total=float(row[2]),
        )
    return result


def execution_duration_histograms(tenant_ids: Sequence[int] | None = None) -> dict[str, Histogram]:
    """Run time (started -> completed) of ended executions, by SLA class."""
    where, params = tenant_filter("e.tenant_id", tenant_ids)
    return _histograms(
        f"FROM {EXECUTIONS_WITH_ATTEMPT} WHERE e.started_at IS NOT NULL AND e.completed_at IS NOT NULL "
        f"AND e.status::text = ANY(%s){where}",
        EXECUTION_SECONDS,
        "e.sla_class::text",
        EXECUTION_BUCKETS,
        [ENDED_STATUSES, *params],
    )


def step_duration_histograms(tenant_ids: Sequence[int] | None = None) -> dict[str, Histogram]:
    """Duration of finished steps, by step type."""
    where, params = tenant_filter("e.tenant_id", tenant_ids)
    join = " JOIN executions e ON e.execution_id = s.execution_id" if tenant_ids is not None else ""
    return _histograms(
        f"FROM execution_steps s{join} WHERE s.completed_at IS NOT NULL "
        f"AND (s.duration_ms IS NOT NULL OR s.started_at IS NOT NULL){where}",
        STEP_SECONDS,
        "s.step_type",
        STEP_BUCKETS,
        params,
    )


def queue_by_sla_class(tenant_ids: Sequence[int] | None = None) -> dict[str, dict[str, float]]:
    """SLA class -> pending, processing, oldest claimable pending age (s), SLA wait limit (s)."""
    where, params = tenant_filter("e.tenant_id", tenant_ids)
    join = " JOIN executions e ON e.execution_id = q.execution_id" if tenant_ids is not None else ""
    rows = fetch_all(
        "SELECT q.sla_class::text, count(*) FILTER (WHERE q.status = 'pending'), "
        "count(*) FILTER (WHERE q.status = 'processing'), "
        f"COALESCE(EXTRACT(EPOCH FROM (now() - min({WAITING_SINCE}) FILTER (WHERE q.status = 'pending' "
        "AND COALESCE(q.available_at, q.enqueued_at) <= now()))), 0) "
        f"FROM execution_queue q{join} WHERE q.status IN ('pending', 'processing'){where} "
        "GROUP BY q.sla_class",
        params,
    )
    limits: dict[str, int] = settings.SLA_QUEUE_WAIT_SECONDS
    result = {
        c.value: {"pending": 0, "processing": 0, "oldest_age_seconds": 0.0, "sla_seconds": limits[c.value]}
        for c in SlaClass
    }
    for sla_class, pending, processing, oldest in rows:
        result[sla_class].update(
            pending=int(pending), processing=int(processing), oldest_age_seconds=max(float(oldest), 0.0)
        )
    return result


def dlq_size_by_sla_class(tenant_ids: Sequence[int] | None = None) -> dict[str, int]:
    """Open dead letters (neither requeued nor archived) by SLA class."""
    where, params = tenant_filter("e.tenant_id", tenant_ids)
    rows = fetch_all(
        "SELECT d.sla_class::text, count(*) FROM execution_dlq d JOIN executions e "
        f"ON e.execution_id = d.execution_id WHERE NOT d.requeued AND NOT d.archived{where} "
        "GROUP BY d.sla_class",
        params,
    )
    result = {c.value: 0 for c in SlaClass}
    result.update({sla: int(n) for sla, n in rows})
    return result


def scalar_counts(tenant_ids: Sequence[int] | None = None) -> dict[str, int]:
    """Active locks, pending approvals, live workers."""
    lock_where, lock_params = tenant_filter("tenant_id", tenant_ids)
    appr_where, appr_params = tenant_filter("e.tenant_id", tenant_ids)
    stale = timezone.now() - timedelta(seconds=settings.MONITORING_WORKER_STALE_SECONDS)
    row = fetch_all(
        f"SELECT (SELECT count(*) FROM execution_locks WHERE is_active{lock_where}), "
        "(SELECT count(*) FROM approvals a JOIN executions e ON e.execution_id = a.execution_id "
        f"WHERE a.state = 'pending'{appr_where}), "
        "(SELECT count(*) FROM worker_heartbeats WHERE stopped_at IS NULL AND last_seen_at >= %s)",
        [*lock_params, *appr_params, stale],
    )[0]
    return {"active_locks": int(row[0]), "approvals_pending": int(row[1]), "workers_alive": int(row[2])}


def sla_compliance(
    *, window: timedelta, tenant_ids: Sequence[int] | None = None
) -> dict[str, dict[str, float | int | None]]:
    """SLA class (and ``all``) -> executions ended in the window, compliant ones, ratio.

    Compliant: ended in a status other than ``timeout``, not after its ``timeout_at``, and
    without any SLA alert (queue wait or timeout). Ratio is None when nothing ended.
    """
    where, params = tenant_filter("e.tenant_id", tenant_ids)
    rows = fetch_all(
        "SELECT e.sla_class::text, count(*), count(*) FILTER (WHERE e.status <> 'timeout' "
        "AND (e.timeout_at IS NULL OR e.completed_at <= e.timeout_at) "
        "AND NOT EXISTS (SELECT 1 FROM sla_alerts a WHERE a.execution_id = e.execution_id)) "
        "FROM executions e WHERE e.started_at IS NOT NULL AND e.completed_at >= %s "
        f"AND e.status::text = ANY(%s){where} GROUP BY e.sla_class",
        [timezone.now() - window, ENDED_STATUSES, *params],
    )
    result: dict[str, dict[str, float | int | None]] = {
        c.value: {"ended": 0, "compliant": 0, "ratio": None} for c in SlaClass
    }
    for sla_class, ended, compliant in rows:
        result[sla_class] = {"ended": int(ended), "compliant": int(compliant), "ratio": compliant / ended}
    ended_all = sum(int(v["ended"] or 0) for v in result.values())
    compliant_all = sum(int(v["compliant"] or 0) for v in result.values())
    result["all"] = {
        "ended": ended_all,
        "compliant": compliant_all,
        "ratio": (compliant_all / ended_all) if ended_all else None,
    }
    return result


def sla_alert_counts(tenant_ids: Sequence[int] | None = None) -> dict[str, int]:
    """Alert kind -> alerts ever raised (a counter: rows are never deleted)."""
    where, params = tenant_filter("tenant_id", tenant_ids)
    rows = fetch_all(f"SELECT kind, count(*) FROM sla_alerts WHERE true{where} GROUP BY kind", params)
    result = {"execution_timeout": 0, "queue_wait": 0}
    result.update({kind: int(n) for kind, n in rows})
    return result
