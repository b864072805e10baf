"""Cancelling a finished execution says so: REST 409 with its status, the command exits non-zero.

Cancelling an execution that is already ``cancelled`` stays idempotent (200, unchanged).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command

from execution.enums import ExecutionStatus
from execution.models import Execution, ExecutionEvent
from tests.execution.api.conftest import client_for
from tests.factories import ExecutionFactory, ExecutionStepFactory

pytestmark = pytest.mark.django_db

FINISHED_BUT_NOT_CANCELLED = [
    ExecutionStatus.COMPLETED,
    ExecutionStatus.FAILED,
    ExecutionStatus.PARTIAL,
    ExecutionStatus.TIMEOUT,
    ExecutionStatus.REJECTED,
]


def _execution(tenant: Any, actor: Any, status: str) -> Any:
    execution = ExecutionFactory(
        tenant=tenant, actor=actor, status=status, environment="dev", action_class="modify"
    )
    ExecutionStepFactory(execution=execution, step_index=0, step_name="nothing", step_type="noop")
    return execution


@pytest.mark.parametrize("status", FINISHED_BUT_NOT_CANCELLED)
def test_rest_cancel_of_a_finished_execution_is_409_naming_its_status(
    tenant: Any, operator: Any, status: str
) -> None:
    execution = _execution(tenant, operator, status)
    events_before = ExecutionEvent.objects.filter(execution_id=execution.execution_id).count()
    response = client_for(operator).post(f"/api/v1/executions/{execution.execution_id}/cancel/")
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["reason"] == "already_finished" and body["status"] == status
    assert status in body["detail"]
    row = Execution.objects.get(pk=execution.pk)
    assert row.status == status and row.cancel_requested_at is None
    assert ExecutionEvent.objects.filter(execution_id=execution.execution_id).count() == events_before


def test_rest_cancel_of_a_cancelled_execution_stays_idempotent(tenant: Any, operator: Any) -> None:
    execution = _execution(tenant, operator, ExecutionStatus.CANCELLED)
    response = client_for(operator).post(f"/api/v1/executions/{execution.execution_id}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == ExecutionStatus.CANCELLED


def test_cancel_command_on_a_finished_execution_exits_non_zero_naming_its_status(
    tenant: Any, operator: Any
) -> None:
    execution = _execution(tenant, operator, ExecutionStatus.COMPLETED)
    with pytest.raises(CommandError, match="already finished: completed; nothing to cancel"):
        call_command("cancel", str(execution.execution_id), "--user", operator.username)
    assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.COMPLETED
