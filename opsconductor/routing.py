"""WebSocket routes (§11). Consumers come with the live-progress issue."""

from __future__ import annotations

from typing import Any

websocket_urlpatterns: list[Any] = []
