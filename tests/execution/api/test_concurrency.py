"""N identical submissions racing produce exactly one execution (docs/contract.md#submission)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from execution.models import Execution
from tests.execution.api.conftest import client_for, noop_body

THREADS = 8
ROUNDS = 20


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_identical_submissions_times_twenty_rounds_make_twenty_executions(
    tenant: Any,
) -> None:
    from tests.conftest import _member

    user = _member(tenant, "racer", "operator")
    client_for(user)  # the token exists before the threads race
    statuses: list[int] = []
    lock = threading.Lock()
    for round_no in range(ROUNDS):
        body = noop_body(level=1, name=f"round {round_no}")
        barrier = threading.Barrier(THREADS)

        def post(body: dict = body, barrier: threading.Barrier = barrier) -> None:
            try:
                client = client_for(user)
                barrier.wait(timeout=60)
                code = client.post("/api/v1/executions/", body, format="json").status_code
                with lock:
                    statuses.append(code)
            finally:
                # Each thread opened its own connection: close it, or 160 idle sessions
                # outlive the test and block the test database's teardown.
                connection.close()

        threads = [threading.Thread(target=post) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert Execution.objects.count() == ROUNDS
    assert sorted(set(statuses)) == [200, 202]
    assert statuses.count(202) == ROUNDS and statuses.count(200) == ROUNDS * (THREADS - 1)
