"""A WebSocket path no route knows is closed with 4404, not a 500 and a traceback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.execution.realtime.live import daphne_server, delivery_env, run_async, ws_close_code

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_unknown_socket_path_is_closed_4404_without_a_traceback(
    watch_setup: dict[str, Any], tmp_path: Path
) -> None:
    # The finding: a NUL in the tenant or a `..` segment answered HTTP 500 ("No route found")
    # and logged a traceback for every such request.
    log = tmp_path / "daphne.log"
    token = watch_setup["token"]
    with daphne_server(delivery_env("bridge"), log) as port:
        base = f"ws://127.0.0.1:{port}"

        async def codes() -> list[int | None]:
            return await asyncio.gather(
                ws_close_code(f"{base}/ws/tenants/acme%00/executions/?token={token}"),
                ws_close_code(f"{base}/ws/executions/../tenants/other/executions/?token={token}"),
                ws_close_code(f"{base}/ws/nothing-here/"),
            )

        assert run_async(codes()) == [4404, 4404, 4404]
    assert "No route found" not in log.read_text()
