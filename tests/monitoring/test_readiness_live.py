"""/readyz of a real daphne process: the channel-layer check goes through the path events
take to browsers (docs/contract.md#truth, "Checks check"): the process's own LISTEN/NOTIFY
bridge by default, Redis with REDIS_URL, and fails when that path is down."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.execution.realtime.live import daphne_server, delivery_env, run_async
from tests.factories import MembershipFactory, TenantFactory, UserFactory, token_for
from tests.support.processes import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _readyz(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=30) as answer:
            return json.loads(answer.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as error:  # 503: the body names what fails
        return json.loads(error.read())  # type: ignore[no-any-return]


def _bridges() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'opsconductor-bridge' "
            "AND datname = current_database()"
        )
        return [row[0] for row in cursor.fetchall()]


async def _socket_open(url: str) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, open_timeout=30) as ws:
        await asyncio.sleep(1.0)  # the consumer has started (or re-used) the bridge
        await ws.close()


def test_readyz_round_trips_through_the_bridge_the_sockets_use(tmp_path: Path) -> None:
    tenant = TenantFactory(slug="acme")
    viewer = UserFactory(username="vic-viewer")
    MembershipFactory(tenant=tenant, user=viewer, role="viewer")
    token = token_for(viewer)
    with daphne_server(delivery_env("bridge"), tmp_path / "daphne.log") as port:
        check = _readyz(port)["checks"]["channel_layer"]
        assert check["ok"] is True, check
        assert "through the LISTEN/NOTIFY bridge (backend pid" in check["detail"]
        pid = int(check["detail"].split("backend pid ")[1].split(")")[0])
        run_async(_socket_open(f"ws://127.0.0.1:{port}/ws/tenants/acme/executions/?token={token}"))
        # One bridge in the process, shared by the check and the consumers.
        assert _bridges() == [pid]
        assert _readyz(port)["checks"]["channel_layer"]["detail"].startswith(
            f"round trip through the LISTEN/NOTIFY bridge (backend pid {pid})"
        )
        with connection.cursor() as cursor:  # the bridge's connection dies; it reconnects
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert _readyz(port)["checks"]["channel_layer"]["ok"] is True


def test_readyz_round_trips_through_redis_and_fails_without_it(tmp_path: Path) -> None:
    with daphne_server(delivery_env("redis"), tmp_path / "daphne.log") as port:
        check = _readyz(port)["checks"]["channel_layer"]
        assert check == {"ok": True, "detail": check["detail"]} and "through Redis" in check["detail"]
    env = delivery_env("redis")
    env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with daphne_server(env, tmp_path / "daphne-no-redis.log") as port:
        body = _readyz(port)
        assert "channel_layer" in body["failing"], body
        assert body["checks"]["channel_layer"]["ok"] is False
