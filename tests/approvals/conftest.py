"""Approval fixtures: executions made with the factories, and observers of what a decision
hands on.

``queue_calls`` records every ``queue_enqueue`` call and ``dlq_calls`` every ``dlq_requeue``
call; the real functions run (the fixtures only watch them)."""

from __future__ import annotations

from typing import Any

import pytest

from approvals.services import approval_request
from execution.enums import ActionClass, ExecutionMode, Role, SlaClass
from tests.factories import (
    ExecutionFactory,
    ExecutionStepFactory,
    MembershipFactory,
    TimeoutPolicyFactory,
    UserFactory,
)


def plan_for(name: str = "restart nginx on web-1", environment: str = "staging") -> dict[str, Any]:
    return {
        "name": name,
        "environment": environment,
        "steps": [
            {
                "name": "check config",
                "type": "command",
                "target": {"hostname": "web-1"},
                "params": {"command": "nginx -t"},
                "action_class": "read",
            },
            {
                "name": "restart",
                "type": "command",
                "target": {"hostname": "web-1"},
                "params": {"command": "systemctl restart nginx"},
            },
        ],
    }


def ensure_policies() -> None:
    """Transactional tests flush the seeded timeout policies; get_or_create puts them back."""
    for sla in SlaClass.values:
        for action in ActionClass.values:
            TimeoutPolicyFactory(sla_class=sla, action_class=action, approval_timeout_seconds=600)


def make_approval(
    *,
    tenant: Any,
    actor: Any,
    level: int = 1,
    mode: str = ExecutionMode.BACKGROUND,
    plan: dict[str, Any] | None = None,
) -> Any:
    """An execution in pending_approval with its steps, and its approval (approval_request)."""
    plan = plan or plan_for()
    ensure_policies()
    execution = ExecutionFactory(
        tenant=tenant,
        actor=actor,
        plan_snapshot=plan,
        approval_level=level,
        execution_mode=mode,
        environment=plan["environment"],
        action_class=ActionClass.MODIFY,
    )
    for index, step in enumerate(plan["steps"]):
        ExecutionStepFactory(
            execution=execution,
            step_index=index,
            step_name=step["name"],
            step_type=step["type"],
            target_hostname=(step.get("target") or {}).get("hostname", ""),
            action_class=step.get("action_class", ActionClass.MODIFY),
        )
    return approval_request(execution=execution, level=level)


def member(tenant: Any, username: str, role: str = Role.APPROVER) -> Any:
    user = UserFactory(username=username)
    MembershipFactory(tenant=tenant, user=user, role=role)
    return user


@pytest.fixture
def requester(tenant: Any) -> Any:
    return member(tenant, "rita-requester", Role.DEPLOYER)


@pytest.fixture
def second_approver(tenant: Any) -> Any:
    return member(tenant, "bob-approver", Role.APPROVER)


@pytest.fixture
def queue_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    from execution.services import queue as real

    calls: list[dict[str, Any]] = []
    original = real.queue_enqueue

    def observed(*, execution: Any, priority: int | None = None) -> Any:
        calls.append({"execution_id": execution.execution_id, "priority": priority})
        return original(execution=execution, priority=priority)

    monkeypatch.setattr(real, "queue_enqueue", observed)
    return calls


@pytest.fixture
def dlq_calls(monkeypatch: pytest.MonkeyPatch, queue_calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from execution.services import dlq as real

    calls: list[dict[str, Any]] = []
    original = real.dlq_requeue

    def observed(*, entry: Any, operator: Any) -> Any:
        calls.append({"dlq_id": entry.dlq_id, "operator": operator.username})
        return original(entry=entry, operator=operator)

    monkeypatch.setattr(real, "dlq_requeue", observed)
    return calls
