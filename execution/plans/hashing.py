"""Canonical plan JSON and its sha256 (the plan hash approvals are bound to, docs/contract.md#approvals).

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


# The plan as jsonb, a select-list expression of a caller's statement (the submission's
# identity read) whose parameter ``%(plan)s`` is :func:`plan_normal_param`; the column's
# value goes through :func:`plan_normal_value`.
PLAN_NORMAL_SQL = "%(plan)s::jsonb"


def plan_normal_param(plan: Any) -> str:
    return json.dumps(plan)


def plan_normal_value(column: str) -> Any:
    # Django's PostgreSQL backend turns psycopg2's jsonb decoding off: the text comes back.
    return json.loads(column)


def plan_normalize(plan: Any) -> Any:
    """``plan`` as PostgreSQL's jsonb will give it back (e.g. ``1e2`` becomes ``100``).

    The approval's hash is recomputed from the stored snapshot at vote time, so the hash
    and the idempotency key must be taken over the stored form, not the request's text.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {PLAN_NORMAL_SQL}", {"plan": plan_normal_param(plan)})
        return plan_normal_value(cursor.fetchone()[0])
