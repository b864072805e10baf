"""WebSocket routes of §11 (included by opsconductor/routing.py)."""

from __future__ import annotations

from typing import Any

from django.urls import path

from execution.realtime.auth import TokenAuthMiddleware
from execution.realtime.consumers import ExecutionEventsConsumer, TenantEventsConsumer

websocket_urlpatterns: list[Any] = [
    path(
        "ws/executions/<str:execution_id>/",
        TokenAuthMiddleware(ExecutionEventsConsumer.as_asgi()),
    ),
    path(
        "ws/tenants/<slug:tenant>/executions/",
        TokenAuthMiddleware(TenantEventsConsumer.as_asgi()),
    ),
]
