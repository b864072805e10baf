"""The acceptance run against a real worker cluster (``manage.py qcluster``).

Skipped until the engine's queue (execution/services/queue.py) is in the tree; until then the
producer-process tests in test_delivery.py stand in for the workers.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from execution.models import ExecutionEvent
from tests.execution.realtime.live import daphne_server, delivery_env, run_async, ws_collect
from tests.support.processes import REPO_ROOT, manage_argv, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TERMINAL = {"completed", "failed", "partial", "cancelled", "timeout"}


@pytest.mark.parametrize("path", ["bridge", "redis"])
def test_client_follows_a_worker_run_and_replays_after(
    path: str, watch_setup: dict[str, Any], tmp_path: Path
) -> None:
    queue = pytest.importorskip("execution.services.queue")
    pytest.importorskip("execution.tasks")  # the workers' entry points
    from execution.runners.registry import canonical_type

    if not hasattr(queue, "queue_enqueue") or canonical_type("noop") is None:
        pytest.skip("the engine's queue_enqueue and noop runner are not in the tree yet")
    from tests.factories import TimeoutPolicyFactory

    for action_class in ("read", "modify", "deploy"):  # transactional tests flush the seeded rows
        TimeoutPolicyFactory(sla_class="fast", action_class=action_class)
    from execution.enums import ExecutionStatus
    from execution.services.transition import transition

    execution = watch_setup["execution"]
    execution.plan_snapshot = {
        "name": "three noops",
        "environment": "dev",
        "steps": [
            {"name": s.step_name, "type": "noop", "params": {}}
            for s in execution.steps.order_by("step_index")
        ],
    }
    execution.save(update_fields=["plan_snapshot"])
    env = delivery_env(path)
    with daphne_server(env, tmp_path / "daphne.log") as port:
        url = f"ws://127.0.0.1:{port}/ws/executions/{execution.execution_id}/?token={watch_setup['token']}"
        with (tmp_path / "qcluster.log").open("wb") as out:
            workers = subprocess.Popen(
                manage_argv("qcluster"), cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        try:

            async def follow() -> list[dict[str, Any]]:
                import asyncio

                from websockets.asyncio.client import connect

                received: list[dict[str, Any]] = []
                async with connect(url, open_timeout=30) as ws:
                    await asyncio.sleep(0.5)
                    await asyncio.to_thread(_enqueue, queue, transition, execution, ExecutionStatus)
                    while True:
                        import json

                        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=120))
                        received.append(message)
                        if message["type"] in TERMINAL and message["step_index"] is None:
                            return received

            received = run_async(follow())
        finally:
            stop_process(workers)
        ids = [m["id"] for m in received]
        in_db = list(
            ExecutionEvent.objects.filter(execution_id=execution.execution_id)
            .order_by("id")
            .values_list("id", flat=True)
        )
        assert ids == sorted(set(ids)) == in_db[: len(ids)]
        assert received[-1]["type"] == "completed", (tmp_path / "qcluster.log").read_text()[-3000:]
        middle = ids[len(ids) // 2]
        replay = run_async(ws_collect(url + f"&after={middle}", until_type="completed", timeout=60))
        assert [m["id"] for m in replay] == [i for i in ids if i > middle]


def _enqueue(queue: Any, transition: Any, execution: Any, statuses: Any) -> None:
    from django.db import connection

    try:
        execution = transition(execution, statuses.APPROVED)
        queue.queue_enqueue(execution=execution)
    finally:
        connection.close()
