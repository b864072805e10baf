"""Round-trip budget of a fleet step's per-target locks (docs/fleet.md "Locks", docs/engine.md
"Locks"): in ``step`` scope each target costs its take (with its running mark) and its release
(with its end) on the attempt's connection; in ``execution`` scope a target costs its rows
only. Counted statements of the worker's connection (``drain`` in this process), never
timings. One target at a time, so each target ends in a poll of its own."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from execution.enums import ExecutionStatus
from execution.models import ExecutionStep
from execution.plans.targets import step_targets_create
from execution.worker.runtime import drain
from tests.execution.engine.helpers import enqueue, make_execution
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _cost(tenant: Any, operator: Any, targets: int, scope: str) -> int:
    assets = [AssetFactory(tenant=tenant) for _ in range(targets)]
    step = {
        "name": "fleet",
        "type": "sleep",
        "params": {"seconds": 0},
        "targets": [{"asset_id": str(a.pk), "hostname": a.hostname} for a in assets],
        "strategy": {"concurrency": 1, "batch": "100%", "max_failures": 0, "pause_seconds": 0},
        "action_class": "modify",
    }
    execution = make_execution(tenant=tenant, actor=operator, lock_scope=scope, steps=[step])
    rows = list(ExecutionStep.objects.filter(execution=execution))
    ExecutionStep.objects.filter(pk=rows[0].pk).update(target_asset_id=str(assets[0].pk))
    step_targets_create(execution=execution, plan=execution.plan_snapshot, steps=rows)
    enqueue(execution)
    with CaptureQueriesContext(connection) as queries:
        assert drain(budget_seconds=30) == 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    return len(queries.captured_queries)


# Measured per target: execution scope 4 (its running mark, its end, its event, the event's
# NOTIFY: what it cost before targets took their own locks). Step scope 13: the take in one
# transaction with the running mark (BEGIN, the take, the running mark, COMMIT; the assets are
# new, so the lock row's insert and the take again: 2 more, once per asset ever), the release
# in one with the end (BEGIN, the release, its lock_released event, the end, the events,
# COMMIT, the NOTIFY).
PER_TARGET = {"execution": 4, "step": 13}


@pytest.mark.parametrize("scope", ["execution", "step"])
def test_a_fleet_target_costs_its_rows_and_in_step_scope_its_take_and_release(
    tenant: Any, operator: Any, scope: str
) -> None:
    two, five = _cost(tenant, operator, 2, scope), _cost(tenant, operator, 5, scope)
    per_target = (five - two) / 3
    assert per_target <= PER_TARGET[scope], (scope, two, five)
