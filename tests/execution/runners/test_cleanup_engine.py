"""On a cancel and at a step timeout the engine's cleanup() finds what the step holds and
releases it (docs/engine.md#cleanup), through the real engine in this process: a local process
group, a remote process group over the loopback sshd, a PostgreSQL backend running the
statement, a job and a workflow on the loopback Automation Service stand-in, a partial upload.

Each test spies on the runner's cleanup: the engine must call it with the right reason while
the held thing still runs (run() used to release it itself, or to empty the registry cleanup
read), and the thing must be gone after the attempt.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from execution.enums import ConnectionType, ExecutionStatus
from execution.models import Execution, ExecutionStep
from execution.runners.registry import get_runner
from execution.secrets.store import secret_set
from execution.services.cancel import execution_cancel
from execution.worker.runtime import drain
from tests.execution.engine.helpers import enqueue, make_execution, wait_until
from tests.factories import AssetFactory
from tests.support.automation import AutomationStandIn
from tests.support.sshd import LoopbackSshd

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("loopback_opened"),
]  # sshd, the target database


@dataclass
class CleanupCall:
    reason: str
    held: list[str]  # what ctx.held had when the engine called cleanup()
    running: bool  # whether the held thing still ran then


Spy = Callable[[str, Callable[[], bool]], list[CleanupCall]]


@pytest.fixture
def spy_cleanup(monkeypatch: pytest.MonkeyPatch) -> Spy:
    """Record each call of a runner's cleanup (reason, what was held, ``probe()``), then run it."""

    def spy(step_type: str, probe: Callable[[], bool]) -> list[CleanupCall]:
        calls: list[CleanupCall] = []
        runner_class = type(get_runner(step_type))
        real = runner_class.cleanup

        def cleanup(self: Any, ctx: Any, reason: str) -> None:
            held = getattr(ctx, "held", None)
            calls.append(CleanupCall(reason, held.names() if held is not None else [], probe()))
            real(self, ctx, reason)

        monkeypatch.setattr(runner_class, "cleanup", cleanup)
        return calls

    return spy


@pytest.fixture(autouse=True)
def _state_dirs(settings: Any, tmp_path: Path) -> None:
    settings.SSH_KNOWN_HOSTS_DIR = str(tmp_path / "known_hosts")
    settings.FILE_TRANSFER_DIR = str(tmp_path / "transfers")
    settings.SERVICE_RETRIES = 1


def run_one_attempt(
    execution: Execution, *, cancel_by: Any = None, once: Callable[[], bool] | None = None
) -> None:
    """One attempt, drained in this process (its watcher notices a cancel or the timeout); with
    ``cancel_by``, the execution is cancelled from another thread as soon as ``once()`` holds."""
    enqueue(execution)
    failures: list[BaseException] = []

    def cancel() -> None:
        try:
            wait_until(once or (lambda: True), 30, what="the step to hold something")
            execution_cancel(execution=Execution.objects.get(pk=execution.pk), actor=cancel_by)
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    canceller = threading.Thread(target=cancel) if cancel_by is not None else None
    if canceller is not None:
        canceller.start()
    drain(budget_seconds=1)
    if canceller is not None:
        canceller.join(60)
    if failures:
        raise failures[0]


def execution_of(tenant: Any, operator: Any, step: dict[str, Any]) -> Execution:
    return make_execution(tenant=tenant, actor=operator, sla_class="long", steps=[step])


def step_status(execution: Execution) -> str:
    return str(ExecutionStep.objects.get(execution=execution, step_index=0).status)


def processes(marker: str) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,stat,args"], capture_output=True, text=True, check=True).stdout
    return [
        line
        for line in ps.splitlines()
        if marker in line and "ps -eo" not in line and line.split()[1][:1] != "Z"
    ]


def sleep_marker() -> str:
    """A unique sleep duration: this test's processes in ps."""
    return f"60.{uuid.uuid4().int % 10**8:08d}"


def assert_released(calls: list[CleanupCall], reason: str, held: str) -> None:
    assert len(calls) == 1, calls
    assert calls[0].reason == reason
    assert len(calls[0].held) == 1 and calls[0].held[0].startswith(held), calls[0].held
    assert calls[0].running, f"the {held} was no longer running when the engine called cleanup()"


# --- local process group ---------------------------------------------------------------------


