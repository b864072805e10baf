"""The filters of ``/executions/`` (docs/contract.md#operator-console): parsed from the query string, applied
in one query.

The filter lives in the URL, so a filtered list can be bookmarked, shared and reloaded; the
live page asks the server (``/executions/rows/``) whether a new execution matches it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from execution.enums import FINISHED_STATUSES, Environment, ExecutionStatus
from execution.models import Execution

PAGE_SIZE = 50
NOT_RUN = frozenset({ExecutionStatus.PENDING_APPROVAL, ExecutionStatus.APPROVED, ExecutionStatus.REJECTED})
MAX_PAGE = 10_000
FILTER_FIELDS = ("q", "status", "environment", "requester", "tag", "tenant", "from", "to")


class FilterInvalid(ValueError):
    """A query-string value that cannot be a filter; ``field`` names it."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass
class ExecutionFilter:
    q: str = ""
    statuses: list[str] = field(default_factory=list)
    environment: str = ""
    requester: str = ""
    tag: str = ""
    tenant: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    page: int = 1

    def query_string(self, **override: Any) -> str:
        """The filter (and page) as a query string; ``override`` replaces single fields."""
        values = {
            "q": self.q,
            "status": ",".join(self.statuses),
            "environment": self.environment,
            "requester": self.requester,
            "tag": self.tag,
            "tenant": self.tenant,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "page": str(self.page) if self.page > 1 else "",
        }
        values.update({k: str(v) for k, v in override.items()})
        if values["page"] == "1":
            values["page"] = ""
        return urlencode({k: v for k, v in values.items() if v})

    @property
    def active(self) -> bool:
        return bool(
            self.q
            or self.statuses
            or self.environment
            or self.requester
            or self.tag
            or self.tenant
            or self.date_from
            or self.date_to
        )


def _date(params: QueryDict, name: str) -> dt.date | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise FilterInvalid(name, "expected a date YYYY-MM-DD") from None


def _text(params: QueryDict, name: str, limit: int = 200) -> str:
    value = params.get(name, "").strip()
    if len(value) > limit or "\x00" in value:
        raise FilterInvalid(name, f"at most {limit} characters, no NUL")
    return value


def filter_parse(params: QueryDict) -> ExecutionFilter:
    """The filter of a query string; FilterInvalid names the first bad field."""
    statuses = [s for s in _text(params, "status").split(",") if s]
    for status in statuses:
        if status not in ExecutionStatus.values:
            raise FilterInvalid("status", f"unknown status {status!r}")
    environment = _text(params, "environment")
    if environment and environment not in Environment.values:
        raise FilterInvalid("environment", f"unknown environment {environment!r}")
    raw_page = params.get("page", "1").strip() or "1"
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= MAX_PAGE:
        raise FilterInvalid("page", f"a whole number from 1 to {MAX_PAGE}")
    return ExecutionFilter(
        q=_text(params, "q"),
        statuses=statuses,
        environment=environment,
        requester=_text(params, "requester", 150),
        tag=_text(params, "tag", 100),
        tenant=_text(params, "tenant", 64),
        date_from=_date(params, "from"),
        date_to=_date(params, "to"),
        page=int(raw_page),
    )


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def executions_for_console(*, tenant_ids: list[int], flt: ExecutionFilter) -> QuerySet[Execution]:
    """Executions of ``tenant_ids`` matching ``flt``, newest first, with step counts annotated.

    One query for the rows (tenant, actor joined; steps counted in the same statement), so a
    page of executions costs the same whatever it holds.
    """
    qs = Execution.objects.filter(tenant_id__in=tenant_ids)
    if flt.q:
        qs = qs.filter(plan_snapshot__name__icontains=flt.q)
    if flt.statuses:
        qs = qs.filter(status__in=flt.statuses)
    if flt.environment:
        qs = qs.filter(environment=flt.environment)
    if flt.requester:
        qs = qs.filter(actor__username=flt.requester)
    if flt.tag:
        qs = qs.filter(tags__contains=[flt.tag])
    if flt.tenant:
        qs = qs.filter(tenant__slug=flt.tenant)
    if flt.date_from:
        qs = qs.filter(created_at__gte=_day_start(flt.date_from))
    if flt.date_to:
        qs = qs.filter(created_at__lt=_day_start(flt.date_to + dt.timedelta(days=1)))
    return qs.order_by("-created_at", "-id")


def with_step_counts(qs: QuerySet[Execution]) -> QuerySet[Execution]:
    finished = [s.value for s in FINISHED_STATUSES]
    return qs.select_related("tenant", "actor").annotate(
        steps_total=Count("steps", distinct=True),
        steps_done=Count("steps", filter=Q(steps__status__in=finished), distinct=True),
        steps_completed=Count("steps", filter=Q(steps__status=ExecutionStatus.COMPLETED), distinct=True),
    )


def row_progress(execution: Any) -> str:
    """The progress cell of a listed execution (annotated by ``with_step_counts``).

    Running: finished steps of all. Ended: steps that *completed*, so a failed run never
    reads "100 %".
    """
    total = int(getattr(execution, "steps_total", 0) or 0)
    if execution.status in NOT_RUN:
        return ""
    if execution.status in FINISHED_STATUSES:
        completed = int(getattr(execution, "steps_completed", 0) or 0)
        return f"{completed}/{total} completed"
    done = int(getattr(execution, "steps_done", 0) or 0)
    percent = done * 100 // total if total else 0
    return f"{percent}% · {done}/{total}"
