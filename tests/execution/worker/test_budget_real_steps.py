"""Round-trip budgets of what a worker really runs (``drain``: claim, attempt, the next empty
claim) for steps with a target, a secret and output (docs/engine.md "Round trips").

Counted statements of the worker's connection, never timings. Each step with a target costs
its asset lookup; each secret reference its read and its audit row; output its
``step_output`` events (a flush per stream at most); the execution-scope lock its take (its
release rides on ``finish``). tests/execution/worker/test_store.py holds the budgets of the
statements alone (noop and sleep steps). What is measured is the function the worker process calls,
with the runners that touch the world: a local ``command`` (a real process).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from execution.enums import ExecutionStatus
from execution.models import Execution, ExecutionEvent, SecretAccess
from execution.secrets.store import secret_set
from execution.worker.runtime import drain
from tests.execution.engine.helpers import enqueue, make_execution

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "budget-secret-9137"


def _command_step(local_asset: Any, n: int) -> dict[str, Any]:
    return {
        "name": f"c{n}",
        "type": "command",
        "target": {"asset_id": local_asset.pk},
        "params": {
            "command": 'echo "line one"; echo "token $TOKEN" >&2',
            "env": {"TOKEN": {"type": "secret", "path": "db:acme/budget"}},
        },
    }


def _drained(execution: Execution) -> tuple[Execution, list[str]]:
    enqueue(execution)
    with CaptureQueriesContext(connection) as queries:
        assert drain(budget_seconds=30) == 1
    execution.refresh_from_db()
    return execution, [q["sql"] for q in queries.captured_queries]


def _cost(tenant: Any, operator: Any, local_asset: Any, steps: int) -> int:
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[_command_step(local_asset, n) for n in range(steps)],
        action_class="read",
    )
    execution, statements = _drained(execution)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    # The steps really ran with their target, secret and output (masked).
    assert SecretAccess.objects.filter(execution_id=execution.execution_id).count() == steps
    out = ExecutionEvent.objects.filter(execution=execution, event_type="step_output")
    assert out.exists() and all(SECRET not in str(e.details) for e in out)
    assert {s.output_data["stderr"] for s in execution.steps.all()} == {"token ***\n"}
    return len(statements)


# Measured (1 step: 17, 3 steps: 45). Fixed: the claim 1, the fan-out wake 1, the lock take
# 3 (prepare, the lock row's insert, execute), start 1, the empty claim that ends the drain 1.
# Per step: its asset 1, its secret's read 1 and audit row 3 (BEGIN, INSERT, COMMIT), its
# output up to two flushes of 4 (BEGIN, INSERT, COMMIT, NOTIFY; one per stream when they
# arrive apart) and the boundary or finish statement 1.
FIXED = 7
PER_STEP = 14
LEAST_PER_STEP = 10  # one output flush: the step's effects are all there


@pytest.mark.parametrize("steps", [1, 3])
def test_a_drain_of_command_steps_with_a_target_a_secret_and_output_stays_in_its_budget(
    tenant: Any, operator: Any, local_asset: Any, steps: int
) -> None:
    secret_set(tenant=tenant, path="acme/budget", value=SECRET)
    cost = _cost(tenant, operator, local_asset, steps)
    assert FIXED + LEAST_PER_STEP * steps <= cost <= FIXED + PER_STEP * steps, cost
