"""docs/contract.md#truth, one view of steps: a step waits with its execution
(``pending_approval`` while the approval is open), and the API lists the steps once."""

from __future__ import annotations

from typing import Any

import pytest

from approvals.models import Approval
from approvals.services.expire import approvals_expire
from execution.models import Execution, ExecutionStep
from tests.execution.api.conftest import client_for, noop_body

# transaction=True: the worker attempt below claims with the database clock.
pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/executions/"


def _steps(client: Any, eid: str) -> list[str]:
    return [s["status"] for s in client.get(f"{URL}{eid}/").json()["steps"]]


def _submit(operator: Any, *, name: str = "noop", steps: int = 2) -> str:
    body = noop_body(level=1, name=name)
    body["plan"]["steps"] = [{"name": f"s{i}", "type": "noop", "params": {}} for i in range(steps)]
    answer = client_for(operator).post(URL, body, format="json")
    assert answer.status_code == 202, answer.content
    assert [s["status"] for s in answer.json()["steps"]] == ["pending_approval"] * steps
    return str(answer.json()["execution_id"])


def test_steps_wait_for_approval_then_queue_then_run(operator: Any, approver: Any) -> None:
    from execution.worker.attempt import attempt_run
    from execution.worker.claim import claim_with_context

    eid = _submit(operator)
    client = client_for(operator)
    assert _steps(client, eid) == ["pending_approval", "pending_approval"]
    vote = client_for(approver).post(f"{URL}{eid}/approve/", {"comment": "ok"}, format="json")
    assert vote.status_code == 200, vote.content
    assert _steps(client, eid) == ["queued", "queued"]
    ctx = claim_with_context(worker_id="t")
    assert ctx is not None
    attempt_run(ctx=ctx, worker_id="t")
    data = client.get(f"{URL}{eid}/").json()
    assert data["status"] == "completed"
    assert [s["status"] for s in data["steps"]] == ["completed", "completed"]
    # The steps are given once, in steps[]: no second copy that could disagree with them.
    assert "result" not in data
    assert Execution.objects.get(execution_id=eid).result is None


@pytest.mark.parametrize("how", ["rejected", "cancelled", "expired"])
def test_steps_of_an_execution_that_never_runs_end_cancelled(operator: Any, approver: Any, how: str) -> None:
    eid = _submit(operator)
    if how == "rejected":
        answer = client_for(approver).post(f"{URL}{eid}/reject/", {"comment": "no"}, format="json")
    elif how == "cancelled":
        answer = client_for(operator).post(f"{URL}{eid}/cancel/", {}, format="json")
    else:
        from django.utils import timezone

        Approval.objects.filter(execution__execution_id=eid).update(expires_at=timezone.now())
        approvals_expire()
        answer = client_for(operator).get(f"{URL}{eid}/")
    assert answer.status_code == 200, answer.content
    assert ExecutionStep.objects.filter(execution__execution_id=eid).count() == 2
    assert _steps(client_for(operator), eid) == ["cancelled", "cancelled"]


def test_the_migration_moves_the_steps_of_waiting_executions_only(operator: Any, approver: Any) -> None:
    import importlib

    from django.db import connection

    migration = importlib.import_module("execution.migrations.0013_steps_wait_with_their_execution")
    waiting, approved = _submit(operator, name="waiting"), _submit(operator, name="approved")
    client_for(approver).post(f"{URL}{approved}/approve/", {"comment": "ok"}, format="json")
    ExecutionStep.objects.all().update(status="queued")  # as rows written before it were
    with connection.cursor() as cursor:
        cursor.execute(migration.FORWARD)
    assert _steps(client_for(operator), waiting) == ["pending_approval", "pending_approval"]
    assert _steps(client_for(operator), approved) == ["queued", "queued"]
