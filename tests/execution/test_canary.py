"""The end-to-end canary of docs/contract.md#secrets-and-masking, step by step, without the engine.

A random 32-character value is stored in each backend (env, file, db, Vault KV v2, AWS) and
used by a step of each type whose output echoes it: an environment variable of an SSH
command, the SSH password (a temporary local user, when root) and an SSH key's passphrase,
an HTTP header, a SQL parameter, file content, and a validate assertion. The steps are
driven the way the engine drives them (resolve just in time -> run -> mask every sink with
the resolved values -> store -> drop). The value must then appear in none of: a full dump of the database (pg_dump, and every row of every table as
text), the captured logs (the settings' console handler with its masking filter).

tests/execution/test_canary_engine.py runs the same steps as one plan through the engine
(queue, drain, masking, events) and also checks the published events and WebSocket messages;
API responses join once the REST API is in the checkout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import secrets
import string
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from execution.masking import mask_data, mask_text
from execution.models import OutboundAllowRule
from execution.runners.base import ResolvedTarget, StepContext
from execution.runners.connections import ssh
from execution.runners.registry import get_runner
from execution.secrets import secrets_resolve_for_step
from execution.secrets.store import secret_set
from opsconductor.logging_filters import MaskSecretsFilter
from tests.execution.secrets.test_backends import aws_env, moto_endpoint, vault_responder  # noqa: F401
from tests.factories import ExecutionEventFactory, ExecutionFactory, ExecutionStepFactory, TenantFactory
from tests.support import processes
from tests.support.httpserver import LoopbackHttpServer, json_answer
from tests.support.sshd import LoopbackSshd, keygen, temporary_password_user

# Every server of the test (sshd, HTTP, the target database) listens on loopback.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_opened")]


def ref(path: str) -> dict[str, str]:
    return {"type": "secret", "path": path}


@pytest.fixture
def sshd_server() -> Any:
    server = LoopbackSshd().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def request_cleanup() -> Any:
    callbacks: list[Any] = []
    yield callbacks
    for callback in reversed(callbacks):
        callback()


def console_handler() -> logging.Handler:
    for handler in logging.getLogger().handlers:
        if any(isinstance(f, MaskSecretsFilter) for f in handler.filters):
            return handler
    raise AssertionError("settings.LOGGING installs no masking filter on the root handlers")


def full_database_text() -> str:
    """Every row of every table of the public schema, as text."""
    chunks = []
    with connection.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for (table,) in cur.fetchall():
            cur.execute(f'SELECT t::text FROM public."{table}" t')
            chunks.extend(row[0] for row in cur.fetchall())
    return "\n".join(chunks)


def test_canary_never_reaches_a_sink(
    sshd_server: LoopbackSshd,
    tmp_path: Path,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    aws_env: str,  # noqa: F811
    request_cleanup: list[Any],
    target_pg: Any,
) -> None:
    import boto3

    stack = contextlib.ExitStack()
    request_cleanup.append(stack.close)
    canary = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    tenant = TenantFactory(slug="acme")
    execution = ExecutionFactory(tenant=tenant, environment="staging")
    settings.SSH_KNOWN_HOSTS_DIR = str(tmp_path / "known_hosts")
    settings.SECRETS_FILE_DIR = str(tmp_path / "secrets")
    settings.FILE_TRANSFER_DIR = str(tmp_path / "transfers")

    # The value in each backend.
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
    # The SSH password login needs a real account (sshd checks /etc/shadow): a temporary user
    # whose password is the canary, when running as root; otherwise the key's passphrase is
    # the SSH secret carrying the canary.
    password_user = stack.enter_context(temporary_password_user(canary)) if os.geteuid() == 0 else None
    vault = LoopbackHttpServer(vault_responder({"acme/canary": {"value": canary}}, "s.canary"))

    def echo_headers(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        return json_answer(200, {"you_sent": headers.get("X-Canary")})

    web = LoopbackHttpServer(echo_headers)
    with vault, web:
        settings.VAULT_ADDR, settings.VAULT_TOKEN = vault.url, "s.canary"
        OutboundAllowRule.objects.create(tenant=tenant, environment="staging", host_pattern="127.0.0.1")
        ssh_asset = ResolvedTarget(
            asset_id="1",
            hostname="ssh-canary",
            connection_type="ssh",
            address="127.0.0.1",
            port=sshd_server.port,
            username=sshd_server.username,
            credential_ref="aws:ssh-key",  # key + passphrase (= the canary)
        )
        command_asset = ssh_asset
        if password_user:
            command_asset = dataclasses.replace(
                ssh_asset, username=password_user, credential_ref="aws:ssh-password#password"
            )
        db_asset = ResolvedTarget(
            asset_id="2",
            hostname="pg",
            connection_type="database",
            **target_pg.asset_fields(),
        )
        remote_file = str(tmp_path / "remote-canary.txt")
        steps: list[tuple[str, dict[str, Any], ResolvedTarget | None]] = [
            (
                "command",
                {"command": 'echo "env says $CANARY as $(id -un)"', "env": {"CANARY": ref("env:canary")}},
                command_asset,
            ),
            ("http", {"url": web.url + "/echo", "headers": {"X-Canary": ref("vault:canary")}}, None),
            ("sql", {"query": "SELECT %s::text AS echoed", "params": [ref("file:canary")]}, db_asset),
            ("file", {"content": ref("db:acme/canary"), "remote_path": remote_file}, ssh_asset),
            (
                "file",
                {"direction": "download", "remote_path": remote_file, "return_content": True},
                ssh_asset,
            ),
            ("validate", {"assertions": [{"step": 0, "regex": ref("env:canary")}]}, None),
        ]
        previous: dict[int, dict[str, Any]] = {}
        raw_outputs: list[str] = []
        log_stream = io.StringIO()
        handler = console_handler()
        old_stream = handler.setStream(log_stream)  # type: ignore[attr-defined]
        try:
            for index, (step_type, params, target) in enumerate(steps):
                resolved = secrets_resolve_for_step(tenant_slug="acme", params=params, target=target)
                chunks: list[str] = []
                ctx = StepContext(
                    execution_id=str(execution.execution_id),
                    tenant_slug="acme",
                    step_index=index,
                    step_name=f"canary {step_type}",
                    step_type=step_type,
                    params=resolved.params,
                    target=target,
                    timeout_seconds=30,
                    previous_outputs=previous,
                    credential=resolved.credential,
                    emit_output=lambda stream, text, chunks=chunks: chunks.append(text),
                )
                result = ssh.run_command(ctx) if step_type == "command" else get_runner(step_type).run(ctx)
                # The validate step asserts the canary against step 0's stored (masked) stdout: it
                # fails, and its error message echoes the pattern, i.e. the canary.
                expected = "failed" if step_type == "validate" else "completed"
                assert result.status == expected, (
                    step_type,
                    mask_text(result.error_message, resolved.values),
                )
                raw = json.dumps(result.output) + "".join(chunks) + result.error_message
                raw_outputs.append(raw)
                # A careless log line with the raw output: the filter must mask it.
                logging.getLogger("opsconductor.canary").warning("step %s output %s", index, raw)
                logging.getLogger("opsconductor.canary").error(
                    "step %s failed: %s", index, result.error_message
                )
                logging.getLogger("opsconductor.canary").error(
                    "step %s failed: %s", index, result.error_message
                )
                # Every sink of the engine, masked with the execution's resolved values.
                values = resolved.values
                output = mask_data(result.output, values)
                ExecutionStepFactory(
                    execution=execution,
                    step_index=index,
                    step_type=step_type,
                    status="completed",
                    input_data=mask_data(params, values),
                    output_data=output,
                    logs=mask_text("".join(chunks), values),
                    error_message=mask_text(result.error_message, values),
                )
                for chunk in chunks:
                    ExecutionEventFactory(
                        execution=execution,
                        event_type="step_output",
                        details=mask_data({"text": chunk}, values),
                    )
                previous[index] = output
                resolved.drop()
        finally:
            handler.setStream(old_stream)  # type: ignore[attr-defined]

    # Each step really used and echoed the value (so the sinks had something to leak).
    assert canary in raw_outputs[0]  # SSH env var -> stdout
    assert f"as {password_user or sshd_server.username}" in raw_outputs[0]  # logged in by password
    assert canary in raw_outputs[1]  # HTTP header -> echoed body
    assert canary in raw_outputs[2]  # SQL parameter -> row
    assert canary in raw_outputs[4]  # file content -> downloaded content
    assert canary in raw_outputs[5]  # validate assertion detail
    assert Path(remote_file).read_text() == canary

    # Sinks: the database (every row as text, and pg_dump) and the logs.
    assert canary not in full_database_text()
    log_text = log_stream.getvalue()
    assert "step 0 output" in log_text and canary not in log_text
    dump = processes.pg_dump_data()
    assert "***" in dump and canary not in dump
