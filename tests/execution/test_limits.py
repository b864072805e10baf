"""Concurrency limits (per tenant, per tenant x environment) honoured by the claim."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from django.db import connection

from execution.enums import QueueStatus
from execution.models import ConcurrencyLimit, Execution, ExecutionEvent, QueueItem
from execution.services.limits import limits_waits_record
from execution.worker.claim import claim_with_context, hand_back
from tests.execution.engine.helpers import enqueue, make_execution, wait_until, worker_cluster
from tests.factories import MembershipFactory, TenantFactory, UserFactory

SLEEP = [{"type": "sleep", "params": {"seconds": 1}}]


def _operator(tenant: Any, name: str) -> Any:
    user = UserFactory(username=name)
    MembershipFactory(tenant=tenant, user=user, role="operator")
    return user


def _queued(tenant: Any, actor: Any, n: int, environment: str = "dev") -> list[Execution]:
    executions = []
    for _ in range(n):
        execution = make_execution(tenant=tenant, actor=actor, steps=[{"type": "noop"}])
        Execution.objects.filter(pk=execution.pk).update(environment=environment)
        enqueue(execution)
        executions.append(execution)
    return executions


def _claimed_of(tenant: Any) -> int:
    return QueueItem.objects.filter(execution__tenant=tenant, status=QueueStatus.PROCESSING).count()


@pytest.mark.django_db(transaction=True)
def test_racing_claims_never_exceed_a_tenants_limit_and_skip_to_other_tenants(tenant: Any) -> None:
    other = TenantFactory(slug="other")
    ConcurrencyLimit.objects.create(tenant=tenant, max_running=2)
    _queued(tenant, _operator(tenant, "a-op"), 12)  # older: first in line
    _queued(other, _operator(other, "b-op"), 6)
    claims: list[Any] = []
    start = threading.Barrier(8)

    def claimer(n: int) -> None:
        try:
            start.wait()
            for _ in range(3):
                claim = claim_with_context(worker_id=f"racer-{n}")
                if claim is not None:
                    claims.append(claim)
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert _claimed_of(tenant) == 2, "the limit of 2 holds under 8 racing workers"
    assert _claimed_of(other) == 6, "the unlimited tenant's items were claimed past the limited one's"
    assert len(claims) == 8


@pytest.mark.django_db(transaction=True)
def test_an_environment_limit_holds_only_that_environment_and_a_freed_slot_is_claimed_again(
    tenant: Any,
) -> None:
    ConcurrencyLimit.objects.create(tenant=tenant, environment="prod", max_running=1)
    actor = _operator(tenant, "a-op")
    prod = _queued(tenant, actor, 3, environment="prod")
    dev = _queued(tenant, actor, 2, environment="dev")
    first = claim_with_context(worker_id="w")
    assert first is not None and first.pk == prod[0].pk
    taken = [claim_with_context(worker_id="w") for _ in range(3)]
    assert sorted(c.pk for c in taken if c) == sorted(e.pk for e in dev)  # prod is full
    assert limits_waits_record() == 2 and limits_waits_record() == 0  # once per waiting execution
    waits = ExecutionEvent.objects.filter(event_type="concurrency_wait")
    assert sorted(waits.values_list("execution__pk", flat=True)) == sorted(e.pk for e in prod[1:])
    assert "1 of 1 running" in waits.first().details["reason"]
    hand_back(ctx=first, status=QueueStatus.COMPLETED, error="", give_back=False)
    second = claim_with_context(worker_id="w")
    assert second is not None and second.pk == prod[1].pk  # the slot freed: next in line


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_two_workers_run_a_limited_tenant_one_at_a_time_while_another_tenant_runs_freely(tenant: Any) -> None:
    other = TenantFactory(slug="other")
    ConcurrencyLimit.objects.create(tenant=tenant, max_running=1)
    a_op, b_op = _operator(tenant, "a-op"), _operator(other, "b-op")
    limited = []
    for _ in range(20):  # tenant A's backlog is older: without the limit it would run first
        execution = make_execution(tenant=tenant, actor=a_op, steps=SLEEP)
        enqueue(execution)
        limited.append(execution)
    free = []
    for _ in range(20):
        execution = make_execution(tenant=other, actor=b_op, steps=SLEEP)
        enqueue(execution)
        free.append(execution)
    everything = [e.pk for e in limited + free]
    with worker_cluster(workers=2):
        wait_until(
            lambda: not Execution.objects.filter(pk__in=everything).exclude(status="completed").exists(),
            240,
            interval=0.5,
            what="40 executions",
        )
    a = sorted(
        Execution.objects.filter(pk__in=[e.pk for e in limited]).values_list("started_at", "completed_at")
    )
    for (_, finished), (started, _) in itertools.pairwise(a):
        assert finished <= started, "two executions of the limited tenant ran at once"
    b_started = sorted(
        Execution.objects.filter(pk__in=[e.pk for e in free]).values_list("started_at", flat=True)
    )
    # Without the limit both workers would take tenant A's older backlog first and tenant B
    # would start after all of it; with it, B runs on the worker A may not use.
    assert b_started[0] < a[1][0], "tenant B waited for tenant A's backlog"
    assert sum(1 for started in b_started if started < a[10][0]) >= 5, "tenant B ran beside tenant A"
    waits = ExecutionEvent.objects.filter(event_type="concurrency_wait")
    per_execution = {pk: waits.filter(execution__pk=pk).count() for pk in (e.pk for e in limited)}
    assert max(per_execution.values()) == 1, "one concurrency_wait event per wait, never more"
    assert sum(per_execution.values()) >= 15, per_execution
    assert not waits.filter(execution__tenant=other).exists()


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_shows_each_limit_with_its_usage_to_the_tenants_members(
    tenant: Any, client: Any
) -> None:
    other = TenantFactory(slug="other")
    ConcurrencyLimit.objects.create(tenant=tenant, environment="prod", max_running=2)
    ConcurrencyLimit.objects.create(tenant=other, max_running=5)
    actor = _operator(tenant, "a-op")
    _queued(tenant, actor, 3, environment="prod")
    assert claim_with_context(worker_id="w") is not None
    client.force_login(actor)
    page = client.get("/monitoring/").content.decode()
    row = page[page.index('data-tenant="acme"') :].split("</tr>")[0]
    assert [cell.split(">")[-1] for cell in row.split("</td>")[:5]] == ["acme", "prod", "1", "2", "2"]
    assert 'data-tenant="other"' not in page  # another tenant's limits are not shown


@pytest.mark.django_db(transaction=True)
def test_the_claim_costs_one_statement_unlimited_and_five_for_a_limited_tenant(tenant: Any) -> None:
    from django.test.utils import CaptureQueriesContext

    other = TenantFactory(slug="other")
    _queued(other, _operator(other, "b-op"), 1)
    with CaptureQueriesContext(connection) as queries:
        assert claim_with_context(worker_id="w") is not None
    assert len(queries) == 1, [q["sql"][:80] for q in queries.captured_queries]  # the claim (autocommit)
    ConcurrencyLimit.objects.create(tenant=tenant, max_running=3)
    _queued(tenant, _operator(tenant, "a-op"), 1)
    with CaptureQueriesContext(connection) as queries:
        assert claim_with_context(worker_id="w") is not None
    assert len(queries) == 5  # the claim, BEGIN, the tenant's advisory lock, the re-count, COMMIT
