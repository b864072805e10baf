"""Step type facts for plan validation and classification, from the one table of step types:
the runners' registry (execution/runners/registry.py)."""

from __future__ import annotations

from typing import Any

from execution.enums import ActionClass


def step_type_info(name: str) -> tuple[str | None, Any]:
    """(canonical type or None when unknown, the registered runner or None)."""
    from execution.runners.registry import canonical_type, get_runner

    canonical = canonical_type(name)
    return (canonical, get_runner(canonical)) if canonical is not None else (None, None)


def step_default_action_class(step_type: str, params: dict[str, Any]) -> str:
    """docs/contract.md#submission: validate, http GET, sql SELECT -> read; command, file, other http/sql ->
    modify."""
    _canonical, runner = step_type_info(step_type)
    return str(runner.default_action_class(params)) if runner is not None else ActionClass.MODIFY


def step_needs_target(step_type: str) -> bool:
    """docs/contract.md#submission: command, file and sql steps always name their target (no implicit "run it
    here")."""
    _canonical, runner = step_type_info(step_type)
    return bool(runner is not None and runner.needs_target)
