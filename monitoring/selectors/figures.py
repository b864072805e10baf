"""Figures exported on /metrics (all tenants) and shown on the dashboard (scoped)."""

# ruff: noqa: S608 - only constant SQL fragments are interpolated; every value is a parameter.

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from execution.enums import FINISHED_STATUSES, ExecutionStatus, SlaClass
from execution.selectors import worker_clusters_alive
from monitoring.selectors import rollups
from monitoring.selectors.sql import fetch_all, tenant_filter

EXECUTION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# (The triggers of monitoring/migrations/0004_rollups.py file each duration under the index of
# the first of these bounds that holds it; a test checks that they use these bounds.)

# Statuses an execution is in before it finishes: the gauge counts rows in them now (few, and
# every one is in the index executions_status_timeout, whose first column is the status).
UNFINISHED_STATUSES = [s.value for s in ExecutionStatus if s not in FINISHED_STATUSES]
FINISHED = sorted(s.value for s in FINISHED_STATUSES)
# When a queue item became claimable: back-off and lock waits push available_at forward, and
# that waiting is not waiting for a worker (the SLA sweep measures queue waits the same way).
WAITING_SINCE = "GREATEST(q.enqueued_at, COALESCE(q.available_at, q.enqueued_at))"


@dataclass
class Histogram:
    """Cumulative bucket counts (``le`` -> count, without +Inf), total count and sum."""

    buckets: list[tuple[float, int]] = field(default_factory=list)
    count: int = 0
    total: float = 0.0


def executions_current(tenant_ids: Sequence[int] | None = None) -> dict[tuple[str, str], int]:
    """(tenant slug, status) -> executions in each unfinished status now, every unfinished
    status present (0) for every tenant (those in ``tenant_ids`` when given)."""
    where, params = tenant_filter("e.tenant_id", tenant_ids)
    rows = fetch_all(
        "SELECT t.slug, e.status::text, count(*) FROM executions e JOIN tenants t ON t.id = e.tenant_id "
        f"WHERE e.status = ANY(%s::execution_status[]){where} GROUP BY t.slug, e.status",
        [UNFINISHED_STATUSES, *params],
    )
    counts = {(slug, status): int(n) for slug, status, n in rows}
    tenant_where, tenant_params = tenant_filter("id", tenant_ids)
    for (slug,) in fetch_all(f"SELECT slug FROM tenants WHERE true{tenant_where}", tenant_params):
        for status in UNFINISHED_STATUSES:
            counts.setdefault((slug, status), 0)
    return counts


def executions_finished(tenant_ids: Sequence[int] | None = None) -> dict[tuple[str, str], int]:
    """(tenant slug, status) -> executions that entered each finished status, ever: a counter
    (an execution requeued from the dead letters and ended again counts twice; pruning
    executions takes nothing off). Every finished status present (0) for each tenant."""
    counts: dict[tuple[str, str], int] = {}
    for slug, row in rollups.all_time_rows(kinds=["execution"], tenant_ids=tenant_ids):
        counts[slug, row.status] = counts.get((slug, row.status), 0) + row.n
    for slug in {slug for slug, _ in counts}:
        for status in FINISHED:
            counts.setdefault((slug, status), 0)
    return counts


def _histograms(kind: str, bounds: Sequence[float], tenant_ids: Sequence[int] | None) -> dict[str, Histogram]:
    """Label -> cumulative histogram of the all-time rollups of ``kind`` (a counter)."""
    per_bucket: dict[str, list[int]] = {}
    totals: dict[str, float] = {}
    for _slug, row in rollups.all_time_rows(kinds=[kind], tenant_ids=tenant_ids):
        if row.bucket == rollups.NO_DURATION:
            continue
        counts = per_bucket.setdefault(row.label, [0] * (len(bounds) + 1))
        counts[row.bucket] += row.n
        totals[row.label] = totals.get(row.label, 0.0) + row.total
    result = {}
    for label, counts in sorted(per_bucket.items()):
        cumulative = list(itertools.accumulate(counts))
        result[label] = Histogram(
            buckets=list(zip(bounds, cumulative[:-1], strict=True)), count=cumulative[-1], total=totals[label]
        )
    return result


def execution_duration_histograms(tenant_ids: Sequence[int] | None = None) -> dict[str, Histogram]:
    """Run time (start, or the claim of the attempt that ended it, to end) of ended executions,
    by SLA class."""
    return _histograms("execution", EXECUTION_BUCKETS, tenant_ids)


def step_duration_histograms(tenant_ids: Sequence[int] | None = None) -> dict[str, Histogram]:
    """Duration of finished steps, by step type."""
    return _histograms("step", STEP_BUCKETS, tenant_ids)


