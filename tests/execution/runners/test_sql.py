"""``sql`` steps against a database asset: a PostgreSQL server of its own on loopback TCP
(tests/support/pgtarget.py), never the product's own database."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from execution.runners.base import ResolvedTarget
from execution.runners.registry import get_runner
from tests.execution.runners.conftest import make_ctx
from tests.factories import ExecutionFactory
from tests.support.pgtarget import LoopbackPostgres

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("loopback_opened"),
]  # the target server listens on loopback
_server: LoopbackPostgres | None = None


@pytest.fixture(autouse=True)
def _target(target_pg: LoopbackPostgres) -> None:
    global _server
    _server = target_pg


def db_target() -> ResolvedTarget:
    assert _server is not None
    return ResolvedTarget(
        asset_id="9", hostname="pg-test", connection_type="database", **_server.asset_fields()
    )


def run(params: dict[str, Any], **kwargs: Any) -> Any:
    return get_runner("sql").run(
        make_ctx("sql", params, target=db_target(), credential={"password": ""}, **kwargs)
    )


def test_select_with_parameters_and_row_cap(settings: Any) -> None:
    settings.SQL_ROW_CAP = 50
    result = run({"query": "SELECT g, %s::text AS label FROM generate_series(1, 1000) g", "params": ["x"]})
    assert result.status == "completed", result.error_message
    assert result.output["columns"] == ["g", "label"]
    assert result.output["rows"][0] == [1, "x"] and len(result.output["rows"]) == 50
    assert result.output["truncated"] is True and result.output["read_only"] is True


def test_declared_read_step_runs_only_a_read_statement(tenant: Any) -> None:
    plan = {
        "name": "p",
        "environment": "dev",
        "steps": [{"name": "s", "type": "sql", "action_class": "read"}],
    }
    execution = ExecutionFactory(tenant=tenant, plan_snapshot=plan)
    result = run({"query": "CREATE TEMP TABLE opsc_ro(x int)"}, execution_id=str(execution.execution_id))
    assert result.status == "failed"
    assert "this one is modify" in result.error_message
    assert result.output["read_only"] is True


def test_a_second_statement_never_runs_as_read(tenant: Any) -> None:
    # The finding: `SELECT 1; COMMIT; <write>` was a read (level 0 in prod); its COMMIT ended
    # the READ ONLY transaction and the write ran and stayed.
    escape = "SELECT 1; COMMIT; CREATE TEMP TABLE opsc_escape(x int)"
    assert get_runner("sql").default_action_class({"query": escape}) == "modify"
    assert get_runner("sql").default_action_class({"query": "SELECT 1;  "}) == "read"
    plan = {
        "name": "p",
        "environment": "dev",
        "steps": [{"name": "s", "type": "sql", "action_class": "read"}],
    }
    execution = ExecutionFactory(tenant=tenant, plan_snapshot=plan)
    result = run({"query": escape}, execution_id=str(execution.execution_id))
    assert result.status == "failed"
    assert "this one is modify" in result.error_message


def test_a_read_step_cannot_terminate_another_backend(tenant: Any) -> None:
    """The finding: ``SELECT pg_terminate_backend(pid)`` was a read (level 0, even in prod),
    and READ ONLY does not stop it. Now it is modify at submission (declaring it read is a
    400); a plan stored with it declared read before that runs nothing: the backend survives."""
    assert _server is not None
    victim = _server.connect(dbname="assets")
    try:
        query = f"SELECT pg_terminate_backend({victim.get_backend_pid()})"
        assert get_runner("sql").default_action_class({"query": query}) == "modify"
        plan = {"name": "p", "environment": "prod", "steps": [{"type": "sql", "action_class": "read"}]}
        execution = ExecutionFactory(tenant=tenant, plan_snapshot=plan)
        result = run({"query": query}, execution_id=str(execution.execution_id))
        assert result.status == "failed", result.output
        assert "this one is modify" in result.error_message
        with victim.cursor() as cur:  # still there
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        victim.close()


def test_modify_statement_commits() -> None:
    result = run({"query": "CREATE TEMP TABLE opsc_rw(x int)"})
    assert result.status == "completed", result.error_message
    assert result.output["read_only"] is False


def test_statement_timeout_from_step_timeout() -> None:
    ctx = make_ctx("sql", {"query": "SELECT pg_sleep(10)"}, target=db_target(), timeout=1)
    result = get_runner("sql").run(ctx)
    assert result.status == "timeout", result.error_message
    get_runner("sql").cleanup(ctx, "timeout")  # as the engine does
    assert not ctx.held.names()


def test_cancel_interrupts_the_statement() -> None:
    ctx = make_ctx("sql", {"query": "SELECT pg_sleep(30)"}, target=db_target(), timeout=60)
    threading.Timer(0.5, ctx.cancel_event.set).start()
    assert get_runner("sql").run(ctx).status == "cancelled"
    (held,) = ctx.held.names()
    backend = int(held.rsplit(" ", 1)[1])
    get_runner("sql").cleanup(ctx, "cancelled")
    assert _server is not None
    with _server.connect() as own, own.cursor() as cur:
        cur.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", [backend])
        assert cur.fetchone() in (None, ("idle",))  # the statement no longer runs


def test_dry_run_and_classes() -> None:
    runner = get_runner("query")
    assert runner.default_action_class({"query": "  select 1"}) == "read"
    assert runner.default_action_class({"query": "DELETE FROM t"}) == "modify"
    result = runner.dry_run(make_ctx("sql", {"query": "DELETE FROM t"}, target=db_target(), dry_run=True))
    assert result.output["would_run"]["query"] == "DELETE FROM t"
    assert result.output["would_run"]["read_only"] is False


@pytest.mark.parametrize(
    ("query", "params", "read"),
    [
        ("SELECT 1", None, True),
        ("  (select 1)", None, True),
        ("SHOW work_mem", None, True),
        ("TABLE t", None, True),
        ("VALUES (1), (2)", None, True),
        ("WITH x AS (SELECT 1) SELECT * FROM x", None, True),
        ("SELECT extract(epoch FROM now()), substring('abc' FROM 1 FOR 2), trim(' x ')", None, True),
        ("SELECT count(*) FILTER (WHERE true) OVER (), pg_catalog.lower('A')", None, True),
        ("SELECT %(a)s, %(b)s, '100%%'", {"a": 1, "b": 2}, True),
        ("SELECT g FROM generate_series(1, %s) g", [3], True),
        # a placeholder inside a literal, a quoted name, a dollar string or a comment, or
        # glued to a prefix, is pasted there as SQL text
        ("SELECT '%s'", ["' || pg_terminate_backend(1) || '"], False),
        ('SELECT "%s"', ["x"], False),
        ("SELECT $$ %s $$", ["x"], False),
        ("SELECT 1 -- %s", ["\nSELECT pg_terminate_backend(1)"], False),
        ("SELECT E%s", ["\\' || pg_terminate_backend(1) --"], False),
        ("SELECT $1, '%s'", ["x"], False),
        ("SELECT 1 INTO t UNION SELECT 2", None, False),
        ("SELECT * FROM (SELECT 1 FROM t FOR UPDATE) s", None, False),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", None, False),
        ("SELECT public.lower('A')", None, False),
        ("SELECT pg_sleep(1)", None, False),  # not listed: harmless, but modify
        ("SELECT 1; SELECT 2", None, False),
        ("SELECT (", None, False),
        ("EXPLAIN ANALYZE DELETE FROM t", None, False),
        ("SELECT " + "lower(" * 100_000 + "'x'" + ")" * 100_000, None, False),
        ("SELECT " + " + ".join(["1"] * 60_000), None, False),  # crashed pglast's Python tree
    ],
)
def test_what_a_read_statement_is(query: str, params: Any, read: bool) -> None:
    from execution.runners.sql_read import sql_is_read

    assert sql_is_read(query, params) is read
