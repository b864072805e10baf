"""``GET /api/v1/metrics/summary``: rates, percentiles, queue time and SLA compliance, from the
rollups (monitoring/selectors/rollups.py): one read whose cost depends on the window's length,
never on the history's size."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.utils import timezone

from monitoring.selectors import rollups
from monitoring.selectors.figures import sla_compliance_of
from monitoring.selectors.rollups import MAX_WINDOW
from monitoring.selectors.sql import ENDED_STATUSES

WINDOW_RE = re.compile(r"^(\d+)\s*([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
KINDS = ["execution", "sla_miss", "step", "queue_wait", "sla_alert"]


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


class _Durations:
    """Count, sum and log-bucket counts of one series of durations."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets: dict[int, int] = {}

    def add(self, row: rollups.Row) -> None:
        self.count += row.n
        self.total += row.total
        self.buckets[row.bucket] = self.buckets.get(row.bucket, 0) + row.n

    def figures(self) -> dict[str, Any]:
        """The JSON shape, seconds rounded to the millisecond; percentiles within 2.2%."""
        p50, p95, p99 = rollups.percentiles(self.buckets, [0.5, 0.95, 0.99])

        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        return {
            "count": self.count,
            "mean": r(self.total / self.count) if self.count else None,
            "p50": r(p50),
            "p95": r(p95),
            "p99": r(p99),
        }


def metrics_summary(*, window: timedelta, tenant_ids: Sequence[int] | None) -> dict[str, Any]:
    """The summary over executions that ended (steps that finished, queue items claimed) from
    the first whole minute of the window on (the first whole hour for windows over a day).

    ``tenant_ids`` None means every tenant (superusers). Durations are in seconds.
    """
    now = timezone.now()
    since = rollups.window_start(now=now, window=window)
    rows = rollups.window_rows(since=since, now=now, kinds=KINDS, tenant_ids=tenant_ids)

    by_status = dict.fromkeys(ENDED_STATUSES, 0)
    run = _Durations()
    steps: dict[str, _Durations] = {}
    queue = _Durations()
    violations = {"execution_timeout": 0, "queue_wait": 0}
    for row in rows:
        if row.kind == "execution" and row.status in by_status:
            by_status[row.status] += row.n
            if row.bucket != rollups.NO_DURATION:
                run.add(row)
        elif row.kind == "step":
            steps.setdefault(row.label, _Durations()).add(row)
        elif row.kind == "queue_wait":
            queue.add(row)
        elif row.kind == "sla_alert":
            violations[row.label] += row.n
    ended = sum(by_status.values())

    def rate(n: int) -> float | None:
        return round(n / ended, 4) if ended else None

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
        "duration_seconds": run.figures(),
        "step_duration_seconds": {label: d.figures() for label, d in sorted(steps.items())},
        "queue_time_seconds": queue.figures(),
        "sla": {"compliance": sla_compliance_of(rows), "violations": violations},
    }
