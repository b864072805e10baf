"""The docs/contract.md#submission example end to end in-process: submit -> approve over REST -> a worker attempt."""

from __future__ import annotations

from typing import Any

import pytest

from execution.models import Execution
from tests.execution.api.conftest import client_for, example_body

# transaction=True: the queue claim compares with the database clock (now()), which inside
# a test transaction would stay at its start.
pytestmark = pytest.mark.django_db(transaction=True)


def test_section5_example_completes_after_approval(
    operator: Any, approver: Any, assets: dict[str, Any]
) -> None:
    from execution.worker.attempt import attempt_run
    from execution.worker.claim import claim_with_context

    body = example_body(assets["web-2"].pk)
    body["plan"]["steps"][0]["params"] = {"command": "echo config ok"}
    body["plan"]["steps"][1]["params"] = {"command": "echo restarted"}
    body["plan"]["steps"][2]["params"] = {"assertions": [{"step": 1, "exit_code": 0}]}
    submitted = client_for(operator).post("/api/v1/executions/", body, format="json")
    assert submitted.status_code == 202
    eid = submitted.json()["execution_id"]
    vote = client_for(approver).post(f"/api/v1/executions/{eid}/approve/", {"comment": "ok"}, format="json")
    assert vote.status_code == 200, vote.content
    assert Execution.objects.get(execution_id=eid).status == "queued"
    claim = claim_with_context(worker_id="api-test")
    assert claim is not None
    attempt_run(ctx=claim, worker_id="api-test")
    data = client_for(operator).get(f"/api/v1/executions/{eid}/").json()
    assert data["status"] == "completed", data
    assert [s["status"] for s in data["steps"]] == ["completed"] * 3
    assert data["steps"][1]["output"]["stdout"].strip() == "restarted"
    assert (
        data["approval"]["state"] == "approved" and data["approval"]["votes"][0]["voter"] == approver.username
    )
    assert data["progress"]["percent"] == 100
