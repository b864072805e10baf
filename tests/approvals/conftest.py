"""Approval fixtures: executions made with the factories, and the queue the engine provides.

``queue_calls`` records every ``queue_enqueue`` call. When the engine's
``execution.services.queue`` is in the checkout the real one runs (and is only observed);
until then a stand-in with the same contract (approved -> queued through transition(), one
queue item) is installed for the test, so these tests do not depend on the parallel work.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from approvals.services import approval_request
from execution.enums import ActionClass, ActorType, ExecutionMode, ExecutionStatus, Role, SlaClass
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


def engine_queue_available() -> bool:
    try:
        import execution.services.queue  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


@pytest.fixture
def queue_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    if engine_queue_available():
        from execution.services import queue as real

        original = real.queue_enqueue

        def observed(*, execution: Any, priority: int | None = None) -> Any:
            calls.append({"execution_id": execution.execution_id, "priority": priority})
            return original(execution=execution, priority=priority)

        monkeypatch.setattr(real, "queue_enqueue", observed)
        return calls

    from execution.models import QueueItem
    from execution.services.transition import transition

    def stand_in(*, execution: Any, priority: int | None = None) -> Any:
        calls.append({"execution_id": execution.execution_id, "priority": priority})
        execution = transition(
            execution,
            ExecutionStatus.QUEUED,
            actor_type=ActorType.SYSTEM,
            expected_from=ExecutionStatus.APPROVED,
        )
        return QueueItem.objects.create(
            execution=execution, priority=priority or execution.priority, sla_class=execution.sla_class
        )

    module = types.ModuleType("execution.services.queue")
    module.queue_enqueue = stand_in  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "execution.services.queue", module)
    return calls


def engine_dlq_available() -> bool:
    try:
        import execution.services.dlq  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


@pytest.fixture
def dlq_calls(monkeypatch: pytest.MonkeyPatch, queue_calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records ``dlq_requeue`` calls; the engine's when present, else a stand-in with its
    contract (failed/timeout -> queued through transition(), entry marked requeued)."""
    calls: list[dict[str, Any]] = []
    if engine_dlq_available():
        from execution.services import dlq as real

        original = real.dlq_requeue

        def observed(*, entry: Any, operator: Any) -> Any:
            calls.append({"dlq_id": entry.dlq_id, "operator": operator.username})
            return original(entry=entry, operator=operator)

        monkeypatch.setattr(real, "dlq_requeue", observed)
        return calls

    from django.utils import timezone

    from execution.models import QueueItem
    from execution.services.transition import transition

    def stand_in(*, entry: Any, operator: Any) -> Any:
        calls.append({"dlq_id": entry.dlq_id, "operator": operator.username})
        execution = transition(
            entry.execution,
            ExecutionStatus.QUEUED,
            actor=operator,
            actor_type=ActorType.USER,
            event_type="requeued",
        )
        QueueItem.objects.update_or_create(
            execution=execution,
            defaults={"status": "pending", "attempt_count": 0, "sla_class": execution.sla_class},
        )
        entry.requeued, entry.requeued_at, entry.requeued_by = True, timezone.now(), operator
        entry.save(update_fields=["requeued", "requeued_at", "requeued_by"])
        return execution

    module = types.ModuleType("execution.services.dlq")
    module.dlq_requeue = stand_in  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "execution.services.dlq", module)
    return calls