@pytest.mark.parametrize("stop", ["cancelled", "timeout"])
def test_a_local_process_group_is_killed_by_cleanup(
    tenant: Any, operator: Any, local_asset: Any, spy_cleanup: Spy, stop: str
) -> None:
    marker = sleep_marker()
    calls = spy_cleanup("command", lambda: bool(processes(marker)))
    step: dict[str, Any] = {
        "type": "command",
        "target": {"asset_id": local_asset.pk},
        "params": {"command": f"sleep {marker} & sleep {marker}"},
    }
    if stop == "timeout":
        step["timeout_seconds"] = 2
    execution = execution_of(tenant, operator, step)
    run_one_attempt(
        execution,
        cancel_by=operator if stop == "cancelled" else None,
        once=lambda: len(processes(marker)) >= 2,
    )
    assert step_status(execution) == stop
    assert_released(calls, stop, "local process group")
    assert not processes(marker), processes(marker)


# --- remote process group over SSH -------------------------------------------------------------


@pytest.fixture
def ssh_asset(tenant: Any, sshd: LoopbackSshd) -> Any:
    secret_set(tenant=tenant, path="ssh-key", value=sshd.client_private_key)
    return AssetFactory(
        tenant=tenant,
        hostname="ssh-loopback",
        connection_type=ConnectionType.SSH,
        address="127.0.0.1",
        port=sshd.port,
        username=sshd.username,
        credential_ref="db:ssh-key",
    )


@pytest.mark.parametrize("stop", ["cancelled", "timeout"])
def test_a_remote_process_group_is_killed_by_cleanup(
    tenant: Any, operator: Any, ssh_asset: Any, spy_cleanup: Spy, stop: str
) -> None:
    marker = sleep_marker()  # sshd runs on this machine: the remote processes are in ps here
    calls = spy_cleanup("command", lambda: bool(processes(marker)))
    step: dict[str, Any] = {
        "type": "command",
        "target": {"asset_id": ssh_asset.pk},
        "params": {"command": f"sleep {marker} & sleep {marker}"},
    }
    if stop == "timeout":
        step["timeout_seconds"] = 3
    execution = execution_of(tenant, operator, step)
    run_one_attempt(
        execution,
        cancel_by=operator if stop == "cancelled" else None,
        once=lambda: len(processes(marker)) >= 2,
    )
    assert step_status(execution) == stop
    assert_released(calls, stop, "remote process group")
    assert not processes(marker), processes(marker)


# --- PostgreSQL backend ----------------------------------------------------------------------------


_target: Any = None


@pytest.fixture
def database_asset(tenant: Any, target_pg: Any) -> Any:
    global _target
    _target = target_pg
    return AssetFactory(
        tenant=tenant,
        hostname="pg-loopback",
        connection_type=ConnectionType.DATABASE,
        **target_pg.asset_fields(),
    )


def backend_running(marker: str) -> bool:
    """Does the database asset's server (tests/support/pgtarget.py) still run the statement?"""
    assert _target is not None
    with contextlib.closing(_target.connect()) as own, own.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()"
            " AND query LIKE %s",
            [f"%{marker}%"],
        )
        return bool(cur.fetchone()[0])


def sql_step(database_asset: Any, query: str, **extra: Any) -> dict[str, Any]:
    return {"type": "sql", "target": {"asset_id": database_asset.pk}, "params": {"query": query}, **extra}


def test_a_cancel_stops_the_statement_on_its_backend_in_cleanup(
    tenant: Any, operator: Any, database_asset: Any, spy_cleanup: Spy
) -> None:
    marker = f"opsc-{uuid.uuid4().hex}"
    calls = spy_cleanup("sql", lambda: backend_running(marker))
    execution = execution_of(
        tenant, operator, sql_step(database_asset, f"SELECT pg_sleep(60) /* {marker} */")
    )
    run_one_attempt(execution, cancel_by=operator, once=lambda: backend_running(marker))
    assert step_status(execution) == ExecutionStatus.CANCELLED
    assert_released(calls, "cancelled", "database backend")
    assert not backend_running(marker)


def test_the_step_timeout_stops_a_statement_that_turned_statement_timeout_off(
    tenant: Any, operator: Any, database_asset: Any, spy_cleanup: Spy
) -> None:
    # statement_timeout is only the server's backstop: the statement may turn it off. The
    # step timeout still ends the step, and cleanup() cancels the statement.
    marker = f"opsc-{uuid.uuid4().hex}"
    calls = spy_cleanup("sql", lambda: backend_running(marker))
    query = f"SET statement_timeout = 0; SELECT pg_sleep(60) /* {marker} */"
    execution = execution_of(tenant, operator, sql_step(database_asset, query, timeout_seconds=2))
    run_one_attempt(execution)
    assert step_status(execution) == ExecutionStatus.TIMEOUT
    assert_released(calls, "timeout", "database backend")
    assert not backend_running(marker)


