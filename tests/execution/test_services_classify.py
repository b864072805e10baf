"""Classification of docs/contract.md#vocabulary."""

from __future__ import annotations

from typing import Any

import pytest

from execution.services.classify import plan_classify, sla_class_for


def _plan(environment: str, *steps: dict[str, Any], estimate: float | None = None) -> dict[str, Any]:
    plan: dict[str, Any] = {"name": "p", "environment": environment, "steps": list(steps)}
    if estimate is not None:
        plan["estimated_duration_seconds"] = estimate
    return plan


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"type": "validate", "params": {}}, "read"),
        ({"type": "http", "params": {"method": "GET", "url": "http://x"}}, "read"),
        ({"type": "http", "params": {"method": "POST", "url": "http://x"}}, "modify"),
        ({"type": "sql", "params": {"query": "SELECT 1"}}, "read"),
        ({"type": "sql", "params": {"query": "DELETE FROM t"}}, "modify"),
        ({"type": "command", "params": {"command": "ls"}}, "modify"),
        ({"type": "file", "params": {}}, "modify"),
        ({"type": "sql", "params": {"query": "SELECT 1; COMMIT; DELETE FROM t"}}, "modify"),
        ({"type": "command", "params": {"command": "ls"}, "action_class": "deploy"}, "deploy"),
    ],
)
def test_step_action_class_defaults_by_type(step: dict[str, Any], expected: str) -> None:
    assert plan_classify(plan=_plan("dev", step)).action_class == expected


def test_plan_action_class_is_the_highest_and_policy_minimum_applies() -> None:
    result = plan_classify(
        plan=_plan(
            "prod", {"type": "validate", "params": {}}, {"type": "command", "params": {"command": "x"}}
        )
    )
    assert result.action_class == "modify" and result.approval_level == 1
    assert (
        plan_classify(plan=_plan("staging", {"type": "noop", "action_class": "deploy"})).approval_level == 1
    )
    assert plan_classify(plan=_plan("prod", {"type": "noop", "action_class": "deploy"})).approval_level == 2
    assert plan_classify(plan=_plan("dev", {"type": "noop"}), requested_level=3).approval_level == 3


def test_policy_minimums_are_configurable(settings: Any) -> None:
    settings.APPROVAL_POLICY_MINIMUMS = {"dev:read": 1}
    assert plan_classify(plan=_plan("dev", {"type": "noop"})).approval_level == 1


def test_an_empty_minimums_setting_means_no_minimum(settings: Any) -> None:
    """The typed setting is the one source: an operator's empty table is not replaced by a
    copy of the defaults in the code."""
    settings.APPROVAL_POLICY_MINIMUMS = {}
    assert plan_classify(plan=_plan("prod", {"type": "noop", "action_class": "deploy"})).approval_level == 0


def test_sla_and_mode() -> None:
    assert sla_class_for(estimated_seconds=9.9, explicit=None) == "fast"
    assert sla_class_for(estimated_seconds=30, explicit=None) == "medium"
    assert sla_class_for(estimated_seconds=31, explicit=None) == "long"
    assert sla_class_for(estimated_seconds=100, explicit="fast") == "fast"
    assert plan_classify(plan=_plan("dev", {"type": "noop"}, estimate=1)).execution_mode == "immediate"
    assert (
        plan_classify(plan=_plan("dev", {"type": "noop"}, estimate=1), requested_level=1).execution_mode
        == "background"
    )
    assert plan_classify(plan=_plan("dev", {"type": "noop"})).priority == 5
