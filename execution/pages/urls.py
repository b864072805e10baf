"""Operator pages /executions/ (issue 7)."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
