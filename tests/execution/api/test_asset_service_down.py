"""Submission while the configured Asset Service cannot answer: 503, nothing stored."""

from __future__ import annotations

from typing import Any

import pytest

from execution.models import Execution
from tests.execution.api.conftest import client_for, noop_body
from tests.support.processes import free_port


@pytest.mark.django_db
def test_unreachable_asset_service_answers_503_and_stores_nothing(operator: Any, settings: Any) -> None:
    settings.ASSET_SERVICE_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    body = noop_body()
    body["plan"]["steps"] = [
        {
            "name": "on web-1",
            "type": "command",
            "target": {"hostname": "web-1"},
            "params": {"command": "true"},
        }
    ]
    answer = client_for(operator).post("/api/v1/executions/", body, format="json")
    assert answer.status_code == 503, answer.content
    assert "Asset Service" in answer.json()["detail"]
    assert answer["Retry-After"]
    assert not Execution.objects.exists()
