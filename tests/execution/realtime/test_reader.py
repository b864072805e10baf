"""Gap-free reading: an event committed late by another session is never skipped."""

from __future__ import annotations

import json
import select
import threading
from typing import Any

import psycopg2
import pytest
from django.db import connection, transaction

from execution.realtime.reader import stream_read
from execution.services.events import event_record
from tests.factories import ExecutionFactory

pytestmark = pytest.mark.django_db(transaction=True)


class SlowWriter(threading.Thread):
    """Writes one event in a transaction it keeps open until told to commit or roll back."""

    def __init__(self, execution: Any) -> None:
        super().__init__(daemon=True)
        self.execution = execution
        self.written = threading.Event()
        self.finish = threading.Event()
        self.rollback = False
        self.event_id: int | None = None

    def run(self) -> None:
        try:
            with transaction.atomic():
                self.event_id = event_record(execution=self.execution, event_type="slow").pk
                self.written.set()
                self.finish.wait(30)
                if self.rollback:
                    transaction.set_rollback(True)
        finally:
            connection.close()


def _ids(after: int, execution: Any) -> tuple[list[int], bool]:
    read = stream_read(after=after, execution_id=execution.execution_id)
    return [m["id"] for m in read.messages], read.held_back


def test_event_committed_late_is_not_skipped() -> None:
    execution = ExecutionFactory()
    first = event_record(execution=execution, event_type="created").pk
    writer = SlowWriter(execution)
    writer.start()
    assert writer.written.wait(10)
    later = event_record(execution=execution, event_type="fast").pk  # committed before the slow one
    assert writer.event_id is not None and first < writer.event_id < later
    ids, held = _ids(first, execution)
    assert ids == [] and held  # 'fast' waits behind the uncommitted hole
    writer.finish.set()
    writer.join(10)
    ids, held = _ids(first, execution)
    assert ids == [writer.event_id, later] and not held


def test_rolled_back_hole_is_skipped_once_nobody_writes() -> None:
    execution = ExecutionFactory()
    first = event_record(execution=execution, event_type="created").pk
    writer = SlowWriter(execution)
    writer.rollback = True
    writer.start()
    assert writer.written.wait(10)
    later = event_record(execution=execution, event_type="fast").pk
    writer.finish.set()
    writer.join(10)
    ids, held = _ids(first, execution)
    assert ids == [later] and not held


def test_tenant_stream_and_message_shape() -> None:
    execution = ExecutionFactory()
    other = ExecutionFactory()
    mine = event_record(
        execution=execution,
        event_type="step_output",
        step_index=0,
        details={"text": "Authorization: Bearer abc.def", "api_key": "k-123"},
    )
    event_record(execution=other, event_type="created")
    read = stream_read(after=0, tenant_id=execution.tenant_id)
    assert [m["id"] for m in read.messages] == [mine.pk]
    message = json.loads(json.dumps(read.messages[0]))
    assert set(message) == {
        "id",
        "type",
        "execution_id",
        "step_index",
        "from_status",
        "to_status",
        "progress",
        "data",
        "created_at",
    }
    assert "abc.def" not in json.dumps(message) and "k-123" not in json.dumps(message)
    assert message["progress"] == {"percent": 0, "steps_done": 0, "steps_total": 0, "eta_seconds": None}


def test_committed_event_is_notified_as_a_pointer(settings: Any) -> None:
    settings.REDIS_URL = None
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    listener = psycopg2.connect(**params)
    listener.set_isolation_level(0)
    try:
        with listener.cursor() as cursor:
            cursor.execute("LISTEN ops_execution_events")
        execution = ExecutionFactory()
        with transaction.atomic():
            event = event_record(execution=execution, event_type="created")
            listener.poll()
            assert listener.notifies == []  # nothing before commit
        assert select.select([listener], [], [], 10)[0]
        listener.poll()
        payloads = [json.loads(n.payload) for n in listener.notifies]
        assert {
            "execution_id": str(execution.execution_id),
            "tenant_id": execution.tenant_id,
            "event_id": event.pk,
        } in payloads
    finally:
        listener.close()


def test_event_committed_between_candidate_read_and_hole_check_is_not_skipped(monkeypatch: Any) -> None:
    from execution.realtime import reader

    execution = ExecutionFactory()
    first = event_record(execution=execution, event_type="created").pk
    writer = SlowWriter(execution)
    writer.start()
    assert writer.written.wait(10)
    later = event_record(execution=execution, event_type="fast").pk
    original = reader._holes
    calls = {"n": 0}

    def commit_then_look(after: int, upto: int) -> list[int]:
        calls["n"] += 1
        if calls["n"] == 1:  # the slow event commits after the candidates were read
            writer.finish.set()
            writer.join(10)
        return original(after, upto)

    monkeypatch.setattr(reader, "_holes", commit_then_look)
    ids, held = _ids(first, execution)
    assert ids == [] and held
    ids, held = _ids(first, execution)
    assert ids == [writer.event_id, later] and not held
