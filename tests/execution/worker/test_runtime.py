"""The worker runtime on real clusters: SIGTERM to the whole process group, heartbeats, wake-ups."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from execution.enums import ExecutionStatus, QueueStatus
from execution.models import Execution, ExecutionEvent, ExecutionStep, QueueItem, WorkerHeartbeat
from tests.execution.engine.helpers import enqueue, make_execution, pid_alive, wait_until, worker_cluster

pytestmark = pytest.mark.django_db(transaction=True)
SERVICES = Path(__file__).resolve().parents[3] / "execution" / "services"


def _group_pids(pgid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _sleeping(execution: Execution) -> bool:
    return ExecutionStep.objects.filter(execution=execution, step_index=0, status="running").exists()


def _sigterm_group_and_wait(cluster: subprocess.Popen[bytes]) -> None:
    os.killpg(cluster.pid, signal.SIGTERM)  # as systemd, docker and Kubernetes do
    cluster.wait(60)
    wait_until(
        lambda: not any(pid_alive(p) for p in _group_pids(cluster.pid)), 30, what="the whole group gone"
    )


def test_sigterm_to_the_group_during_a_long_step_hands_the_execution_back(tenant: Any, operator: Any) -> None:
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[{"name": "long", "type": "sleep", "params": {"seconds": 60}}, {"type": "noop"}],
        action_class="read",
    )
    with worker_cluster(workers=1, OPS_SHUTDOWN_GRACE_SECONDS="1") as cluster:
        enqueue(execution)
        wait_until(lambda: _sleeping(execution), 60, what="the sleep step running")
        # The worker's own heartbeat row names the execution it runs.
        wait_until(
            lambda: WorkerHeartbeat.objects.filter(current_execution_id=execution.execution_id).exists(),
            15,
            what="current_execution_id in the worker's heartbeat",
        )
        _sigterm_group_and_wait(cluster)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.QUEUED, "handed back, not left running for the reaper"
    item = QueueItem.objects.get(execution=execution)
    assert item.status == QueueStatus.PENDING and item.lease_token is None
    assert item.attempt_count == 0, "a shutdown is not a failed attempt"
    handed = ExecutionEvent.objects.filter(execution=execution, event_type="retry_scheduled").get()
    assert "SIGTERM" in handed.details["reason"]
    assert ExecutionStep.objects.get(execution=execution, step_index=0).status == ExecutionStatus.RUNNING
    assert (
        WorkerHeartbeat.objects.filter(stopped_at__isnull=True, current_execution_id__isnull=False).count()
        == 0
    )


def test_sigterm_to_the_group_lets_a_short_step_finish(tenant: Any, operator: Any) -> None:
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[{"name": "short", "type": "sleep", "params": {"seconds": 2}}],
        action_class="read",
    )
    with worker_cluster(workers=1, OPS_SHUTDOWN_GRACE_SECONDS="20") as cluster:
        enqueue(execution)
        wait_until(lambda: _sleeping(execution), 60, what="the sleep step running")
        _sigterm_group_and_wait(cluster)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.COMPLETED
    assert QueueItem.objects.get(execution=execution).status == QueueStatus.COMPLETED


def test_services_import_neither_the_tasks_nor_the_worker_runtime() -> None:
    """Services wake the workers through execution.worker.wake only (no import circle)."""
    forbidden = ("execution.tasks", "execution.worker.runtime", "execution.worker.attempt")
    # runner.py is immediate mode run in the web process, which moves onto the workers.
    for path in [p for p in SERVICES.glob("*.py") if p.name != "runner.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(forbidden), f"{path.name} imports {node.module}"


def _mapped(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:  # gone since it was listed
        return ""


def test_a_fresh_worker_has_every_step_types_libraries_before_its_first_attempt() -> None:
    """The cluster imports the step types' modules before it forks: a worker starts with
    paramiko (cryptography's native module) and pglast's parser mapped, instead of importing
    them during its first attempt (0.3-1 s a fresh worker's first execution waited)."""
    with worker_cluster(workers=2) as cluster:
        # The cluster writes its heartbeat once its sentinel has forked the workers.
        wait_until(
            lambda: WorkerHeartbeat.objects.filter(worker_id__endswith=f":{cluster.pid}").exists(),
            60,
            what="the cluster's heartbeat",
        )
        wait_until(
            lambda: len(_group_pids(cluster.pid)) >= 4, 30, what="the cluster, its sentinel and 2 workers"
        )
        processes = {pid: _mapped(pid) for pid in _group_pids(cluster.pid)}
    python = {pid: maps for pid, maps in processes.items() if "libpython" in maps or "python3" in maps}
    assert len(python) >= 4, processes.keys()
    for pid, maps in python.items():
        assert "pglast/parser" in maps, f"process {pid} has not imported pglast"
        assert "cryptography/hazmat/bindings/_rust" in maps, f"process {pid} has not imported paramiko"
