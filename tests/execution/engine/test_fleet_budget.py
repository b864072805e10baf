"""Query budget of a fleet step (docs/fleet.md "Speed"): its assets, outbound rules and
credentials are looked up once for the step, so what its targets cost in statements does not
grow with their number beyond each target's start and end rows.

Counted statements of every database connection the step uses (the worker's own and each
pool thread's), at a real sshd on loopback; never timings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.backends.signals import connection_created

from execution.enums import ExecutionStatus, TargetStatus
from execution.models import SecretAccess, StepTarget
from execution.services.submit import execution_submit
from execution.worker.runtime import drain
from tests.execution.engine.test_fleet_workers import fleet_assets
from tests.support.sshd import LoopbackFleet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_opened")]


@pytest.fixture(autouse=True)
def _state_dirs(settings: Any, tmp_path: Path) -> None:
    settings.SSH_KNOWN_HOSTS_DIR = str(tmp_path / "known_hosts")


@pytest.fixture(scope="module")
def six_sshd() -> Iterator[LoopbackFleet]:
    fleet = LoopbackFleet(6).start()
    try:
        yield fleet
    finally:
        fleet.stop()


def _run(
    tenant: Any, operator: Any, fleet: LoopbackFleet, n: int, concurrency: int = 2
) -> dict[str, list[str]]:
    """Run one fleet step on ``n`` targets; the statements by thread kind (pool or worker)."""
    fleet_assets(tenant, fleet, n)
    step = {
        "name": "all",
        "type": "command",
        "targets": {"tags": ["web"]},
        "params": {"command": "true"},
        "strategy": {"concurrency": concurrency},
        "max_retries": 0,
    }
    plan = {"name": f"{n} targets", "environment": "dev", "steps": [step]}
    execution = execution_submit(tenant="acme", actor=operator, plan=plan).execution
    seen: dict[str, list[str]] = {"pool": [], "worker": []}
    lock = threading.Lock()

    def counter(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        kind = "pool" if threading.current_thread().name.startswith("fleet") else "worker"
        with lock:
            seen[kind].append(sql)
        return execute(sql, params, many, context)

    def wrap(sender: Any, connection: Any, **kwargs: Any) -> None:
        connection.execute_wrappers.append(counter)

    connection_created.connect(wrap)
    try:
        with connection.execute_wrapper(counter):
            drain(budget_seconds=5)
    finally:
        connection_created.disconnect(wrap)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    rows = StepTarget.objects.filter(execution_id=execution.execution_id)
    assert [r.status for r in rows] == [TargetStatus.COMPLETED] * n
    # The credential was read (and audited) for the step, not per target.
    assert SecretAccess.objects.filter(execution_id=execution.execution_id).count() == 1
    return seen


def _target_rows(statements: list[str]) -> int:
    return sum(1 for sql in statements if sql.startswith('UPDATE "execution_step_targets"'))


def test_a_fleet_steps_statements_grow_per_target_only_by_its_start_and_end_rows(
    tenant: Any, operator: Any, six_sshd: LoopbackFleet
) -> None:
    two = _run(tenant, operator, six_sshd, 2)
    StepTarget.objects.all().delete()
    from execution.models import Asset

    Asset.objects.all().delete()
    six = _run(tenant, operator, six_sshd, 6)
    # The pool threads' lookups (assets, environment, outbound rules, the credential and its
    # audit row) are the step's: as many at six targets as at two.
    assert len(six["pool"]) == len(two["pool"]), (two["pool"], six["pool"])
    # The worker's: each target's start and end rows, plus what the step does once or per poll
    # (the targets' events are one INSERT per poll).
    grown = [sql for sql in six["worker"] if not sql.startswith('INSERT INTO "execution_events"')]
    base = [sql for sql in two["worker"] if not sql.startswith('INSERT INTO "execution_events"')]
    assert len(grown) - len(base) <= (_target_rows(six["worker"]) - _target_rows(two["worker"])), (
        base,
        grown,
    )
    assert _target_rows(six["worker"]) - _target_rows(two["worker"]) <= 2 * 4


def test_the_targets_started_in_one_poll_get_one_start_update(
    tenant: Any, operator: Any, six_sshd: LoopbackFleet
) -> None:
    """Six targets, six at once: they start in the fan-out's first poll, marked running by one
    UPDATE (one per target before)."""
    seen = _run(tenant, operator, six_sshd, 6, concurrency=6)
    starts = [
        sql
        for sql in seen["worker"]
        if sql.startswith('UPDATE "execution_step_targets"') and '"started_at"' in sql
    ]
    assert len(starts) == 1, starts
