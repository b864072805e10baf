"""WebSocket routes (docs/contract.md#live-progress): the consumers live in execution/realtime/."""

from __future__ import annotations

from execution.realtime.routing import websocket_urlpatterns

__all__ = ["websocket_urlpatterns"]
