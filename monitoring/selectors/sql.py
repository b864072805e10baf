"""Small helpers shared by the monitoring queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection

from execution.enums import ExecutionStatus

# Statuses of an execution that ran (or was meant to) and ended: the population of rates,
# durations and SLA compliance. ``rejected`` never ran and is left out.
ENDED_STATUSES = [
    ExecutionStatus.COMPLETED.value,
    ExecutionStatus.FAILED.value,
    ExecutionStatus.TIMEOUT.value,
    ExecutionStatus.PARTIAL.value,
    ExecutionStatus.CANCELLED.value,
]


def fetch_all(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return list(cursor.fetchall())


def tenant_filter(column: str, tenant_ids: Sequence[int] | None) -> tuple[str, list[Any]]:
    """``AND <column> = ANY(%s)`` for a tenant-scoped read; nothing when ``tenant_ids`` is None."""
    if tenant_ids is None:
        return "", []
    return f" AND {column} = ANY(%s)", [list(tenant_ids)]
