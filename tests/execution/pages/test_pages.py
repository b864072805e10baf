"""The operator pages rendered by Django: who sees what, the cancel button and its view."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from execution.enums import Role
from execution.services.events import event_record
from tests.factories import (
    ExecutionFactory,
    ExecutionStepFactory,
    MembershipFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_require_login(tenant: Any) -> None:
    execution = ExecutionFactory(tenant=tenant)
    for url in ("/executions/", f"/executions/{execution.execution_id}/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_list_shows_only_the_users_tenants(viewer: Any, tenant: Any, other_tenant: Any) -> None:
    mine = ExecutionFactory(tenant=tenant, plan_snapshot={"name": "mine", "steps": []})
    theirs = ExecutionFactory(tenant=other_tenant, plan_snapshot={"name": "theirs", "steps": []})
    response = _client(viewer).get("/executions/")
    body = response.content.decode()
    assert response.status_code == 200
    assert str(mine.execution_id) in body
    assert str(theirs.execution_id) not in body
    assert '"slug": "acme"' in body and '"slug": "other"' not in body
    assert "execution/live.js" in body


def test_detail_of_another_tenants_execution_is_404(outsider: Any, tenant: Any) -> None:
    execution = ExecutionFactory(tenant=tenant)
    assert _client(outsider).get(f"/executions/{execution.execution_id}/").status_code == 404
    assert _client(outsider).post(f"/executions/{execution.execution_id}/cancel/").status_code == 404


def test_detail_renders_steps_progress_output_and_socket_cursor(viewer: Any, tenant: Any) -> None:
    execution = ExecutionFactory(tenant=tenant, plan_snapshot={"name": "restart nginx", "steps": []})
    ExecutionStepFactory(execution=execution, step_index=0, step_name="check config", status="completed")
    ExecutionStepFactory(execution=execution, step_index=1, step_name="restart", status="running")
    event = event_record(
        execution=execution,
        event_type="step_output",
        step_index=0,
        details={"stream": "stdout", "text": "syntax ok"},
    )
    response = _client(viewer).get(f"/executions/{execution.execution_id}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "restart nginx" in body and "check config" in body and "syntax ok" in body
    assert f'data-after="{event.pk}"' in body
    assert 'aria-valuenow="50"' in body  # one of two steps done
    assert "cancel-button" not in body  # a viewer may watch, not cancel


def test_viewer_cannot_cancel(viewer: Any, tenant: Any) -> None:
    execution = ExecutionFactory(tenant=tenant)
    assert _client(viewer).post(f"/executions/{execution.execution_id}/cancel/").status_code == 403


def test_member_of_two_tenants_sees_both() -> None:
    user = UserFactory(username="two-hats")
    a, b = TenantFactory(slug="ta"), TenantFactory(slug="tb")
    MembershipFactory(tenant=a, user=user, role=Role.VIEWER)
    MembershipFactory(tenant=b, user=user, role=Role.OPERATOR)
    ea, eb = ExecutionFactory(tenant=a), ExecutionFactory(tenant=b)
    body = _client(user).get("/executions/").content.decode()
    assert str(ea.execution_id) in body and str(eb.execution_id) in body


def test_static_script_is_served() -> None:
    response = Client().get("/static/execution/live.js")
    assert response.status_code == 200
    assert b"OpsLive" in b"".join(response.streaming_content)  # type: ignore[attr-defined]


def test_cancel_button_cancels_a_waiting_execution_through_the_engine(operator: Any, tenant: Any) -> None:
    execution = ExecutionFactory(tenant=tenant, actor=operator)
    assert "cancel-button" in _client(operator).get(f"/executions/{execution.execution_id}/").content.decode()
    response = _client(operator).post(f"/executions/{execution.execution_id}/cancel/", follow=True)
    assert response.status_code == 200
    execution.refresh_from_db()
    assert execution.status == "cancelled"
    assert "Cancellation requested." in response.content.decode()
