"""``sql`` steps against the local PostgreSQL (the test database, as a database asset)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from execution.runners.base import ResolvedTarget
from execution.runners.registry import get_runner
from tests.execution.runners.conftest import make_ctx
from tests.factories import ExecutionFactory

pytestmark = pytest.mark.django_db


def db_target() -> ResolvedTarget:
    s = connection.settings_dict
    return ResolvedTarget(
        asset_id="9",
        hostname="pg-test",
        connection_type="database",
        address=s["HOST"] or "127.0.0.1",
        port=int(s["PORT"] or 5432),
        username=s["USER"] or "postgres",
        metadata={"database": s["NAME"]},
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


def test_declared_read_step_runs_read_only(tenant: Any) -> None:
    plan = {
        "name": "p",
        "environment": "dev",
        "steps": [{"name": "s", "type": "sql", "action_class": "read"}],
    }
    execution = ExecutionFactory(tenant=tenant, plan_snapshot=plan)
    result = run({"query": "CREATE TEMP TABLE opsc_ro(x int)"}, execution_id=str(execution.execution_id))
    assert result.status == "failed"
    assert "ReadOnlySqlTransaction" in result.error_message
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
    assert "one statement" in result.error_message


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
    with connection.cursor() as cur:
        cur.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", [backend])
        assert cur.fetchone() in (None, ("idle",))  # the statement no longer runs


def test_dry_run_and_classes() -> None:
    runner = get_runner("query")
    assert runner.default_action_class({"query": "  select 1"}) == "read"
    assert runner.default_action_class({"query": "DELETE FROM t"}) == "modify"
    result = runner.dry_run(make_ctx("sql", {"query": "DELETE FROM t"}, target=db_target(), dry_run=True))
    assert result.output["would_run"]["query"] == "DELETE FROM t"
    assert result.output["would_run"]["read_only"] is False
