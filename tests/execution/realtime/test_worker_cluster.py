"""The acceptance run against a real worker cluster (``manage.py qcluster``), both paths.

A client follows a three-step execution (command with output, sleep, command) run by the
engine's workers, disconnects after the first step, reconnects with ``?after=<last id>``
and must end with every event exactly once, in id order.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from execution.enums import Role
from execution.models import Execution, ExecutionEvent, ExecutionStep
from tests.execution.realtime.live import daphne_server, delivery_env, run_async, ws_collect
from tests.factories import (
    ExecutionFactory,
    LocalAssetFactory,
    MembershipFactory,
    TimeoutPolicyFactory,
    UserFactory,
)
from tests.support.processes import REPO_ROOT, manage_argv, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LOCAL_HOST = "local-1"
PLAN = {
    "name": "worker run",
    "environment": "dev",
    "steps": [
        {
            "name": "say",
            "type": "command",
            "target": {"hostname": LOCAL_HOST},
            "params": {"command": "echo hello from step 0; echo password=hunter2"},
        },
        {"name": "wait", "type": "sleep", "params": {"seconds": 2}},
        {
            "name": "say again",
            "type": "command",
            "target": {"hostname": LOCAL_HOST},
            "params": {"command": "echo bye"},
        },
    ],
}


def _approved_execution(tenant: Any) -> Execution:
    from execution.services.transition import transition

    for action_class in ("read", "modify", "deploy"):  # transactional tests flush the seeded rows
        TimeoutPolicyFactory(
            sla_class="medium", action_class=action_class, step_timeout_seconds=20, execution_timeout_seconds=60,
            lease_timeout_seconds=90, max_attempts=3,
        )  # fmt: skip
    actor = UserFactory(username="olga-operator")
    MembershipFactory(tenant=tenant, user=actor, role=Role.OPERATOR)
    LocalAssetFactory(tenant=tenant, hostname=LOCAL_HOST)
    execution = ExecutionFactory(
        tenant=tenant, actor=actor, plan_snapshot=PLAN, sla_class="medium", action_class="modify"
    )
    for index, step in enumerate(PLAN["steps"]):
        ExecutionStep.objects.create(
            execution=execution,
            step_index=index,
            step_name=step["name"],
            step_type=step["type"],
            target_hostname=step.get("target", {}).get("hostname", ""),
            action_class="modify",
        )
    return transition(execution, "approved", reason="test")


def _enqueue(execution: Execution) -> None:
    from django.db import connection

    from execution.services.queue import queue_enqueue

    try:
        queue_enqueue(execution=execution)
    finally:
        connection.close()


@pytest.mark.parametrize("path", ["bridge", "redis"])
def test_client_follows_a_worker_run_and_resumes_with_after(
    path: str, watch_setup: dict[str, Any], tmp_path: Path
) -> None:
    execution = _approved_execution(watch_setup["tenant"])
    env = delivery_env(path)
    env["OPS_WORKERS"] = "1"
    with daphne_server(env, tmp_path / "daphne.log") as port:
        url = f"ws://127.0.0.1:{port}/ws/executions/{execution.execution_id}/?token={watch_setup['token']}"
        with (tmp_path / "qcluster.log").open("wb") as out:
            workers = subprocess.Popen(
                manage_argv("qcluster"), cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        try:

            async def first_part() -> list[dict[str, Any]]:
                from websockets.asyncio.client import connect

                received: list[dict[str, Any]] = []
                async with connect(url, open_timeout=30) as ws:
                    await asyncio.sleep(0.5)
                    await asyncio.to_thread(_enqueue, execution)
                    while True:
                        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=120))
                        received.append(message)
                        if message["type"] == "step_completed" and message["step_index"] == 0:
                            return received  # disconnect while step 1 sleeps

            first = run_async(first_part())
            second = run_async(
                ws_collect(url + f"&after={first[-1]['id']}", until_type="completed", timeout=120)
            )
        finally:
            stop_process(workers, timeout=60)
    log = (tmp_path / "qcluster.log").read_text()[-3000:]
    ids = [m["id"] for m in first + second]
    in_db = list(
        ExecutionEvent.objects.filter(execution_id=execution.execution_id)
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert second and second[-1]["type"] == "completed", log
    assert ids == sorted(set(ids)) == in_db, log
    assert Execution.objects.get(pk=execution.pk).status == "completed"
    types = [m["type"] for m in first + second]
    assert types.count("step_completed") == 3
    output = "".join(m["data"].get("text", "") for m in first if m["type"] == "step_output")
    assert "hello from step 0" in output and "hunter2" not in json.dumps(first + second)
    assert second[-1]["progress"]["percent"] == 100
