"""REST vote endpoints under /api/v1/executions/<id>/approve|reject/ (issue 5)."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
