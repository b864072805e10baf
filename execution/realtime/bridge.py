"""The PostgreSQL LISTEN/NOTIFY bridge of a web process (used when ``REDIS_URL`` is unset).

One daemon thread per process holds its own psycopg2 connection, ``LISTEN``s on
:data:`PG_CHANNEL` and hands every pointer to the in-process channel layer on the web
server's event loop. A dropped connection (server restart, ``pg_terminate_backend``) is
noticed by the next ``poll()`` or by the health query every few seconds; the thread
reconnects with exponential back-off and then tells every consumer of the process to catch
up from the table, since notifications sent while it was away are gone for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import select
import threading
from concurrent.futures import Future
from typing import Any

import psycopg2
import psycopg2.extensions
from django.db import connections

from execution.realtime.groups import CATCHUP_GROUP, CATCHUP_TYPE, PG_CHANNEL, PING_TYPE, ping_group
from execution.realtime.publisher import pointer_group_send

logger = logging.getLogger(__name__)

APPLICATION_NAME = "opsconductor-bridge"
HEALTH_CHECK_SECONDS = 3.0
BACKOFF_INITIAL = 0.2
BACKOFF_MAX = 5.0


def connection_params(application_name: str = APPLICATION_NAME) -> dict[str, Any]:
    params = dict(connections["default"].get_connection_params())
    params.pop("cursor_factory", None)
    params["application_name"] = application_name
    params.setdefault("connect_timeout", 5)
    # Keepalives notice a silently dead TCP peer (a lost machine) within about 20 s.
    params.setdefault("keepalives", 1)
    params.setdefault("keepalives_idle", 10)
    params.setdefault("keepalives_interval", 5)
    params.setdefault("keepalives_count", 2)
    return params


class PgNotifyBridge:
    """LISTEN on PostgreSQL, forward pointers to ``layer`` on ``loop``; reconnect forever."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop, layer: Any) -> None:
        self.loop = loop
        self.layer = layer
        self.stop_requested = threading.Event()
        self.connected = threading.Event()
        self.connects = 0
        self.forwarded = 0
        self.backend_pid: int | None = None
        self._conn: Any = None
        self._thread = threading.Thread(target=self.run, name="pg-notify-bridge", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_requested.set()
        self._thread.join(timeout)

    def run(self) -> None:
        backoff = BACKOFF_INITIAL
        failures = 0  # consecutive: one warning per outage, not one per retry
        while not self.stop_requested.is_set():
            try:
                self._connect()
                backoff, failures = BACKOFF_INITIAL, 0
                self._listen_until_error()
            except Exception as exc:  # any failure means: drop the connection, retry later
                failures += 1
                if not self.stop_requested.is_set():
                    log = logger.warning if failures == 1 else logger.debug
                    log("notify bridge lost its connection (%s); retrying in %.1fs", exc, backoff)
            finally:
                self._close()
            self.stop_requested.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _connect(self) -> None:
        conn = psycopg2.connect(**connection_params())
        conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with conn.cursor() as cursor:
            cursor.execute(f"LISTEN {PG_CHANNEL}")
            cursor.execute("SELECT pg_backend_pid()")
            self.backend_pid = cursor.fetchone()[0]
        self._conn = conn
        self.connects += 1
        self.connected.set()
        logger.info("notify bridge listening (backend pid %s)", self.backend_pid)
        # Whatever was notified while we were not listening is lost: consumers re-read.
        self._forward(CATCHUP_GROUP, {"type": CATCHUP_TYPE})

    def _listen_until_error(self) -> None:
        conn = self._conn
        while not self.stop_requested.is_set():
            readable, _, _ = select.select([conn], [], [], HEALTH_CHECK_SECONDS)
            if not readable:
                with conn.cursor() as cursor:  # raises when the backend is gone
                    cursor.execute("SELECT 1")
            conn.poll()
            while conn.notifies:
                notify = conn.notifies.pop(0)
                self._dispatch(notify.payload)

    def _dispatch(self, payload: str) -> None:
        try:
            pointer = json.loads(payload)
            if isinstance(pointer, dict) and set(pointer) == {"ping"}:
                token = str(pointer["ping"])
                if not (token.isalnum() and len(token) <= 64):
                    raise ValueError(token)
                self._forward(ping_group(token), {"type": PING_TYPE, "token": token})
                return
            pointer = {
                "execution_id": str(pointer["execution_id"]),
                "tenant_id": int(pointer["tenant_id"]),
                "event_id": int(pointer["event_id"]),
            }
        except (ValueError, KeyError, TypeError):
            logger.warning("notify bridge: ignoring malformed payload %r", payload[:200])
            return
        self.forwarded += 1
        self._submit(pointer_group_send(self.layer, pointer))

    def _forward(self, group: str, message: dict[str, Any]) -> None:
        self._submit(self.layer.group_send(group, message))

    def _submit(self, coro: Any) -> Future[Any] | None:
        if self.loop.is_closed():
            coro.close()
            return None
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def _close(self) -> None:
        self.connected.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                conn.close()


_bridge: PgNotifyBridge | None = None
_bridge_lock = threading.Lock()


def bridge_ensure_started(*, loop: asyncio.AbstractEventLoop, layer: Any) -> PgNotifyBridge:
    """Start this process's bridge once (first consumer to connect), or return the running one."""
    global _bridge
    with _bridge_lock:
        if _bridge is None or _bridge.loop is not loop or _bridge.loop.is_closed():
            if _bridge is not None:
                _bridge.stop(timeout=0)
            _bridge = PgNotifyBridge(loop=loop, layer=layer)
            _bridge.start()
        return _bridge
