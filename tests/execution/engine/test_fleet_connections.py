"""SSH connections kept across the steps of an execution (docs/fleet.md "Connections"), and the
database connection each pool thread keeps for its targets.

Counted at a real sshd on loopback (LogLevel INFO logs each login; sshd forks one process per
open connection), not from our own records.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db.backends.signals import connection_created

from execution.enums import ExecutionStatus, TargetStatus
from execution.models import StepTarget
from execution.services.submit import execution_submit
from execution.worker.runtime import drain
from tests.execution.engine.helpers import wait_until
from tests.execution.engine.test_fleet_workers import command, fleet_assets, marked
from tests.support.sshd import LoopbackFleet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_opened")]


@pytest.fixture
def counted_fleet() -> Iterator[LoopbackFleet]:
    fleet = LoopbackFleet(3, log_level="INFO").start()
    try:
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(autouse=True)
def _state_dirs(settings: Any, tmp_path: Path) -> None:
    settings.SSH_KNOWN_HOSTS_DIR = str(tmp_path / "known_hosts")


def test_a_two_step_plan_on_three_targets_opens_three_connections_and_closes_them_at_the_end(
    tenant: Any, operator: Any, counted_fleet: LoopbackFleet, tmp_path: Path
) -> None:
    fleet_assets(tenant, counted_fleet, 3)
    markers = tmp_path / "markers"
    markers.mkdir()
    step = {
        "type": "command",
        "targets": {"tags": ["web"]},
        "params": {"command": command(markers)},
        "strategy": {"concurrency": 3},
        "max_retries": 0,
    }
    plan = {
        "name": "two steps",
        "environment": "dev",
        "steps": [{**step, "name": "first"}, {**step, "name": "second"}],
    }
    execution = execution_submit(tenant="acme", actor=operator, plan=plan).execution
    drain(budget_seconds=5)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    rows = StepTarget.objects.filter(execution_id=execution.execution_id)
    assert sorted(r.status for r in rows) == [TargetStatus.COMPLETED] * 6
    assert set(marked(markers).values()) == {2} and len(marked(markers)) == 3  # both steps ran on each
    (server,) = counted_fleet.servers
    assert server.logins() == 3  # one login per target, not one per target and step
    # The attempt's end closed them (sshd's process of each connection exits).
    wait_until(lambda: server.open_connections() == 0, timeout=15, what="the connections closed")


def test_a_pool_thread_keeps_one_database_connection_for_its_targets(
    tenant: Any, operator: Any, tmp_path: Path
) -> None:
    """Six targets through two pool threads open at most two database connections (one per
    target before), and the step's end closes them."""
    opened: list[tuple[str, Any]] = []

    def count(sender: Any, connection: Any, **kwargs: Any) -> None:
        if threading.current_thread().name.startswith("fleet"):
            opened.append((threading.current_thread().name, connection))

    fleet = LoopbackFleet(6).start()
    try:
        fleet_assets(tenant, fleet, 6)
        step = {
            "name": "six",
            "type": "command",
            "targets": {"tags": ["web"]},
            "params": {"command": "true"},
            "strategy": {"concurrency": 2},
            "max_retries": 0,
        }
        plan = {"name": "six targets", "environment": "dev", "steps": [step]}
        execution = execution_submit(tenant="acme", actor=operator, plan=plan).execution
        connection_created.connect(count)
        try:
            drain(budget_seconds=5)
        finally:
            connection_created.disconnect(count)
    finally:
        fleet.stop()
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    assert 1 <= len(opened) <= 2, opened
    assert all(wrapper.connection is None for _, wrapper in opened)  # closed when the step ended
