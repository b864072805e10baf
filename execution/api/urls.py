"""REST API under /api/v1/ (issue 4)."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
