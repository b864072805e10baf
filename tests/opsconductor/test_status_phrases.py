"""daphne's status line carries the reason phrase of every code the product answers."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from execution.services.demo import demo_seed
from tests.execution.realtime.live import daphne_server
from tests.support.processes import subprocess_env


def _plan(name: str) -> str:
    return json.dumps(
        {
            "tenant": "demo",
            "plan": {
                "name": name,
                "environment": "dev",
                "estimated_duration_seconds": 30,
                "steps": [{"name": "nothing", "type": "noop", "params": {}}],
            },
            "approval_level": 1,
        }
    )


@pytest.mark.django_db(transaction=True)
def test_a_422_from_daphne_says_unprocessable_entity(tmp_path: Path) -> None:
    token = demo_seed(password="live-pw").users["operator"]["token"]
    headers = {
        "Authorization": f"Token {token}",
        "Content-Type": "application/json",
        "Idempotency-Key": "phrase-422",
    }
    with daphne_server(subprocess_env(), tmp_path / "daphne.log") as port:
        answers = []
        for name in ("one", "two"):  # the same key with another plan: 422
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/api/v1/executions/", body=_plan(name), headers=headers)
            response = conn.getresponse()
            response.read()
            answers.append((response.status, response.reason))
            conn.close()
    assert answers[0][0] == 202, answers
    assert answers[1] == (422, "Unprocessable Entity")
