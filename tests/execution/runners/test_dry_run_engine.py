"""Dry run through the engine (docs/contract.md#steps): no side effect, and the record says what would have run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from execution.enums import ConnectionType, ExecutionStatus
from execution.models import Asset, Execution, ExecutionEvent, ExecutionStep
from tests.support.httpserver import LoopbackHttpServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_dry_run_plan_sends_nothing_writes_nothing_and_says_what_would_run(
    tenant: Any, operator: Any, tmp_path: Path, settings: Any
) -> None:
    from execution.worker.runtime import drain
    from tests.execution.engine.helpers import enqueue, make_execution

    settings.HTTP_OUTBOUND_ALLOWLIST = ["127.0.0.1"]
    Asset.objects.create(
        tenant=tenant, hostname="files", connection_type=ConnectionType.SSH, address="127.0.0.1", port=1
    )
    remote = tmp_path / "never-created.txt"
    with LoopbackHttpServer() as server:
        execution = make_execution(
            tenant=tenant,
            actor=operator,
            steps=[
                {"name": "call", "type": "http", "params": {"method": "POST", "url": server.url + "/deploy"}},
                {
                    "name": "copy",
                    "type": "file",
                    "target": {"hostname": "files"},
                    "params": {"content": "x", "remote_path": str(remote)},
                },
            ],
        )
        Execution.objects.filter(pk=execution.pk).update(dry_run=True)
        enqueue(execution)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            drain(budget_seconds=5)
            execution.refresh_from_db()
            if execution.status not in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING):
                break
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    assert server.requests == [] and not remote.exists()
    steps = {s.step_index: s for s in ExecutionStep.objects.filter(execution=execution)}
    assert steps[0].output_data["would_run"]["would_send"] == f"POST {server.url}/deploy"
    assert steps[1].output_data["would_run"]["remote_path"] == str(remote)
    assert ExecutionEvent.objects.filter(execution=execution, event_type="step_completed").count() == 2
    # docs/contract.md#steps also wants the *events* to say what would have run: that is the engine's
    # step_completed details (execution/worker/steps.py), which do not carry would_run yet.
