"""Asset locks that share and wake (docs/contract.md#asset-locks, docs/engine.md "Locks").

The one module that takes, releases and wakes locks; its statements are in
execution/worker/lock_sql.py. A read step takes its target ``shared``, a modify or deploy
step ``exclusive``. An attempt takes its locks all or nothing without ever waiting while
holding one: it either gets every lock it asks for at once, or none, and then parks (its
queue item is handed back, not claimable, the attempt not counted) in the line of the first
busy asset until a release wakes it. Lines are served first come within priority, and a
waiting writer blocks the readers behind it.

What a fan-out (one step over many targets, each taking its own lock as it starts) needs is
here too: :func:`locks_take` without a lease never parks (it returns the conflict), and a
:class:`LockListener` tells a thread which assets were released.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2
from django.conf import settings
from django.db import connection, connections, transaction

from execution.enums import ActionClass, ActorType, LockMode
from execution.models import Execution
from execution.realtime.groups import PG_CHANNEL
from execution.services.events import event_record
from execution.worker import lock_sql
from execution.worker.sql import Prepared, events_published

logger = logging.getLogger(__name__)

LOCK_CHANNEL = lock_sql.LOCK_CHANNEL
Line = tuple[int, str]  # (tenant_id, asset_id)


@dataclass(frozen=True)
class LockRequest:
    asset_id: str
    mode: str  # LockMode


@dataclass(frozen=True)
class LockBusy:
    """Why a take failed: the first conflicting asset, who holds it, or who waits ahead."""

    asset_id: str
    mode: str  # what was asked
    holder_execution_id: str | None  # the holder of record (None: nobody holds it now)
    holder_owner_tag: str
    holder_mode: str
    holders: int  # how many hold it now
    ahead_execution_id: str | None  # an earlier waiter in line whose mode conflicts
    waiting_since: datetime  # when the requester began waiting (now for a first wait)
    reason: str  # one line for events, errors and the execution page
    parked: bool = False  # the attempt parked in the asset's line (a take with a lease)
    lease_lost: bool = False

    def describe(self) -> str:
        return self.reason


def lock_order(asset_id: str) -> tuple[int, str]:
    """The order an execution's assets are listed in (numeric ids sort as numbers)."""
    return (len(asset_id), asset_id)


def lock_mode(action_class: str) -> str:
    return LockMode.SHARED if action_class == ActionClass.READ else LockMode.EXCLUSIVE


def lock_requests(targets: Iterable[tuple[str, str]]) -> list[LockRequest]:
    """(asset_id, action class) of steps -> one request per asset, the strongest mode, in
    lock order (an asset that one step reads and another modifies is taken exclusive)."""
    modes: dict[str, str] = {}
    for asset, action_class in targets:
        if asset:
            wanted = lock_mode(action_class)
            modes[asset] = LockMode.EXCLUSIVE if LockMode.EXCLUSIVE in (wanted, modes.get(asset)) else wanted
    return [LockRequest(a, modes[a]) for a in sorted(modes, key=lock_order)]


def owner_tag(execution_id: uuid.UUID | str, worker_id: str) -> str:
    return f"execution:{execution_id}:worker:{worker_id}"


TAKE = Prepared("ops_lock_take", lock_sql.TAKE_SQL)


