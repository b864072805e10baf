"""Racing resubmissions after the earlier execution ended: exactly one successor (docs/contract.md#submission)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from execution.enums import ExecutionStatus
from execution.models import Execution
from execution.services.cancel import execution_cancel
from tests.execution.api.conftest import client_for, noop_body

THREADS = 8
ROUNDS = 5


def _race(user: Any, body: dict[str, Any], headers: dict[str, Any]) -> list[tuple[int, str]]:
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def post() -> None:
        try:
            client = client_for(user)
            barrier.wait(timeout=60)
            answer = client.post("/api/v1/executions/", body, format="json", **headers)
            with lock:
                answers.append((answer.status_code, answer.json().get("execution_id", "")))
        finally:
            connection.close()  # each thread's own connection

    threads = [threading.Thread(target=post) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("headers", [{}, {"HTTP_IDEMPOTENCY_KEY": "change-4711"}], ids=["plan", "header"])
def test_racing_resubmissions_after_a_cancel_make_exactly_one_successor(
    tenant: Any, headers: dict[str, Any]
) -> None:
    from tests.conftest import _member

    user = _member(tenant, "resubmitter", "operator")
    client_for(user)  # the token exists before the threads race
    body = noop_body(level=1, name="resubmitted")
    previous: Execution | None = None
    for round_no in range(ROUNDS):
        answers = _race(user, body, headers)
        created = [eid for code, eid in answers if code == 202]
        assert len(created) == 1, (round_no, answers)
        assert sorted(code for code, _ in answers) == [200] * (THREADS - 1) + [202]
        assert {eid for _, eid in answers} == set(created)
        current = Execution.objects.get(execution_id=created[0])
        if previous is not None:
            previous.refresh_from_db()
            # The superseded execution gave up its claim to the successor.
            assert previous.idempotency_key is None
            assert previous.released_idempotency_key == current.idempotency_key
        execution_cancel(execution=current, actor=user)
        previous = current
    assert Execution.objects.count() == ROUNDS
    assert Execution.objects.filter(status=ExecutionStatus.CANCELLED).count() == ROUNDS
    assert Execution.objects.exclude(idempotency_key=None).count() == 1  # only the last holds it
