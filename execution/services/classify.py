"""Classification of §2: action class, SLA class, mode, effective approval level, priority."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from execution.enums import ACTION_CLASS_RANK, ActionClass, ExecutionMode, SlaClass
from execution.plans.types import step_default_action_class

# (environment, action class) -> minimum approval level; everything else 0 (§2).
DEFAULT_APPROVAL_MINIMUMS: dict[str, int] = {
    "prod:deploy": 2,
    "prod:modify": 1,
    "staging:deploy": 1,
}


@dataclass(frozen=True)
class Classification:
    action_class: str
    step_action_classes: list[str]
    sla_class: str
    execution_mode: str
    approval_level: int
    priority: int


def step_action_class(step: dict[str, Any]) -> str:
    """Declared, else the type's default (§5: validate/http GET/sql SELECT read, else modify)."""
    declared = step.get("action_class")
    if declared:
        return str(declared)
    return step_default_action_class(step.get("type", ""), step.get("params") or {})


def sla_class_for(*, estimated_seconds: float | None, explicit: str | None) -> str:
    """Explicit override, else from the estimate (< 10 s fast, <= 30 s medium, else long).

    Without an estimate the plan is ``medium``: never run inline on a guess.
    """
    if explicit:
        return explicit
    if estimated_seconds is None:
        return SlaClass.MEDIUM
    if estimated_seconds < 10:
        return SlaClass.FAST
    if estimated_seconds <= 30:
        return SlaClass.MEDIUM
    return SlaClass.LONG


def approval_minimum(*, environment: str, action_class: str) -> int:
    table = getattr(settings, "APPROVAL_POLICY_MINIMUMS", None) or DEFAULT_APPROVAL_MINIMUMS
    return int(table.get(f"{environment}:{action_class}", 0))


def plan_classify(
    *,
    plan: dict[str, Any],
    requested_level: int = 0,
    sla_class: str | None = None,
    priority: int | None = None,
) -> Classification:
    """Classify a validated plan."""
    classes = [step_action_class(s) for s in plan["steps"]]
    action = max(classes, key=lambda c: ACTION_CLASS_RANK[ActionClass(c)]) if classes else ActionClass.READ
    sla = sla_class_for(estimated_seconds=plan.get("estimated_duration_seconds"), explicit=sla_class)
    level = max(requested_level, approval_minimum(environment=plan["environment"], action_class=action))
    mode = ExecutionMode.IMMEDIATE if sla == SlaClass.FAST and level == 0 else ExecutionMode.BACKGROUND
    return Classification(
        action_class=str(action),
        step_action_classes=classes,
        sla_class=str(sla),
        execution_mode=str(mode),
        approval_level=min(level, 3),
        priority=priority if priority is not None else 5,
    )
