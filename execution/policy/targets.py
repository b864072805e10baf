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


def _planned_targets(execution: Execution, index: int, step: Any) -> list[dict[str, Any]]:
    from execution.plans.targets import step_targets

    planned = (execution.plan_snapshot or {}).get("steps") or []
    spec = planned[index] if 0 <= index < len(planned) and isinstance(planned[index], dict) else {}
    targets = step_targets(spec)
    if targets:
        return targets
    if step.target_asset_id:
        return [{"asset_id": step.target_asset_id, "hostname": step.target_hostname}]
    if step.target_hostname:
        return [{"hostname": step.target_hostname}]
    return []


def targets_of(execution: Execution) -> Iterator[Target]:
    """One Target per target of each step (a fleet step: each of its targets), resolved
    lazily: ``decide`` only iterates when a grant decides."""
    from execution.services.assets import asset_resolve

    for step in execution.steps.all().order_by("step_index"):
        targets = _planned_targets(execution, step.step_index, step)
        if not targets:
            yield Target(action_class=step.action_class)
            continue
        for target in targets:
            # A fleet step's resolved entries name both; the asset id is the reference.
            reference = {"asset_id": target["asset_id"]} if "asset_id" in target else target
            try:
                found = asset_resolve(tenant=execution.tenant, target=reference)
            except NotFound:
                # The asset is gone: no tag can match; a hostname pattern still may.
                known = target.get("hostname") or (step.target_hostname if len(targets) == 1 else "")
                yield Target(hostname=str(known), action_class=step.action_class)
                continue
            yield Target(hostname=found.hostname, tags=tuple(found.tags), action_class=step.action_class)