def locks_take(
    *,
    tenant_id: int,
    execution_id: uuid.UUID | str,
    owner: str,
    requests: list[LockRequest],
    priority: int = 5,
    lease: tuple[int, uuid.UUID] | None = None,
) -> LockBusy | None:
    """Take every lock of ``requests`` or none; None when taken (``lock_acquired`` written
    and the execution out of every line), else the first conflict. With a worker's
    ``lease`` (queue item id, lease token) a conflict parks the attempt in the busy asset's
    line in the same statement (``parked``), unless it has waited longer than
    ``OPS_LOCK_WAIT_LIMIT_SECONDS`` (the caller fails it). One statement (two more the first
    time an asset is locked). Safe from any thread: it uses the thread's own connection."""
    if not requests:
        return None
    params: dict[str, Any] = {
        **take_params(tenant_id=tenant_id, execution_id=execution_id, requests=requests, priority=priority),
        "owner": owner,
        "ttl": settings.LEASE_SECONDS,
        "item": lease[0] if lease else None,
        "token": str(lease[1]) if lease else None,
        "channel": PG_CHANNEL,
        "notify": not settings.REDIS_URL,
    }
    row = take_with_rows(TAKE, params)
    events_published(row[16])
    return take_verdict(row)


def take_params(
    *, tenant_id: int, execution_id: uuid.UUID | str, requests: list[LockRequest], priority: int
) -> dict[str, Any]:
    """The parameters of the verdict (``lock_sql.TAKE_JUDGE``) besides the lease."""
    return {
        "requests": json.dumps([{"asset_id": r.asset_id, "mode": str(r.mode)} for r in requests]),
        "tenant": tenant_id,
        "execution": str(execution_id),
        "priority": priority,
        "wait_limit": settings.LOCK_WAIT_LIMIT_SECONDS,
    }


def take_with_rows(statement: Prepared, params: dict[str, Any]) -> tuple[Any, ...]:
    """Run a statement built on ``TAKE_JUDGE``; when lock rows are missing (assets never
    locked before: it wrote nothing) create them and run it once more."""
    row: tuple[Any, ...] = ()
    for _ in range(2):
        fetched = statement.fetchone(params)
        assert fetched is not None  # the statement always returns its one row
        row = fetched
        if row[0] or not row[1]:
            break
        with connection.cursor() as cur:  # first use of these assets: their rows, then again
            cur.execute(lock_sql.CREATE_ROWS_SQL, {"tenant": params["tenant"], "assets": list(row[1])})
    return row


def take_verdict(row: tuple[Any, ...]) -> LockBusy | None:
    """The verdict columns of a take (``lock_sql.TAKE_OUT``): None when taken, else the
    conflict; lines the execution left (it parked in another) are woken."""
    (ok, _, asset, want, holder_mode, holders, holder, tag, ahead, since, reason, parked, moved) = row[:13]
    if moved:  # it left other lines: they may go now
        locks_wake(lines=[(m["tenant_id"], m["asset_id"]) for m in moved])
    if ok:
        return None
    return LockBusy(
        asset_id=asset or "",
        mode=want or "",
        holder_execution_id=str(holder) if holder else None,
        holder_owner_tag=tag or "",
        holder_mode=holder_mode or "",
        holders=holders or 0,
        ahead_execution_id=str(ahead) if ahead else None,
        waiting_since=since,
        reason=reason or "",
        parked=bool(parked),
        lease_lost=bool(row[13]),
    )


def locks_give(*, execution: Execution, assets: list[str], reason: str = "") -> list[str]:
    """Release the execution's hold on ``assets``, wake who may go now, notify ``ops_lock``;
    one ``lock_released`` event if it held any. Returns the assets released. ``execution``
    may be a stand-in with ``execution_id``, ``tenant_id`` and ``trace_id``."""
    if not assets:
        return []
    params: dict[str, Any] = {
        "tenant": execution.tenant_id,
        "execution": str(execution.execution_id),
        "assets": assets,
    }
    # Inside a caller's transaction (a fan-out's target end) no savepoint: its statements are
    # this one's, and a failure rolls the caller's back with it.
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cur:
            cur.execute(lock_sql.RELEASE_SQL, params)
            raced, _notes, _woken, released = cur.fetchone()
        released = sorted(released or [], key=lock_order)
        if released:
            event_record(
                execution=execution,
                event_type="lock_released",
                actor_type=ActorType.WORKER,
                details={"assets": released, "reason": reason},
            )
    if raced:
        locks_wake(lines=[(execution.tenant_id, a) for a in released])
    return released


