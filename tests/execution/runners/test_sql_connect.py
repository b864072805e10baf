"""How a ``sql`` step connects: from the asset's validated fields only (one host, never a DSN
string), and nothing of the worker's environment reaches the connection (docs/security.md)."""

from __future__ import annotations

import ctypes
import glob
import os
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from django.db import connection

from execution.enums import ConnectionType, ExecutionStatus
from execution.models import Asset, ExecutionStep
from execution.runners.base import ResolvedTarget
from execution.runners.registry import get_runner
from execution.runners.sql_connect import connect_params
from tests.execution.engine.helpers import drain_until_done, enqueue, make_execution
from tests.execution.runners.conftest import make_ctx
from tests.support.pgtarget import PASSWORD, LoopbackPostgres

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("loopback_opened"),
]  # the target server listens on loopback


@pytest.mark.django_db(transaction=True)  # the in-process worker uses its own connection
def test_a_host_list_reaching_the_products_own_database_runs_nothing(tenant: Any, operator: Any) -> None:
    """The finding at its door: an asset at ``nonexistent.invalid,<the embedded server's
    socket directory>`` (a libpq host list) passed the old "must not start with /" check, and
    a sql step then connected over the socket as the PostgreSQL superuser (trust
    authentication): every tenant's rows, password hashes, ``COPY ... TO PROGRAM``. An asset
    row stored before the rules (no clean) is refused again at connect."""
    own = connection.settings_dict
    asset = Asset.objects.create(  # as an old row: objects.create runs no clean()
        tenant=tenant,
        hostname="pg-self",
        connection_type=ConnectionType.DATABASE,
        address=f"nonexistent.invalid,{own['HOST']}",
        port=int(own["PORT"] or 5432),
        username=own["USER"] or "postgres",
        metadata={"database": own["NAME"]},
    )
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[
            {
                "name": "who am i",
                "type": "sql",
                "target": {"asset_id": asset.pk},
                "params": {"query": "SELECT current_user, count(*) FROM auth_user"},
            }
        ],
    )
    enqueue(execution)
    assert drain_until_done(execution).status == ExecutionStatus.FAILED
    step = ExecutionStep.objects.get(execution=execution)
    assert step.status == ExecutionStatus.FAILED
    assert "is a list of hosts" in step.error_message, step.error_message
    assert "rows" not in (step.output_data or {})


def _run(target: ResolvedTarget, credential: dict[str, str], query: str) -> Any:
    return get_runner("sql").run(make_ctx("sql", {"query": query}, target=target, credential=credential))


def test_nothing_of_the_workers_environment_reaches_the_connection(
    target_pg: LoopbackPostgres, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """libpq fills what a program does not give from PG* variables, a service file and
    ~/.pgpass. The worker's environment is the product's: the right password in PGPASSWORD
    and in a passfile, a service naming the product's own socket, options and a client
    certificate are all ignored; the asset's fields and credential alone decide."""
    own_socket = connection.settings_dict["HOST"]
    service_file = tmp_path / "pg_service.conf"
    service_file.write_text(f"[product]\nhost={own_socket}\nuser=postgres\ndbname=postgres\n")
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:*:{PASSWORD}\n")
    passfile.chmod(0o600)
    hostile = {
        "PGHOST": own_socket,
        "PGHOSTADDR": "127.0.0.2",
        "PGPORT": "1",
        "PGUSER": "postgres",
        "PGPASSWORD": PASSWORD,
        "PGPASSFILE": str(passfile),
        "PGSERVICEFILE": str(service_file),
        "PGSERVICE": "product",
        "PGOPTIONS": "-c search_path=hijacked",
        "PGAPPNAME": "hijacked",
        "PGSSLCERT": str(tmp_path / "missing.crt"),
        "PGTARGETSESSIONATTRS": "read-only",
    }
    for name, value in hostile.items():
        monkeypatch.setenv(name, value)
    target = ResolvedTarget(
        asset_id="1", hostname="pg", connection_type="database", **target_pg.asset_fields()
    )
    ran = _run(target, {}, "SELECT current_user, inet_server_port(), current_setting('application_name')")
    assert ran.status == "completed", ran.error_message
    assert ran.output["rows"] == [["stepper", target_pg.port, "opsconductor-sql-step"]]
    # A password role without a credential: PGPASSWORD and the passfile hold the right
    # password, and neither is used.
    secure = ResolvedTarget(
        asset_id="2", hostname="pg", connection_type="database", **target_pg.asset_fields(user="secure")
    )
    refused = _run(secure, {}, "SELECT 1")
    assert refused.status == "failed"
    assert "password" in refused.error_message, refused.error_message
    assert _run(secure, {"password": PASSWORD}, "SELECT current_user").output["rows"] == [["secure"]]


def _libpq_keywords() -> dict[str, str | None]:
    """libpq's own connection keywords and their environment variables (PQconndefaults of
    the libpq psycopg2 is linked with)."""
    libs = glob.glob(
        os.path.join(os.path.dirname(psycopg2.__file__), "..", "psycopg2_binary.libs", "libpq-*")
    )
    assert libs, "psycopg2-binary's bundled libpq not found"
    libpq = ctypes.CDLL(libs[0])

    class Option(ctypes.Structure):
        _fields_ = [
            ("keyword", ctypes.c_char_p),
            ("envvar", ctypes.c_char_p),
            ("compiled", ctypes.c_char_p),
            ("val", ctypes.c_char_p),
            ("label", ctypes.c_char_p),
            ("dispchar", ctypes.c_char_p),
            ("dispsize", ctypes.c_int),
        ]

    libpq.PQconndefaults.restype = ctypes.POINTER(Option)
    libpq.PQconninfoFree.argtypes = [ctypes.POINTER(Option)]
    options = libpq.PQconndefaults()
    found: dict[str, str | None] = {}
    index = 0
    while options[index].keyword:
        envvar = options[index].envvar
        found[options[index].keyword.decode()] = envvar.decode() if envvar else None
        index += 1
    libpq.PQconninfoFree(options)
    return found


def test_every_keyword_libpq_reads_from_the_environment_is_given() -> None:
    """A libpq upgrade that adds a keyword with an environment variable fails here until the
    connection gives it too (``service`` excepted: see execution/runners/sql_connect.py)."""
    target = ResolvedTarget(
        asset_id="1", hostname="pg", connection_type="database", address="db.example.com", username="app"
    )
    given = set(connect_params(target, password="", database="app", connect_timeout=5))
    from_environment = {keyword for keyword, envvar in _libpq_keywords().items() if envvar}
    assert "host" in from_environment and "passfile" in from_environment  # the list is real
    assert from_environment - given == {"service"}


def test_a_database_asset_without_a_username_is_refused() -> None:
    target = ResolvedTarget(
        asset_id="1",
        hostname="pg",
        connection_type="database",
        address="db.example.com",
        metadata={"database": "app"},
    )
    result = _run(target, {}, "SELECT 1")
    assert result.status == "failed"
    assert "no username" in result.error_message


def test_a_step_database_name_is_checked_at_submission() -> None:
    problems = get_runner("sql").validate_params({"query": "SELECT 1", "database": "host=/run/postgresql"})
    assert [p.path for p in problems] == ["database"]
