"""The policy (docs/contract.md#rbac): role table, grants, strict mode, the worker's re-check before start."""

from __future__ import annotations

from typing import Any

import pytest

from execution import policy
from execution.models import AuditLog, Execution, ExecutionEvent, Membership
from execution.policy import Right, Target
from execution.services.submit import execution_submit
from tests.execution.api.conftest import noop_body
from tests.factories import AccessGrantFactory

pytestmark = pytest.mark.django_db


def _submit(user: Any, tenant: Any, environment: str, action: str, *targets: Target) -> policy.Decision:
    return policy.decide(
        user, Right.SUBMIT, tenant=tenant, environment=environment, action_class=action, assets=targets
    )


@pytest.mark.parametrize(
    ("role_fixture", "environment", "action", "allowed"),
    [
        ("viewer", "dev", "read", False),
        ("approver", "dev", "read", False),
        ("operator", "staging", "modify", True),
        ("operator", "staging", "deploy", False),
        ("operator", "prod", "read", False),
        ("deployer", "prod", "deploy", True),
        ("tenant_admin", "prod", "deploy", True),
    ],
)
def test_role_table(
    request: pytest.FixtureRequest,
    tenant: Any,
    role_fixture: str,
    environment: str,
    action: str,
    allowed: bool,
) -> None:
    user = request.getfixturevalue(role_fixture)
    assert _submit(user, tenant, environment, action).allowed is allowed


def test_grant_adds_a_right_for_matching_assets_only(tenant: Any, operator: Any) -> None:
    AccessGrantFactory(
        tenant=tenant, user=operator, environment="prod", action_class="modify", asset_pattern="web-*"
    )
    assert _submit(operator, tenant, "prod", "read", Target("web-1", action_class="read"))
    assert not _submit(operator, tenant, "prod", "modify", Target("db-1", action_class="modify"))
    assert not _submit(operator, tenant, "prod", "deploy", Target("web-1", action_class="deploy"))


def test_non_strict_mode_warns_instead_of_refusing(tenant: Any, operator: Any, settings: Any) -> None:
    settings.RBAC_STRICT = False
    decision = policy.require(
        operator, Right.SUBMIT, tenant=tenant, environment="prod", action_class="modify"
    )
    assert decision.allowed and decision.warning
    assert AuditLog.objects.filter(event_type="rbac_warning", actor=operator).exists()


def test_outsider_is_never_allowed(tenant: Any, outsider: Any, settings: Any) -> None:
    settings.RBAC_STRICT = False
    decision = policy.decide(outsider, Right.SUBMIT, tenant=tenant)
    assert not decision and decision.reason == "not a member of tenant 'acme'"


def test_decide_writes_nothing_and_require_records_the_refusal(tenant: Any, viewer: Any) -> None:
    assert not policy.decide(viewer, Right.REQUEUE, tenant=tenant)
    assert not AuditLog.objects.exists()
    with pytest.raises(policy.RightDenied, match="only an admin"):
        policy.require(viewer, Right.REQUEUE, tenant=tenant, door="test")
    row = AuditLog.objects.get(event_type="rbac_violation")
    assert row.actor == viewer and row.details == {"right": "requeue", "door": "test"}


def test_a_deactivated_user_holds_no_right(tenant: Any, tenant_admin: Any) -> None:
    tenant_admin.is_active = False
    tenant_admin.save()
    for right in Right:
        assert policy.decide(tenant_admin, right, tenant=tenant).code == "inactive"


def _recheck(execution: Any) -> policy.Decision:
    execution = Execution.objects.select_related("tenant", "actor").get(pk=execution.pk)  # as the worker
    return policy.decide(
        execution.actor, Right.SUBMIT, execution=execution, assets=policy.targets_of(execution)
    )


def test_recheck_before_start_reports_a_right_revoked_after_submission(operator: Any) -> None:
    body = noop_body(environment="staging", level=1)
    execution = execution_submit(tenant="acme", actor=operator, plan=body["plan"], approval_level=1).execution
    assert _recheck(execution)
    Membership.objects.filter(user=operator).update(role="viewer")
    assert "viewer" in _recheck(execution).reason
    Membership.objects.filter(user=operator).delete()
    assert _recheck(execution).reason == "not a member of tenant 'acme'"


def test_worker_ends_a_revoked_execution_failed_with_a_permission_event(operator: Any) -> None:
    from approvals.models import Approval
    from execution.models import Execution, QueueItem
    from execution.services.queue import queue_enqueue
    from execution.services.transition import transition
    from execution.worker.attempt import attempt_run
    from execution.worker.claim import claim_with_context

    body = noop_body(environment="staging", level=1)
    execution = execution_submit(tenant="acme", actor=operator, plan=body["plan"], approval_level=1).execution
    Approval.objects.filter(execution=execution).update(state="approved")
    transition(execution, "approved")
    queue_enqueue(execution=Execution.objects.get(pk=execution.pk))
    # Claimable now: inside this test's transaction PostgreSQL's now() is its start.
    QueueItem.objects.filter(execution=execution).update(available_at=None)
    Membership.objects.filter(user=operator).update(role="viewer")
    claim = claim_with_context(worker_id="test")
    assert claim is not None
    assert attempt_run(ctx=claim, worker_id="test") == "failed"
    execution.refresh_from_db()
    assert execution.status == "failed" and "permission denied" in execution.error_message
    assert execution.started_at is None, "it never started (queued -> failed)"
    assert ExecutionEvent.objects.filter(
        execution_id=execution.execution_id, event_type="rbac_violation"
    ).exists()


def test_the_workers_recheck_costs_one_query_when_the_role_decides(deployer: Any) -> None:
    """Hot path (every execution start): the membership row only; targets are not resolved."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    body = noop_body(environment="prod", level=0)
    submitted = execution_submit(tenant="acme", actor=deployer, plan=body["plan"]).execution
    execution = Execution.objects.select_related("tenant", "actor").get(pk=submitted.pk)
    with CaptureQueriesContext(connection) as queries:
        decision = policy.decide(
            execution.actor, Right.SUBMIT, execution=execution, assets=policy.targets_of(execution)
        )
    assert decision.allowed
    assert len(queries) == 1, [q["sql"] for q in queries]
