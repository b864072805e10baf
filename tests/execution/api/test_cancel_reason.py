"""Cancel takes an optional reason (REST body, page form, command ``--reason``), shown in the
events; an over-long one is a 400 naming ``reason`` and cancels nothing."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from execution.models import Execution, ExecutionEvent
from tests.execution.api.conftest import client_for, noop_body

pytestmark = pytest.mark.django_db


def _queued(operator: Any, name: str = "to cancel") -> str:
    response = client_for(operator).post("/api/v1/executions/", noop_body(level=1, name=name), format="json")
    assert response.status_code == 202, response.content
    return str(response.json()["execution_id"])


def test_rest_cancel_records_the_reason(tenant: Any, operator: Any) -> None:
    execution_id = _queued(operator)
    response = client_for(operator).post(
        f"/api/v1/executions/{execution_id}/cancel/", {"reason": "wrong window"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    event = ExecutionEvent.objects.get(execution_id=execution_id, event_type="cancelled")
    assert event.details["cancel_reason"] == "wrong window" and "wrong window" in event.details["reason"]
    events = client_for(operator).get(f"/api/v1/executions/{execution_id}/events/?after=0").content.decode()
    assert "wrong window" in events


def test_rest_cancel_refuses_an_overlong_reason(tenant: Any, operator: Any) -> None:
    execution_id = _queued(operator)
    response = client_for(operator).post(
        f"/api/v1/executions/{execution_id}/cancel/", {"reason": "x" * 501}, format="json"
    )
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "reason"
    assert Execution.objects.get(execution_id=execution_id).status == "pending_approval"


def test_page_form_and_command_pass_the_reason(tenant: Any, operator: Any) -> None:
    first, second = _queued(operator, "first"), _queued(operator, "second")
    page = client_for(operator)
    page.force_login(operator)
    response = page.post(f"/executions/{first}/cancel/", {"reason": "from the page"})
    assert response.status_code == 302
    assert ExecutionEvent.objects.get(execution_id=first, event_type="cancelled").details[
        "cancel_reason"
    ] == ("from the page")
    call_command(
        "cancel", second, "--user", operator.username, "--reason", "from the shell", stdout=io.StringIO()
    )
    assert ExecutionEvent.objects.get(execution_id=second, event_type="cancelled").details[
        "cancel_reason"
    ] == ("from the shell")
    with pytest.raises(CommandError, match="--reason"):
        call_command("cancel", second, "--reason", "y" * 501, stdout=io.StringIO())
