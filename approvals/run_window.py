"""A run window typed into a form (the approval page, the admin's vote page): two
datetime-local fields read as UTC (docs/approvals.md#run-windows)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from approvals.errors import VoteInvalid


def window_payload(approval: Any) -> dict[str, str] | None:
    """``{"start", "end"}`` of the window an approval was given for (None: none), as the
    approvals API and an execution's ``approval`` show it."""
    start, end = getattr(approval, "run_after", None), getattr(approval, "run_before", None)
    return {"start": start.isoformat(), "end": end.isoformat()} if start and end else None


def form_window(start: str, end: str) -> tuple[datetime, datetime] | None:
    """The form's run window as aware datetimes, or None when both fields are empty; one bound
    alone or text that is no date and time is a ``VoteInvalid`` naming ``window``."""
    if not start and not end:
        return None
    bounds = []
    for name, text in (("window_start", start), ("window_end", end)):
        value = parse_datetime(text) if text else None
        if value is None:
            raise VoteInvalid("window", f"{name}: give the window's start and end as dates and times")
        bounds.append(value if value.tzinfo else value.replace(tzinfo=UTC))
    return bounds[0], bounds[1]
