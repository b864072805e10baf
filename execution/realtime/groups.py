"""Channels group names and message types shared by the publisher, the bridge and consumers."""

from __future__ import annotations

# NOTIFY channel used when REDIS_URL is unset (pointer payloads are ~120 bytes, far below
# NOTIFY's 8000-byte limit).
PG_CHANNEL = "ops_execution_events"

# Every consumer of a process joins this group; the bridge sends to it after (re)connecting,
# because notifications sent while it was disconnected are gone.
CATCHUP_GROUP = "realtime.catchup"

POINTER_TYPE = "event.pointer"
CATCHUP_TYPE = "realtime.catchup"
# The readiness check's round trip (execution/realtime/ping.py): a token sent the way events
# travel, received back by the checker's own channel.
PING_TYPE = "realtime.ping"


def ping_group(token: str) -> str:
    return f"realtime.ping.{token}"


def execution_group(execution_id: object) -> str:
    return f"execution.{execution_id}"


def tenant_group(tenant_id: int) -> str:
    return f"tenant.{tenant_id}"
