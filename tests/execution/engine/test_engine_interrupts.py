"""The engine in this process: a cancel and the step and execution timeouts end a running
command (its child process killed) with the right status (docs/contract.md#cancellation)."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid

import pytest
from django.db import connection

from execution.enums import ExecutionStatus
from execution.models import DeadLetter, ExecutionLock, ExecutionStep, TimeoutPolicy
from execution.services.cancel import execution_cancel
from execution.worker.runtime import drain
from tests.execution.engine.helpers import enqueue, event_types, make_execution, pid_alive, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _sleeper(tenant, operator, local_asset, **step):  # type: ignore[no-untyped-def]
    """A long command whose process carries the execution id (to find its pid)."""
    execution_id = uuid.uuid4()
    command = {
        "type": "command",
        "target": {"asset_id": local_asset.pk},
        "params": {"command": f"sleep 30 # {execution_id}"},
    }
    return make_execution(
        tenant=tenant,
        actor=operator,
        sla_class="long",
        execution_id=execution_id,
        steps=[{**command, **step}],
    )


def _run_in_thread(execution):  # type: ignore[no-untyped-def]
    def target() -> None:
        try:
            drain(budget_seconds=1)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def _running_pid(execution) -> int:  # type: ignore[no-untyped-def]
    wait_until(
        lambda: ExecutionStep.objects.filter(execution=execution, status="running").exists(),
        30,
        what="step running",
    )
    marker = str(execution.execution_id)
    found: list[int] = []

    def find() -> bool:
        out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
        found[:] = [int(p) for p in out]
        return bool(found)

    wait_until(find, 10, what="child process")
    return found[0]


def test_cancel_during_a_long_command_ends_cancelled_quickly_and_kills_the_child(
    tenant, operator, local_asset
) -> None:
    execution = _sleeper(tenant, operator, local_asset)
    enqueue(execution)
    thread = _run_in_thread(execution)
    pid = _running_pid(execution)
    asked = time.monotonic()
    execution_cancel(execution=execution, actor=operator)
    wait_until(
        lambda: type(execution).objects.get(pk=execution.pk).status == "cancelled", 10, what="cancelled"
    )
    # docs/contract.md#cancellation: noticed within a second; generous on a loaded box
    assert time.monotonic() - asked < 2.0 + 1.0
    thread.join(30)
    wait_until(lambda: not pid_alive(pid), 5, what="child gone")
    assert ExecutionStep.objects.get(execution=execution).status == ExecutionStatus.CANCELLED
    assert not ExecutionLock.objects.filter(execution=execution, is_active=True).exists()
    assert "cancel_requested" in event_types(execution)


def test_step_timeout_ends_timeout_and_kills_the_child(tenant, operator, local_asset) -> None:
    execution = _sleeper(tenant, operator, local_asset, timeout_seconds=1)
    enqueue(execution)
    thread = _run_in_thread(execution)
    pid = _running_pid(execution)
    thread.join(60)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.TIMEOUT
    assert not pid_alive(pid)
    assert DeadLetter.objects.get(execution=execution).failure_reason == "execution_timeout"


def test_execution_timeout_ends_timeout_and_kills_the_child(tenant, operator, local_asset) -> None:
    TimeoutPolicy.objects.filter(sla_class="long", action_class="modify").update(execution_timeout_seconds=2)
    execution = _sleeper(tenant, operator, local_asset)
    enqueue(execution)
    thread = _run_in_thread(execution)
    pid = _running_pid(execution)
    thread.join(60)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.TIMEOUT
    assert not pid_alive(pid)
