"""What an attempt checks and takes before its first step: the actor's rights, the asset
locks (or a wait for them), and the paths of an attempt that does not start
(docs/contract.md#rbac, docs/contract.md#queue-and-workers).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from execution import policy
from execution.enums import ActorType, ExecutionStatus, QueueStatus
from execution.models import Execution, ExecutionEvent, Tenant
from execution.services.dlq import dlq_record
from execution.services.events import event_record
from execution.services.locks import LockBusy, locks_acquire, locks_release
from execution.services.transition import execution_fail_unstarted, transition
from execution.worker import claim

S = ExecutionStatus
W = ActorType.WORKER


class _TargetsOnDemand:
    """The execution's targets as the policy sees them, read only when a grant has to decide
    (:func:`policy.decide` iterates ``assets`` only then): the role usually decides alone."""

    def __init__(self, pk: int) -> None:
        self.pk = pk

    def __iter__(self) -> Iterator[policy.Target]:
        execution = Execution.objects.select_related("tenant", "actor").get(pk=self.pk)
        return iter(policy.targets_of(execution))


def rbac_denied(ctx: claim.AttemptContext) -> str | None:
    """The re-check before start (docs/contract.md#rbac): the policy's submit decision for the
    actor, from what the claim read with the execution (account active, membership role), so
    no query when the role alone decides; grants read the targets on demand."""
    actor = get_user_model()(pk=ctx.actor_id, username=ctx.actor_username, is_active=ctx.actor_active)
    tenant = Tenant(pk=ctx.tenant_id, slug=ctx.tenant_slug)
    decision = policy.decide(
        actor,
        policy.Right.SUBMIT,
        tenant=tenant,
        membership=policy.membership_known(tenant=tenant, role=ctx.role, active=ctx.actor_active),
        environment=ctx.environment,
        action_class=ctx.action_class,
        assets=_TargetsOnDemand(ctx.pk),
    )
    return None if decision.allowed else decision.reason


def fail_before_start(execution: Execution, ctx: claim.AttemptContext, reason: str, **event: Any) -> str:
    """queued -> failed for an attempt that may not start: it never ran (no ``started``)."""
    with transaction.atomic():
        if event:
            event_record(execution=execution, actor_type=W, **event)
        execution_fail_unstarted(execution=ctx.pk, reason=reason)
        claim.hand_back(ctx=ctx, status=QueueStatus.FAILED, error=reason, give_back=False)
    return S.FAILED


def not_started(execution: Execution, ctx: claim.AttemptContext, assets: list[str]) -> str:
    """The start lost its compare-and-swap: a cancel or the reaper came first."""
    if assets:
        locks_release(execution=execution, reason="attempt did not start")
    row = Execution.objects.filter(pk=ctx.pk).values_list("status", "cancel_requested_at").first()
    if row and row[0] == ctx.status and row[1] is not None:
        transition(ctx.pk, S.CANCELLED, actor_type=W, reason="cancel requested before start")
    claim.hand_back(ctx=ctx, status=QueueStatus.COMPLETED, error="did not start", give_back=False)
    return "skipped"


def locks_acquire_or_wait(
    execution: Execution, ctx: claim.AttemptContext, worker_id: str, assets: list[str]
) -> str | None:
    busy = locks_acquire(execution=execution, worker_id=worker_id, assets=assets)
    if busy is None:
        return None
    return _lock_wait(execution, ctx, busy)


def _lock_wait_started(execution: Execution) -> float | None:
    """Seconds since the first lock_wait of this queue stay, or None when it never waited."""
    changed = Execution.objects.values_list("status_changed_at", flat=True).get(pk=execution.pk)
    first = (
        ExecutionEvent.objects.filter(
            execution_id=str(execution.execution_id), event_type="lock_wait", created_at__gte=changed
        )
        .order_by("id")
        .values_list("created_at", flat=True)
        .first()
    )
    return (timezone.now() - first).total_seconds() if first else None


def _lock_wait(execution: Execution, ctx: claim.AttemptContext, busy: LockBusy) -> str:
    waited = _lock_wait_started(execution)
    holder = busy.holder_execution_id or "unknown"
    if waited is not None and waited >= settings.LOCK_WAIT_LIMIT_SECONDS:
        reason = (
            f"asset {busy.asset_id} still locked after {waited:.0f}s "
            f"by execution {holder} ({busy.holder_owner_tag})"
        )
        with transaction.atomic():
            executed = execution_fail_unstarted(execution=ctx.pk, reason=reason)
            dlq_record(
                execution=executed,
                reason="lock_wait_exceeded",
                last_error=reason,
                details={"asset_id": busy.asset_id, "holder": holder},
            )
            claim.hand_back(ctx=ctx, status=QueueStatus.FAILED, error=reason, give_back=False)
        return S.FAILED
    delay = settings.LOCK_RETRY_SECONDS * random.uniform(0.5, 1.5)
    with transaction.atomic():
        event_record(
            execution=execution,
            event_type="lock_wait",
            actor_type=W,
            details={
                "asset_id": busy.asset_id,
                "holder_execution_id": holder,
                "retry_in_seconds": round(delay, 2),
            },
        )
        claim.hand_back(
            ctx=ctx,
            status=QueueStatus.PENDING,
            error=f"waiting for asset {busy.asset_id}",
            delay_seconds=delay,
            give_back=True,
        )
    return "lock_wait"
