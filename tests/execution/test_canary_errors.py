"""The docs/contract.md#secrets-and-masking canary on the error paths: every runner FAILS while echoing the secret, and the
execution is retried and dead-lettered, so the value travels through error messages, retry
and dead-letter reasons, queue errors, events and step output cut by the 10 KB cap.

Failing steps (real components): a local command that exits non-zero after printing the
value (stderr, and stdout at offsets 10,200-10,236 so the cap cuts through it), an HTTP 500
from a loopback server echoing the secret header, a SQL error echoing the parameter (the
suite's PostgreSQL), a file upload over the loopback sshd whose checksum does not match the
expected one (the secret), and a validate step whose regex is the secret.

Neither the value nor its first 4 characters may be found in: a pg_dump of the database,
every row as text, the logs, the published events, the WebSocket messages built from the
event rows, and the REST answers (list, detail, events, dead-letter list).
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import string
import time
from pathlib import Path
from typing import Any

import pytest

from execution.enums import ConnectionType, ExecutionStatus
from execution.models import Asset, ExecutionEvent, OutboundAllowRule, QueueItem, TimeoutPolicy
from execution.secrets.store import secret_set
from tests.execution.test_canary import console_handler, full_database_text, ref, request_cleanup  # noqa: F401
from tests.support import processes
from tests.support.httpserver import LoopbackHttpServer, json_answer
from tests.support.sshd import LoopbackSshd

# Every server of the test (sshd, HTTP, the target database) listens on loopback.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_opened")]

OFFSETS = (10_200, 10_214, 10_228, 10_236)  # the cap is 10,240: whole, then cut after 26, 12, 4


def make_canary() -> str:
    # A fixed, unusual start so "its first 4 characters" cannot occur by chance in a dump.
    return "Qz7K" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(28))


def leaks(text: str, canary: str) -> list[str]:
    return [piece for piece in (canary, canary[:4]) if piece in text]


@pytest.fixture
def sshd_server() -> Any:
    server = LoopbackSshd().start()
    try:
        yield server
    finally:
        server.stop()


def test_failing_steps_of_every_runner_leak_nothing(
    tenant: Any,
    operator: Any,
    sshd_server: LoopbackSshd,
    tmp_path: Path,
    settings: Any,
    request_cleanup: list[Any],  # noqa: F811
    capture_events: Any,
    target_pg: Any,
) -> None:
    from execution.realtime.reader import event_messages
    from execution.worker.runtime import drain
    from tests.execution.engine.helpers import enqueue, make_execution
    from tests.support.sshd import keygen

    stack = contextlib.ExitStack()
    request_cleanup.append(stack.close)
    canary = make_canary()
    settings.SSH_KNOWN_HOSTS_DIR = str(tmp_path / "known_hosts")
    settings.RETRY_BACKOFF_BASE_SECONDS = 0.0
    TimeoutPolicy.objects.filter(sla_class="medium", action_class="modify").update(max_attempts=2)
    secret_set(tenant=tenant, path="canary", value=canary)
    secret_set(tenant=tenant, path="ssh-key", value=keygen(tmp_path / "key"))
    sshd_server.add_authorized_key((tmp_path / "key.pub").read_text())
    web = stack.enter_context(
        LoopbackHttpServer(
            lambda m, p, h, b: json_answer(500, {"error": "boom", "you_sent": h.get("X-Canary")})
        )
    )
    OutboundAllowRule.objects.create(tenant=tenant, environment="", host_pattern="127.0.0.1")
    Asset.objects.create(tenant=tenant, hostname="local", connection_type=ConnectionType.LOCAL)
    Asset.objects.create(
        tenant=tenant,
        hostname="ssh-files",
        connection_type=ConnectionType.SSH,
        address="127.0.0.1",
        port=sshd_server.port,
        username=sshd_server.username,
        credential_ref="db:ssh-key",
    )
    Asset.objects.create(
        tenant=tenant,
        hostname="pg",
        connection_type=ConnectionType.DATABASE,
        **target_pg.asset_fields(),
    )
    secret = ref("db:canary")
    commands = [
        {
            "name": f"cut at {offset}",
            "type": "command",
            "target": {"hostname": "local"},
            "params": {
                "command": f"""printf 'err %s' "$C" >&2; head -c {offset} /dev/zero | tr '\\0' a; """
                """printf '%s' "$C"; head -c 3000 /dev/zero | tr '\\0' b; exit 3""",
                "env": {"C": secret},
            },
            "continue_on_error": True,
        }
        for offset in OFFSETS
    ]
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[
            {
                "name": "ok",
                "type": "command",
                "target": {"hostname": "local"},
                "params": {"command": "echo hello"},
            },
            *commands,
            {
                "name": "http 500",
                "type": "http",
                "params": {"url": web.url + "/echo", "headers": {"X-Canary": secret}},
                "continue_on_error": True,
            },
            {
                "name": "sql error",
                "type": "sql",
                "target": {"hostname": "pg"},
                "params": {"query": "SELECT %s::int", "params": [secret]},
                "continue_on_error": True,
            },
            {
                "name": "checksum",
                "type": "file",
                "target": {"hostname": "ssh-files"},
                "params": {
                    "content": "some content",
                    "remote_path": str(tmp_path / "remote.txt"),
                    "expected_sha256": secret,
                },
                "continue_on_error": True,
            },
            {
                "name": "validate",
                "type": "validate",
                "params": {"assertions": [{"step": 0, "regex": secret}]},
                "max_retries": 1,  # its retry reason carries the error too
            },
        ],
    )
    enqueue(execution)
    log_stream = io.StringIO()
    handler = console_handler()
    old_stream = handler.setStream(log_stream)  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            drain(budget_seconds=5)
            execution.refresh_from_db()
            if execution.status == ExecutionStatus.FAILED:
                break
    finally:
        handler.setStream(old_stream)  # type: ignore[attr-defined]

    # Every path really ran and failed; the last step was retried once (its max_retries),
    # then the execution failed (a failed step is no dead letter: docs/contract.md#truth).
    assert execution.status == ExecutionStatus.FAILED, execution.status
    types = list(ExecutionEvent.objects.filter(execution=execution).values_list("event_type", flat=True))
    assert "retry_scheduled" in types and "dead_lettered" not in types
    retry = ExecutionEvent.objects.get(execution=execution, event_type="retry_scheduled")
    assert "***" in retry.details["reason"]
    steps = {s.step_index: s for s in execution.steps.all()}
    assert steps[0].status == "completed"
    assert all(steps[i].status == "failed" for i in range(1, len(steps))), [s.status for s in steps.values()]
    assert "***" in execution.error_message and "validate" in execution.error_message
    assert "***" in QueueItem.objects.get(execution=execution).last_error
    for index in range(1, len(OFFSETS) + 1):
        assert steps[index].output_data["stderr"] == "err ***"
        assert "***" in steps[index].output_data["stdout"]
    http, sql, checksum = (steps[len(OFFSETS) + n] for n in (1, 2, 3))
    assert http.output_data["json"]["you_sent"] == "***"
    assert "***" in sql.error_message  # the driver echoed the parameter
    assert "***" in checksum.error_message

    sinks: dict[str, str] = {
        "database rows": full_database_text(),
        "pg_dump": processes.pg_dump_data(),
        "logs": log_stream.getvalue(),
        "published events": json.dumps(list(capture_events)),
        "websocket messages": json.dumps(
            event_messages(list(ExecutionEvent.objects.filter(execution=execution).order_by("id")))
        ),
    }
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(operator)
    base = f"/api/v1/executions/{execution.execution_id}/"
    for url in (base, f"{base}events/?after=0", "/api/v1/executions/", "/api/v1/dlq/"):
        response = api.get(url)
        assert response.status_code == 200, (url, response.status_code)
        sinks[f"GET {url}"] = response.content.decode()
    assert "retry_scheduled" in sinks[f"GET {base}events/?after=0"]
    found = {name: leaks(text, canary) for name, text in sinks.items() if leaks(text, canary)}
    assert not found, found
