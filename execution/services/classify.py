"""Classification of docs/contract.md#vocabulary: action class, SLA class, mode, effective approval level,
priority."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import re2
from django.conf import settings

from execution.enums import ACTION_CLASS_RANK, ActionClass, ExecutionMode, SlaClass
from execution.plans.schema import PlanInvalid, Problem
from execution.plans.types import step_default_action_class

# A read-only rule vouches for the command text alone: shell syntax that chains, pipes,
# redirects or substitutes (`df -h /;id`, `df -h $(id)`) runs more than the rule shows.
_SHELL_SYNTAX = re2.compile(r"[;&|<>`$()\\\n\r]")


class ActionClassLowered(ValueError):
    """A step declared an action class below its type's default (docs/contract.md#submission)."""


@dataclass(frozen=True)
class Classification:
    action_class: str
    step_action_classes: list[str]
    sla_class: str
    execution_mode: str
    approval_level: int
    priority: int
    # The change freeze that raised approval_level (docs/approvals.md#freezes), by id.
    freeze_id: int | None = None


def command_is_read_only(command: str, patterns: Sequence[str]) -> bool:
    """Does ``command`` fully match one of a tenant's read-only command rules (RE2)?"""
    for pattern in patterns:
        try:
            if re2.fullmatch(pattern, command) is not None:
                return True
        except re2.error:
            continue  # a rule saved around the admin's validation matches nothing
    return False


def step_action_class(step: dict[str, Any], *, read_only_patterns: Sequence[str] = ()) -> str:
    """The step's class: its type's default, raised by a declared class (docs/contract.md#submission).

    A declared class never lowers the default. A ``command`` declared ``read`` is read only
    when its command fully matches one of the tenant's read-only command rules, holds no
    shell syntax (``_SHELL_SYNTAX``) and sets no ``env`` (PATH, LD_PRELOAD or BASH_ENV
    change what runs); otherwise it keeps its type's class (modify), and so the approval
    level of a modify. Any other lower declaration raises ActionClassLowered (a 400 naming
    the field).
    """
    params = step.get("params") or {}
    default = step_default_action_class(step.get("type", ""), params)
    declared = step.get("action_class")
    if not declared:
        return default
    if ACTION_CLASS_RANK[ActionClass(declared)] >= ACTION_CLASS_RANK[ActionClass(default)]:
        return str(declared)
    if step.get("type") == "command" and declared == ActionClass.READ:
        command = str(params.get("command") or "")
        plain = not params.get("env") and _SHELL_SYNTAX.search(command) is None
        return ActionClass.READ if plain and command_is_read_only(command, read_only_patterns) else default
    raise ActionClassLowered(
        f"{declared!r} is lower than this step's class {default!r}; a declared class may only raise it"
    )


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
    # (environment:action class) -> minimum level; unlisted pairs are 0 (settings,
    # docs/contract.md#vocabulary).
    table: dict[str, int] = settings.APPROVAL_POLICY_MINIMUMS
    return int(table.get(f"{environment}:{action_class}", 0))


def plan_classify(
    *,
    plan: dict[str, Any],
    requested_level: int = 0,
    sla_class: str | None = None,
    priority: int | None = None,
    read_only_patterns: Sequence[str] = (),
) -> Classification:
    """Classify a validated plan; ``read_only_patterns`` are the tenant's read-only command
    rules. Raises PlanInvalid naming ``plan.steps[i].action_class`` for a lowered class."""
    classes: list[str] = []
    problems: list[Problem] = []
    for index, step in enumerate(plan["steps"]):
        try:
            classes.append(step_action_class(step, read_only_patterns=read_only_patterns))
        except ActionClassLowered as exc:
            problems.append(Problem(f"plan.steps[{index}].action_class", str(exc)))
    if problems:
        raise PlanInvalid(problems)
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
