"""WebSocket routes (§11): the consumers live in execution/realtime/."""

from __future__ import annotations

from execution.realtime.routing import websocket_urlpatterns

__all__ = ["websocket_urlpatterns"]
