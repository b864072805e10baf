"""A single ``target`` is a fleet of one (docs/fleet.md "A single target"): the worker takes
the step's targets from one list, which locks and runs the asset the submission resolved."""

from __future__ import annotations

from typing import Any

import pytest

from execution.enums import ExecutionStatus
from execution.models import Execution, ExecutionEvent, ExecutionStep
from execution.services.submit import execution_submit
from tests.execution.engine.helpers import drain_until_done
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_hostname_target_runs_on_the_asset_submitted_not_one_that_took_its_name_since(
    tenant: Any, operator: Any
) -> None:
    """The submission resolved ``web-1`` to asset A (the step row, the lock and the approval
    name A). A is renamed and another asset takes the name before a worker runs the step: the
    step runs on A, which it locked, not on the newcomer it never locked."""
    submitted = AssetFactory(tenant=tenant, hostname="web-1")
    plan = {
        "name": "one host",
        "environment": "dev",
        "steps": [
            {
                "name": "look",
                "type": "command",
                "target": {"hostname": "web-1"},
                "params": {"command": "true"},
            }
        ],
    }
    execution = execution_submit(tenant="acme", actor=operator, plan=plan).execution
    assert ExecutionStep.objects.get(execution=execution).target_asset_id == str(submitted.pk)
    Execution.objects.filter(pk=execution.pk).update(dry_run=True)  # what it would run, nothing run
    type(submitted).objects.filter(pk=submitted.pk).update(hostname="web-1-old")
    newcomer = AssetFactory(tenant=tenant, hostname="web-1")
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    done = ExecutionEvent.objects.get(execution=execution, event_type="step_completed")
    assert done.details["would_run"]["target"] == "web-1-old"
    locked = ExecutionEvent.objects.get(execution=execution, event_type="lock_acquired")
    assert locked.details["assets"] == [str(submitted.pk)] != [str(newcomer.pk)]
