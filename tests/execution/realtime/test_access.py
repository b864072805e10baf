"""Who may open which socket: 4401 without credentials, 4403/4404 across tenants."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.execution.realtime.live import daphne_server, delivery_env, run_async, ws_close_code, ws_collect

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_close_codes(watch_setup: dict[str, Any], tmp_path: Path) -> None:
    execution = watch_setup["execution"]
    with daphne_server(delivery_env("bridge"), tmp_path / "daphne.log") as port:
        base = f"ws://127.0.0.1:{port}"
        ex_url = f"{base}/ws/executions/{execution.execution_id}/"
        tenant_url = f"{base}/ws/tenants/acme/executions/"

        async def all_codes() -> list[int | None]:
            return await asyncio.gather(
                ws_close_code(ex_url),
                ws_close_code(tenant_url),
                ws_close_code(ex_url + "?token=not-a-token"),
                ws_close_code(ex_url + f"?token={watch_setup['outsider_token']}"),
                ws_close_code(tenant_url + f"?token={watch_setup['outsider_token']}"),
                ws_close_code(f"{base}/ws/tenants/nope/executions/?token={watch_setup['token']}"),
                ws_close_code(f"{base}/ws/executions/{uuid.uuid4()}/?token={watch_setup['token']}"),
                ws_close_code(ex_url + f"?token={watch_setup['token']}", timeout=3),
            )

        codes = run_async(all_codes())
    assert codes == [4401, 4401, 4401, 4404, 4403, 4403, 4404, None]


def test_session_cookie_authenticates(watch_setup: dict[str, Any], tmp_path: Path) -> None:
    from websockets.asyncio.client import connect

    client = Client()
    client.force_login(watch_setup["viewer"])
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    execution = watch_setup["execution"]
    from execution.services.transition import transition

    transition(execution, "approved")
    with daphne_server(delivery_env("bridge"), tmp_path / "daphne.log") as port:
        url = f"ws://127.0.0.1:{port}/ws/executions/{execution.execution_id}/"

        async def run() -> str:
            async with connect(url, additional_headers={"Cookie": cookie}, open_timeout=30) as ws:
                return str(await asyncio.wait_for(ws.recv(), timeout=30))

        first = run_async(run())

        async def forged() -> int | None:
            from websockets.exceptions import ConnectionClosed

            async with connect(
                url, additional_headers={"Cookie": cookie}, origin="http://evil.example", open_timeout=30
            ) as ws:
                try:
                    await asyncio.wait_for(ws.recv(), timeout=30)
                except ConnectionClosed as exc:
                    return exc.rcvd.code if exc.rcvd else None
            return None

        assert run_async(forged()) == 4401  # another site's page cannot ride the cookie
        assert '"type": "approved"' in first
        # The tenant stream starts live (no history) for a member.
        assert (
            run_async(
                ws_collect(
                    f"ws://127.0.0.1:{port}/ws/tenants/acme/executions/?token={watch_setup['token']}",
                    timeout=2,
                )
            )
            == []
        )
