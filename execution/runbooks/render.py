"""Rendering a runbook's plan template (docs/runbooks.md#templates): ``{{ params.NAME }}``
inside string values is replaced by the parameter's text; nothing else is templated (no
logic, no keys, no non-string values). The walk is over JSON, not over the plan's schema,
so a new field of a step (fleet ``targets``, a gate's options) is rendered without a change
here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from execution.plans import Problem

PLACEHOLDER = re.compile(r"\{\{\s*params\.([a-z_][a-z0-9_]*)\s*\}\}")
LOOSE = re.compile(r"\{\{\s*params\b")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def template_problems(template: Any, names: set[str]) -> list[Problem]:
    """A reference to no parameter, or a ``{{ params ... }}`` that is not a plain reference."""
    problems = []
    for path, text in _strings(template, "plan"):
        for name in PLACEHOLDER.findall(text):
            if name not in names:
                problems.append(Problem(path, f"{{{{ params.{name} }}}} names no parameter"))
        if len(LOOSE.findall(text)) != len(PLACEHOLDER.findall(text)):
            problems.append(Problem(path, "only {{ params.NAME }} is substituted (no filters or logic)"))
    return problems


def templated_paths(template: Any) -> set[str]:
    """The paths (``plan.steps[0].params.command``) of strings that hold a placeholder."""
    return {path for path, text in _strings(template, "plan") if PLACEHOLDER.search(text)}


def render(template: Any, values: dict[str, Any]) -> Any:
    """``template`` with every placeholder replaced; a parameter without a value is ''."""
    if isinstance(template, str):
        return PLACEHOLDER.sub(lambda m: _text(values.get(m.group(1), "")), template)
    if isinstance(template, dict):
        return {key: render(item, values) for key, item in template.items()}
    if isinstance(template, list):
        return [render(item, values) for item in template]
    return template
