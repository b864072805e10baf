"""Idempotency of docs/contract.md#submission (docs/idempotency.md).

key = sha256(part + "\\x1f" + tenant slug + "\\x1f" + actor id [+ "\\x1fdry_run"]), part = the
canonical plan JSON, or ``"header:" + Idempotency-Key`` when the header is given. A dry run
has its own key: it never stands in for, or blocks, the real run. The unique constraint
(tenant_id, idempotency_key) is the race guard; a superseded execution gives up its key
(moved to ``released_idempotency_key``) in the transaction that creates its successor.
A key that still has a holder answers only for the holder's plan: another plan under it is
refused (KeyReused), never answered with an execution of a plan the caller did not send.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from execution.enums import ExecutionStatus
from execution.errors import KeyReused
from execution.models import Execution, Tenant
from execution.plans import canonical_json

# An earlier execution in one of these ends its claim: a repeat starts a new execution.
SUPERSEDABLE = frozenset(
    {ExecutionStatus.FAILED, ExecutionStatus.CANCELLED, ExecutionStatus.REJECTED, ExecutionStatus.TIMEOUT}
)


def idempotency_key_compute(
    *, tenant: Tenant, actor: Any, plan: dict[str, Any], dry_run: bool, header: str | None = None
) -> str:
    part = f"header:{header}" if header else canonical_json(plan)
    parts = [part, tenant.slug, str(actor.pk)]
    if dry_run:  # the real run's key is unchanged, so keys stored before this stay valid
        parts.append("dry_run")
    joined = "\x1f".join(parts)
    return hashlib.sha256(joined.encode()).hexdigest()


def window_seconds() -> int:
    return int(settings.IDEMPOTENCY_WINDOW_SECONDS)


def idempotency_claim(*, tenant: Tenant, key: str, plan_digest: str) -> Execution | None:
    """Inside the caller's transaction: the execution to replay, or None to create a new one.

    ``plan_digest`` is the plan hash of the submission: a holder in its window whose plan
    differs (an ``Idempotency-Key`` reused for another plan) raises KeyReused.

    Locks the current holder of the key; if it is superseded (outside the window, or it
    ended failed/cancelled/rejected/timeout) it releases the key now, so the successor's
    INSERT in the same transaction takes it. A concurrent identical request blocks on the
    unique index until we commit and then fails with IntegrityError (the caller retries
    and replays).
    """
    holder = Execution.objects.select_for_update().filter(tenant=tenant, idempotency_key=key).first()
    if holder is None:
        return None
    expired = holder.created_at < timezone.now() - timedelta(seconds=window_seconds())
    if holder.status in SUPERSEDABLE or expired:
        Execution.objects.filter(pk=holder.pk).update(released_idempotency_key=key, idempotency_key=None)
        return None
    if holder.plan_hash != plan_digest:
        raise KeyReused(holder.execution_id)
    return holder
