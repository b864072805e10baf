"""WebSocket routes of docs/contract.md#live-progress (included by opsconductor/routing.py)."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from execution.realtime.auth import TokenAuthMiddleware
from execution.realtime.consumers import CLOSE_UNKNOWN, ExecutionEventsConsumer, TenantEventsConsumer


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Any other path (``/ws/tenants/a%00/executions/``, ``/ws/x/../``): closed with 4404,
    not a router error -- which answered 500 and logged a traceback per request."""

    async def connect(self) -> None:
        # The close code only reaches the client after an accepted handshake.
        await self.accept()
        await self.close(code=CLOSE_UNKNOWN)


websocket_urlpatterns: list[Any] = [
    path(
        "ws/executions/<str:execution_id>/",
        TokenAuthMiddleware(ExecutionEventsConsumer.as_asgi()),
    ),
    path(
        "ws/tenants/<slug:tenant>/executions/",
        TokenAuthMiddleware(TenantEventsConsumer.as_asgi()),
    ),
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
