"""Migration execution.0021 keeps the dead letters written before it readable: each free-text
reason becomes the fault it was (docs/contract.md#truth)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import ExecutionFactory

BEFORE = [("execution", "0020_runbooks")]
AFTER = [("execution", "0021_dlq_fault")]


@pytest.fixture
def back_to_latest(transactional_db: Any) -> Iterator[None]:
    try:
        yield
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_old_dead_letters_read_as_the_fault_they_were(back_to_latest: None) -> None:
    old = {
        "lease": ("max_attempts_exceeded", "lease expired (worker h:1 lost or over its lease timeout)"),
        "step": ("max_attempts_exceeded", "step 1 (restart) failed: exit 1"),
        "late": ("timeout", "execution timeout"),
        "lock": ("lock_wait_exceeded", "still waiting after 600s"),
    }
    # The executions are made with today's model, before going back: a later migration's
    # column would not exist yet at 0020 (the rows keep what the older schema has).
    ids = {name: str(ExecutionFactory().execution_id) for name in old}
    MigrationExecutor(connection).migrate(BEFORE)
    for name, (reason, error) in old.items():
        with connection.cursor() as cur:
            cur.execute(
                "INSERT INTO execution_dlq (dlq_id, execution_id, failure_reason, failure_details,"
                " attempt_count, last_error, sla_class, failed_at, requeued, created_at, archived)"
                " VALUES (gen_random_uuid(), %s, %s, '{}', 3, %s, 'medium', now(), false, now(), false)",
                [ids[name], reason, error],
            )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    with connection.cursor() as cur:
        cur.execute("SELECT execution_id::text, failure_reason, last_error FROM execution_dlq")
        rows = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
    assert rows[ids["lease"]][0] == "worker_lost"
    assert rows[ids["step"]] == ("step_failed", "step 1 (restart) failed: exit 1")
    assert rows[ids["late"]][0] == "execution_timeout"
    assert rows[ids["lock"]][0] == "lock_wait_exceeded"
