"""The one canonical form of a plan and its sha256 (idempotency keys, approvals' plan hash).

Canonical JSON: keys sorted, no whitespace, UTF-8, and every list under a ``targets`` key
sorted by the canonical form of its items, so two plans that differ only in key order or
in the order of a step's targets hash the same. The order of ``steps`` is meaningful and
kept.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = _normalise(item)
            if key == "targets" and isinstance(item, list):
                item = sorted(item, key=_dumps)
            out[str(key)] = item
        return out
    if isinstance(value, (list, tuple)):
        return [_normalise(item) for item in value]
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_plan_json(plan: Any) -> str:
    """The canonical JSON text of ``plan`` (sorted keys, no whitespace, targets ordered)."""
    return _dumps(_normalise(plan))


def plan_hash(plan: Any) -> str:
    """sha256 (hex) of the canonical plan JSON: the plan's identity for idempotency and approvals."""
    return hashlib.sha256(canonical_plan_json(plan).encode("utf-8")).hexdigest()
