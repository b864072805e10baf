"""Permission matrix: every endpoint x persona -> status (docs/contract.md#rbac). Another tenant's objects: 404."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from execution.enums import ExecutionStatus
from execution.models import AuditLog, ExecutionEvent
from tests.execution.api.conftest import client_for, noop_body
from tests.factories import DeadLetterFactory, ExecutionFactory, ExecutionStepFactory

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "outsider", "viewer", "operator", "deployer", "approver", "tenant_admin"]

# endpoint -> expected status per persona (same order as PERSONAS)
MATRIX: dict[str, list[int]] = {
    "submit": [401, 403, 403, 202, 202, 403, 202],
    "list": [401, 200, 200, 200, 200, 200, 200],
    "detail": [401, 404, 200, 200, 200, 200, 200],
    "events": [401, 404, 200, 200, 200, 200, 200],
    "cancel": [401, 404, 403, 200, 200, 403, 200],
    "approvals": [401, 200, 200, 200, 200, 200, 200],
    "approve": [401, 404, 403, 403, 403, 200, 200],
    "dlq": [401, 200, 200, 200, 200, 200, 200],
    "requeue": [401, 404, 403, 403, 403, 403, 200],
    "schema": [200, 200, 200, 200, 200, 200, 200],
}
CASES = [
    (endpoint, persona, codes[i]) for endpoint, codes in MATRIX.items() for i, persona in enumerate(PERSONAS)
]


def _execution(tenant: Any, actor: Any, status: str = ExecutionStatus.PENDING_APPROVAL) -> Any:
    execution = ExecutionFactory(
        tenant=tenant, actor=actor, status=status, environment="dev", action_class="modify"
    )
    ExecutionStepFactory(execution=execution, step_index=0, step_name="nothing", step_type="noop")
    return execution


def _call(endpoint: str, client: Any, tenant: Any, requester: Any) -> Any:
    if endpoint == "submit":
        return client.post("/api/v1/executions/", noop_body(level=1), format="json")
    if endpoint == "list":
        return client.get("/api/v1/executions/")
    if endpoint == "approvals":
        return client.get("/api/v1/approvals/?state=pending")
    if endpoint == "dlq":
        return client.get("/api/v1/dlq/")
    if endpoint == "schema":
        return client.get("/api/v1/schema/")
    if endpoint == "requeue":
        failed = _execution(tenant, requester, ExecutionStatus.FAILED)
        entry = DeadLetterFactory(execution=failed, failed_at=timezone.now())
        return client.post(f"/api/v1/dlq/{entry.dlq_id}/requeue/")
    if endpoint == "approve":
        from approvals.services.request import approval_request

        execution = _execution(tenant, requester)
        execution.approval_level = 1
        execution.save()
        approval_request(execution=execution, level=1)
        return client.post(f"/api/v1/executions/{execution.execution_id}/approve/", {}, format="json")
    execution = _execution(tenant, requester)
    suffix = {"detail": "", "events": "events/", "cancel": "cancel/"}[endpoint]
    method = client.post if endpoint == "cancel" else client.get
    return method(f"/api/v1/executions/{execution.execution_id}/{suffix}")


@pytest.mark.parametrize(("endpoint", "persona", "expected"), CASES)
def test_permission_matrix(
    request: pytest.FixtureRequest, tenant: Any, endpoint: str, persona: str, expected: int
) -> None:
    from tests.conftest import _member

    requester = _member(tenant, "requester", "operator")
    user = None if persona == "anonymous" else request.getfixturevalue(persona)
    response = _call(endpoint, client_for(user), tenant, requester)
    assert response.status_code == expected, (endpoint, persona, response.content[:300])
    if expected == 403 and endpoint != "approve":
        body = response.json()
        assert body["reason"]
        assert (
            ExecutionEvent.objects.filter(event_type="rbac_violation").exists()
            or AuditLog.objects.filter(event_type="rbac_violation").exists()
        )


def test_outsider_lists_nothing_of_the_tenant(tenant: Any, outsider: Any, operator: Any) -> None:
    _execution(tenant, operator)
    failed = _execution(tenant, operator, ExecutionStatus.FAILED)
    DeadLetterFactory(execution=failed, failed_at=timezone.now())
    client = client_for(outsider)
    assert client.get("/api/v1/executions/").json()["results"] == []
    assert client.get("/api/v1/dlq/").json()["results"] == []


def test_denied_cancel_writes_an_rbac_violation_event(tenant: Any, viewer: Any, operator: Any) -> None:
    execution = _execution(tenant, operator)
    response = client_for(viewer).post(f"/api/v1/executions/{execution.execution_id}/cancel/")
    assert response.status_code == 403
    event = ExecutionEvent.objects.get(execution_id=execution.execution_id, event_type="rbac_violation")
    assert event.details["action"] == "cancel" and "viewer" in event.details["reason"]
