"""The docs/contract.md#submission acceptance against the running product: daphne + a real qcluster on the test
database, the demo tenant and its local assets, plain HTTP requests (what curl sends)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests

from execution.services.demo import demo_seed
from tests.execution.engine.helpers import worker_cluster
from tests.execution.realtime.live import daphne_server
from tests.support.processes import subprocess_env

FINISHED = {"completed", "failed", "partial", "cancelled", "timeout", "rejected"}


def _plan_body(assets: dict[str, int]) -> dict[str, Any]:
    """The docs/contract.md#submission example's shape on the demo assets (commands that succeed on any host)."""
    return {
        "tenant": "demo",
        "plan": {
            "name": "restart the demo service (live API test)",
            "environment": "staging",
            "estimated_duration_seconds": 20,
            "steps": [
                {
                    "name": "check config",
                    "type": "command",
                    "target": {"hostname": "local-1"},
                    "params": {"command": "true"},
                    "action_class": "read",
                },
                {
                    "name": "restart",
                    "type": "command",
                    "target": {"asset_id": assets["local-2"]},
                    "params": {"command": "true"},
                    "timeout_seconds": 15,
                },
                {
                    "name": "probe",
                    "type": "validate",
                    "params": {"assertions": [{"step": 1, "exit_code": 0}]},
                    "continue_on_error": False,
                },
            ],
        },
        "priority": 3,
        "approval_level": 1,
        "dry_run": False,
        "tags": ["live"],
        "metadata": {"ticket": "OPS-1"},
    }


def _wait_finished(base: str, token: str, execution_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = requests.get(
            f"{base}/api/v1/executions/{execution_id}/",
            headers={"Authorization": f"Token {token}"},
            timeout=30,
        ).json()
        if body.get("status") in FINISHED:
            return body
        time.sleep(0.5)
    raise AssertionError(f"execution {execution_id} not finished after {timeout}s: {body.get('status')}")


@pytest.mark.django_db(transaction=True)
def test_example_submitted_over_http_waits_for_approval_completes_and_replays(tmp_path: Path) -> None:
    seed = demo_seed(password="live-pw")
    tokens = {name: user["token"] for name, user in seed.users.items()}
    assets = {a["hostname"]: a["id"] for a in seed.assets}
    body = _plan_body(assets)
    operator = {"Authorization": f"Token {tokens['operator']}"}
    with worker_cluster(workers=1), daphne_server(subprocess_env(), tmp_path / "daphne.log") as port:
        base = f"http://127.0.0.1:{port}"
        first = requests.post(f"{base}/api/v1/executions/", json=body, headers=operator, timeout=60)
        assert first.status_code == 202, first.text
        created = first.json()
        execution_id = created["execution_id"]
        assert created["status"] == "pending_approval"
        assert created["approval"]["state"] == "pending" and created["approval_level"] == 1
        assert created["links"]["websocket"] == f"/ws/executions/{execution_id}/"

        again = requests.post(f"{base}/api/v1/executions/", json=body, headers=operator, timeout=60)
        assert again.status_code == 200 and again.headers["Idempotent-Replay"] == "true"
        assert again.json()["execution_id"] == execution_id

        vote = requests.post(
            f"{base}/api/v1/executions/{execution_id}/approve/",
            json={"comment": "ok"},
            headers={"Authorization": f"Token {tokens['approver1']}"},
            timeout=60,
        )
        assert vote.status_code == 200, vote.text

        done = _wait_finished(base, tokens["operator"], execution_id)
        assert done["status"] == "completed", done
        assert [s["status"] for s in done["steps"]] == ["completed"] * 3
        assert done["progress"]["percent"] == 100

        events = requests.get(f"{base}{done['links']['events']}?after=0", headers=operator, timeout=30).json()
        types = [e["type"] for e in events["results"]]
        assert types[0] == "created" and types[-1] == "completed"
        assert {"approval_requested", "approved", "queued", "started"} <= set(types)

        # A completed execution inside the window is still the answer to the same request.
        replay = requests.post(f"{base}/api/v1/executions/", json=body, headers=operator, timeout=60)
        assert replay.status_code == 200 and replay.json()["execution_id"] == execution_id

        outsider = requests.get(
            f"{base}/api/v1/executions/{execution_id}/",
            headers={"Authorization": f"Token {tokens['outsider']}"},
            timeout=30,
        )
        assert outsider.status_code == 404
