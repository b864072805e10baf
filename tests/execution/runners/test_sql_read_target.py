"""A ``sql`` step declared ``read`` does nothing but read, checked against a real target
PostgreSQL (tests/support/pgtarget.py) as its superuser — the asset whose user could do
the most (docs/security.md "SQL read steps").

The finding: a ``READ ONLY`` transaction stops writes to tables, not functions with effects
outside them; ``SELECT pg_terminate_backend(pid)``, ``pg_cancel_backend``, ``lo_export``,
``pg_read_file``, ``pg_reload_conf`` and ``COPY ... TO PROGRAM`` ran inside a read step at
level 0. Each case below is run twice through the sql runner: declared ``read`` in the
plan (it must fail without running: the effect is absent) and as a ``modify`` (the control:
the same statement has its effect, so the check can see it).

The allow-list of read-only functions (``READ_ONLY_FUNCTIONS``) is checked against the
target's own catalog: every name is a built-in there, and the listed functions PostgreSQL
itself marks volatile or parallel-unsafe are exactly the reviewed ones below.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg2
import pytest

from execution.runners.base import ResolvedTarget
from execution.runners.registry import get_runner
from execution.runners.sql_read import READ_ONLY_FUNCTIONS
from tests.execution.runners.conftest import make_ctx
from tests.factories import ExecutionFactory
from tests.support.pgtarget import DATABASE, PASSWORD, LoopbackPostgres

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_opened")]

# Listed although PostgreSQL marks them volatile ('v') or parallel-unsafe ('u'): each
# computes a value and changes nothing.
REVIEWED = {
    "random": "a new number each call",
    "clock_timestamp": "the time now",
    "timeofday": "the time now",
    "gen_random_uuid": "a new uuid each call",
    "current_schema": "reads the session's search path (parallel-unsafe only)",
    "current_schemas": "reads the session's search path (parallel-unsafe only)",
    "pg_blocking_pids": "reads the lock table",
    "pg_current_wal_lsn": "reads the WAL position",
    "pg_is_in_recovery": "reads the server's state",
    "pg_last_wal_receive_lsn": "reads the WAL position",
    "pg_last_wal_replay_lsn": "reads the WAL position",
    "pg_last_xact_replay_timestamp": "reads the replay position",
    "pg_database_size": "reads file sizes",
    "pg_relation_size": "reads file sizes",
    "pg_table_size": "reads file sizes",
    "pg_indexes_size": "reads file sizes",
    "pg_total_relation_size": "reads file sizes",
    "pg_tablespace_size": "reads file sizes",
}
# The functions the finding named, and their kin: never on the list.
SIDE_EFFECTING = [
    "pg_terminate_backend",
    "pg_cancel_backend",
    "lo_import",
    "lo_export",
    "lo_unlink",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "set_config",
    "nextval",
    "setval",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_advisory_lock",
    "pg_notify",
    "txid_current",
]


@pytest.fixture
def server(target_pg: LoopbackPostgres) -> LoopbackPostgres:
    return target_pg


def _superuser_target(server: LoopbackPostgres) -> ResolvedTarget:
    return ResolvedTarget(
        asset_id="9",
        hostname="pg-target",
        connection_type="database",
        **server.asset_fields(user="postgres"),
    )


def _run(server: LoopbackPostgres, query: str, *, declared_read: bool, tenant: Any) -> Any:
    step: dict[str, Any] = {"name": "s", "type": "sql"}
    if declared_read:
        step["action_class"] = "read"
    plan = {"name": "p", "environment": "prod", "steps": [step]}
    execution = ExecutionFactory(tenant=tenant, plan_snapshot=plan)
    ctx = make_ctx(
        "sql",
        {"query": query},
        target=_superuser_target(server),
        credential={"password": PASSWORD},
        execution_id=str(execution.execution_id),
    )
    return get_runner("sql").run(ctx)


def _one(server: LoopbackPostgres, sql: str) -> Any:
    conn = server.connect(dbname=DATABASE)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0] if cur.description else None
    finally:
        conn.close()


@dataclass
class Case:
    """``prepare(server)`` -> (query, did_it_happen())."""

    name: str
    prepare: Callable[[LoopbackPostgres], tuple[str, Callable[[Any], bool]]]


def _terminate(server: LoopbackPostgres) -> tuple[str, Callable[[Any], bool]]:
    victim = server.connect(dbname=DATABASE)

    def happened(_: Any) -> bool:
        try:
            with victim.cursor() as cur:
                cur.execute("SELECT 1")
            return False
        except psycopg2.Error:
            return True
        finally:
            victim.close()

    return f"SELECT pg_terminate_backend({victim.get_backend_pid()})", happened


def _cancel(server: LoopbackPostgres) -> tuple[str, Callable[[Any], bool]]:
    victim = server.connect(dbname=DATABASE)
    pid = victim.get_backend_pid()
    outcome: list[str] = []

    def sleep() -> None:
        try:
            with victim.cursor() as cur:
                cur.execute("SELECT pg_sleep(4)")
            outcome.append("slept")
        except psycopg2.extensions.QueryCanceledError:
            outcome.append("cancelled")
        finally:
            victim.close()

    thread = threading.Thread(target=sleep, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while _one(server, f"SELECT state FROM pg_stat_activity WHERE pid = {pid}") != "active":
        assert time.monotonic() < deadline, "the victim's statement never started"
        time.sleep(0.02)

    def happened(_: Any) -> bool:
        thread.join(10)
        return outcome == ["cancelled"]

    return f"SELECT pg_cancel_backend({pid})", happened


def _sequence(call: str) -> Callable[[LoopbackPostgres], tuple[str, Callable[[Any], bool]]]:
    def prepare(server: LoopbackPostgres) -> tuple[str, Callable[[Any], bool]]:
        name = f"opsc_seq_{uuid.uuid4().hex[:8]}"
        _one(server, f"CREATE SEQUENCE {name}")
        return call.format(seq=name), lambda _: _one(server, f"SELECT is_called FROM {name}") is True

    return prepare


def _lo_import(server: LoopbackPostgres) -> tuple[str, Callable[[Any], bool]]:
    before = _one(server, "SELECT count(*) FROM pg_largeobject_metadata")
    return (
        "SELECT lo_import('/etc/hostname')",
        lambda _: _one(server, "SELECT count(*) FROM pg_largeobject_metadata") > before,
    )


def _lo_export(server: LoopbackPostgres) -> tuple[str, Callable[[Any], bool]]:
    oid = _one(server, "SELECT lo_from_bytea(0, 'exported')")
    path = server.dir / f"exported-{uuid.uuid4().hex[:8]}"
    return f"SELECT lo_export({oid}, '{path}')", lambda _: path.exists()


def _copy_to_program(server: LoopbackPostgres) -> tuple[str, Callable[[Any], bool]]:
    marker = server.dir / f"program-ran-{uuid.uuid4().hex[:8]}"
    return f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'", lambda _: marker.exists()


def _read_file(server: LoopbackPostgres) -> tuple[str, Callable[[Any], bool]]:
    # The server's own password file: what a read step must never hand back.
    return (
        f"SELECT pg_read_file('{server.dir / 'pw'}')",
        lambda result: PASSWORD in str((result.output or {}).get("rows")),
    )


def _reload_conf(server: LoopbackPostgres) -> tuple[str, Callable[[Any], bool]]:
    before = _one(server, "SELECT pg_conf_load_time()")
    time.sleep(0.01)

    def happened(_: Any) -> bool:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the postmaster reloads after the signal
            if _one(server, "SELECT pg_conf_load_time()") != before:
                return True
            time.sleep(0.05)
        return False

    return "SELECT pg_reload_conf()", happened


CASES = [
    Case("pg_terminate_backend", _terminate),
    Case("pg_cancel_backend", _cancel),
    Case("nextval", _sequence("SELECT nextval('{seq}')")),
    Case("setval", _sequence("SELECT setval('{seq}', 4242)")),
    Case("lo_import", _lo_import),
    Case("lo_export", _lo_export),
    Case("COPY TO PROGRAM", _copy_to_program),
    Case("pg_read_file", _read_file),
    Case("pg_reload_conf", _reload_conf),
]


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    yield request.param


def test_a_read_step_runs_no_side_effecting_statement(
    server: LoopbackPostgres, tenant: Any, case: Case
) -> None:
    query, happened = case.prepare(server)
    assert get_runner("sql").default_action_class({"query": query}) == "modify"
    result = _run(server, query, declared_read=True, tenant=tenant)
    assert result.status == "failed", (case.name, result.output)
    assert "this one is modify" in result.error_message
    assert not happened(result), f"{case.name} took effect in a read step"


def test_the_same_statement_as_modify_has_its_effect(
    server: LoopbackPostgres, tenant: Any, case: Case
) -> None:
    """The control: the check sees the effect when the statement does run."""
    query, happened = case.prepare(server)
    result = _run(server, query, declared_read=False, tenant=tenant)
    assert result.status == "completed", (case.name, result.error_message)
    assert happened(result), f"{case.name}: the check did not see the effect"


def test_the_read_only_functions_are_reviewed_builtins_of_the_target(server: LoopbackPostgres) -> None:
    conn = server.connect(dbname=DATABASE)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT p.proname, bool_or(p.provolatile = 'v' OR p.proparallel = 'u') "
                "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = 'pg_catalog' AND p.proname = ANY(%s) GROUP BY p.proname",
                [sorted(READ_ONLY_FUNCTIONS | set(SIDE_EFFECTING))],
            )
            flagged = dict(cur.fetchall())
    finally:
        conn.close()
    assert READ_ONLY_FUNCTIONS - flagged.keys() == set(), "listed names that are no built-in of the target"
    # What PostgreSQL marks volatile or parallel-unsafe among the listed ones was reviewed.
    assert {name for name in READ_ONLY_FUNCTIONS if flagged[name]} == set(REVIEWED)
    # The criterion catches the finding's functions, and none of them is listed.
    assert all(flagged[name] for name in SIDE_EFFECTING)
    assert READ_ONLY_FUNCTIONS.isdisjoint(SIDE_EFFECTING)
