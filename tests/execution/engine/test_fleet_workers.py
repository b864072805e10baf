"""Fleet steps through the engine against a real sshd on loopback (docs/fleet.md).

One sshd listens on 127.0.0.1 and on 127.0.0.2..; each asset is one address, so a target's
command learns which target it is from ``$SSH_CONNECTION`` and leaves a marker file named
after it: what ran, and how often, is read from the files, not from our own records.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from execution.enums import ConnectionType, ExecutionStatus, TargetStatus
from execution.models import Execution, ExecutionEvent, ExecutionStep, StepTarget, WorkerHeartbeat
from execution.secrets.store import secret_set
from execution.services.cancel import execution_cancel
from execution.services.submit import execution_submit
from execution.worker.runtime import drain
from tests.execution.engine.helpers import wait_until, worker_cluster
from tests.factories import AssetFactory
from tests.support.sshd import LoopbackFleet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_opened")]


@pytest.fixture(scope="module")
def fleet_sshd() -> Iterator[LoopbackFleet]:
    fleet = LoopbackFleet(30).start()
    try:
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(autouse=True)
def _state_dirs(settings: Any, tmp_path: Path) -> None:
    settings.SSH_KNOWN_HOSTS_DIR = str(tmp_path / "known_hosts")


def fleet_assets(tenant: Any, fleet: LoopbackFleet, count: int) -> list[Any]:
    for n, server in enumerate(fleet.servers):
        secret_set(tenant=tenant, path=f"fleet-key-{n}", value=server.client_private_key)
    return [
        AssetFactory(
            tenant=tenant,
            hostname=f"web-{i:02d}",
            connection_type=ConnectionType.SSH,
            address=address,
            port=server.port,
            username=server.username,
            credential_ref=f"db:fleet-key-{fleet.servers.index(server)}",
            tags=["web"],
            metadata={"host_key": " ".join(server.host_public_key)},
        )
        for i, (address, server) in enumerate(fleet.endpoints[:count])
    ]


def marked(markers: Path) -> dict[str, int]:
    """Address -> how many times a target's command ran there."""
    return {p.name: len(p.read_text().splitlines()) for p in markers.iterdir()} if markers.exists() else {}


def command(markers: Path, tail: str = "") -> str:
    return f'ip=$(echo "$SSH_CONNECTION" | cut -d" " -f3); echo run >> {markers}/$ip; {tail}'


def submit(operator: Any, step: dict[str, Any]) -> Execution:
    plan = {"name": "fleet", "environment": "dev", "steps": [step]}
    return execution_submit(tenant="acme", actor=operator, plan=plan).execution


def targets(execution: Execution) -> list[StepTarget]:
    return list(StepTarget.objects.filter(execution_id=execution.execution_id).order_by("target_index"))


def test_thirty_targets_in_quarter_batches_stop_once_more_than_two_failed(
    tenant: Any, operator: Any, fleet_sshd: LoopbackFleet, tmp_path: Path
) -> None:
    assets = fleet_assets(tenant, fleet_sshd, 30)
    markers = tmp_path / "markers"
    markers.mkdir()
    failing = [assets[i].address for i in (1, 9, 17)]  # one in each of the first three batches
    case = "|".join(failing)
    step = {
        "name": "restart",
        "type": "command",
        "targets": {"tags": ["web"]},
        "params": {"command": command(markers, f"case $ip in {case}) echo broken >&2; exit 3;; esac")},
        "strategy": {"concurrency": 8, "batch": "25%", "max_failures": 2},
        "max_retries": 0,
    }
    execution = submit(operator, step)
    rows = targets(execution)
    assert [r.batch for r in rows] == [0] * 8 + [1] * 8 + [2] * 8 + [3] * 6
    drain(budget_seconds=5)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    step_row = ExecutionStep.objects.get(execution=execution)
    assert step_row.status == ExecutionStatus.FAILED
    assert "3 of 30 targets failed (max_failures 2)" in step_row.error_message
    rows = targets(execution)
    by_status = {
        status: [r.target_index for r in rows if r.status == status] for status in TargetStatus.values
    }
    assert by_status[TargetStatus.FAILED] == [1, 9, 17]
    assert by_status[TargetStatus.SKIPPED] == list(range(24, 30))  # the fourth batch never started
    assert by_status[TargetStatus.COMPLETED] == [i for i in range(24) if i not in (1, 9, 17)]
    failed = rows[9]
    assert failed.exit_code == 3 and "broken" in failed.output and failed.attempts == 1
    ran = marked(markers)
    assert set(ran) == {a.address for a in assets[:24]} and set(ran.values()) == {1}
    batches = ExecutionEvent.objects.filter(
        execution_id=execution.execution_id, event_type="fleet_batch_started"
    )
    assert [e.details["batch"] for e in batches.order_by("id")] == [0, 1, 2]
    ended = ExecutionEvent.objects.filter(
        execution_id=execution.execution_id, event_type__in=["target_completed", "target_failed"]
    )
    assert ended.count() == 24
    assert {e.details["hostname"] for e in ended.filter(event_type="target_failed")} == {
        rows[i].hostname for i in (1, 9, 17)
    }


