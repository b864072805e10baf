"""Per-asset locks on ``execution_locks`` (docs/contract.md#data-model, docs/contract.md#queue-and-workers):
one row per (asset, tenant), reused.

All of an execution's assets are taken in sorted order (deadlock-free), all or nothing,
heartbeated with the lease, and released on every exit path.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from execution.enums import ActorType
from execution.models import Execution, ExecutionLock
from execution.services.events import event_record

# Take the row when it is free, expired, or already ours (a retry of the same execution).
ACQUIRE_SQL = """
INSERT INTO execution_locks (lock_id, asset_id, tenant_id, execution_id, owner_tag, acquired_at,
                             expires_at, last_heartbeat_at, is_active, created_at, updated_at)
VALUES (gen_random_uuid(), %(asset)s, %(tenant)s, %(execution)s, %(owner)s, now(),
        now() + make_interval(secs => %(ttl)s), now(), true, now(), now())
ON CONFLICT (asset_id, tenant_id) DO UPDATE
SET execution_id = EXCLUDED.execution_id, owner_tag = EXCLUDED.owner_tag, acquired_at = now(),
    expires_at = EXCLUDED.expires_at, last_heartbeat_at = now(), is_active = true, updated_at = now()
WHERE NOT execution_locks.is_active OR execution_locks.expires_at < now()
   OR execution_locks.execution_id = EXCLUDED.execution_id
RETURNING id
"""


@dataclass(frozen=True)
class LockBusy:
    asset_id: str
    holder_execution_id: str | None
    holder_owner_tag: str


def owner_tag(execution: Execution, worker_id: str) -> str:
    return f"execution:{execution.execution_id}:worker:{worker_id}"


def execution_asset_ids(execution: Execution) -> list[str]:
    """The distinct target asset ids of the execution's steps, in lock order."""
    ids = execution.steps.exclude(target_asset_id="").values_list("target_asset_id", flat=True)
    return sorted(set(ids), key=lambda a: (len(a), a))


def locks_acquire(
    *, execution: Execution, worker_id: str, assets: list[str] | None = None
) -> LockBusy | None:
    """Take every asset lock of the execution (``assets`` in lock order, else read from its
    steps), or none: returns the first busy asset."""
    assets = execution_asset_ids(execution) if assets is None else assets
    if not assets:
        return None
    tag = owner_tag(execution, worker_id)
    ttl = settings.LEASE_SECONDS
    with transaction.atomic(), connection.cursor() as cur:
        for asset in assets:
            cur.execute(
                ACQUIRE_SQL,
                {
                    "asset": asset,
                    "tenant": execution.tenant_id,
                    "execution": str(execution.execution_id),
                    "owner": tag,
                    "ttl": ttl,
                },
            )
            if cur.fetchone() is None:
                holder = ExecutionLock.objects.filter(asset_id=asset, tenant_id=execution.tenant_id).first()
                busy = LockBusy(
                    asset_id=asset,
                    holder_execution_id=str(holder.execution_id) if holder and holder.execution_id else None,
                    holder_owner_tag=holder.owner_tag if holder else "",
                )
                transaction.set_rollback(True)  # all or nothing: give back what we took
                return busy
        event_record(
            execution=execution,
            event_type="lock_acquired",
            actor_type=ActorType.WORKER,
            details={"assets": assets, "owner_tag": tag},
        )
    return None


def locks_heartbeat(*, execution: Execution) -> int:
    """Push the expiry of the execution's active locks forward; returns how many."""
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE execution_locks SET expires_at = now() + make_interval(secs => %s), "
            "last_heartbeat_at = now(), updated_at = now() WHERE execution_id = %s AND is_active",
            [settings.LEASE_SECONDS, str(execution.execution_id)],
        )
        return int(cur.rowcount)


def locks_release(*, execution: Execution, reason: str = "") -> list[str]:
    """Release every lock the execution holds; one ``lock_released`` event if any."""
    with transaction.atomic():
        rows = list(
            ExecutionLock.objects.select_for_update()
            .filter(execution=execution, is_active=True)
            .values_list("asset_id", flat=True)
        )
        if not rows:
            return []
        ExecutionLock.objects.filter(execution=execution, is_active=True).update(is_active=False)
        event_record(
            execution=execution,
            event_type="lock_released",
            actor_type=ActorType.WORKER,
            details={"assets": sorted(rows), "reason": reason},
        )
    return rows


def locks_release_expired() -> int:
    """Reaper: deactivate locks whose holder stopped heartbeating."""
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE execution_locks SET is_active = false, updated_at = now() "
            "WHERE is_active AND expires_at < now()"
        )
        return int(cur.rowcount)
