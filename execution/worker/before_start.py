"""What an attempt checks and takes before its first step: the actor's rights, the asset
locks (or a place in line for them), and the paths of an attempt that does not start
(docs/contract.md#rbac, docs/contract.md#queue-and-workers).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from execution import policy
from execution.enums import ActorType, ExecutionStatus, QueueStatus
from execution.models import Execution, Tenant
from execution.services.dlq import dlq_record
from execution.services.events import event_record
from execution.services.transition import execution_fail_unstarted, transition
from execution.worker import claim
from execution.worker.locks import LockBusy, LockRequest, locks_give, locks_take, locks_unwait, owner_tag

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
        locks_give(execution=execution, assets=assets, reason="attempt did not start")
    row = Execution.objects.filter(pk=ctx.pk).values_list("status", "cancel_requested_at").first()
    if row and row[0] == ctx.status and row[1] is not None:
        transition(ctx.pk, S.CANCELLED, actor_type=W, reason="cancel requested before start")
    claim.hand_back(ctx=ctx, status=QueueStatus.COMPLETED, error="did not start", give_back=False)
    return "skipped"


def locks_take_or_park(
    execution: Execution, ctx: claim.AttemptContext, worker_id: str, requests: list[LockRequest]
) -> str | None:
    """Take the attempt's locks (all or nothing); None when taken. Busy: the attempt parked
    in the asset's line in the same statement ('lock_wait': no attempt counted, no worker
    held) or, waiting past ``OPS_LOCK_WAIT_LIMIT_SECONDS``, fails naming the holder."""
    busy = locks_take(
        tenant_id=ctx.tenant_id,
        execution_id=ctx.execution_id,
        owner=owner_tag(ctx.execution_id, worker_id),
        requests=requests,
        priority=ctx.priority,
        lease=(ctx.item_id, ctx.lease_token) if ctx.item_id is not None and ctx.lease_token else None,
    )
    if busy is None:
        return None
    return lock_busy_outcome(execution, ctx, busy)


def lock_busy_outcome(execution: Execution, ctx: claim.AttemptContext, busy: LockBusy) -> str:
    """A take found the locks busy: parked ('lock_wait'), the lease gone, an immediate run
    that gives up, or a wait past the limit that fails the execution."""
    if busy.lease_lost:
        return "lease_lost"
    if busy.parked or ctx.item_id is None:
        return "lock_wait"  # without a queue item (immediate) there is nothing to park: it gives up
    waited = (timezone.now() - busy.waiting_since).total_seconds()
    return _lock_wait_exceeded(execution, ctx, busy, waited)


def _lock_wait_exceeded(
    execution: Execution, ctx: claim.AttemptContext, busy: LockBusy, waited: float
) -> str:
    reason = f"still waiting after {waited:.0f}s: {busy.describe()} ({busy.holder_owner_tag})"
    with transaction.atomic():
        executed = execution_fail_unstarted(execution=ctx.pk, reason=reason)
        dlq_record(
            execution=executed,
            reason="lock_wait_exceeded",
            last_error=reason,
            details={"asset_id": busy.asset_id, "holder": busy.holder_execution_id or "unknown"},
        )
        claim.hand_back(ctx=ctx, status=QueueStatus.FAILED, error=reason, give_back=False)
    locks_unwait(execution_id=ctx.execution_id)  # out of the line: the next one may go
    return S.FAILED
