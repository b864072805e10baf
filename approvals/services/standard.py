"""Standard changes (docs/approvals.md#standard-changes): a submission that matches every
field of an active rule of its tenant is approved by the rule, at submission."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import Any

import re2
from django.db import transaction
from django.utils import timezone

from approvals.models import Approval, ApprovalVote, StandardChange
from approvals.services.vote import _continue_approved
from execution.enums import ACTION_CLASS_RANK, ActionClass, ActorType, ApprovalState, ExecutionStatus
from execution.models import AuditLog, Execution
from execution.services.events import event_record
from execution.services.transition import transition

# A target as the submission resolved it: (identity, tags).
Target = tuple[str, Sequence[str]]


def _in_window(rule: StandardChange, now: datetime) -> bool:
    if rule.window_start is None or rule.window_end is None:
        return True
    at: time = now.astimezone(UTC).time()
    start, end = rule.window_start, rule.window_end
    return start <= at < end if start <= end else (at >= start or at < end)  # past midnight


def _names_plan(rule: StandardChange, execution: Execution) -> bool:
    if rule.plan_name_pattern:
        try:
            if re2.fullmatch(rule.plan_name_pattern, str(execution.plan_snapshot.get("name") or "")) is None:
                return False
        except re2.error:
            return False  # a pattern saved around the admin's validation matches nothing
    if rule.runbook_slug:
        launched = execution.runbook or {}
        if launched.get("slug") != rule.runbook_slug:
            return False
        if rule.runbook_version is not None and launched.get("version") != rule.runbook_version:
            return False
    return True


def rule_matches(*, rule: StandardChange, execution: Execution, targets: list[Target], now: datetime) -> bool:
    """Does ``execution`` (with its resolved targets) match every field of ``rule``?"""
    if not rule.active or rule.tenant_id != execution.tenant_id or rule.environment != execution.environment:
        return False
    if (
        ACTION_CLASS_RANK[ActionClass(execution.action_class)]
        > ACTION_CLASS_RANK[ActionClass(rule.action_class)]
    ):
        return False
    distinct = {identity for identity, _ in targets}
    if len(distinct) > rule.max_targets:
        return False
    wanted = set(rule.target_tags or [])
    if wanted and (not targets or any(not wanted <= set(tags) for _, tags in targets)):
        return False
    return _in_window(rule, now) and _names_plan(rule, execution)


def standard_change_apply(*, execution: Execution, approval: Approval, targets: list[Target]) -> bool:
    """Approve ``approval`` by the first active rule of the tenant that matches (a vote
    recorded as the rule, an ``approved`` transition by the system, an audit row) and queue
    it; False when none matches. Never for an approval whose level a change freeze raised."""
    if approval.freeze_id is not None or approval.state != ApprovalState.PENDING:
        return False
    now = timezone.now()
    rules = StandardChange.objects.filter(
        tenant_id=execution.tenant_id, environment=execution.environment, active=True
    ).order_by("name", "-version")
    rule = next(
        (r for r in rules if rule_matches(rule=r, execution=execution, targets=targets, now=now)), None
    )
    if rule is None:
        return False
    label = str(rule)
    with transaction.atomic():
        vote = ApprovalVote.objects.create(
            approval=approval, standard_change=rule, decision=ApprovalVote.Decision.APPROVE, comment=label
        )
        # Compare-and-swap pending -> approved, as the vote service does.
        decided = Approval.objects.filter(pk=approval.pk, state=ApprovalState.PENDING).update(
            state=ApprovalState.APPROVED, approver_comment=label, responded_at=now, updated_at=now
        )
        if decided != 1:
            raise RuntimeError("a fresh approval was decided before its standard change")
        event_record(
            execution=execution,
            event_type="approval_vote",
            actor_type=ActorType.SYSTEM,
            details={
                "approval_id": str(approval.approval_id),
                "standard_change": {"id": rule.pk, "name": rule.name, "version": rule.version},
                "decision": ApprovalVote.Decision.APPROVE,
                "approvals": 1,
                "approval_level": approval.approval_level,
            },
        )
        approved = transition(
            execution,
            ExecutionStatus.APPROVED,
            actor_type=ActorType.SYSTEM,
            reason=f"approved by {label}",
            expected_from=ExecutionStatus.PENDING_APPROVAL,
            details={"vote_id": vote.pk, "standard_change": rule.pk},
        )
        AuditLog.objects.create(
            tenant_id=execution.tenant_id,
            actor=None,
            event_type="standard_change_applied",
            details={
                "execution_id": str(execution.execution_id),
                "standard_change": rule.pk,
                "name": rule.name,
                "version": rule.version,
            },
        )
        _continue_approved(execution=approved)
    return True


def targets_of(resolved: Sequence[Sequence[Any]]) -> list[Target]:
    """The submission's resolved targets (a list per step) as rule inputs."""
    return [(str(r.asset_id or r.hostname), tuple(r.tags or ())) for step in resolved for r in step]
