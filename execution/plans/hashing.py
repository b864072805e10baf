"""Canonical plan JSON and its sha256 (the plan hash approvals are bound to, §9).

Canonical = sorted keys, no whitespace, UTF-8. Targets are objects, so sorted keys make
their order deterministic too. The approvals app hashes ``plan_snapshot`` the same way
(approvals/services/hashing.py); the snapshot we store is already normalised, so both agree.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plan_hash(plan: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``plan``."""
    return hashlib.sha256(canonical_json(plan).encode()).hexdigest()
