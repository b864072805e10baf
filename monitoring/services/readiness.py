"""Readiness checks of docs/contract.md#monitoring, shared by ``/readyz``, ``manage.py health`` and
``go_no_go``.

Each check returns a :class:`CheckResult` and never raises: a failing dependency is a
result with ``ok=False`` and a one-line reason, so the caller can name it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from execution.enums import ActionClass, SlaClass
from execution.models import TimeoutPolicy, WorkerHeartbeat
from execution.realtime.ping import layer_round_trip
from execution.selectors import worker_clusters_alive

CHANNEL_ROUND_TRIP_SECONDS = 3.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _guard(name: str, func: Callable[[], CheckResult]) -> CheckResult:
    try:
        return func()
    except Exception as exc:  # a check reports its failure, it never takes the caller down
        return CheckResult(name, False, " ".join(f"{type(exc).__name__}: {exc}".split())[:300])


def check_database() -> CheckResult:
    def run() -> CheckResult:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return CheckResult("database", True, "SELECT 1 answered")

    return _guard("database", run)


def pending_migrations() -> list[str]:
    """``app.migration`` names not applied to the database yet."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


def check_migrations() -> CheckResult:
    def run() -> CheckResult:
        pending = pending_migrations()
        if pending:
            shown = ", ".join(pending[:5]) + (" ..." if len(pending) > 5 else "")
            return CheckResult("migrations", False, f"{len(pending)} unapplied: {shown}")
        return CheckResult("migrations", True, "all applied")

    return _guard("migrations", run)


def check_policies() -> CheckResult:
    def run() -> CheckResult:
        present = set(TimeoutPolicy.objects.values_list("sla_class", "action_class"))
        missing = [f"{s}x{a}" for s in SlaClass for a in ActionClass if (s.value, a.value) not in present]
        if missing:
            return CheckResult("policies", False, f"{len(present)} rows, missing {', '.join(missing)}")
        return CheckResult("policies", True, f"{len(present)} rows")

    return _guard("policies", run)


def live_workers() -> list[WorkerHeartbeat]:
    """Worker clusters whose heartbeat is fresh and that have not said they stopped."""
    return list(worker_clusters_alive())


def check_workers() -> CheckResult:
    def run() -> CheckResult:
        workers = live_workers()
        if not workers:
            return CheckResult(
                "workers",
                False,
                f"no worker heartbeat in the last {settings.MONITORING_WORKER_STALE_SECONDS}s",
            )
        clusters = sorted({w.cluster_name or "?" for w in workers})
        return CheckResult(
            "workers", True, f"{len(workers)} worker cluster(s) heartbeating: {', '.join(clusters)}"
        )

    return _guard("workers", run)


def _round_trip() -> str:
    # In a web process this runs on the server's event loop (a sync view's AsyncToSync finds
    # it), so the bridge checked is the one the process's consumers use.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return async_to_sync(layer_round_trip)(CHANNEL_ROUND_TRIP_SECONDS)
    # Called from a thread that runs an event loop (an async caller, Playwright's sync API in
    # tests): AsyncToSync refuses to block that loop, so run the round trip in a fresh thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(async_to_sync(layer_round_trip), CHANNEL_ROUND_TRIP_SECONDS).result()


def check_channel_layer(*, database_ok: bool = True) -> CheckResult:
    """A round trip through the layer in use (execution/realtime/ping.py). Without Redis the
    path is the LISTEN/NOTIFY bridge: with the database down it cannot work, and says why."""
    if not database_ok and not settings.REDIS_URL:
        return CheckResult("channel_layer", False, "skipped: database unreachable (the bridge listens on it)")

    def run() -> CheckResult:
        return CheckResult("channel_layer", True, _round_trip())

    return _guard("channel_layer", run)


def readiness_run() -> list[CheckResult]:
    """Run every readiness check in order; the database-backed ones are skipped when it is down."""
    results = [check_database()]
    if results[0].ok:
        results.extend([check_migrations(), check_policies(), check_workers()])
    else:
        results.extend(
            CheckResult(name, False, "skipped: database unreachable")
            for name in ("migrations", "policies", "workers")
        )
    results.append(check_channel_layer(database_ok=results[0].ok))
    return results


def readiness_report() -> dict[str, Any]:
    """``{"status": "ready"|"not_ready", "failing": [...], "checks": {name: {...}}}``."""
    results = readiness_run()
    failing = [r.name for r in results if not r.ok]
    return {
        "status": "not_ready" if failing else "ready",
        "failing": failing,
        "checks": {r.name: {"ok": r.ok, "detail": r.detail} for r in results},
    }


__all__ = [
    "CheckResult",
    "check_channel_layer",
    "check_database",
    "check_migrations",
    "check_policies",
    "check_workers",
    "live_workers",
    "pending_migrations",
    "readiness_report",
    "readiness_run",
]
