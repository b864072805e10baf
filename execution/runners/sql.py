"""``sql`` steps (docs/contract.md#steps): one statement against a ``database`` asset with psycopg2.

The asset gives address, port, username and ``metadata.sslmode``; the password comes from
its credential_ref (``ctx.credential["password"]``); the database name from
``params.database`` or the asset's ``metadata.database``. The connection is built from those
fields only (``sql_connect``: one host, no DSN string, nothing of the worker's environment).
Params: ``query`` (or ``sql``), ``params`` (a list or an object; values may be secret
references, resolved by the engine), ``max_rows`` (≤ SQL_ROW_CAP).
A statement is read when ``sql_read.sql_is_read`` says so (one SELECT/VALUES/TABLE/SHOW that
calls only functions known to be read-only), otherwise modify. A step declared read runs
only such a statement, in a ``READ ONLY`` transaction that is rolled back;
``statement_timeout`` is the step timeout (the server's own backstop).

The statement runs in a helper thread; run() holds its backend on ``ctx.held`` and waits. On
a cancel or at the step timeout (also when the statement turned ``statement_timeout`` off)
run() stops waiting and the step's cleanup() cancels the statement (``connection.cancel()``,
what ``pg_cancel_backend`` does) and terminates the backend (``pg_terminate_backend``) if it
still runs it after ``CANCEL_GRACE_SECONDS``; the transaction is rolled back, never committed.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import logging
import threading
import time
import uuid
from typing import Any

import psycopg2
from django.conf import settings

from execution.enums import ActionClass, ExecutionStatus
from execution.models.assets import database_name_problem
from execution.outbound import OutboundRefused, OutboundUnresolved
from execution.runners import sql_connect
from execution.runners.base import ParamProblem, ResolvedTarget, Runner, StepContext, StepResult
from execution.runners.registry import register
from execution.runners.sql_read import sql_is_read
from execution.runners.support import step_declared_action_class

# How long a cancelled statement may take to end before its backend is terminated.
CANCEL_GRACE_SECONDS = 2.0
logger = logging.getLogger(__name__)


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
        return ActionClass.READ if sql_is_read(_query(params), params.get("params")) else ActionClass.MODIFY

    def validate_params(self, params: dict[str, Any]) -> list[ParamProblem]:
        problems = []
        if not _query(params).strip():
            problems.append(ParamProblem("query", "a SQL statement is required"))
        if "params" in params and not isinstance(params["params"], (list, dict)):
            problems.append(ParamProblem("params", "a list (for %s) or an object (for %(name)s)"))
        if "max_rows" in params and not str(params["max_rows"]).isdigit():
            problems.append(ParamProblem("max_rows", "a positive integer"))
        if "database" in params and database_name_problem(params["database"]):
            problems.append(ParamProblem("database", str(database_name_problem(params["database"]))))
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
        if read_only and not sql_is_read(_query(ctx.params), ctx.params.get("params")):
            # Declared read: a plan stored before the classifier knew better (submission now
            # refuses the declaration with a 400).
            return StepResult(
                status=ExecutionStatus.FAILED,
                error_message=(
                    "a read sql step runs one SELECT/VALUES/TABLE/SHOW statement calling only "
                    "read-only functions; this one is modify (docs/security.md)"
                ),
                output={"read_only": True},
            )
        row_cap = min(int(ctx.params.get("max_rows") or settings.SQL_ROW_CAP), int(settings.SQL_ROW_CAP))
        timeout_ms = max(int(ctx.timeout_seconds * 1000), 1)
        try:
            conn = _connect(ctx, target, str(database), options=f"-c statement_timeout={timeout_ms}")
        except (sql_connect.ConnectRefused, OutboundRefused, OutboundUnresolved) as exc:
            return StepResult(status=ExecutionStatus.FAILED, error_message=f"connection refused: {exc}")
        except psycopg2.Error as exc:
            return StepResult(status=ExecutionStatus.FAILED, error_message=f"connect failed: {exc}".strip())
        statement = _Statement(ctx, target, str(database), conn, read_only=read_only, row_cap=row_cap)
        # Held until the statement ends; on a cancel or a timeout cleanup() stops the backend.
        held = f"database backend {statement.backend_pid}"
        ctx.held.hold(held, statement.stop)
        statement.thread.start()
        deadline = time.monotonic() + ctx.timeout_seconds
        while not statement.done.wait(0.05):
            if ctx.cancel_event.is_set():
                statement.abandoned.set()
                return StepResult(status=ExecutionStatus.CANCELLED, error_message="statement cancelled")
            if time.monotonic() >= deadline:
                statement.abandoned.set()
                return StepResult(
                    status=ExecutionStatus.TIMEOUT,
                    error_message=f"step timeout after {ctx.timeout_seconds:g}s: statement cancelled",
                )
        ctx.held.let_go(held)
        return statement.result

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


def _connect(ctx: StepContext, target: ResolvedTarget, database: str, *, options: str = "") -> Any:
    """The step's connection, from the asset's validated fields (``sql_connect``)."""
    return sql_connect.connect(
        ctx,
        target,
        password=str(ctx.credential.get("password") or ""),
        database=database,
        connect_timeout=max(1, min(int(ctx.timeout_seconds), 10)),
        options=options,
    )


class _Statement:
    """The step's statement on its own connection, run in a helper thread so that run() can
    stop waiting at a cancel or the step timeout; :meth:`stop` (the step's cleanup) ends it on
    the server."""

    def __init__(
        self,
        ctx: StepContext,
        target: ResolvedTarget,
        database: str,
        conn: Any,
        *,
        read_only: bool,
        row_cap: int,
    ) -> None:
        self.ctx = ctx
        self.target = target
        self.database = database
        self.conn = conn
        self.read_only = read_only
        self.row_cap = row_cap
        self.backend_pid: int = conn.get_backend_pid()
        self.done = threading.Event()
        # run() stopped waiting: whatever the statement did is rolled back, never committed.
        self.abandoned = threading.Event()
        self.result = StepResult(status=ExecutionStatus.FAILED)  # set by the thread before done
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"sql-step-{ctx.step_index}")

    def _run(self) -> None:
        try:
            self.result = self._execute()
        except Exception as exc:  # as the engine records a crashed runner
            logger.exception("sql step %s crashed", self.ctx.step_index)
            message = f"{type(exc).__name__}: {exc}"
            self.result = StepResult(status=ExecutionStatus.FAILED, error_message=message)
        finally:
            self.conn.close()
            self.done.set()

    def _execute(self) -> StepResult:
        ctx, conn, read_only = self.ctx, self.conn, self.read_only
        try:
            with conn.cursor() as cur:
                if read_only:
                    cur.execute("SET TRANSACTION READ ONLY")
                cur.execute(_query(ctx.params), ctx.params.get("params") or None)
                output: dict[str, Any] = {"read_only": read_only, "rowcount": cur.rowcount}
                if cur.description is not None:
                    rows = cur.fetchmany(self.row_cap + 1)
                    output["columns"] = [d.name for d in cur.description]
                    output["rows"] = [_jsonable(list(r)) for r in rows[: self.row_cap]]
                    output["truncated"] = len(rows) > self.row_cap
            if read_only or self.abandoned.is_set():
                conn.rollback()
            else:
                conn.commit()
            return StepResult(status=ExecutionStatus.COMPLETED, output=output)
        except psycopg2.Error as exc:
            with contextlib.suppress(psycopg2.Error):
                conn.rollback()
            if isinstance(exc, psycopg2.errors.QueryCanceled):
                return StepResult(status=ExecutionStatus.TIMEOUT, error_message="statement_timeout reached")
            return StepResult(
                status=ExecutionStatus.FAILED,
                error_message=f"{type(exc).__name__}: {str(exc).strip()}",
                output={"read_only": read_only, "sqlstate": exc.pgcode},
            )

    def stop(self) -> None:
        """Cancel the statement on the server; a backend still running it after
        ``CANCEL_GRACE_SECONDS`` is terminated (``pg_terminate_backend``, allowed to the same role)."""
        self.abandoned.set()
        with contextlib.suppress(psycopg2.Error):
            self.conn.cancel()
        if self.done.wait(CANCEL_GRACE_SECONDS):
            return
        with contextlib.closing(_connect(self.ctx, self.target, self.database)) as other:
            other.autocommit = True
            with other.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(%s)", [self.backend_pid])
        if not self.done.wait(CANCEL_GRACE_SECONDS):
            raise RuntimeError(f"database backend {self.backend_pid} still runs the statement")
