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


@pytest.mark.django_db
def test_submit_command_names_the_outage_without_a_traceback(
    operator: Any, settings: Any, tmp_path: Any
) -> None:
    import json

    from django.core.management import CommandError, call_command

    settings.ASSET_SERVICE_URL = f"http://127.0.0.1:{free_port()}"
    body = noop_body()
    body["plan"]["steps"] = [
        {
            "name": "on web-1",
            "type": "command",
            "target": {"hostname": "web-1"},
            "params": {"command": "true"},
        }
    ]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(body))
    with pytest.raises(CommandError, match="cannot resolve the targets now: Asset Service"):
        call_command("submit", str(plan), "--user", operator.username)
    assert not Execution.objects.exists()
