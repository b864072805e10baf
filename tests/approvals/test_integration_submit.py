"""Through the API engineer's submission: the hash bound at submit is the one the vote checks."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from approvals.models import Approval
from tests.approvals.conftest import ensure_policies
from tests.factories import AssetFactory, token_for

pytestmark = pytest.mark.django_db


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def test_submit_then_approve_over_rest(tenant: Any, requester: Any, approver: Any, queue_calls: Any) -> None:
    ensure_policies()
    AssetFactory(tenant=tenant, hostname="web-1")
    plan = {
        "name": "deploy web",
        "environment": "staging",
        "steps": [
            {
                "name": "noop",
                "type": "noop",
                "target": {"hostname": "web-1"},
                "params": {},
                "action_class": "deploy",
            }
        ],
    }
    submitted = client_for(requester).post(
        "/api/v1/executions/", {"tenant": tenant.slug, "plan": plan, "approval_level": 1}, format="json"
    )
    assert submitted.status_code == 202, submitted.content
    execution_id = submitted.json()["execution_id"]
    assert submitted.json()["status"] == "pending_approval"
    assert Approval.objects.filter(execution__execution_id=execution_id).exists()
    own = client_for(requester).post(f"/api/v1/executions/{execution_id}/approve/")
    assert own.status_code == 403
    voted = client_for(approver).post(
        f"/api/v1/executions/{execution_id}/approve/", {"comment": "ok"}, format="json"
    )
    assert voted.status_code == 200, voted.content
    assert voted.json()["status"] == "queued"
    detail = client_for(approver).get(f"/api/v1/executions/{execution_id}/")
    assert detail.status_code == 200
    assert detail.json()["approval"]["state"] == "approved"
