"""A round trip through the channel layer actually in use (docs/contract.md#truth, "Checks
check"), for ``/readyz``, ``manage.py health`` and ``go_no_go``.

The checker joins a group of its own and sends a token the way events travel to consumers:
with ``REDIS_URL``, a ``group_send`` through Redis; without it, a PostgreSQL ``NOTIFY`` that
this process's LISTEN/NOTIFY bridge (the one its consumers use; started if none runs yet)
hands to the in-process layer. Only the token coming back proves the path: an in-process
layer alone would answer itself.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import psycopg2
import psycopg2.extensions
from channels.layers import get_channel_layer
from django.conf import settings

from execution.realtime.bridge import bridge_ensure_started, connection_params
from execution.realtime.groups import PG_CHANNEL, PING_TYPE, ping_group


def _notify(token: str) -> None:
    """NOTIFY on a connection of its own, in autocommit: Django's may be inside a transaction,
    which would hold the notification back until it commits."""
    conn = psycopg2.connect(**connection_params("opsconductor-readyz"))
    try:
        conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [PG_CHANNEL, json.dumps({"ping": token})])
    finally:
        conn.close()


async def layer_round_trip(timeout: float) -> str:
    """Send a token through the layer in use and receive it back within ``timeout`` seconds;
    says which path it took. Raises when it does not come back."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    token = uuid.uuid4().hex
    group = ping_group(token)
    channel = await layer.new_channel("readyz.")
    await layer.group_add(group, channel)
    try:
        if settings.REDIS_URL:
            via = "Redis (channels_redis)"
            await layer.group_send(group, {"type": PING_TYPE, "token": token})
        else:
            bridge = bridge_ensure_started(loop=loop, layer=layer)
            if not await loop.run_in_executor(None, bridge.connected.wait, timeout):
                raise RuntimeError(f"the LISTEN/NOTIFY bridge is not connected after {timeout:.0f}s")
            via = f"the LISTEN/NOTIFY bridge (backend pid {bridge.backend_pid})"
            await loop.run_in_executor(None, _notify, token)
        try:
            message = await asyncio.wait_for(layer.receive(channel), max(deadline - time.monotonic(), 0.01))
        except TimeoutError:
            raise RuntimeError(f"nothing came back through {via} within {timeout:.0f}s") from None
        if message.get("token") != token:
            raise RuntimeError(f"{via} delivered another message than the one sent")
    finally:
        await layer.group_discard(group, channel)
    return f"round trip through {via} in {(time.monotonic() - (deadline - timeout)) * 1000:.0f} ms"
