"""The plan hash an approval is bound to.

Interim: the canonical plan JSON (sorted keys, no whitespace) hashed with sha256, the same
as at submission. To be replaced by the canonical hashing of ``execution/plans/`` once it
exists, so that there is one definition (see the approvals issue report).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _plan_hash(plan: Any) -> str:
    canonical = json.dumps(plan, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
