"""The REST submission's round trips, token authentication included (deterministic count)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from execution.enums import STEP_MAX_RETRIES_DEFAULT, ActionClass
from execution.models import Execution, ExecutionEvent, ExecutionStep, QueueItem
from tests.execution.api.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {
    "tenant": "acme",
    "plan": {
        "name": "noop",
        "environment": "dev",
        "estimated_duration_seconds": 20,  # medium: background, answered 202
        "steps": [{"name": "n", "type": "noop"}, {"name": "m", "type": "noop"}],
    },
}


def test_a_rest_submission_costs_at_most_4_round_trips_and_writes_in_one_statement(operator: Any) -> None:
    client = client_for(operator)
    with CaptureQueriesContext(connection) as queries:
        answer = client.post("/api/v1/executions/", BODY, format="json")
    assert answer.status_code == 202, answer.content
    assert answer.json()["status"] == "queued"
    sql = [q["sql"] for q in queries.captured_queries]
    for statement in sql:
        print(statement[:160])
    # token, tenant + membership + change freeze + plan normalisation, policy + key holder,
    # the write (one statement, its own transaction: no BEGIN/COMMIT round trips)
    assert len(sql) <= 4, len(sql)
    assert not [s for s in sql if "change_freezes" in s and "tenant_memberships" not in s], sql
    assert not [s for s in sql if s.strip().upper() in ("BEGIN", "COMMIT")], sql
    writes = [s for s in sql if "INSERT" in s]
    assert len(writes) == 1, writes
    # ... and that one statement wrote everything the submission is made of
    execution = Execution.objects.get(execution_id=answer.json()["execution_id"])
    assert execution.status == "queued"
    retries = STEP_MAX_RETRIES_DEFAULT[ActionClass.READ]
    steps = ExecutionStep.objects.filter(execution=execution).order_by("step_index")
    assert list(steps.values_list("step_name", "max_retries")) == [("n", retries), ("m", retries)]
    events = ExecutionEvent.objects.filter(execution_id=execution.execution_id).order_by("id")
    assert [e.event_type for e in events] == ["created", "approved", "queued"]
    item = QueueItem.objects.get(execution=execution)
    assert (item.status, item.tenant_id, item.environment, item.max_attempts) == (
        "pending",
        execution.tenant_id,
        "dev",
        5,
    )
