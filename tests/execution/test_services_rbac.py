"""RBAC rules (docs/contract.md#rbac): roles, grants, strict mode, the worker's re-check before start."""

from __future__ import annotations

from typing import Any

import pytest

from execution.models import AuditLog, Membership
from execution.services.rbac import StepRight, rbac_check_submit, rbac_recheck_before_start
from execution.services.submit import execution_submit
from tests.execution.api.conftest import noop_body
from tests.factories import AccessGrantFactory

pytestmark = pytest.mark.django_db


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
    reason = rbac_check_submit(user=user, tenant=tenant, rights=[StepRight(environment, action)])
    assert (reason is None) is allowed


def test_grant_adds_a_right_for_matching_assets_only(tenant: Any, operator: Any) -> None:
    AccessGrantFactory(
        tenant=tenant, user=operator, environment="prod", action_class="modify", asset_pattern="web-*"
    )
    assert (
        rbac_check_submit(user=operator, tenant=tenant, rights=[StepRight("prod", "read", "web-1")]) is None
    )
    assert rbac_check_submit(user=operator, tenant=tenant, rights=[StepRight("prod", "modify", "db-1")])
    assert rbac_check_submit(user=operator, tenant=tenant, rights=[StepRight("prod", "deploy", "web-1")])


def test_non_strict_mode_warns_instead_of_refusing(tenant: Any, operator: Any, settings: Any) -> None:
    settings.RBAC_STRICT = False
    assert rbac_check_submit(user=operator, tenant=tenant, rights=[StepRight("prod", "modify")]) is None
    assert AuditLog.objects.filter(event_type="rbac_warning", actor=operator).exists()


def test_outsider_is_never_allowed(tenant: Any, outsider: Any, settings: Any) -> None:
    settings.RBAC_STRICT = False
    assert rbac_check_submit(user=outsider, tenant=tenant, rights=[]) == "not a member of tenant 'acme'"


def test_recheck_before_start_reports_a_right_revoked_after_submission(operator: Any) -> None:
    body = noop_body(environment="staging", level=1)
    execution = execution_submit(tenant="acme", actor=operator, plan=body["plan"], approval_level=1).execution
    assert rbac_recheck_before_start(execution=execution) is None
    Membership.objects.filter(user=operator).update(role="viewer")
    assert "viewer" in (rbac_recheck_before_start(execution=execution) or "")
    Membership.objects.filter(user=operator).delete()
    assert rbac_recheck_before_start(execution=execution) == "not a member of tenant 'acme'"


def test_worker_ends_a_revoked_execution_failed_with_a_permission_event(operator: Any) -> None:
    from approvals.models import Approval
    from execution.models import Execution, QueueItem
    from execution.services.queue import queue_enqueue
    from execution.services.transition import transition
    from execution.worker.attempt import attempt_run
    from execution.worker.store import claim_with_context

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
    assert execution.events.filter(event_type="rbac_violation").exists()
