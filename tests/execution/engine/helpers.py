"""Build approved executions for engine tests, and run real worker clusters."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import IO, Any

from execution.enums import STEP_MAX_RETRIES_DEFAULT, ActionClass, ExecutionStatus
from execution.models import Execution, ExecutionEvent, ExecutionStep
from execution.services.queue import queue_enqueue
from execution.services.transition import transition
from tests.factories import ExecutionFactory, plan_hash
from tests.support.processes import manage_argv, subprocess_env

CANONICAL = {"shell": "command", "bash": "command"}


def make_execution(
    *,
    tenant: Any,
    actor: Any,
    steps: list[dict[str, Any]],
    sla_class: str = "medium",
    action_class: str = "modify",
    priority: int = 5,
    approve: bool = True,
    **fields: Any,
) -> Execution:
    """An execution with its step rows, approved (status ``approved``) unless told otherwise.
    A step's class (its lock mode) is its ``action_class``, else the execution's.
    ``fields`` are further columns (``execution_id``, ``dry_run``, ...); ``lock_scope`` goes
    into the plan."""
    plan: dict[str, Any] = {"name": "engine test", "environment": "dev", "steps": steps}
    if "lock_scope" in fields:
        plan["lock_scope"] = fields.pop("lock_scope")
    execution = ExecutionFactory(
        tenant=tenant,
        actor=actor,
        plan_snapshot=plan,
        plan_hash=plan_hash(plan),
        sla_class=sla_class,
        action_class=action_class,
        priority=priority,
        **fields,
    )
    # As the submission does: a step runs max_retries + 1 times, by default per its class.
    for index, step in enumerate(steps):
        target = step.get("target") or {}
        ExecutionStep.objects.create(
            max_retries=step.get(
                "max_retries", STEP_MAX_RETRIES_DEFAULT[ActionClass(step.get("action_class", action_class))]
            ),
            execution=execution,
            step_index=index,
            step_name=step.get("name", f"step {index}"),
            step_type=CANONICAL.get(step["type"], step["type"]),
            target_asset_id=str(target.get("asset_id", "")),
            target_hostname=target.get("hostname", ""),
            action_class=step.get("action_class", action_class),
        )
    if approve:
        transition(execution, ExecutionStatus.APPROVED, reason="test")
    return Execution.objects.get(pk=execution.pk)


def enqueue(execution: Execution, priority: int | None = None) -> None:
    queue_enqueue(execution=execution, priority=priority)


def drain_until_done(execution: Execution, timeout: float = 60) -> Execution:
    """Drain in this process until ``execution`` has left queued/running; the fresh row."""
    from execution.worker.runtime import drain

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        drain(budget_seconds=5)
        execution.refresh_from_db()
        if execution.status not in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING):
            return execution
        time.sleep(0.05)
    raise AssertionError(f"execution still {execution.status}")


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def statuses(*executions: Execution) -> list[str]:
    return list(Execution.objects.filter(pk__in=[e.pk for e in executions]).values_list("status", flat=True))


@contextmanager
def worker_cluster(
    workers: int = 2, log: IO[bytes] | None = None, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``manage.py qcluster`` on the test database; stopped (SIGTERM) afterwards.

    ``log``: a file that gets the cluster's stdout and stderr (its logs), else inherited."""
    child_env = subprocess_env(OPS_WORKERS=str(workers), **env)
    proc = subprocess.Popen(
        manage_argv("qcluster"),
        env=child_env,
        start_new_session=True,
        stdout=log,
        stderr=subprocess.STDOUT if log is not None else None,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything of the cluster left behind


def child_pids(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def event_types(execution: Execution) -> list[str]:
    """The execution's event types in the order they were written."""
    return list(
        ExecutionEvent.objects.filter(execution=execution).order_by("id").values_list("event_type", flat=True)
    )


Span = tuple[datetime, datetime, str, str]  # acquired, released, execution, mode


def lock_spans(executions: list[Execution]) -> dict[str, list[Span]]:
    """asset -> (acquired, released, execution, mode) of every hold, from the lock events."""
    spans: dict[str, list[Span]] = defaultdict(list)
    opened: dict[tuple[str, str], tuple[datetime, str]] = {}
    events = ExecutionEvent.objects.filter(
        execution__in=executions, event_type__in=["lock_acquired", "lock_released"]
    ).order_by("id")
    for event in events:
        for asset in event.details["assets"]:
            key = (str(event.execution_id), asset)
            if event.event_type == "lock_acquired":
                opened[key] = (event.created_at, event.details["modes"][asset])
            else:
                began, mode = opened.pop(key)
                spans[asset].append((began, event.created_at, str(event.execution_id), mode))
    assert not opened, f"locks never released: {opened}"
    return spans
