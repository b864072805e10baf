"""Secrets of §10: references in params and assets, resolved just in time in the worker.

Issue 6 provides the backends; the engine only calls ``secrets_resolve_for_step``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from execution.runners.base import ResolvedTarget


@dataclass
class ResolvedSecrets:
    params: dict[str, Any]
    # The target's credential (e.g. {"password": ...} or {"private_key": ...}).
    credential: dict[str, str] = field(default_factory=dict)
    # Every resolved value, for masking every sink of this execution.
    values: tuple[str, ...] = ()


def secrets_resolve_for_step(
    *, tenant_slug: str, params: dict[str, Any], target: ResolvedTarget | None
) -> ResolvedSecrets:
    """Replace every ``{"type": "secret", "path": ...}`` in params by its value (stub: none)."""
    return ResolvedSecrets(params=params)
