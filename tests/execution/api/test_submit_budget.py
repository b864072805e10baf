"""The REST submission's round trips, token authentication included (deterministic count)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.execution.api.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {
    "tenant": "acme",
    "plan": {
        "name": "noop",
        "environment": "dev",
        "estimated_duration_seconds": 20,  # medium: background, answered 202
        "steps": [{"name": "n", "type": "noop"}],
    },
}


def test_a_rest_submission_costs_at_most_12_round_trips(operator: Any) -> None:
    client = client_for(operator)
    with CaptureQueriesContext(connection) as queries:
        answer = client.post("/api/v1/executions/", BODY, format="json")
    assert answer.status_code == 202, answer.content
    assert answer.json()["status"] == "queued"
    for q in queries.captured_queries:
        print(q["sql"][:160])
    assert len(queries) <= 12, len(queries)