def _remote_sleeps(marker: str) -> int:
    """Live ``sleep <marker>`` processes (sshd runs here: the remote ones are ours to see),
    read from /proc (a ps per poll would blur the measure on a loaded host)."""
    wanted = f"sleep\0{marker}\0".encode()
    count = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if fh.read() != wanted:
                    continue
            with open(f"/proc/{pid}/stat") as fh:
                count += fh.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            continue
    return count


def test_a_cancel_mid_batch_stops_every_running_target_within_a_second(
    tenant: Any, operator: Any, fleet_sshd: LoopbackFleet, tmp_path: Path
) -> None:
    fleet_assets(tenant, fleet_sshd, 12)
    markers = tmp_path / "markers"
    markers.mkdir()
    seconds = 600 + os.getpid() % 97  # a sleep nobody else runs: its processes are ours
    step = {
        "name": "hang",
        "type": "command",
        "targets": {"tags": ["web"]},
        "params": {"command": command(markers, f"sleep {seconds}")},
        "strategy": {"concurrency": 6, "batch": 6},
        "max_retries": 0,
    }
    execution = submit(operator, step)
    stopped: dict[str, float] = {}

    def cancel() -> None:
        try:
            wait_until(lambda: _remote_sleeps(str(seconds)) == 6, 60, what="six running targets")
            execution_cancel(execution=Execution.objects.get(pk=execution.pk), actor=operator)
            cancelled = time.monotonic()
            wait_until(lambda: _remote_sleeps(str(seconds)) == 0, 10, interval=0.02, what="targets stopped")
            stopped["after"] = time.monotonic() - cancelled
        finally:
            connection.close()

    canceller = threading.Thread(target=cancel)
    canceller.start()
    drain(budget_seconds=1)
    canceller.join(60)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLED
    assert stopped["after"] < 1.0, stopped  # the bound of docs/fleet.md, not a speed figure
    rows = targets(execution)
    assert [r.status for r in rows[:6]] == [TargetStatus.CANCELLED] * 6
    assert [r.status for r in rows[6:]] == [TargetStatus.SKIPPED] * 6  # the second batch never started
    assert len(marked(markers)) == 6


def _worker_pid(execution: Execution) -> int | None:
    beat = WorkerHeartbeat.objects.filter(current_execution_id=execution.execution_id).first()
    return int(beat.worker_id.rsplit(":", 1)[1]) if beat else None


def test_after_a_kill_9_the_resumed_step_never_runs_a_completed_target_again(
    tenant: Any, operator: Any, fleet_sshd: LoopbackFleet, tmp_path: Path
) -> None:
    fleet_assets(tenant, fleet_sshd, 12)
    markers = tmp_path / "markers"
    markers.mkdir()
    step = {
        "name": "slow",
        "type": "command",
        "targets": {"tags": ["web"]},
        "params": {"command": command(markers, "sleep 1")},
        "strategy": {"concurrency": 3, "batch": 3},
        "max_retries": 3,
    }
    recovery = {
        "OPS_LEASE_SECONDS": "3",
        "OPS_REAPER_INTERVAL_SECONDS": "1",
        "OPS_RETRY_BACKOFF_BASE_SECONDS": "0.2",
        "OUTBOUND_OPEN_NETWORKS": "127.0.0.0/8",  # as loopback_opened does in this process
    }
    execution = submit(operator, step)
    with (tmp_path / "cluster.log").open("wb") as log, worker_cluster(workers=1, log=log, **recovery):
        wait_until(
            lambda: (
                StepTarget.objects.filter(
                    execution_id=execution.execution_id, status=TargetStatus.COMPLETED
                ).count()
                >= 4
            ),
            60,
            what="four completed targets",
        )
        pid = _worker_pid(execution)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        done_before = {r.hostname for r in targets(execution) if r.status == TargetStatus.COMPLETED}
        wait_until(
            lambda: Execution.objects.get(pk=execution.pk).status == ExecutionStatus.COMPLETED,
            90,
            what="the resumed execution to complete",
        )
    rows = targets(execution)
    assert {r.status for r in rows} == {TargetStatus.COMPLETED}
    runs = marked(markers)
    addresses = {a.hostname: a.address for a in tenant.assets.all()}
    assert len(runs) == 12
    for hostname in done_before:
        assert runs[addresses[hostname]] == 1, f"{hostname} ran again after the kill"
        assert next(r for r in rows if r.hostname == hostname).attempts == 1
