"""The worker runtime: the drain loop of a worker process, SIGTERM, heartbeats, the cluster loop.

- A django-q2 worker runs :func:`drain` (execution/tasks.py): it claims and runs queue items
  one after the other until nothing is runnable (and nothing arrived for
  ``DRAIN_LINGER_SECONDS`` on the wake-up channel) or its budget is spent, so one django-q2
  task serves many executions. When more work waits it asks for another drain (a wake-up)
  at most twice a second, so idle workers join in.
- SIGTERM in a worker process (sent to it alone, or to the whole process group as systemd,
  ``docker stop`` on a shell-less image and Kubernetes do): an idle worker exits at once;
  a busy one takes no new item, lets the current execution finish for up to
  ``SHUTDOWN_GRACE_SECONDS`` and otherwise hands it back to the queue (the interrupted
  step runs again on the next attempt), then exits. Nothing is left for the reaper.
- :func:`cluster_run` is ``manage.py qcluster``: django-q2's cluster plus a loop in the
  main process that LISTENs for wake-ups (execution/worker/wake.py) and hands drain tasks to
  idle workers, polls once a second for items whose back-off ended (and notification
  deliveries whose retry is due), writes the cluster's heartbeat row (idle or busy) and
  keeps the rows of its live worker processes fresh, and runs the reaper.
  It LISTENs for lock releases too and wakes their lines again (coalesced), and sweeps the
  lock lines every ``LOCK_SWEEP_SECONDS`` (execution/worker/locks.py).
  On SIGTERM it passes the signal to the cluster's processes and waits for its workers to
  hand back or finish.
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib
import logging
import os
import select
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import psycopg2
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, connections
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.utils import timezone

from execution.enums import DlqFault
from execution.models import WorkerHeartbeat
from execution.models.workers import CLUSTER_PREFIX
from execution.runners.connections import CONNECTIONS
from execution.runners.registry import runners_by_name
from execution.worker import beats, claim, locks
from execution.worker.attempt import attempt_run
from execution.worker.wake import WAKE_CHANNEL
from execution.worker.watch import shutdown, worker_id
from opsconductor.telemetry import attempt_span

logger = logging.getLogger(__name__)
FAN_OUT_EVERY_SECONDS = 0.5
CLUSTER_POLL_SECONDS = 1.0
CLUSTER_HEARTBEAT_SECONDS = 5.0
LOCK_WAKE_EVERY_SECONDS = 0.25  # released lines are woken again at most this often per cluster


class _State:
    # True from a claim to the end of its attempt: SIGTERM must not interrupt it
    busy = False
    installed = False


state = _State()


def _on_sigterm_in_worker(signum: int, frame: Any) -> None:
    shutdown.request()
    if not state.busy:
        raise SystemExit(0)  # idle, or between two items: nothing to hand back


def _install_worker_signals() -> None:
    # django-q2 leaves SIGTERM at its default (die at once) in its worker processes. Signals
    # belong to the main thread: a drain run in another thread (a test's) leaves them alone.
    if not state.installed and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm_in_worker)
        state.installed = True


def drain(*, budget_seconds: float | None = None) -> int:
    """Run queue items until none is runnable, the budget is spent or SIGTERM came."""
    _install_worker_signals()
    budget = budget_seconds if budget_seconds is not None else settings.DRAIN_BUDGET_SECONDS
    deadline = time.monotonic() + budget
    me = worker_id()
    ran = 0
    fanned_out_at = -FAN_OUT_EVERY_SECONDS
    linger_until = time.monotonic() + settings.DRAIN_LINGER_SECONDS
    while time.monotonic() < deadline and shutdown.requested_at is None:
        state.busy = True
        try:
            ctx = claim.claim_with_context(worker_id=me)
            if ctx is None:
                state.busy = False
                if _wait_for_work(until=min(linger_until, deadline)):
                    continue
                break
            linger_until = time.monotonic() + settings.DRAIN_LINGER_SECONDS
            if time.monotonic() - fanned_out_at >= FAN_OUT_EVERY_SECONDS:
                # More work waiting: another idle worker should start on it now.
                claim.wake_if_runnable()
                fanned_out_at = time.monotonic()
            try:
                with attempt_span(
                    execution_pk=ctx.pk,
                    execution_id=str(ctx.execution_id),
                    tenant=ctx.tenant_slug,
                    attempt=ctx.attempt,
                ):
                    attempt_run(ctx=ctx, worker_id=me)
            except Exception as exc:
                # A fault of the platform: the reaper counts the attempt and names the fault.
                logger.exception("attempt of execution %s crashed", ctx.execution_id)
                close_old_connections()
                _attempt_crashed(ctx, exc)
            ran += 1
        finally:
            state.busy = False
    if shutdown.requested_at is not None:
        logger.info("worker %s stops (SIGTERM) after %s executions", me, ran)
        with contextlib.suppress(Exception):
            beats.worker_heartbeat(worker=me, current=None, stopped=True)
        connections.close_all()
        raise SystemExit(0)
    return ran


# The attempt crashed: its lease ends now, with what happened, for the reaper to read
# (execution/services/reaper.py); only while the lease is still ours.
CRASHED_SQL = """
UPDATE execution_queue SET lease_expires_at = now(), last_error = left(%(error)s, 2000), updated_at = now()
WHERE id = %(item)s AND lease_token = %(token)s AND status = 'processing'
"""


def _attempt_crashed(ctx: claim.AttemptContext, exc: Exception) -> None:
    from execution.services.reaper import CRASHED

    if ctx.item_id is None:
        return
    lost_db = isinstance(exc, (DatabaseOperationalError, DatabaseInterfaceError))
    fault = DlqFault.DATABASE_UNREACHABLE if lost_db else DlqFault.WORKER_CRASHED
    error = f"{CRASHED[fault]} ({type(exc).__name__})"
    try:
        with connection.cursor() as cur:
            cur.execute(CRASHED_SQL, {"error": error, "item": ctx.item_id, "token": str(ctx.lease_token)})
    except DatabaseError:
        # Still unreachable: the lease runs out by itself and the reaper says "worker lost".
        logger.warning("could not record the crash of execution %s", ctx.execution_id)
        close_old_connections()


def _other_tasks_waiting() -> bool:
    """Tasks other than this drain wait for a worker (notification deliveries, schedules):
    the worker goes back to django-q2 at once instead of listening."""
    from django_q.brokers import get_broker

    return bool(get_broker().queue_size())


def _wait_for_work(*, until: float) -> bool:
    """Idle: wait on the wake-up channel until ``until`` for new work; True when woken.

    A worker that just drained the queue stays listening for a moment, so a steady stream
    of submissions is taken by the running drains instead of each one costing a django-q2
    task (enqueue, pull, run, acknowledge). It does not linger while other tasks wait in the
    broker. SIGTERM meanwhile ends the process at once."""
    timeout = until - time.monotonic()
    if timeout <= 0 or _other_tasks_waiting():
        return False
    connection.ensure_connection()
    raw = connection.connection
    if getattr(connection, "_ops_listening", None) is not raw:
        with connection.cursor() as cur:
            cur.execute(f"LISTEN {WAKE_CHANNEL}")
        connection._ops_listening = raw  # type: ignore[attr-defined]
    if not raw.notifies and select.select([raw], [], [], timeout)[0]:
        raw.poll()
    woken = bool(raw.notifies)
    raw.notifies.clear()
    return woken


# --- the cluster's main process ----------------------------------------------------------


def heartbeat_write(*, worker: str, cluster_name: str, started_at: object, stopped: bool = False) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker,
        defaults={
            "cluster_name": cluster_name,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": started_at,
            "last_seen_at": now,
            "stopped_at": now if stopped else None,
        },
    )


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid:
                    found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return stat[0] != "Z"


class _Listener:
    """The cluster's LISTEN connection: queue wake-ups and lock releases (reconnects on the
    next wait)."""

    def __init__(self) -> None:
        self.conn: Any = None
        self.lines: set[tuple[int, str]] = set()  # lock lines released since the last wake

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for a queue wake-up; True when one (or more) arrived. Lock
        releases that arrive meanwhile are collected in ``lines``."""
        try:
            if self.conn is None:
                params = dict(connections["default"].get_connection_params())
                params.pop("cursor_factory", None)
                params["application_name"] = "opsconductor-cluster"
                self.conn = psycopg2.connect(**params)
                self.conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
                self.conn.cursor().execute(f"LISTEN {WAKE_CHANNEL}; LISTEN {locks.LOCK_CHANNEL}")
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.conn], [], [], left)[0]:
                    return False
                self.conn.poll()
                woken = False
                for note in self.conn.notifies:
                    if note.channel == WAKE_CHANNEL:
                        woken = True
                    elif (line := locks.parse_note(note.payload)) is not None:
                        self.lines.add(line)
                self.conn.notifies.clear()
                if woken:
                    return True
                if self.lines and left > LOCK_WAKE_EVERY_SECONDS:
                    deadline = time.monotonic() + LOCK_WAKE_EVERY_SECONDS  # wake them soon
        except (psycopg2.Error, OSError):
            logger.warning("wake-up listener lost its connection; reconnecting")
            self.close()
            time.sleep(timeout)
            return True  # look at the queue anyway

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


