"""Step type names of §7 and their defaults, used when a runner module is not registered."""

from __future__ import annotations

from typing import Any

from execution.enums import ActionClass

# alias -> canonical type (§7). The runner registry wins when it knows the name.
STATIC_TYPES: dict[str, str] = {
    "command": "command",
    "shell": "command",
    "bash": "command",
    "script": "command",
    "ssh_command": "command",
    "powershell": "command",
    "http": "http",
    "api": "http",
    "rest": "http",
    "api_call": "http",
    "sql": "sql",
    "database": "sql",
    "query": "sql",
    "file": "file",
    "copy": "file",
    "transfer": "file",
    "file_transfer": "file",
    "validate": "validate",
    "check": "validate",
    "verify": "validate",
    "noop": "noop",
    "sleep": "sleep",
    "workflow": "workflow",
    "automation_workflow": "workflow",
}
# §5: no implicit "run it here": these types always name their target.
NEEDS_TARGET = frozenset({"command", "sql", "file", "workflow"})


def static_default_action_class(step_type: str, params: dict[str, Any]) -> str:
    """§5: validate, http GET, sql SELECT -> read; command, file, other http/sql -> modify."""
    if step_type in ("validate", "noop", "sleep"):
        return ActionClass.READ
    if step_type == "http":
        method = str(params.get("method") or "GET").upper()
        return ActionClass.READ if method in ("GET", "HEAD", "OPTIONS") else ActionClass.MODIFY
    if step_type == "sql":
        query = str(params.get("query") or params.get("sql") or "").lstrip().lower()
        return (
            ActionClass.READ
            if query.startswith(("select", "with", "show", "explain"))
            else ActionClass.MODIFY
        )
    return ActionClass.MODIFY


def step_type_info(name: str) -> tuple[str | None, Any]:
    """(canonical type or None when unknown, the registered runner or None)."""
    from execution.runners.registry import canonical_type, get_runner

    canonical = canonical_type(name)
    if canonical is not None:
        return canonical, get_runner(canonical)
    return STATIC_TYPES.get(name), None


def step_default_action_class(step_type: str, params: dict[str, Any]) -> str:
    canonical, runner = step_type_info(step_type)
    if runner is not None:
        return str(runner.default_action_class(params))
    return static_default_action_class(canonical or step_type, params)


def step_needs_target(step_type: str) -> bool:
    canonical, runner = step_type_info(step_type)
    if runner is not None and runner.needs_target:
        return True
    return (canonical or step_type) in NEEDS_TARGET
