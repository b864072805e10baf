"""Operator pages /approvals/ and /dlq/ (issue 5)."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
