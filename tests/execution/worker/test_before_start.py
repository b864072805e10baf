"""The worker's re-check before start asks the one policy (docs/contract.md#rbac): a
deactivated actor, a lost membership and a policy refusal all stop a queued execution
before anything runs, through ``policy.decide`` — and the role-only case costs no query."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from execution.enums import ExecutionStatus
from execution.models import AccessGrant, ExecutionEvent, ExecutionStep, Membership
from execution.policy import Decision, Right, rules
from execution.worker import claim
from execution.worker.attempt import attempt_run
from execution.worker.before_start import rbac_denied
from tests.execution.engine.helpers import enqueue, make_execution

# transaction=True: the claim compares with the database clock.
pytestmark = pytest.mark.django_db(transaction=True)

NOOP = [{"name": "n", "type": "noop", "params": {}}]


def _run(execution: Any) -> str:
    enqueue(execution)
    ctx = claim.claim_with_context(worker_id="before-start")
    assert ctx is not None and ctx.pk == execution.pk
    return attempt_run(ctx=ctx, worker_id="before-start")


def _refused(execution: Any, words: str) -> None:
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED and execution.started_at is None
    assert words in execution.error_message, execution.error_message
    violation = ExecutionEvent.objects.get(execution=execution, event_type="rbac_violation")
    assert words in violation.details["reason"]
    assert not ExecutionEvent.objects.filter(execution=execution, event_type="started").exists()
    assert ExecutionStep.objects.get(execution=execution).status == ExecutionStatus.CANCELLED


def test_a_deactivated_actor_stops_the_execution_before_it_starts(tenant: Any, operator: Any) -> None:
    execution = make_execution(tenant=tenant, actor=operator, steps=NOOP, action_class="read")
    operator.is_active = False
    operator.save(update_fields=["is_active"])
    assert _run(execution) == ExecutionStatus.FAILED
    _refused(execution, f"user {operator.username!r} is deactivated")


def test_an_actor_without_a_membership_stops_the_execution(tenant: Any, operator: Any) -> None:
    execution = make_execution(tenant=tenant, actor=operator, steps=NOOP, action_class="read")
    Membership.objects.filter(user=operator).delete()
    assert _run(execution) == ExecutionStatus.FAILED
    _refused(execution, "not a member of tenant 'acme'")


def test_the_worker_enforces_what_the_policy_says_even_where_the_role_would_allow(
    tenant: Any, operator: Any, monkeypatch: Any
) -> None:
    """One place decides: a rule of the policy (here replaced by one refusing everything) is
    what the worker enforces; it used to allow any role-allowed plan without asking."""
    execution = make_execution(tenant=tenant, actor=operator, steps=NOOP, action_class="read")
    refusing = Decision(False, "refused by the policy under test", "role")
    monkeypatch.setitem(rules.RULES, Right.SUBMIT, lambda ask: refusing)
    assert _run(execution) == ExecutionStatus.FAILED
    _refused(execution, "refused by the policy under test")


def test_a_grant_decides_with_the_targets_read_on_demand(tenant: Any, viewer: Any) -> None:
    AccessGrant.objects.create(tenant=tenant, user=viewer, environment="dev", action_class="read")
    execution = make_execution(tenant=tenant, actor=viewer, steps=NOOP, action_class="read")
    assert _run(execution) == ExecutionStatus.COMPLETED


def test_the_role_alone_decides_without_a_query(tenant: Any, operator: Any) -> None:
    execution = make_execution(tenant=tenant, actor=operator, steps=NOOP, action_class="read")
    enqueue(execution)
    ctx = claim.claim_with_context(worker_id="before-start")
    assert ctx is not None
    with CaptureQueriesContext(connection) as queries:
        assert rbac_denied(ctx) is None
    assert len(queries) == 0, [q["sql"] for q in queries]
    ctx.actor_active = False  # as the claim reads a deactivated account: still no query
    with CaptureQueriesContext(connection) as queries:
        assert rbac_denied(ctx) == f"user {operator.username!r} is deactivated"
    assert len(queries) == 0


def test_a_submitter_deactivated_after_the_approval_is_refused_by_the_worker_saying_why(
    tenant: Any, operator: Any, approver: Any, settings: Any
) -> None:
    """The whole path: submitted, approved by an approver, then the submitter's account is
    deactivated before a worker takes it; the worker's re-check (the policy's answer) ends
    it failed with the reason, nothing ran, and the API says why."""
    from rest_framework.test import APIClient

    from approvals.services.vote import approval_vote
    from execution.services.submit import execution_submit
    from execution.worker.runtime import drain

    plan = {"name": "nightly check", "environment": "dev", "steps": [{"name": "n", "type": "noop"}]}
    execution = execution_submit(tenant=tenant, actor=operator, plan=plan, approval_level=1).execution
    approval_vote(approval=execution.approval, voter=approver, decision="approve", comment="ok")
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.QUEUED
    operator.is_active = False
    operator.save(update_fields=["is_active"])
    drain(budget_seconds=5)
    _refused(execution, f"user {operator.username!r} is deactivated")
    api = APIClient()
    api.force_authenticate(approver)
    body = api.get(f"/api/v1/executions/{execution.execution_id}/").json()
    assert body["status"] == "failed" and "is deactivated" in body["error_message"]
