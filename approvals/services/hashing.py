"""The plan hash an approval is bound to: the canonical plan hash of ``execution/plans/``
(the same function that computes ``executions.plan_hash`` at submission).

The fallback (sha256 of the JSON with sorted keys and no whitespace) only serves a checkout
where ``execution.plans`` is absent; it agrees with the canonical form for plans without
``targets`` lists.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _plan_hash(plan: Any) -> str:
    try:
        from execution.plans import plan_hash
    except ModuleNotFoundError:
        canonical = json.dumps(plan, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()
    return plan_hash(plan)
