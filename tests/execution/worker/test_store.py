"""The worker's statements: round-trip budgets of the hot path and the CAS guarantees.

The budgets are deterministic query counts (every statement of the worker's connection is
captured), never timings: an execution whose steps run inline (noop) costs 2 statements
(claim with context, then start + steps + outcome in one), whatever its length; any other
one-step execution 3 (claim, start, finish), an n-step one n + 2.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.db import DataError, connection
from django.test.utils import CaptureQueriesContext

from execution.enums import ExecutionStatus, QueueStatus
from execution.masking import secrets_of
from execution.models import DeadLetter, Execution, ExecutionEvent, ExecutionStep, QueueItem, SecretAccess
from execution.secrets.store import secret_set
from execution.services.cancel import execution_cancel
from execution.services.transition import transition
from execution.state_machine import is_legal
from execution.worker import claim, store
from execution.worker.attempt import attempt_run
from execution.worker.sql import Prepared
from tests.execution.engine.helpers import enqueue, make_execution

pytestmark = pytest.mark.django_db(transaction=True)


def _worker_path(execution: Execution) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        ctx = claim.claim_with_context(worker_id="budget")
        assert ctx is not None and ctx.pk == execution.pk
        outcome = attempt_run(ctx=ctx, worker_id="budget")
    return outcome, len(queries)


def _types(execution: Execution) -> list[str]:
    return list(
        ExecutionEvent.objects.filter(execution=execution).order_by("id").values_list("event_type", flat=True)
    )


def test_a_one_step_noop_execution_costs_2_round_trips(tenant: Any, operator: Any) -> None:
    execution = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}], action_class="read")
    enqueue(execution)
    outcome, round_trips = _worker_path(execution)
    assert outcome == ExecutionStatus.COMPLETED
    assert round_trips <= 2, round_trips
    assert _types(execution)[2:] == ["started", "step_started", "step_completed", "completed"]
    assert QueueItem.objects.get(execution=execution).status == QueueStatus.COMPLETED


@pytest.mark.parametrize("n", [2, 5])
def test_an_n_step_noop_execution_costs_2_round_trips(tenant: Any, operator: Any, n: int) -> None:
    steps = [{"type": "noop", "name": f"s{i}"} for i in range(n)]
    execution = make_execution(tenant=tenant, actor=operator, steps=steps, action_class="read")
    enqueue(execution)
    outcome, round_trips = _worker_path(execution)
    assert outcome == ExecutionStatus.COMPLETED
    assert round_trips <= 2, round_trips
    _assert_ran_in_order(execution, n)


def test_the_inline_path_writes_what_the_step_by_step_path_writes(tenant: Any, operator: Any) -> None:
    """Rows of a noop run inline and of a sleep run step by step: same columns filled."""
    ran = {}
    for step_type in ("noop", "sleep"):
        step = {"type": step_type, "params": {"seconds": 0}} if step_type == "sleep" else {"type": "noop"}
        execution = make_execution(tenant=tenant, actor=operator, steps=[step], action_class="read")
        enqueue(execution)
        assert _worker_path(execution)[0] == ExecutionStatus.COMPLETED
        execution.refresh_from_db()
        row = ExecutionStep.objects.get(execution=execution)
        ran[step_type] = (execution, row)
        assert execution.previous_status == ExecutionStatus.RUNNING
        assert execution.started_at and execution.completed_at and execution.timeout_at
        assert execution.started_at <= execution.completed_at
        assert execution.result is None  # the steps are in execution_steps only
        assert row.status == ExecutionStatus.COMPLETED and row.started_at and row.completed_at
        assert row.output_data and row.duration_ms is not None and row.retry_count == 0
        assert _types(execution)[2:] == ["started", "step_started", "step_completed", "completed"]
        started = ExecutionEvent.objects.get(execution=execution, event_type="started")
        assert (started.from_status, started.to_status) == ("queued", "running")
        assert started.details["worker"] == "budget"
    assert ran["noop"][1].output_data == {"noop": True}


def test_the_inline_path_loses_to_a_cancel_and_writes_no_start(tenant: Any, operator: Any) -> None:
    execution = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}], action_class="read")
    enqueue(execution)
    ctx = claim.claim_with_context(worker_id="w")
    assert ctx is not None
    execution_cancel(execution=execution)  # queued -> cancelled while we held the claim
    before = _types(execution)
    assert not store.run_inline(
        ctx=ctx, expected="queued", done=[{"index": 0, "status": "completed"}], events=[]
    )
    assert _types(execution) == before and "started" not in before
    assert Execution.objects.get(pk=execution.pk).started_at is None


def test_a_noop_with_a_secret_reference_runs_step_by_step(tenant: Any, operator: Any) -> None:
    """Resolving a reference reads a backend (perhaps a remote one) and writes an audit row:
    such a noop is not inline. Inline, its value stayed registered in the worker after the
    attempt, and an unresolvable one was resolved (and audited) twice in one attempt."""
    secret_set(tenant=tenant, path="acme/noop-token", value="noop-secret-4242")
    runs = {}
    for name, path in (("resolved", "db:acme/noop-token"), ("missing", "db:acme/no-such-token")):
        step = {"type": "noop", "params": {"token": {"type": "secret", "path": path}}}
        execution = make_execution(tenant=tenant, actor=operator, steps=[step], action_class="read")
        enqueue(execution)
        runs[name] = (execution, _worker_path(execution))
    execution, (outcome, _) = runs["resolved"]
    assert outcome == ExecutionStatus.COMPLETED
    assert _types(execution)[2:] == ["started", "step_started", "step_completed", "completed"]
    assert secrets_of(execution.execution_id) == (), "forgotten when the attempt ended"
    execution, (outcome, _) = runs["missing"]
    assert Execution.objects.get(pk=execution.pk).status in (ExecutionStatus.QUEUED, ExecutionStatus.FAILED)
    assert SecretAccess.objects.filter(execution_id=execution.execution_id).count() == 1


PROBE = Prepared("ops_test_probe", "SELECT %(done)s::jsonb->>'a'")


def test_a_statement_whose_first_use_failed_works_on_its_next_use() -> None:
    """The PREPARE sent with a failing EXECUTE stays in the session: the next first use sent
    it again and failed with "prepared statement already exists", and so did every later
    one on that connection (a worker whose first finish failed could record nothing)."""
    connection.close()  # a new server session: nothing prepared
    with pytest.raises(DataError):
        PROBE.fetchone({"done": '{"a": NaN}'})
    assert PROBE.fetchone({"done": '{"a": "again"}'}) == ("again",)
    assert PROBE.fetchone({"done": '{"a": "once more"}'}) == ("once more",)
    claim.runnable_count(limit=1)  # the session still works for the rest


@pytest.mark.parametrize("n", [1, 2, 5])
def test_an_n_step_execution_of_runners_with_effects_costs_n_plus_2_round_trips(
    tenant: Any, operator: Any, n: int
) -> None:
    steps = [{"type": "sleep", "name": f"s{i}", "params": {"seconds": 0}} for i in range(n)]
    execution = make_execution(tenant=tenant, actor=operator, steps=steps, action_class="read")
    enqueue(execution)
    outcome, round_trips = _worker_path(execution)
    assert outcome == ExecutionStatus.COMPLETED
    assert round_trips <= n + 2, round_trips
    _assert_ran_in_order(execution, n)


def _assert_ran_in_order(execution: Execution, n: int) -> None:
    types = _types(execution)
    assert types.count("step_started") == n and types.count("step_completed") == n
    rows = ExecutionStep.objects.filter(execution=execution).order_by("step_index")
    assert [s.status for s in rows] == ["completed"] * n
    # Events are ordered: each step starts after the previous one completed.
    indexes = list(
        ExecutionEvent.objects.filter(execution=execution, event_type__startswith="step_")
        .order_by("id")
        .values_list("event_type", "step_index")
    )
    assert indexes == [(t, i) for i in range(n) for t in ("step_started", "step_completed")]


def test_every_edge_of_the_store_is_legal_in_the_state_machine() -> None:
    assert store.EDGES and all(is_legal(a, b) for a, b in store.EDGES)


def test_start_loses_to_a_cancel_and_writes_nothing(tenant: Any, operator: Any) -> None:
    """The set-based form of transition(): a CAS on the status; the loser changes nothing."""
    execution = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}], action_class="read")
    enqueue(execution)
    ctx = claim.claim_with_context(worker_id="w")
    assert ctx is not None
    execution_cancel(execution=execution)  # queued -> cancelled while we held the claim
    before = _types(execution)
    assert (
        store.start(ctx=ctx, expected="queued", first_step=0, retry_count=0, events=[{"type": "started"}])
        is None
    )
    assert _types(execution) == before
    assert ExecutionStep.objects.get(execution=execution).status == ExecutionStatus.CANCELLED


def test_a_lost_lease_makes_finish_a_no_op(tenant: Any, operator: Any) -> None:
    execution = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}], action_class="read")
    enqueue(execution)
    ctx = claim.claim_with_context(worker_id="w")
    assert ctx is not None
    assert store.start(ctx=ctx, expected="queued", first_step=0, retry_count=0, events=[]) is not None
    ctx.lease_token = uuid.uuid4()  # the reaper (or another worker) holds the item now
    written = store.finish(
        ctx=ctx,
        to=ExecutionStatus.FAILED,
        done=None,
        error="x",
        cancel_rest=True,
        queue_status=QueueStatus.FAILED,
        dlq_reason="worker_lost",
        events=[{"type": "failed"}],
    )
    assert written is False
    assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.RUNNING
    assert "failed" not in _types(execution) and not DeadLetter.objects.exists()


def test_finish_after_a_concurrent_transition_writes_nothing(tenant: Any, operator: Any) -> None:
    execution = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}], action_class="read")
    enqueue(execution)
    ctx = claim.claim_with_context(worker_id="w")
    assert ctx is not None
    store.start(ctx=ctx, expected="queued", first_step=0, retry_count=0, events=[])
    transition(execution, ExecutionStatus.TIMEOUT, reason="sweeper")  # the row-lock form won
    assert not store.finish(
        ctx=ctx,
        to=ExecutionStatus.COMPLETED,
        done=None,
        error=None,
        cancel_rest=False,
        queue_status=QueueStatus.COMPLETED,
        events=[{"type": "completed"}],
    )
    assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.TIMEOUT
    assert "completed" not in _types(execution)


def test_a_cancel_is_seen_by_the_step_boundary_and_the_next_step_never_starts(
    tenant: Any, operator: Any
) -> None:
    execution = make_execution(
        tenant=tenant, actor=operator, steps=[{"type": "noop"}, {"type": "noop"}], action_class="read"
    )
    enqueue(execution)
    ctx = claim.claim_with_context(worker_id="w")
    assert ctx is not None
    store.start(ctx=ctx, expected="queued", first_step=0, retry_count=0, events=[])
    execution_cancel(execution=execution)  # running: the request is recorded
    boundary = store.step_boundary(
        ctx=ctx,
        done={"index": 0, "status": "completed", "output": {}, "logs": "", "error": ""},
        next_step=1,
        retry_count=0,
        events=[{"type": "step_started", "step": 1, "when": "next"}],
    )
    assert boundary.cancelled and not boundary.started_next
    assert ExecutionStep.objects.get(execution=execution, step_index=1).status == ExecutionStatus.QUEUED
    assert "step_started" not in _types(execution)


def test_the_claim_reads_a_bounded_number_of_rows_whatever_the_backlog(tenant: Any, operator: Any) -> None:
    """The fair claim visits each (tenant, environment) with work once, through queue_claim_fair,
    and reads a few items of each: with 3,000 items of a tenant held at its concurrency limit at
    priority 1 in front, and 1,000 of two others behind, no node of the claim (as the prepared
    statement's generic plan too) touches more than a few dozen rows. The last engine's claim
    stepped over the full tenant's whole backlog on every claim (20-33 ms at 20,000)."""
    from django.db import transaction

    from execution.models import ConcurrencyLimit
    from tests.factories import TenantFactory
    from tests.support.backlog import backlog_seed

    full, second, third = tenant, TenantFactory(), TenantFactory()
    ConcurrencyLimit.objects.create(tenant=full, environment="", max_running=1)
    backlog_seed(tenants=[full.pk], per=1, actor_id=operator.pk, status="processing")  # its one slot
    backlog_seed(tenants=[full.pk], per=3000, actor_id=operator.pk, priority=1)
    backlog_seed(tenants=[second.pk, third.pk], per=500, actor_id=operator.pk)
    with connection.cursor() as cur:
        # The plan from the rows written here, not from whatever autovacuum last saw (see
        # tests/monitoring/test_rollups_cost.py::analyse).
        cur.execute("ANALYZE")
    for mode in ("force_custom_plan", "force_generic_plan"):
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(f"SET LOCAL plan_cache_mode = {mode}")
            cur.execute(claim.CLAIM.prepare.replace("PREPARE ops_claim", "PREPARE ops_claim_explained"))
            cur.execute(
                "EXPLAIN (ANALYZE, COSTS OFF) EXECUTE ops_claim_explained (%s, %s, %s)",
                [str(uuid.uuid4()), 60, "w"],
            )
            plan = "\n".join(r[0] for r in cur.fetchall())
            cur.execute("DEALLOCATE ops_claim_explained")
            transaction.set_rollback(True)
        claim_part = plan.split("CTE claimed")[0]
        assert "using queue_claim_fair" in claim_part, plan
        touched = [
            float(rows) * int(loops)
            for rows, loops in re.findall(
                r"actual time=[0-9.]+\.\.[0-9.]+ rows=([0-9.]+) loops=([0-9]+)", claim_part
            )
        ]
        assert touched and max(touched) <= 40, plan


def test_tenants_with_work_take_turns_and_priority_orders_within_a_tenant(tenant: Any, operator: Any) -> None:
    """Round robin between tenants (the one with fewer claimed items first), then priority,
    then age: a tenant's older backlog, even at priority 1, does not hold another's back."""
    from tests.factories import MembershipFactory, TenantFactory

    other = TenantFactory()
    MembershipFactory(tenant=other, user=operator, role="operator")

    def queued(owner: Any, priority: int) -> Execution:
        execution = make_execution(
            tenant=owner, actor=operator, steps=[{"type": "noop"}], action_class="read", priority=priority
        )
        enqueue(execution)
        return execution

    first = [queued(tenant, 1) for _ in range(3)]  # older, and urgent
    urgent_late = queued(tenant, 1)
    second = [queued(other, 5) for _ in range(2)]
    order = []
    for _ in range(6):
        ctx = claim.claim_with_context(worker_id="w")  # left processing: it counts as running
        assert ctx is not None
        order.append(ctx.execution_id)
    assert order == [
        first[0].execution_id,
        second[0].execution_id,
        first[1].execution_id,
        second[1].execution_id,
        first[2].execution_id,
        urgent_late.execution_id,
    ]


def test_the_worker_session_runs_without_jit_and_the_limits_table_is_analysed(
    tenant: Any, operator: Any
) -> None:
    """A JIT-compiled claim cost 60 ms instead of 0.4 at a million executions, because
    concurrency_limits had never been analysed and its guessed size priced the plan past
    jit_above_cost: the worker's session turns JIT off with its first prepared statement,
    and the migration analyses the table (and asks autovacuum to do so after any change)."""
    execution = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}], action_class="read")
    enqueue(execution)
    connection.close()  # a new session, as a worker's
    assert claim.claim_with_context(worker_id="w") is not None
    with connection.cursor() as cur:
        cur.execute("SHOW jit")
        assert cur.fetchone()[0] == "off"
        cur.execute("SELECT reloptions FROM pg_class WHERE relname = 'concurrency_limits'")
        assert "autovacuum_analyze_threshold=1" in (cur.fetchone()[0] or [])
