"""The single transition() of docs/contract.md#state-machine: every pair of the status matrix, and a race."""

from __future__ import annotations

import threading
from itertools import product

import pytest
from django.db import close_old_connections, connection

from execution.enums import ActorType, ExecutionStatus
from execution.errors import IllegalTransition
from execution.models import Execution, ExecutionEvent
from execution.services.transition import transition
from execution.state_machine import LEGAL_TRANSITIONS
from tests.factories import ExecutionFactory

S = ExecutionStatus
ALL = [s.value for s in S]
EXPECTED_LEGAL = {
    ("pending_approval", "approved"),
    ("pending_approval", "rejected"),
    ("pending_approval", "cancelled"),
    ("approved", "queued"),
    ("approved", "running"),
    ("approved", "cancelled"),
    ("queued", "running"),
    ("queued", "cancelled"),
    ("queued", "timeout"),
    ("queued", "failed"),
    ("running", "completed"),
    ("running", "failed"),
    ("running", "cancelled"),
    ("running", "timeout"),
    ("running", "partial"),
    ("running", "queued"),
    ("running", "pending_approval"),
    ("failed", "queued"),
    ("timeout", "queued"),
}


def test_the_table_is_the_spec_table() -> None:
    table = {(src, dst) for src, dsts in LEGAL_TRANSITIONS.items() for dst in dsts}
    assert table == EXPECTED_LEGAL
    assert set(LEGAL_TRANSITIONS) == set(ALL)


@pytest.mark.django_db
@pytest.mark.parametrize(("src", "dst"), list(product(ALL, ALL)))
def test_every_pair_of_the_status_matrix(src: str, dst: str, capture_events) -> None:  # type: ignore[no-untyped-def]
    execution = ExecutionFactory(status=src)
    before = Execution.objects.get(pk=execution.pk)
    if (src, dst) in EXPECTED_LEGAL:
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            result = transition(execution, dst, actor_type=ActorType.SYSTEM, reason="matrix")
        row = Execution.objects.get(pk=execution.pk)
        assert row.status == dst
        assert row.previous_status == src
        assert row.status_changed_at >= before.status_changed_at
        events = list(ExecutionEvent.objects.filter(execution=execution))
        assert len(events) == 1
        assert (events[0].from_status, events[0].to_status) == (src, dst)
        assert events[0].details["reason"] == "matrix"
        assert result.status == dst
        assert len(capture_events) == 1, "published exactly once, after commit"
    else:
        with pytest.raises(IllegalTransition):
            transition(execution, dst)
        row = Execution.objects.get(pk=execution.pk)
        assert row.status == src
        assert row.previous_status == before.previous_status
        assert row.status_changed_at == before.status_changed_at
        assert row.updated_at == before.updated_at
        assert not ExecutionEvent.objects.filter(execution=execution).exists()
        assert capture_events == []


@pytest.mark.django_db
def test_event_is_not_published_when_the_transaction_rolls_back(capture_events) -> None:  # type: ignore[no-untyped-def]
    from django.db import transaction

    execution = ExecutionFactory(status=S.QUEUED)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        transition(execution, S.RUNNING)
        raise Boom
    assert Execution.objects.get(pk=execution.pk).status == S.QUEUED
    assert not ExecutionEvent.objects.filter(execution=execution).exists()
    assert capture_events == []


@pytest.mark.django_db(transaction=True)
def test_two_threads_racing_different_transitions_exactly_one_wins() -> None:
    for _round in range(10):
        execution = ExecutionFactory(status=S.RUNNING)
        barrier = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def attempt(
            target: str,
            execution_pk: int = execution.pk,
            barrier: threading.Barrier = barrier,
            outcomes: dict[str, str] = outcomes,
        ) -> None:
            close_old_connections()
            try:
                barrier.wait(5)
                # Both start from 'running'; the loser must see the winner's terminal status.
                transition(execution_pk, target, expected_from=S.RUNNING)
                outcomes[target] = "won"
            except IllegalTransition:
                outcomes[target] = "lost"
            finally:
                connection.close()

        threads = [threading.Thread(target=attempt, args=(t,)) for t in (S.COMPLETED, S.CANCELLED)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(outcomes.values()) == ["lost", "won"], outcomes
        winner = next(k for k, v in outcomes.items() if v == "won")
        row = Execution.objects.get(pk=execution.pk)
        assert row.status == winner
        assert ExecutionEvent.objects.filter(execution=execution).count() == 1
