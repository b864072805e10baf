"""``?types=a,b`` on both WebSockets: only those event types, the replay included; a bad list
closes with 4400."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from execution.services.events import event_record
from tests.execution.realtime.live import daphne_server, delivery_env, run_async, ws_close_code, ws_collect

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_both_sockets_send_only_the_asked_types(watch_setup: dict[str, Any], tmp_path: Path) -> None:
    execution = watch_setup["execution"]
    for event_type in ("created", "step_output", "failed", "step_output", "requeued", "started"):
        event_record(execution=execution, event_type=event_type)
    token = watch_setup["token"]
    with daphne_server(delivery_env("bridge"), tmp_path / "daphne.log") as port:
        base = f"ws://127.0.0.1:{port}/ws"
        one = f"{base}/executions/{execution.execution_id}/?token={token}&after=0&types=failed,requeued"
        tenant = f"{base}/tenants/acme/executions/?token={token}&after=0&types=step_output"
        bad = f"{base}/executions/{execution.execution_id}/?token={token}&types=no%20such"

        async def run() -> tuple[Any, Any, Any]:
            return await asyncio.gather(
                ws_collect(one, timeout=6),
                ws_collect(tenant, timeout=6),
                ws_close_code(bad),
            )

        replayed, streamed, code = run_async(run())
    assert [m["type"] for m in replayed] == ["failed", "requeued"]
    assert [m["type"] for m in streamed] == ["step_output", "step_output"]
    assert code == 4400
