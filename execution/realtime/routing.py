"""WebSocket routes of §11 (issue 7)."""

from __future__ import annotations

from typing import Any

websocket_urlpatterns: list[Any] = []
