"""``sql`` steps (docs/contract.md#steps): one statement against a ``database`` asset with psycopg2.

The asset gives address, port and username; the password comes from its credential_ref
(``ctx.credential["password"]``); the database name from ``params.database`` or the asset's
``metadata.database``. Params: ``query`` (or ``sql``), ``params`` (a list or an object; values
may be secret references, resolved by the engine), ``max_rows`` (≤ SQL_ROW_CAP).
A step whose class is read (declared, or a SELECT) runs in a ``READ ONLY`` transaction that
is rolled back; ``statement_timeout`` is the step timeout; a cancel calls ``connection.cancel()``.
"""

from __future__ import annotations

import datetime
import decimal
import re
import threading
import uuid
from typing import Any

import psycopg2
from django.conf import settings

from execution.enums import ActionClass, ExecutionStatus
from execution.runners.base import ParamProblem, Runner, StepContext, StepResult
from execution.runners.registry import register
from execution.runners.support import step_declared_action_class

READ_STATEMENT = re.compile(r"^\s*(\(\s*)*(select|show|values|table)\b", re.I)
# A second statement after a `;` (`SELECT 1; COMMIT; DELETE ...`) would end the READ ONLY
# transaction and run outside it: such a query is never read (a `;` in a literal counts too).
MORE_STATEMENTS = re.compile(r";\s*\S")


def _query(params: dict[str, Any]) -> str:
    return str(params.get("query") or params.get("sql") or "")


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time, uuid.UUID)):
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (bytes, memoryview)):
        return f"<{len(bytes(value))} bytes>"
    return str(value)


@register
class SqlRunner(Runner):
    step_type = "sql"
    aliases = ("database", "query")
    needs_target = True

    def default_action_class(self, params: dict[str, Any]) -> str:
        query = _query(params)
        read = READ_STATEMENT.match(query) and not MORE_STATEMENTS.search(query)
        return ActionClass.READ if read else ActionClass.MODIFY

    def validate_params(self, params: dict[str, Any]) -> list[ParamProblem]:
        problems = []
        if not _query(params).strip():
            problems.append(ParamProblem("query", "a SQL statement is required"))
        if "params" in params and not isinstance(params["params"], (list, dict)):
            problems.append(ParamProblem("params", "a list (for %s) or an object (for %(name)s)"))
        if "max_rows" in params and not str(params["max_rows"]).isdigit():
            problems.append(ParamProblem("max_rows", "a positive integer"))
        return problems

    def _read_only(self, ctx: StepContext) -> bool:
        declared = step_declared_action_class(ctx)
        return (declared or self.default_action_class(ctx.params)) == ActionClass.READ

    def run(self, ctx: StepContext) -> StepResult:
        target = ctx.target
        if target is None or target.connection_type != "database":
            return StepResult(
                status=ExecutionStatus.FAILED, error_message="a sql step needs a database asset"
            )
        database = ctx.params.get("database") or (target.metadata or {}).get("database")
        if not database:
            return StepResult(
                status=ExecutionStatus.FAILED,
                error_message="no database name (params.database or the asset's metadata.database)",
            )
        read_only = self._read_only(ctx)
        if read_only and MORE_STATEMENTS.search(_query(ctx.params)):
            return StepResult(
                status=ExecutionStatus.FAILED,
                error_message="a read sql step runs one statement (a second one would leave READ ONLY)",
            )
        row_cap = min(int(ctx.params.get("max_rows") or settings.SQL_ROW_CAP), int(settings.SQL_ROW_CAP))
        timeout_ms = max(int(ctx.timeout_seconds * 1000), 1)
        try:
            conn = psycopg2.connect(
                host=target.address or target.hostname,
                port=target.port or 5432,
                user=target.username or None,
                password=ctx.credential.get("password") or None,
                dbname=str(database),
                connect_timeout=max(1, min(int(ctx.timeout_seconds), 10)),
                options=f"-c statement_timeout={timeout_ms}",
                application_name="opsconductor-sql-step",
            )
        except psycopg2.Error as exc:
            return StepResult(status=ExecutionStatus.FAILED, error_message=f"connect failed: {exc}".strip())
        finished = threading.Event()

        def watch_cancel() -> None:
            # A cancel (docs/contract.md#cancellation) interrupts the running statement on the server.
            while not finished.wait(0.1):
                if ctx.cancel_event.is_set():
                    conn.cancel()
                    return

        watcher = threading.Thread(target=watch_cancel, daemon=True)
        watcher.start()
        try:
            with conn.cursor() as cur:
                if read_only:
                    cur.execute("SET TRANSACTION READ ONLY")
                cur.execute(_query(ctx.params), ctx.params.get("params") or None)
                output: dict[str, Any] = {"read_only": read_only, "rowcount": cur.rowcount}
                if cur.description is not None:
                    rows = cur.fetchmany(row_cap + 1)
                    output["columns"] = [d.name for d in cur.description]
                    output["rows"] = [_jsonable(list(r)) for r in rows[:row_cap]]
                    output["truncated"] = len(rows) > row_cap
            if read_only:
                conn.rollback()
            else:
                conn.commit()
            return StepResult(status=ExecutionStatus.COMPLETED, output=output)
        except psycopg2.Error as exc:
            conn.rollback()
            if ctx.cancel_event.is_set():
                return StepResult(status=ExecutionStatus.CANCELLED, error_message="statement cancelled")
            if isinstance(exc, psycopg2.errors.QueryCanceled):
                return StepResult(status=ExecutionStatus.TIMEOUT, error_message="statement_timeout reached")
            return StepResult(
                status=ExecutionStatus.FAILED,
                error_message=f"{type(exc).__name__}: {str(exc).strip()}",
                output={"read_only": read_only, "sqlstate": exc.pgcode},
            )
        finally:
            finished.set()
            conn.close()

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        return {
            "type": self.step_type,
            "database": ctx.params.get("database")
            or (ctx.target.metadata if ctx.target else {}).get("database"),
            "host": ctx.target.address or ctx.target.hostname if ctx.target else None,
            "query": _query(ctx.params),
            "parameters": len(ctx.params.get("params") or []),
            "read_only": self._read_only(ctx),
        }