def queue_by_sla_class(tenant_ids: Sequence[int] | None = None) -> dict[str, dict[str, float]]:
    """SLA class -> pending, processing, oldest claimable pending age (s), SLA wait limit (s)."""
    where, params = tenant_filter("e.tenant_id", tenant_ids)
    join = " JOIN executions e ON e.execution_id = q.execution_id" if tenant_ids is not None else ""
    # One arm per state, each the condition of a partial index (queue_claim_pending,
    # queue_lease_processing): the closed items of the history are never read.
    rows = fetch_all(
        "SELECT q.sla_class::text, count(*), 0, "
        f"COALESCE(EXTRACT(EPOCH FROM (now() - min({WAITING_SINCE}) FILTER ("
        "WHERE COALESCE(q.available_at, q.enqueued_at) <= now()))), 0) "
        f"FROM execution_queue q{join} WHERE q.status = 'pending'{where} GROUP BY q.sla_class "
        "UNION ALL "
        f"SELECT q.sla_class::text, 0, count(*), 0 FROM execution_queue q{join} "
        f"WHERE q.status = 'processing'{where} GROUP BY q.sla_class",
        params * 2,
    )
    limits: dict[str, int] = settings.SLA_QUEUE_WAIT_SECONDS
    result = {
        c.value: {"pending": 0, "processing": 0, "oldest_age_seconds": 0.0, "sla_seconds": limits[c.value]}
        for c in SlaClass
    }
    for sla_class, pending, processing, oldest in rows:
        row = result[sla_class]
        row["pending"] += int(pending)
        row["processing"] += int(processing)
        row["oldest_age_seconds"] = max(row["oldest_age_seconds"], float(oldest))
    return result


def dlq_size_by_sla_class(tenant_ids: Sequence[int] | None = None) -> dict[str, int]:
    """Open dead letters (neither requeued nor archived) by SLA class (partial index dlq_open)."""
    where, params = tenant_filter("e.tenant_id", tenant_ids)
    join = " JOIN executions e ON e.execution_id = d.execution_id" if tenant_ids is not None else ""
    rows = fetch_all(
        f"SELECT d.sla_class::text, count(*) FROM execution_dlq d{join} "
        f"WHERE NOT d.requeued AND NOT d.archived{where} GROUP BY d.sla_class",
        params,
    )
    result = {c.value: 0 for c in SlaClass}
    result.update({sla: int(n) for sla, n in rows})
    return result


def scalar_counts(tenant_ids: Sequence[int] | None = None) -> dict[str, int]:
    """Active locks, pending approvals (before a run and at a gate step), live worker clusters,
    stalls the clusters recovered from."""
    lock_where, lock_params = tenant_filter("tenant_id", tenant_ids)
    appr_where, appr_params = tenant_filter("e.tenant_id", tenant_ids)
    # The one definition of a live cluster (execution/selectors.py), as a subquery.
    alive_sql, alive_params = worker_clusters_alive().values("pk").query.sql_with_params()
    row = fetch_all(
        f"SELECT (SELECT count(*) FROM execution_locks WHERE is_active{lock_where}), "
        "(SELECT count(*) FROM approvals a JOIN executions e ON e.execution_id = a.execution_id "
        f"WHERE a.state = 'pending'{appr_where}) "
        "+ (SELECT count(*) FROM gate_approvals a JOIN executions e ON e.execution_id = a.execution_id "
        f"WHERE a.state = 'pending'{appr_where}), "
        f"(SELECT count(*) FROM ({alive_sql}) alive), "
        "(SELECT coalesce(sum(stall_recoveries), 0) FROM worker_heartbeats)",
        [*lock_params, *appr_params, *appr_params, *alive_params],
    )[0]
    return {
        "active_locks": int(row[0]),
        "approvals_pending": int(row[1]),
        "workers_alive": int(row[2]),
        "stall_recoveries": int(row[3]),
    }


def sla_compliance_of(rows: Sequence[rollups.Row]) -> dict[str, dict[str, float | int | None]]:
    """SLA class (and ``all``) -> executions that ran and ended, compliant ones, ratio, from
    window rows of kinds ``execution`` and ``sla_miss``. Ratio is None when nothing ended.

    Compliant: ended in a status other than ``timeout``, not after its ``timeout_at``, and
    without any SLA alert (queue wait or timeout); an alert raised after the end counts too.
    """
    ended = {c.value: 0 for c in SlaClass}
    missed = {c.value: 0 for c in SlaClass}
    for row in rows:
        if row.kind == "execution" and row.bucket != rollups.NO_DURATION:
            ended[row.label] += row.n
        elif row.kind == "sla_miss":
            missed[row.label] += row.n
    result: dict[str, dict[str, float | int | None]] = {}
    for sla_class in [*ended, "all"]:
        n = ended[sla_class] if sla_class != "all" else sum(ended.values())
        miss = missed[sla_class] if sla_class != "all" else sum(missed.values())
        result[sla_class] = {"ended": n, "compliant": n - miss, "ratio": (n - miss) / n if n else None}
    return result


def sla_compliance(
    *, window: timedelta, tenant_ids: Sequence[int] | None = None
) -> dict[str, dict[str, float | int | None]]:
    """sla_compliance_of() the executions that ended in the window (from its first whole minute)."""
    now = timezone.now()
    rows = rollups.window_rows(
        since=rollups.window_start(now=now, window=window),
        now=now,
        kinds=["execution", "sla_miss"],
        tenant_ids=tenant_ids,
    )
    return sla_compliance_of(rows)


def sla_alert_counts(tenant_ids: Sequence[int] | None = None) -> dict[str, int]:
    """Alert kind -> alerts ever raised (a counter: pruning alerts takes nothing off)."""
    result = {"execution_timeout": 0, "queue_wait": 0}
    for _slug, row in rollups.all_time_rows(kinds=["sla_alert"], tenant_ids=tenant_ids):
        result[row.label] += row.n
    return result
