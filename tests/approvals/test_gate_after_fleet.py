"""A gate between two fleet steps (docs/approvals.md#gates, docs/fleet.md), on a real worker
cluster against a real sshd on loopback: the gate opens once every target of the first fleet
step completed; approving runs the second fleet step on every target, rejecting never starts
it (its targets skipped). What ran, and how often, is read from marker files the targets'
commands write, not from our own records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from approvals.models import GateApproval
from approvals.services import approval_vote
from execution.enums import ExecutionStatus, Role, TargetStatus
from execution.models import Execution, ExecutionEvent, StepTarget
from execution.services.submit import execution_submit
from tests.approvals.conftest import member
from tests.execution.engine.helpers import wait_until, worker_cluster
from tests.execution.engine.test_fleet_workers import fleet_assets
from tests.support.sshd import LoopbackFleet

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("loopback_opened"),
]
S = ExecutionStatus
HOSTS = 4


@pytest.fixture
def fleet_sshd(settings: Any, tmp_path: Path) -> Iterator[LoopbackFleet]:
    settings.SSH_KNOWN_HOSTS_DIR = str(tmp_path / "known_hosts")
    fleet = LoopbackFleet(HOSTS).start()
    try:
        yield fleet
    finally:
        fleet.stop()


def _fleet_step(name: str, markers: Path) -> dict[str, Any]:
    # Each target appends "<step name>" to a file named after its address.
    marker = f'ip=$(echo "$SSH_CONNECTION" | cut -d" " -f3); sleep 0.2; echo {name} >> {markers}/$ip'
    return {
        "name": name,
        "type": "command",
        "targets": {"tags": ["web"]},
        "params": {"command": marker},
        "strategy": {"concurrency": 2, "batch": 2},
        "max_retries": 0,
    }


def _plan(name: str, markers: Path) -> dict[str, Any]:
    gate = {"name": "first half healthy?", "type": "approval", "params": {"level": 1}, "action_class": "read"}
    return {
        "name": name,
        "environment": "dev",
        "steps": [_fleet_step("first", markers), gate, _fleet_step("second", markers)],
    }


def _runs(markers: Path) -> dict[str, list[str]]:
    """Address -> the fleet steps that ran there, in order."""
    return {p.name: p.read_text().split() for p in markers.iterdir()}


def _targets(execution: Execution, step_index: int) -> list[str]:
    return list(
        StepTarget.objects.filter(execution_id=execution.execution_id, step_index=step_index)
        .order_by("target_index")
        .values_list("status", flat=True)
    )


def _at_the_gate(execution: Execution) -> GateApproval:
    wait_until(
        lambda: Execution.objects.get(pk=execution.pk).status == S.PENDING_APPROVAL,
        120,
        interval=0.2,
        what="the gate after the first fleet step",
    )
    # Every target of the first fleet step completed before the gate opened, and nothing of
    # the second step started.
    assert _targets(execution, 0) == [TargetStatus.COMPLETED] * HOSTS
    assert _targets(execution, 2) == [TargetStatus.PENDING] * HOSTS
    events = ExecutionEvent.objects.filter(execution=execution).order_by("id")
    done = list(events.filter(event_type="target_completed", step_index=0).values_list("id", flat=True))
    opened = events.get(event_type="gate_waiting").pk
    assert len(done) == HOSTS and max(done) < opened
    return GateApproval.objects.get(execution=execution)


def test_a_gate_after_a_fleet_step_waits_for_all_its_targets_then_runs_or_skips_the_next(
    tenant: Any, operator: Any, fleet_sshd: LoopbackFleet, tmp_path: Path
) -> None:
    assets = fleet_assets(tenant, fleet_sshd, HOSTS)
    addresses = sorted(asset.address for asset in assets)
    bob = member(tenant, "bob-approver", Role.APPROVER)
    approved_markers, rejected_markers = tmp_path / "approved", tmp_path / "rejected"
    approved_markers.mkdir()
    rejected_markers.mkdir()
    env = {"OUTBOUND_OPEN_NETWORKS": "127.0.0.0/8", "SSH_KNOWN_HOSTS_DIR": str(tmp_path / "known_hosts")}
    with (tmp_path / "cluster.log").open("wb") as log, worker_cluster(workers=1, log=log, **env):
        approved = execution_submit(tenant="acme", actor=operator, plan=_plan("to approve", approved_markers))
        rejected = execution_submit(tenant="acme", actor=operator, plan=_plan("to reject", rejected_markers))
        gate = _at_the_gate(approved.execution)
        assert _runs(approved_markers) == {address: ["first"] for address in addresses}
        approval_vote(approval=gate, voter=bob, decision="approve", comment="first half fine")
        wait_until(
            lambda: Execution.objects.get(pk=approved.execution.pk).status == S.COMPLETED,
            120,
            interval=0.2,
            what="the second fleet step after the approval",
        )
        gate = _at_the_gate(rejected.execution)
        approval_vote(approval=gate, voter=bob, decision="reject", comment="first half broke")
    # Approved: the second fleet step ran once on every target, the first never again.
    assert _runs(approved_markers) == {address: ["first", "second"] for address in addresses}
    assert _targets(approved.execution, 2) == [TargetStatus.COMPLETED] * HOSTS
    # Rejected: the second fleet step never started; its step is cancelled, its targets skipped.
    execution = Execution.objects.get(pk=rejected.execution.pk)
    assert execution.status == S.REJECTED
    assert _runs(rejected_markers) == {address: ["first"] for address in addresses}
    steps = list(execution.steps.order_by("step_index").values_list("status", flat=True))
    assert steps == [S.COMPLETED, S.REJECTED, S.CANCELLED]
    assert _targets(execution, 2) == [TargetStatus.SKIPPED] * HOSTS
    assert not ExecutionEvent.objects.filter(
        execution=execution, step_index=2, event_type="step_started"
    ).exists()
