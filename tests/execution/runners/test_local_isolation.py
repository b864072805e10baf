"""A command on a ``local`` asset, run by a real worker, gets nothing of the worker (docs/contract.md#steps).

The finding: a command step without a target ran as root with the worker's environment,
read a file secret and the admin's API token from PostgreSQL. Now it needs a local asset
and, run by a worker that is root, runs as LOCAL_RUNNER_USER with a scrubbed environment in
its own directory: the settings, the state directory and the database are out of reach,
and in a network namespace of its own: a listener on the host's loopback gets nothing.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from execution.models import Execution, ExecutionStep
from execution.services.submit import execution_submit
from opsconductor import embedded_pg
from tests.execution.engine.helpers import wait_until, worker_cluster
from tests.support.listener import CountingListener

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _probe_command(*, state_file: Path, secret_file: Path, secret_key: str, loopback_port: int) -> str:
    socket_path = f"{connection.settings_dict['HOST']}/.s.PGSQL.{connection.settings_dict['PORT'] or 5432}"
    return "; ".join(
        [
            'echo "UID:$(id -u)"',
            "echo \"ENV:$(env | cut -d= -f1 | sort | tr '\\n' ,)\"",
            f"cat {state_file} >/dev/null 2>&1 && echo STATE-READ || echo STATE-DENIED",
            f"cat {secret_file} >/dev/null 2>&1 && echo SECRET-READ || echo SECRET-DENIED",
            f"ls {embedded_pg.pgdata_dir()} >/dev/null 2>&1 && echo PGDATA-LISTED || echo PGDATA-DENIED",
            "/usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "
            f"{socket_path} 2>/dev/null && echo DB-CONNECTED || echo DB-DENIED",
            # A listener on the host's loopback, where the product's own web port would be.
            "/usr/bin/python3 -c 'import socket,sys; socket.create_connection((\"127.0.0.1\", int(sys.argv[1])), 3)' "
            f"{loopback_port} 2>/dev/null && echo LOOPBACK-REACHED || echo LOOPBACK-DENIED",
            # Every environment this user can read, the worker's included if it could.
            f"echo \"LEAKS:$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c -F {secret_key})\"",
            'echo "STEP-ENV:$GREETING"',
            'echo "WORKDIR:$(pwd)"',  # not "PWD:": masking hides values of password-like keys
        ]
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="the unprivileged runner user is used when the worker is root")
def test_a_local_command_run_by_a_worker_cannot_read_settings_state_secrets_or_the_database(
    tenant: Any, operator: Any, local_asset: Any
) -> None:
    if not embedded_pg.pgdata_dir().exists():
        pytest.skip("the database is not the embedded one: its socket is not ours to check")
    secret_key = "sk-" + secrets.token_hex(16)
    state_file = embedded_pg.state_dir() / "isolation-probe"
    state_file.write_text("state")
    state_file.chmod(0o644)  # readable by anyone who can reach it: the directory must stop them
    secret_file = Path(str(django_settings.SECRETS_FILE_DIR)) / "acme" / "isolation-probe"
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    secret_file.write_text("file-secret")
    secret_file.chmod(0o644)
    listener = CountingListener().__enter__()
    command = _probe_command(
        state_file=state_file, secret_file=secret_file, secret_key=secret_key, loopback_port=listener.port
    )
    plan = {
        "name": "isolation probe",
        "environment": "dev",
        "estimated_duration_seconds": 20,
        "steps": [
            {
                "name": "probe",
                "type": "command",
                "target": {"hostname": local_asset.hostname},
                "params": {"command": command, "env": {"GREETING": "hello"}},
            }
        ],
    }
    try:
        execution = execution_submit(tenant=tenant, actor=operator, plan=plan).execution
        with worker_cluster(workers=1, SECRET_KEY=secret_key):
            wait_until(
                lambda: Execution.objects.get(pk=execution.pk).status not in ("queued", "running"),
                120,
                what="the probe to finish",
            )
    finally:
        listener.__exit__()
        state_file.unlink(missing_ok=True)
        secret_file.unlink(missing_ok=True)
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error_message
    stdout = ExecutionStep.objects.get(execution=execution).output_data["stdout"]
    lines = dict(line.split(":", 1) for line in stdout.splitlines() if ":" in line)
    assert lines["UID"] != "0"
    assert set(lines["ENV"].strip(",").split(",")) <= {
        "PATH",
        "HOME",
        "LANG",
        "GREETING",
        "PWD",
        "SHLVL",
        "_",
    }
    assert "STATE-DENIED" in stdout and "SECRET-DENIED" in stdout
    assert "PGDATA-DENIED" in stdout and "DB-DENIED" in stdout
    assert "LOOPBACK-DENIED" in stdout and listener.accepted == 0, (
        "a network of its own (LOCAL_COMMAND_NETWORK)"
    )
    assert lines["LEAKS"] == "0", "no readable environment holds the worker's SECRET_KEY"
    assert lines["STEP-ENV"] == "hello"
    assert Path(lines["WORKDIR"]).name.startswith("opsconductor-step-"), "a working directory of its own"
    assert not Path(lines["WORKDIR"]).exists(), "removed afterwards"
