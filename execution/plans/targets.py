"""Targets of a plan's steps, resolved at submission (docs/fleet.md).

A step names one ``target`` (a fleet of one) or ``targets``: a list of references or a
selector ``{"tags": [...]}`` (the tenant's assets carrying every tag, from the Asset Service
when configured, else the built-in inventory). ``plan_targets_resolve`` turns every
``targets`` into the concrete list, sorted by asset id, each entry ``{"asset_id", "hostname"}``,
and fills the step's strategy with the defaults of the settings: the snapshot (and so the plan
hash, the approval and the idempotency key) covers exactly what will run, and how.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from execution.errors import NotFound
from execution.models import Tenant
from execution.plans.schema import PlanInvalid, Problem
from execution.runners.base import ResolvedTarget


@dataclass(frozen=True)
class Resolved:
    """One resolved target of a step, as the policy and the step rows see it."""

    asset_id: str
    hostname: str
    tags: tuple[str, ...]


def asset_order(asset_id: str) -> tuple[int, int, str]:
    """Sort key of asset ids: numbers by value (7 before 10), then the rest as text."""
    return (0, int(asset_id), "") if asset_id.isdigit() else (1, 0, asset_id)


def default_strategy(spec: dict[str, Any] | None) -> dict[str, Any]:
    """The step's strategy with every field the step leaves out taken from the settings."""
    pause = float(settings.FLEET_PAUSE_SECONDS)

    def amount(raw: str) -> int | str:
        return int(raw) if raw.isdigit() else raw

    full: dict[str, Any] = {
        "concurrency": settings.FLEET_CONCURRENCY,
        "batch": amount(settings.FLEET_BATCH),
        "max_failures": amount(settings.FLEET_MAX_FAILURES),
        # An integral pause is stored as an integer: jsonb gives back what was hashed.
        "pause_seconds": int(pause) if pause.is_integer() else pause,
    }
    full.update(spec or {})
    return full


def _select(tenant: Tenant, tags: list[str]) -> list[ResolvedTarget]:
    """The tenant's assets carrying every tag in ``tags`` (never another tenant's)."""
    from execution.clients.assets import asset_service_client
    from execution.models import Asset
    from execution.services.assets import from_model, from_service

    client = asset_service_client()
    if client is None:
        return [from_model(a) for a in Asset.objects.filter(tenant=tenant, tags__contains=tags)]
    try:
        answers = client.assets_query(tenant=tenant.slug, tag=tags[0])
    finally:
        client.close()
    found = []
    for answer in answers:
        # The service is asked for this tenant; an answer naming another one is not ours.
        if answer.get("tenant") not in (None, tenant.slug):
            continue
        if set(tags) <= set(answer.get("tags") or ()):
            found.append(from_service(answer))
    return found


def _step_targets(
    tenant: Tenant, path: str, spec: list[Any] | dict[str, Any], problems: list[Problem]
) -> list[ResolvedTarget]:
    from execution.services.assets import asset_resolve

    if isinstance(spec, dict):
        try:
            found = _select(tenant, list(spec["tags"]))
        except NotFound as exc:
            problems.append(Problem(path, str(exc)))
            return []
        if not found:
            problems.append(Problem(path, f"the selector matched no asset of tenant {tenant.slug!r}"))
        return found
    found = []
    for index, reference in enumerate(spec):
        try:
            found.append(asset_resolve(tenant=tenant, target=reference))
        except NotFound as exc:
            field = "asset_id" if "asset_id" in reference else "hostname"
            problems.append(Problem(f"{path}[{index}].{field}", f"{exc} in tenant {tenant.slug!r}"))
    seen: set[str] = set()
    for target in found:
        if target.asset_id in seen:
            problems.append(Problem(path, f"names asset {target.asset_id} ({target.hostname}) twice"))
        seen.add(target.asset_id)
    return found


def plan_targets_resolve(*, tenant: Tenant, plan: dict[str, Any]) -> list[list[Resolved]]:
    """Resolve every step's target(s) in ``tenant``; rewrite each ``targets`` of ``plan`` into
    its concrete sorted list and complete its strategy. Returns the targets per step ([] for
    a step without one). Raises PlanInvalid naming the field: an unknown asset, an empty
    selector, more targets than ``FLEET_MAX_TARGETS``."""
    from execution.services.assets import asset_resolve

    problems: list[Problem] = []
    out: list[list[Resolved]] = []
    cap = int(settings.FLEET_MAX_TARGETS)
    for index, step in enumerate(plan["steps"]):
        path = f"plan.steps[{index}]"
        if "targets" in step:
            found = _step_targets(tenant, f"{path}.targets", step["targets"], problems)
            if len(found) > cap:
                problems.append(
                    Problem(
                        f"{path}.targets", f"{len(found)} targets; the limit is {cap} (OPS_FLEET_MAX_TARGETS)"
                    )
                )
            found.sort(key=lambda t: asset_order(t.asset_id))
            step["targets"] = [{"asset_id": t.asset_id, "hostname": t.hostname} for t in found]
            step["strategy"] = default_strategy(step.get("strategy"))
            out.append([Resolved(t.asset_id, t.hostname, tuple(t.tags)) for t in found])
            continue
        target = step.get("target")
        if not target:
            out.append([])
            continue
        try:
            one = asset_resolve(tenant=tenant, target=target)
        except NotFound as exc:
            field = "asset_id" if "asset_id" in target else "hostname"
            problems.append(Problem(f"{path}.target.{field}", f"{exc} in tenant {tenant.slug!r}"))
            out.append([])
            continue
        out.append([Resolved(one.asset_id, one.hostname, tuple(one.tags))])
    if problems:
        raise PlanInvalid(problems)
    return out


def step_targets(step: dict[str, Any]) -> list[dict[str, Any]]:
    """A snapshot step's targets as a list (``target`` is a list of one; none: [])."""
    if isinstance(step.get("targets"), list):
        return [dict(t) for t in step["targets"]]
    target = step.get("target")
    return [dict(target)] if target else []


def step_targets_create(*, execution: Any, plan: dict[str, Any], steps: list[Any]) -> None:
    """The pending target rows of the plan's fleet steps, each with its batch number (one
    INSERT; none for a plan without fleet steps)."""
    from execution.models import StepTarget
    from execution.plans.strategy import Strategy

    rows: list[StepTarget] = []
    for row, step in zip(steps, plan["steps"], strict=True):
        if not isinstance(step.get("targets"), list):
            continue
        targets = step["targets"]
        batches = Strategy.of(step["strategy"], len(targets)).batches()
        for number, positions in enumerate(batches):
            rows.extend(
                StepTarget(
                    step=row,
                    execution_id=execution.execution_id,
                    step_index=row.step_index,
                    target_index=i,
                    asset_id=targets[i]["asset_id"],
                    hostname=targets[i]["hostname"],
                    batch=number,
                )
                for i in positions
            )
    if rows:
        StepTarget.objects.bulk_create(rows)
