"""The audit sinks: a real loopback webhook receiver and a real TCP syslog receiver; the
stored cursor moves only after a batch was taken (at least once)."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from execution.models.audit import AuditChainEntry, AuditCursor
from execution.services.audit_chain import audit_seal
from execution.services.audit_sink import audit_ship
from execution.tasks import audit_seal_and_ship
from tests.factories import AuditLogFactory, ExecutionEventFactory, ExecutionFactory
from tests.support.httpserver import LoopbackHttpServer, json_answer


@pytest.fixture
def trail(tenant: Any, operator: Any) -> int:
    execution = ExecutionFactory(tenant=tenant, actor=operator)
    for kind in ("created", "approved", "queued"):
        ExecutionEventFactory(execution=execution, event_type=kind)
    AuditLogFactory(tenant=tenant, actor=operator, reason="token issued")
    return audit_seal(settle_seconds=0).sealed


def test_the_webhook_gets_every_entry_signed_and_a_refusal_moves_nothing(trail: int, settings: Any) -> None:
    answers = iter([json_answer(500, {"error": "busy"})])
    with LoopbackHttpServer(lambda *a: next(answers, None) or json_answer(200, {})) as server:
        settings.AUDIT_SINK_WEBHOOK_URL = server.url + "/siem"
        settings.AUDIT_SINK_WEBHOOK_SECRET = "sink-secret-value"
        settings.AUDIT_SINK_SYSLOG = None
        refused = audit_ship(batch_size=2)
        assert refused == {"webhook": "0 delivered, then webhook answered 500"}
        assert not AuditCursor.objects.filter(name="sink:webhook", position__gt=0).exists()
        delivered = audit_ship(batch_size=2)
        assert delivered == {"webhook": trail}
        assert audit_ship(batch_size=2) == {"webhook": 0}
    batches = server.requests[1:]
    assert len(batches) == 2  # 4 entries, 2 a batch
    lines = []
    for request in batches:
        signature = hmac.new(b"sink-secret-value", request["body"], hashlib.sha256).hexdigest()
        assert request["headers"]["X-OpsConductor-Signature"] == f"sha256={signature}"
        assert request["headers"]["Content-Type"] == "application/x-ndjson"
        lines += [json.loads(line) for line in request["body"].decode().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4]
    assert lines[0]["record"]["event_type"] == "created" and lines[0]["tenant"] == "acme"
    assert server.requests[0]["body"] == batches[0]["body"]  # the refused batch, sent again
    last = AuditChainEntry.objects.order_by("-id").first()
    assert AuditCursor.objects.get(name="sink:webhook").position == last.pk


@pytest.fixture
def syslog_receiver() -> Iterator[tuple[int, list[bytes]]]:
    received: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                received.append(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], received
    listener.close()


def _frames(stream: bytes) -> list[bytes]:
    """RFC 6587 octet counting: "<length> <message>"."""
    messages = []
    while stream:
        length, _, rest = stream.partition(b" ")
        messages.append(rest[: int(length)])
        stream = rest[int(length) :]
    return messages


def test_syslog_gets_rfc5424_messages_over_tcp(
    trail: int, settings: Any, syslog_receiver: tuple[int, list[bytes]]
) -> None:
    port, received = syslog_receiver
    settings.AUDIT_SINK_WEBHOOK_URL = None
    settings.AUDIT_SINK_SYSLOG = f"tcp://127.0.0.1:{port}"
    assert audit_ship() == {"syslog": trail}
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    messages = _frames(b"".join(received))
    assert len(messages) == trail
    head, _, body = messages[0].partition(b" - audit - ")
    assert head.startswith(b"<110>1 ") and head.endswith(b" opsconductor")
    assert json.loads(body)["seq"] == 1


def test_an_unreachable_syslog_is_retried_next_run(trail: int, settings: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.AUDIT_SINK_WEBHOOK_URL = None
    settings.AUDIT_SINK_SYSLOG = f"tcp://127.0.0.1:{port}"
    assert audit_ship() == {"syslog": "0 delivered, then syslog unreachable: ConnectionRefusedError"}
    out = io.StringIO()
    with pytest.raises(CommandError, match="a sink did not take everything"):
        call_command("audit", "ship", stdout=out)


def test_the_minute_task_seals_then_ships(tenant: Any, settings: Any) -> None:
    settings.AUDIT_SINK_WEBHOOK_URL = None
    settings.AUDIT_SINK_SYSLOG = None
    settings.AUDIT_SEAL_SETTLE_SECONDS = 0
    AuditLogFactory(tenant=tenant)
    assert audit_seal_and_ship() == "sealed 1; shipped {}"
    from opsconductor.schedules import SCHEDULES

    assert any(job.func == "execution.tasks.audit_seal_and_ship" and job.minutes == 1 for job in SCHEDULES)