def locks_wake(*, lines: list[Line]) -> int:
    """Wake the waiters of these lines that may go now (from the locks' state now); how many."""
    if not lines:
        return 0
    with connection.cursor() as cur:
        cur.execute(
            lock_sql.WAKE_SQL,
            {"lines": json.dumps([{"tenant_id": t, "asset_id": a} for t, a in set(lines)])},
        )
        row = cur.fetchone()
    return int(row[0]) if row else 0


def locks_unwait(*, execution_id: uuid.UUID | str) -> int:
    """The execution leaves every line (it ended, or stops waiting); the lines wake."""
    with connection.cursor() as cur:
        cur.execute(lock_sql.UNWAIT_SQL, {"execution": str(execution_id)})
        left = cur.fetchall()
    return locks_wake(lines=[(t, a) for t, a in left]) if left else 0


def locks_holding(*, execution: Execution) -> list[str]:
    """The assets whose lock the execution holds now, in lock order."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT asset_id FROM execution_locks "
            "WHERE is_active AND tenant_id = %s AND %s::uuid = ANY(holders)",
            [execution.tenant_id, str(execution.execution_id)],
        )
        return sorted((a for (a,) in cur.fetchall()), key=lock_order)


def locks_release_all(*, execution: Execution, reason: str) -> list[str]:
    """Release whatever the execution still holds (the reaper, an attempt that crashed)."""
    return locks_give(execution=execution, assets=locks_holding(execution=execution), reason=reason)


def locks_release_expired() -> int:
    """Reaper: free locks none of whose holders heartbeats any more, and wake their lines."""
    with connection.cursor() as cur:
        cur.execute(lock_sql.EXPIRED_SQL)
        freed = cur.fetchall()
    if freed:
        locks_wake(lines=[(t, a) for t, a in freed])
    return len(freed)


def locks_sweep() -> dict[str, int]:
    """The backstop of the wake-ups (each cluster, every ``OPS_LOCK_SWEEP_SECONDS``): stale
    waiters forgotten, waiters past ``OPS_LOCK_WAIT_LIMIT_SECONDS`` made claimable (the worker
    fails them, naming the holder), every line with waiters woken where it may go."""
    with connection.cursor() as cur:
        cur.execute(lock_sql.SWEEP_SQL, {"limit": settings.LOCK_WAIT_LIMIT_SECONDS})
        stale, overdue, lines = cur.fetchone()
    woken = locks_wake(lines=[(m["tenant_id"], m["asset_id"]) for m in lines or []])
    return {"stale": stale, "overdue": overdue, "woken": woken}


# --- waiting in a thread (a fan-out's targets) ---------------------------------------------


def parse_note(payload: str) -> Line | None:
    try:
        note = json.loads(payload)
        return int(note["tenant_id"]), str(note["asset_id"])
    except (ValueError, KeyError, TypeError):
        return None


class LockListener:
    """A connection of its own that LISTENs on ``ops_lock``: the releases a thread waits for
    (a fan-out's targets put aside, execution/worker/fanout.py). Open it before the take that
    decides to wait is repeated, or a release between the two is missed."""

    def __init__(self) -> None:
        params = dict(connections["default"].get_connection_params())
        params.pop("cursor_factory", None)
        self.conn = psycopg2.connect(**params)
        self.conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        self.conn.cursor().execute(f"LISTEN {LOCK_CHANNEL}")

    def released(self, timeout: float) -> set[Line]:
        """The lines whose release was notified, waiting up to ``timeout`` seconds for the
        first (0: only what arrived already)."""
        if not self.conn.notifies and not select.select([self.conn], [], [], max(0.0, timeout))[0]:
            return set()
        self.conn.poll()
        lines = {parse_note(n.payload) for n in self.conn.notifies}
        self.conn.notifies.clear()
        return {line for line in lines if line is not None}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
