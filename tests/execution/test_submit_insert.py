"""The submission's one-statement write (execution/services/submit_insert.py)."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from django.db import connection, connections, transaction

from execution.models import Execution, ExecutionEvent, ExecutionStep, QueueItem
from execution.services.submit import execution_submit
from execution.services.submit_insert import INSERT_SQL

PLAN = {"name": "insert", "environment": "dev", "steps": [{"name": "a", "type": "noop"}]}


@pytest.mark.parametrize(
    ("model", "table"),
    [
        (Execution, "executions"),
        (ExecutionStep, "execution_steps"),
        (ExecutionEvent, "execution_events"),
        (QueueItem, "execution_queue"),
    ],
)
def test_the_statement_names_every_column_of_each_table(model: Any, table: str) -> None:
    # A column added to a model must be written by the submission too (a NOT NULL one would
    # otherwise fail every submission at run time): this test names the table to update.
    match = re.search(rf"INSERT INTO {table} \(([^)]*)\)", INSERT_SQL)
    assert match, table
    written = {c.strip() for c in match.group(1).split(",")}
    columns = {f.column for f in model._meta.concrete_fields if f.column != "id"}
    assert written == columns, f"{table}: missing {columns - written}, unknown {written - columns}"


@pytest.mark.django_db(transaction=True)
def test_inside_a_callers_transaction_a_lost_key_race_replays_the_winner(operator: Any, tenant: Any) -> None:
    # Another connection inserts the same plan and commits while our statement waits on the
    # unique index: ours fails inside the caller's transaction, its savepoint keeps that
    # transaction usable, and the retry replays the winner.
    inserted = threading.Event()
    won: list[Any] = []

    def winner() -> None:
        try:
            with transaction.atomic():
                won.append(execution_submit(tenant=tenant, actor=operator, plan=PLAN).execution)
                inserted.set()
                time.sleep(1.0)  # our submission reads no holder, then blocks on the index
        finally:
            inserted.set()
            connections.close_all()

    thread = threading.Thread(target=winner)
    thread.start()
    assert inserted.wait(30)
    with transaction.atomic():
        outcome = execution_submit(tenant=tenant, actor=operator, plan=PLAN)
        with connection.cursor() as cursor:  # the caller's transaction still works
            cursor.execute("SELECT count(*) FROM executions")
            assert cursor.fetchone()[0] == 1
    thread.join()
    assert outcome.replayed
    assert outcome.execution.pk == won[0].pk
