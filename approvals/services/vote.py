"""``approval_vote``: one vote on an approval, deciding its outcome exactly once
(docs/contract.md#approvals)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.errors import VoteConflict, VoteForbidden, VoteInvalid
from approvals.gates import gate_failed, gate_passed, gate_vote_forbidden
from approvals.models import AnyApproval, Approval, ApprovalVote, GateApproval
from execution import policy
from execution.enums import ActorType, ApprovalState, ExecutionMode, ExecutionStatus
from execution.masking import mask_text
from execution.models import Execution, QueueItem
from execution.plans.hashing import plan_hash
from execution.services.events import event_record
from execution.services.transition import transition

Decision = ApprovalVote.Decision


def _forbidden(refusal: policy.Decision) -> VoteForbidden:
    # Another tenant's member simply lacks the role there (no hint that the tenant exists).
    code = "missing_role" if refusal.code == "not_member" else refusal.code
    return VoteForbidden(code, refusal.reason)


def approval_vote_forbidden(*, approval: AnyApproval, voter: Any) -> VoteForbidden | None:
    """Why ``voter`` may never vote on ``approval`` (the requester, no role, a gate for
    admins only), or None.

    Pages use it to decide whether to show the vote buttons; ``approval_vote`` enforces it.
    """
    decision = policy.decide(voter, policy.Right.VOTE, execution=approval.execution)
    if not decision.allowed:
        return _forbidden(decision)
    return gate_vote_forbidden(gate=approval, voter=voter) if isinstance(approval, GateApproval) else None


def _refusal(*, approval: AnyApproval, voter: Any, now: Any) -> VoteForbidden | VoteConflict | None:
    if approval.state != ApprovalState.PENDING:
        return VoteConflict("already_decided", f"the approval is already {approval.state}")
    if approval.execution.status != ExecutionStatus.PENDING_APPROVAL:
        # E.g. cancelled while waiting: the approval can no longer move it anywhere.
        return VoteConflict("already_decided", f"the execution is already {approval.execution.status}")
    if approval.votes.filter(voter_id=voter.pk).exists():
        return VoteConflict("already_voted", f"{voter} has already voted on this approval")
    if approval.expires_at <= now:
        return VoteConflict(
            "expired", f"the approval expired at {approval.expires_at.isoformat()} and takes no votes"
        )
    if plan_hash(approval.execution.plan_snapshot) != approval.plan_hash:
        return VoteConflict(
            "plan_changed",
            "the plan changed after approval was requested: its hash no longer matches the "
            "approved plan hash, so the approval cannot be voted on",
        )
    return None


def approval_vote(
    *,
    approval: AnyApproval,
    voter: Any,
    decision: str,
    comment: str = "",
    window: tuple[datetime, datetime] | None = None,
) -> AnyApproval:
    """Record ``voter``'s ``decision`` ("approve" or "reject") with ``comment``.

    ``approval`` is the pre-run approval or a gate's (docs/approvals.md#gates): the same rules.
    The level is the number of distinct approvers needed; one rejection rejects. Raises
    :class:`VoteInvalid` (a rejection needs a comment: the requester learns why),
    :class:`VoteForbidden` (requester, no approver/admin role) or :class:`VoteConflict`
    (already voted, already decided, expired, plan changed) and records nothing then.
    ``window`` (start, end): an approve vote binds the approval to that run window
    (docs/approvals.md#run-windows; several approvers: the overlap of theirs).
    On the deciding vote the execution moves to ``approved`` (and is queued: immediate ones
    at priority 1, to run on a worker at once) or ``rejected``. Returns the fresh approval.
    """
    if decision not in Decision.values:
        raise ValueError(f"decision must be one of {Decision.values}, not {decision!r}")
    try:
        # Before the transaction: the rbac_violation of a refusal must outlive its rollback.
        policy.require(voter, policy.Right.VOTE, execution=approval.execution, door="vote")
    except policy.RightDenied as denied:
        raise _forbidden(policy.Decision(False, denied.reason, denied.code)) from None
    if isinstance(approval, GateApproval):
        refused = gate_vote_forbidden(gate=approval, voter=voter)
        if refused is not None:
            raise refused
    comment = comment.strip()
    if decision == Decision.REJECT and not comment:
        raise VoteInvalid("comment", "a rejection needs a comment saying why")
    # Masked once, here: the vote row, the approval's approver_comment, the event and the
    # rejection reason hold the masked text, so no reader (API, pages, admin) shows a secret.
    comment = mask_text(comment)
    if window is not None:
        _window_check(approval=approval, decision=decision, window=window)
    with transaction.atomic():
        # Lock order everywhere in approvals: execution row, then approval row (as transition()
        # and cancellation do). The lock serialises the votes of one approval, so the N-th
        # approve of an N-person rule counts the N-1 committed before it (no lost outcome).
        execution = Execution.objects.select_for_update().get(pk=approval.execution.pk)
        locked = type(approval).objects.select_for_update().get(pk=approval.pk)
        locked.execution = execution
        now = timezone.now()
        refusal = _refusal(approval=locked, voter=voter, now=now)
        if refusal is not None:
            raise refusal
        try:
            with transaction.atomic():
                # The unique (approval, voter) constraint: a voter's two concurrent requests
                # (double click, admin + REST) record one vote, whatever the locking above.
                vote = locked.votes.create(voter=voter, decision=decision, comment=comment)
        except IntegrityError:
            raise VoteConflict("already_voted", f"{voter} has already voted on this approval") from None
        if window is not None and isinstance(locked, Approval):
            _window_narrow(approval=locked, window=window)
        approvals = locked.votes.filter(decision=Decision.APPROVE).count()
        event_record(
            execution=execution,
            event_type="approval_vote",
            actor=voter,
            actor_type=ActorType.USER,
            details={
                "approval_id": str(locked.approval_id),
                "voter": voter.get_username(),
                "decision": decision,
                "comment": comment,
                "approvals": approvals,
                "approval_level": locked.approval_level,
                **({"step_index": locked.step_index} if isinstance(locked, GateApproval) else {}),
            },
        )
        if decision == Decision.REJECT:
            outcome = ApprovalState.REJECTED
        elif approvals >= locked.approval_level:
            outcome = ApprovalState.APPROVED
        else:
            return _refreshed(locked)
        # Compare-and-swap pending -> outcome: the outcome is written once even against a
        # writer that does not take the row locks (expiry sweeper, cancellation).
        decided = (
            type(locked)
            .objects.filter(pk=locked.pk, state=ApprovalState.PENDING)
            .update(state=outcome, approver=voter, approver_comment=comment, responded_at=now, updated_at=now)
        )
        if decided != 1:
            raise VoteConflict("already_decided", "the approval was decided by another vote meanwhile")
        if isinstance(locked, GateApproval):
            locked.state = outcome
            if outcome == ApprovalState.APPROVED:
                gate_passed(gate=locked, execution=execution, voter=voter)
            else:
                gate_failed(gate=locked, execution=execution, reason=f"rejected by {voter.get_username()}")
        _apply_outcome(
            execution=execution,
            outcome=outcome,
            voter=voter,
            comment=comment,
            vote=vote,
            run_after=getattr(locked, "run_after", None),
        )
    return _refreshed(locked)


def _apply_outcome(
    *, execution: Execution, outcome: str, voter: Any, comment: str, vote: Any, run_after: datetime | None
) -> None:
    reason = f"{outcome} by {voter.get_username()}" + (f": {comment}" if comment else "")
    to = ExecutionStatus.APPROVED if outcome == ApprovalState.APPROVED else ExecutionStatus.REJECTED
    fields = {"error_message": reason} if to == ExecutionStatus.REJECTED else None
    execution = transition(
        execution,
        to,
        actor=voter,
        actor_type=ActorType.USER,
        reason=reason,
        expected_from=ExecutionStatus.PENDING_APPROVAL,
        details={"vote_id": vote.pk},
        fields=fields,
    )
    if to == ExecutionStatus.APPROVED:
        _continue_approved(execution=execution, run_after=run_after)


def _continue_approved(*, execution: Execution, run_after: datetime | None = None) -> None:
    """docs/contract.md#approvals: approved background executions are queued; approved immediate ones run on a
    worker at the highest priority. Approved for a run window: claimable from its start."""
    from execution.services.queue import queue_enqueue  # looked up now: tests replace it

    if execution.execution_mode == ExecutionMode.IMMEDIATE:
        item = queue_enqueue(execution=execution, priority=1)
    else:
        item = queue_enqueue(execution=execution)
    if run_after is not None and run_after > timezone.now():
        QueueItem.objects.filter(pk=item.pk).update(available_at=run_after)


def _window_check(*, approval: AnyApproval, decision: str, window: tuple[datetime, datetime]) -> None:
    start, end = window
    if isinstance(approval, GateApproval):
        raise VoteInvalid("window", "a gate takes no run window (its execution already runs)")
    if decision != Decision.APPROVE:
        raise VoteInvalid("window", "only an approval is given for a run window")
    if end <= start:
        raise VoteInvalid("window", "the window must end after it starts")
    if end <= timezone.now():
        raise VoteInvalid("window", "the window has already ended")


def _window_narrow(*, approval: Approval, window: tuple[datetime, datetime]) -> None:
    """The approval's window becomes the overlap of the approvers' windows."""
    start, end = window
    if approval.run_after is not None and approval.run_before is not None:
        start, end = max(start, approval.run_after), min(end, approval.run_before)
        if end <= start:
            raise VoteInvalid("window", "this window does not overlap the window already approved")
    approval.run_after, approval.run_before = start, end
    type(approval).objects.filter(pk=approval.pk).update(run_after=start, run_before=end)


def _refreshed(approval: AnyApproval) -> AnyApproval:
    return type(approval).objects.select_related("execution", "approver").get(pk=approval.pk)