def _step_modules_import() -> None:
    """Every step type's module and every command connection's (paramiko, pglast, requests and
    the rest) imported here, before the cluster forks its sentinel and the sentinel its
    workers: each worker starts with them. Imported on first use instead, a fresh worker's
    first attempt waited for them (0.3-1 s on this machine), and a fleet step's first targets
    with it."""
    runners_by_name()
    for path in CONNECTIONS.values():
        importlib.import_module(path)


def cluster_run() -> None:
    """``manage.py qcluster``: django-q2's cluster, wake-ups, heartbeat, reaper, SIGTERM."""
    from execution.runbooks.schedules import schedules_fire_due
    from execution.services.limits import limits_waits_record
    from execution.services.reaper import reap_expired
    from execution.tasks import wake_workers
    from execution.worker.sentinel import Cluster
    from monitoring.notifications.tasks import deliveries_wake

    # Operators (and tests) can ask a stuck cluster where it is: kill -USR1 <pid>.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    _step_modules_import()
    connections.close_all()  # never share a connection with the forked sentinel
    cluster = Cluster()
    signal.signal(signal.SIGTERM, _on_sigterm_in_main)  # replaces django-q2's handler
    signal.signal(signal.SIGINT, _on_sigterm_in_main)
    cluster.start()
    me = f"{CLUSTER_PREFIX}{worker_id()}"
    name = str(settings.Q_CLUSTER["name"])
    workers = int(str(settings.Q_CLUSTER["workers"]))
    started = timezone.now()
    listener = _Listener()
    next_reap = next_beat = next_sweep = next_tick = next_schedules = 0.0
    woken = True
    try:
        while cluster.sentinel is not None and cluster.sentinel.is_alive() and shutdown.requested_at is None:
            now = time.monotonic()
            try:
                if listener.lines:
                    # Lock releases: their statement woke the lines already; this is the
                    # backstop, coalesced (docs/engine.md "Locks").
                    lines, listener.lines = list(listener.lines), set()
                    locks.locks_wake(lines=lines)
                if now >= next_sweep:
                    locks.locks_sweep()
                    next_sweep = now + settings.LOCK_SWEEP_SECONDS
                if woken or now >= next_tick:
                    next_tick = now + CLUSTER_POLL_SECONDS
                    if now >= next_beat:
                        # Idle or busy (docs/contract.md#truth): the cluster's row, and the rows
                        # of its worker processes that are still alive.
                        heartbeat_write(worker=me, cluster_name=name, started_at=started)
                        beats.workers_touch(pids=_children_of(cluster.sentinel.pid or 0))
                        next_beat = now + CLUSTER_HEARTBEAT_SECONDS
                    if now >= next_reap:
                        reap_expired()
                        next_reap = now + settings.REAPER_INTERVAL_SECONDS
                    if now >= next_schedules:
                        # Every cluster looks; the fire row lets one of them launch each time.
                        schedules_fire_due()
                        next_schedules = now + settings.SCHEDULE_TICK_SECONDS
                    waiting = claim.runnable_count(limit=workers)
                    if waiting:
                        wake_workers(waiting)
                    deliveries_wake()  # notification retries whose back-off ended
                    limits_waits_record()  # one concurrency_wait event per held-back execution
            except Exception:
                logger.exception("cluster tick failed")
                close_old_connections()
            woken = listener.wait(max(0.0, min(next_tick, next_sweep) - time.monotonic()))
    finally:
        listener.close()
        _stop_cluster(cluster)
        with contextlib.suppress(Exception):
            heartbeat_write(worker=me, cluster_name=name, started_at=started, stopped=True)


def _on_sigterm_in_main(signum: int, frame: Any) -> None:
    shutdown.request()


def _stop_cluster(cluster: Any) -> None:
    """Pass SIGTERM to the sentinel's processes and wait for the workers to leave."""
    sentinel = cluster.sentinel
    if sentinel is None:
        return
    pids = _children_of(sentinel.pid) if sentinel.pid else []
    for pid in [*pids, sentinel.pid]:
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + settings.SHUTDOWN_GRACE_SECONDS + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    with contextlib.suppress(Exception):
        sentinel.join(1)
