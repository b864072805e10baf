"""The docs/contract.md#secrets-and-masking canary through the engine: a plan run by the worker code path (queue -> drain ->
steps -> masking -> rows -> events), then every sink this checkout has is searched.

Sinks checked: a full dump of the database (pg_dump and every row of every table as text),
the captured logs (the settings' console handler), the events published after commit, and
the WebSocket messages built from every event row by ``execution.realtime.reader.event_messages``
(what the consumers send), and the API responses an operator reads (detail, events, list).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import string
from pathlib import Path
from typing import Any

import pytest

from execution.enums import ConnectionType, ExecutionStatus
from execution.models import Asset, ExecutionEvent, ExecutionStep, OutboundAllowRule
from execution.secrets.store import secret_set
from tests.execution.secrets.test_backends import aws_env, moto_endpoint, vault_responder  # noqa: F401
from tests.execution.test_canary import console_handler, full_database_text, ref, request_cleanup  # noqa: F401
from tests.support import processes
from tests.support.httpserver import LoopbackHttpServer, json_answer
from tests.support.sshd import LoopbackSshd, keygen, temporary_password_user

# Every server of the test (sshd, HTTP, the target database) listens on loopback.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_opened")]


@pytest.fixture
def sshd_server() -> Any:
    server = LoopbackSshd().start()
    try:
        yield server
    finally:
        server.stop()


def test_canary_through_the_engine(
    tenant: Any,
    operator: Any,
    sshd_server: LoopbackSshd,
    tmp_path: Path,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    aws_env: str,  # noqa: F811
    request_cleanup: list[Any],  # noqa: F811
    capture_events: Any,
    target_pg: Any,
) -> None:
    import contextlib

    import boto3

    from execution.realtime.reader import event_messages
    from execution.worker.runtime import drain
    from tests.execution.engine.helpers import enqueue, make_execution

    stack = contextlib.ExitStack()
    request_cleanup.append(stack.close)
    canary = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    settings.SSH_KNOWN_HOSTS_DIR = str(tmp_path / "known_hosts")
    settings.SECRETS_FILE_DIR = str(tmp_path / "secrets")
    settings.FILE_TRANSFER_DIR = str(tmp_path / "transfers")

    monkeypatch.setenv("OPS_SECRET_ACME__CANARY", canary)
    (tmp_path / "secrets" / "acme").mkdir(parents=True)
    (tmp_path / "secrets" / "acme" / "canary").write_text(canary + "\n")
    secret_set(tenant=tenant, path="acme/canary", value=canary)
    private_key = keygen(tmp_path / "canary_key", passphrase=canary)
    sshd_server.add_authorized_key((tmp_path / "canary_key.pub").read_text())
    aws = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=aws_env)
    aws.create_secret(
        Name="opsconductor/acme/ssh-key",
        SecretString=json.dumps({"private_key": private_key, "passphrase": canary}),
    )
    aws.create_secret(Name="opsconductor/acme/ssh-password", SecretString=json.dumps({"password": canary}))
    password_user = stack.enter_context(temporary_password_user(canary)) if os.geteuid() == 0 else None
    vault = stack.enter_context(
        LoopbackHttpServer(vault_responder({"acme/canary": {"value": canary}}, "s.c"))
    )
    web = stack.enter_context(
        LoopbackHttpServer(lambda m, p, h, b: json_answer(200, {"you_sent": h.get("X-Canary")}))
    )
    settings.VAULT_ADDR, settings.VAULT_TOKEN = vault.url, "s.c"
    OutboundAllowRule.objects.create(tenant=tenant, environment="", host_pattern="127.0.0.1")

    ssh_common = {"tenant": tenant, "connection_type": ConnectionType.SSH, "address": "127.0.0.1"}
    Asset.objects.create(
        hostname="ssh-command",
        port=sshd_server.port,
        username=password_user or sshd_server.username,
        credential_ref="aws:ssh-password#password" if password_user else "aws:ssh-key",
        **ssh_common,
    )
    Asset.objects.create(
        hostname="ssh-files",
        port=sshd_server.port,
        username=sshd_server.username,
        credential_ref="aws:ssh-key",
        **ssh_common,
    )
    Asset.objects.create(
        tenant=tenant,
        hostname="pg",
        connection_type=ConnectionType.DATABASE,
        **target_pg.asset_fields(),
    )
    remote_file = str(tmp_path / "remote-canary.txt")
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[
            {
                "name": "echo env",
                "type": "command",
                "target": {"hostname": "ssh-command"},
                "params": {
                    "command": 'echo "env says $CANARY as $(id -un)"',
                    "env": {"CANARY": ref("env:canary")},
                },
            },
            {
                "name": "header",
                "type": "http",
                "params": {"url": web.url + "/echo", "headers": {"X-Canary": ref("vault:canary")}},
            },
            {
                "name": "sql param",
                "type": "sql",
                "target": {"hostname": "pg"},
                "params": {"query": "SELECT %s::text AS echoed", "params": [ref("file:canary")]},
            },
            {
                "name": "upload",
                "type": "file",
                "target": {"hostname": "ssh-files"},
                "params": {"content": ref("db:acme/canary"), "remote_path": remote_file},
            },
            {
                "name": "download",
                "type": "file",
                "target": {"hostname": "ssh-files"},
                "params": {"direction": "download", "remote_path": remote_file, "return_content": True},
            },
            {
                "name": "validate",
                "type": "validate",
                "params": {"assertions": [{"step": 0, "regex": ref("env:canary")}]},
                "continue_on_error": True,
            },
        ],
    )
    enqueue(execution)
    log_stream = io.StringIO()
    handler = console_handler()
    old_stream = handler.setStream(log_stream)  # type: ignore[attr-defined]
    try:
        import time

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            drain(budget_seconds=5)
            execution.refresh_from_db()
            if execution.status not in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING):
                break
    finally:
        handler.setStream(old_stream)  # type: ignore[attr-defined]

    steps = {s.step_index: s for s in ExecutionStep.objects.filter(execution=execution)}
    problems = {i: (s.status, s.error_message) for i, s in steps.items() if i < 5 and s.status != "completed"}
    assert not problems, problems
    assert execution.status in (ExecutionStatus.COMPLETED, ExecutionStatus.PARTIAL), execution.error_message
    # Every step echoed the value, and what was stored is the mask in its place.
    user = password_user or sshd_server.username
    assert steps[0].output_data["stdout"] == f"env says *** as {user}\n"
    assert steps[1].output_data["json"] == {"you_sent": "***"}
    assert steps[2].output_data["rows"] == [["***"]]
    assert steps[4].output_data["content"] == "***"
    assert Path(remote_file).read_text() == canary

    assert canary not in full_database_text()
    messages = json.dumps(
        event_messages(list(ExecutionEvent.objects.filter(execution=execution).order_by("id")))
    )
    assert '"type": "step_output"' in messages and canary not in messages
    assert capture_events and canary not in json.dumps(list(capture_events))
    assert canary not in log_stream.getvalue()
    dump = processes.pg_dump_data()
    assert canary not in dump

    # The API responses an operator reads about it: detail, events, list, steps included.
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(operator)
    base = f"/api/v1/executions/{execution.execution_id}/"
    for url, expected in (
        (base, str(execution.execution_id)),
        (f"{base}events/?after=0", "step_output"),
        ("/api/v1/executions/", str(execution.execution_id)),
    ):
        response = api.get(url)
        assert response.status_code == 200, (url, response.status_code)
        body = response.content.decode()
        assert expected in body and canary not in body, url
    assert "***" in api.get(base).content.decode()  # the outputs are there, masked