def test_a_backend_that_ignores_the_cancel_request_is_terminated(
    tenant: Any, operator: Any, database_asset: Any, spy_cleanup: Spy
) -> None:
    # The statement swallows query_canceled (a cancel request, or statement_timeout): only
    # pg_terminate_backend ends it.
    marker = f"opsc-{uuid.uuid4().hex}"
    calls = spy_cleanup("sql", lambda: backend_running(marker))
    stubborn = (
        "DO $$ BEGIN FOR i IN 1..60 LOOP BEGIN PERFORM pg_sleep(0.5); "
        f"EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$ /* {marker} */"
    )
    execution = execution_of(tenant, operator, sql_step(database_asset, stubborn))
    run_one_attempt(execution, cancel_by=operator, once=lambda: backend_running(marker))
    assert step_status(execution) == ExecutionStatus.CANCELLED
    assert_released(calls, "cancelled", "database backend")
    assert not backend_running(marker)


# --- Automation Service jobs --------------------------------------------------------------------


@pytest.fixture
def service(settings: Any) -> Iterator[AutomationStandIn]:
    with AutomationStandIn(
        {"long": [("wait", "echo waiting; sleep 60"), ("never", "echo never")]}
    ) as stand_in:
        settings.AUTOMATION_SERVICE_URL = stand_in.url
        yield stand_in


def job_running(service: AutomationStandIn) -> bool:
    jobs = list(service.jobs.values())
    return len(jobs) == 1 and jobs[0].status == "running" and "waiting" in jobs[0].stdout


def automation_step(tenant: Any, kind: str) -> dict[str, Any]:
    if kind == "workflow":
        AssetFactory(tenant=tenant, hostname="app-3", connection_type=ConnectionType.SSH, address="10.0.0.3")
        return {"type": "workflow", "target": {"hostname": "app-3"}, "params": {"workflow": "long"}}
    AssetFactory(tenant=tenant, hostname="auto-1", connection_type=ConnectionType.AUTOMATION)
    return {
        "type": "command",
        "target": {"hostname": "auto-1"},
        "params": {"command": "echo waiting; sleep 60"},
    }


@pytest.mark.parametrize("kind", ["workflow", "command"])
@pytest.mark.parametrize("stop", ["cancelled", "timeout"])
def test_an_automation_job_is_cancelled_on_the_service_by_cleanup(
    tenant: Any, operator: Any, service: AutomationStandIn, spy_cleanup: Spy, stop: str, kind: str
) -> None:
    calls = spy_cleanup(kind, lambda: job_running(service))
    step = automation_step(tenant, kind)
    if stop == "timeout":
        step["timeout_seconds"] = 3
    execution = execution_of(tenant, operator, step)
    run_one_attempt(
        execution, cancel_by=operator if stop == "cancelled" else None, once=lambda: job_running(service)
    )
    assert step_status(execution) == stop
    assert_released(calls, stop, "automation job")
    (job,) = service.jobs.values()
    assert job.status == "cancelled"  # at the service, before its own timeout (step + 5 s)
    assert job.process is not None and job.process.wait(5) != 0  # killed, not finished


# --- partial upload --------------------------------------------------------------------------------


def test_the_step_timeout_stops_an_upload_and_cleanup_removes_the_partial_file(
    tenant: Any, operator: Any, ssh_asset: Any, spy_cleanup: Spy, tmp_path: Path
) -> None:
    remote = tmp_path / "remote" / "big.bin"
    remote.parent.mkdir()
    calls = spy_cleanup("file", remote.exists)
    step = {
        "type": "file",
        "target": {"asset_id": ssh_asset.pk},
        "params": {"direction": "upload", "content": "x" * 2_000_000, "remote_path": str(remote)},
        "timeout_seconds": 0.001,  # past at the first chunk
    }
    execution = execution_of(tenant, operator, step)
    run_one_attempt(execution)
    assert step_status(execution) == ExecutionStatus.TIMEOUT
    assert_released(calls, "timeout", "sftp connection")
    assert not remote.exists()
