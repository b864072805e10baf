"""The publisher registered with ``execution.services.events``: pointers after commit.

``publish_event()`` already runs after commit; this sends ``{execution_id, tenant_id,
event_id}`` to the groups of the execution and of its tenant. With ``REDIS_URL`` the pointer
goes straight to the ``channels_redis`` layer; without it, it goes out as a PostgreSQL
``NOTIFY`` that the bridge of every web process (bridge.py) hands to its in-process layer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from execution.models import ExecutionEvent
from execution.realtime.groups import PG_CHANNEL, POINTER_TYPE, execution_group, tenant_group

logger = logging.getLogger(__name__)
_pending_sends: set[asyncio.Task[None]] = set()


def event_pointer(event: ExecutionEvent) -> dict[str, Any]:
    return {"execution_id": str(event.execution_id), "tenant_id": event.tenant_id, "event_id": event.pk}


def pointer_groups(pointer: dict[str, Any]) -> list[str]:
    return [execution_group(pointer["execution_id"]), tenant_group(pointer["tenant_id"])]


async def pointer_group_send(layer: Any, pointer: dict[str, Any]) -> None:
    message = {"type": POINTER_TYPE, **pointer}
    for group in pointer_groups(pointer):
        await layer.group_send(group, message)


def event_pointer_publish(event: ExecutionEvent) -> None:
    """Send the pointer of a committed event across processes (the registered publisher)."""
    pointer = event_pointer(event)
    if settings.REDIS_URL:
        layer = get_channel_layer()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            async_to_sync(pointer_group_send)(layer, pointer)
        else:  # called from async code: do not block the loop
            task = loop.create_task(pointer_group_send(layer, pointer))
            _pending_sends.add(task)
            task.add_done_callback(_pending_sends.discard)
        return
    # NOTIFY is transactional: on_commit callbacks run in autocommit, so it goes out now.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [PG_CHANNEL, json.dumps(pointer)])


def publisher_install() -> None:
    """Register the publisher (called from ExecutionConfig.ready)."""
    from execution.services.events import register_publisher

    # Without Redis this publisher is a NOTIFY, which the worker's statements send themselves
    # (they say so with publish_event(..., pointer_sent=True)).
    register_publisher(event_pointer_publish, pg_pointer=True)
