"""``GET /api/v1/metrics/summary``: rates, percentiles, queue time and SLA compliance, in SQL."""

# ruff: noqa: S608 - only constant SQL fragments are interpolated; every value is a parameter.

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.utils import timezone

from monitoring.selectors.figures import (
    EXECUTION_SECONDS,
    EXECUTIONS_WITH_ATTEMPT,
    STEP_SECONDS,
    WAITING_SINCE,
    sla_compliance,
)
from monitoring.selectors.sql import ENDED_STATUSES, fetch_all, tenant_filter

WINDOW_RE = re.compile(r"^(\d+)\s*([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WINDOW = timedelta(days=90)
PERCENTILES = "percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY v)"


def window_parse(text: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"7d"`` -> timedelta; ValueError on anything else."""
    match = WINDOW_RE.match(text.strip().lower())
    if not match:
        raise ValueError("window must look like 90s, 15m, 1h or 7d")
    # Compared in seconds before any timedelta exists: 99999999999h would overflow one.
    seconds = int(match.group(1)) * UNIT_SECONDS[match.group(2)]
    if seconds <= 0 or seconds > MAX_WINDOW.total_seconds():
        raise ValueError("window must be between 1s and 90d")
    window = timedelta(seconds=seconds)
    if window > MAX_WINDOW:
        raise ValueError("window must be between 1s and 90d")
    return window


def _durations(row: Sequence[Any]) -> dict[str, Any]:
    """(count, mean, [p50, p95, p99]) -> the JSON shape, seconds rounded to the millisecond."""
    count, mean, pcts = row
    pcts = pcts or [None, None, None]

    def r(v: Any) -> float | None:
        return None if v is None else round(float(v), 3)

    return {
        "count": int(count),
        "mean": r(mean),
        "p50": r(pcts[0]),
        "p95": r(pcts[1]),
        "p99": r(pcts[2]),
    }


def metrics_summary(*, window: timedelta, tenant_ids: Sequence[int] | None) -> dict[str, Any]:
    """The summary over executions that ended (and steps/queue items that finished) in the window.

    ``tenant_ids`` None means every tenant (superusers). Durations are in seconds.
    """
    now = timezone.now()
    since = now - window
    where, params = tenant_filter("e.tenant_id", tenant_ids)

    status_rows = fetch_all(
        "SELECT e.status::text, count(*) FROM executions e "
        f"WHERE e.completed_at >= %s AND e.status::text = ANY(%s){where} GROUP BY e.status",
        [since, ENDED_STATUSES, *params],
    )
    by_status = dict.fromkeys(ENDED_STATUSES, 0)
    by_status.update({status: int(n) for status, n in status_rows})
    ended = sum(by_status.values())

    def rate(n: int) -> float | None:
        return round(n / ended, 4) if ended else None

    execution_row = fetch_all(
        f"SELECT count(*), avg(v), {PERCENTILES} FROM (SELECT {EXECUTION_SECONDS} AS v "
        f"FROM {EXECUTIONS_WITH_ATTEMPT} "
        "WHERE e.started_at IS NOT NULL AND e.completed_at >= %s "
        f"AND e.status::text = ANY(%s){where}) d",
        [since, ENDED_STATUSES, *params],
    )[0]

    step_rows = fetch_all(
        f"SELECT step_type, count(*), avg(v), {PERCENTILES} FROM (SELECT s.step_type, {STEP_SECONDS} AS v "
        "FROM execution_steps s JOIN executions e ON e.execution_id = s.execution_id "
        "WHERE s.completed_at >= %s AND (s.duration_ms IS NOT NULL OR s.started_at IS NOT NULL)"
        f"{where}) d GROUP BY step_type ORDER BY step_type",
        [since, *params],
    )

    queue_row = fetch_all(
        f"SELECT count(*), avg(v), {PERCENTILES} FROM (SELECT "
        f"EXTRACT(EPOCH FROM (q.dequeued_at - {WAITING_SINCE})) AS v FROM execution_queue q "
        "JOIN executions e ON e.execution_id = q.execution_id "
        f"WHERE q.dequeued_at >= %s AND q.dequeued_at >= {WAITING_SINCE}{where}) d",
        [since, *params],
    )[0]

    alerts_row = fetch_all(
        "SELECT count(*) FILTER (WHERE a.kind = 'execution_timeout'), "
        "count(*) FILTER (WHERE a.kind = 'queue_wait') FROM sla_alerts a "
        f"JOIN executions e ON e.execution_id = a.execution_id WHERE a.detected_at >= %s{where}",
        [since, *params],
    )[0]

    return {
        "window_seconds": int(window.total_seconds()),
        "since": since.isoformat(),
        "until": now.isoformat(),
        "executions": {
            "ended": ended,
            "by_status": by_status,
            "success_rate": rate(by_status["completed"]),
            "failure_rate": rate(by_status["failed"] + by_status["timeout"]),
            "partial_rate": rate(by_status["partial"]),
            "cancelled_rate": rate(by_status["cancelled"]),
        },
        "duration_seconds": _durations(execution_row),
        "step_duration_seconds": {row[0]: _durations(row[1:]) for row in step_rows},
        "queue_time_seconds": _durations(queue_row),
        "sla": {
            "compliance": sla_compliance(window=window, tenant_ids=tenant_ids),
            "violations": {"execution_timeout": int(alerts_row[0]), "queue_wait": int(alerts_row[1])},
        },
    }
