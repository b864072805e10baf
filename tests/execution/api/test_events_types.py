"""``?types=a,b`` on the REST events endpoint: only those event types; a bad list is a 400."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from execution.services.events import event_record
from tests.factories import ExecutionFactory

pytestmark = pytest.mark.django_db


def test_events_endpoint_keeps_only_the_asked_types(operator: Any, tenant: Any) -> None:
    execution = ExecutionFactory(tenant=tenant, actor=operator)
    for event_type in ("created", "step_output", "failed", "step_output", "requeued"):
        event_record(execution=execution, event_type=event_type)
    api = APIClient()
    api.force_authenticate(operator)
    url = f"/api/v1/executions/{execution.execution_id}/events/"
    body = api.get(url, {"types": "failed,requeued"}).json()
    assert [e["type"] for e in body["results"]] == ["failed", "requeued"]
    assert len(api.get(url).json()["results"]) == 5
    bad = api.get(url, {"types": "failed,DROP TABLE"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "types"
