"""The grant-side context of an execution for the worker's re-check before start.

Tags come from the same resolution as at submission (``asset_resolve``: the Asset Service
when configured, else the local inventory; by asset id or hostname), so a tag grant that
allowed the plan at submit still allows it at start unless the grant or the asset changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from execution.errors import NotFound
from execution.models import Execution
from execution.policy.rules import Target


def _planned_target(execution: Execution, index: int, step: Any) -> dict[str, Any] | None:
    planned = (execution.plan_snapshot or {}).get("steps") or []
    spec = planned[index] if 0 <= index < len(planned) and isinstance(planned[index], dict) else {}
    target = spec.get("target")
    if target:
        return dict(target)
    if step.target_asset_id:
        return {"asset_id": step.target_asset_id}
    if step.target_hostname:
        return {"hostname": step.target_hostname}
    return None


def targets_of(execution: Execution) -> Iterator[Target]:
    """One Target per step, resolved lazily: ``decide`` only iterates when a grant decides."""
    from execution.services.assets import asset_resolve

    for step in execution.steps.all().order_by("step_index"):
        target = _planned_target(execution, step.step_index, step)
        if target is None:
            yield Target(action_class=step.action_class)
            continue
        try:
            found = asset_resolve(tenant=execution.tenant, target=target)
        except NotFound:
            # The asset is gone: no tag can match; a hostname pattern still may.
            yield Target(hostname=step.target_hostname, action_class=step.action_class)
            continue
        yield Target(hostname=found.hostname, tags=tuple(found.tags), action_class=step.action_class)
