"""WebSocket consumers of docs/contract.md#live-progress: one execution's events, or all events of a tenant.

On connect: authenticate (4401), authorise through the policy's SUBSCRIBE right (4403/4404,
the refusal recorded), join the groups, then send every event after ``?after=<id>`` from the
table. Every ``REALTIME_RECHECK_SECONDS`` the right is decided again: a socket whose user lost
the membership or was deactivated is closed with 4403 (docs/contract.md#rbac). Afterwards each
pointer that arrives (and a periodic catch-up) makes the consumer read the table after the last
id it sent. All reads go through one lock and one cursor, so every event is sent once and in id
order.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from execution import policy
from execution.models import Execution, Tenant
from execution.realtime.groups import CATCHUP_GROUP, execution_group, tenant_group
from execution.realtime.reader import StreamRead, event_types_parse, stream_head, stream_read

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_UNKNOWN = 4404
CLOSE_BAD_REQUEST = 4400
CATCHUP_SECONDS = 3.0
HELD_BACK_RETRY_SECONDS = 0.1


def _recheck(user: Any, tenant_id: int) -> policy.Decision:
    """The socket's right again, and for a token's socket the token itself: a revoked or
    expired token closes its sockets like a lost membership does."""
    from execution.services.token_auth import api_token_alive

    binding = policy.token_binding(user)
    if binding is not None and not api_token_alive(token_pk=binding.token_pk):
        return policy.Decision(False, "the API token was revoked or has expired", "token")
    return policy.decide(user, policy.Right.SUBSCRIBE, tenant=tenant_id)


class EventStreamConsumer(AsyncJsonWebsocketConsumer):
    """Shared machinery; subclasses say which stream and who may see it."""

    stream_filter: dict[str, Any]
    stream_groups: list[str]
    tenant_id: int
    last_id: int = 0

    async def authorize(self, user: Any) -> int | None:
        """Set ``stream_filter``/``stream_groups``; return a close code to refuse."""
        raise NotImplementedError

    async def default_after(self) -> int:
        return 0

    async def connect(self) -> None:
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._joined: list[str] = []
        user = self.scope.get("user")
        code = CLOSE_UNAUTHENTICATED if not getattr(user, "is_authenticated", False) else None
        if code is None:
            code = await self.authorize(user)
        after: int | None = None
        self.types: frozenset[str] | None = None
        if code is None:
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
            raw = query.get("after")
            try:
                after = int(raw[0]) if raw else None
                # ?types=a,b: only those event types, replay included.
                self.types = event_types_parse(",".join(query.get("types", [])))
            except ValueError:
                code = CLOSE_BAD_REQUEST
        # The close code only reaches the client after an accepted handshake.
        await self.accept()
        if code is not None:
            await self.close(code=code)
            return
        for group in [*self.stream_groups, CATCHUP_GROUP]:
            await self.channel_layer.group_add(group, self.channel_name)
            self._joined.append(group)
        self._ensure_bridge()
        # Joined first, read second: a pointer sent in between triggers another read.
        self.last_id = after if after is not None else await self.default_after()
        await self.catch_up()
        self._spawn(self._periodic_catch_up())
        self._spawn(self._periodic_recheck(user))

    def _ensure_bridge(self) -> None:
        if settings.REDIS_URL:
            return
        from execution.realtime.bridge import bridge_ensure_started

        bridge_ensure_started(loop=asyncio.get_running_loop(), layer=self.channel_layer)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def disconnect(self, code: int) -> None:
        for task in list(getattr(self, "_tasks", ())):
            task.cancel()
        for group in getattr(self, "_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _periodic_catch_up(self) -> None:
        while True:
            await asyncio.sleep(CATCHUP_SECONDS)
            await self.catch_up()

    async def _periodic_recheck(self, user: Any) -> None:
        while True:
            await asyncio.sleep(settings.REALTIME_RECHECK_SECONDS)
            try:
                decision = await database_sync_to_async(_recheck)(user, self.tenant_id)
            except Exception:  # the database is away: keep the socket, ask again next round
                logger.exception("re-checking a socket's right failed")
                continue
            if not decision.allowed:
                logger.info("closing a socket of %s: %s", user, decision.reason)
                await self.close(code=CLOSE_FORBIDDEN)
                return

    async def _retry_soon(self) -> None:
        await asyncio.sleep(HELD_BACK_RETRY_SECONDS)
        await self.catch_up()

    async def catch_up(self) -> None:
        """Send every readable event after ``last_id``, in order; never twice."""
        async with self._lock:
            while True:
                try:
                    read: StreamRead = await database_sync_to_async(stream_read)(
                        after=self.last_id, types=self.types, **self.stream_filter
                    )
                except Exception:  # the database is away: the next catch-up retries
                    logger.exception("reading events failed")
                    return
                for message in read.messages:
                    await self.send_json(message)
                    self.last_id = message["id"]
                if read.held_back:
                    self._spawn(self._retry_soon())
                if not read.more:
                    return

    # Channel-layer message handlers ("event.pointer" -> event_pointer).
    async def event_pointer(self, message: dict[str, Any]) -> None:
        if int(message.get("event_id", 0)) > self.last_id:
            await self.catch_up()

    async def realtime_catchup(self, message: dict[str, Any]) -> None:
        await self.catch_up()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # Clients only listen; {"type": "ping"} is answered so they can check the line.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong", "last_id": self.last_id})


class ExecutionEventsConsumer(EventStreamConsumer):
    """``/ws/executions/<execution_id>/``: without ``after``, the whole history first."""

    async def authorize(self, user: Any) -> int | None:
        try:
            execution_id = uuid.UUID(str(self.scope["url_route"]["kwargs"]["execution_id"]))
        except ValueError:
            return CLOSE_UNKNOWN
        execution = await database_sync_to_async(
            lambda: Execution.objects.filter(execution_id=execution_id).first()
        )()
        if execution is None:
            return CLOSE_UNKNOWN
        try:
            await database_sync_to_async(policy.require)(
                user, policy.Right.SUBSCRIBE, execution=execution, door="websocket"
            )
        except policy.RightDenied as denied:
            # Another tenant's execution is simply unknown (docs/contract.md#rbac: no 403/404
            # leak across tenants).
            return CLOSE_UNKNOWN if denied.hidden else CLOSE_FORBIDDEN
        self.tenant_id = execution.tenant_id
        self.stream_filter = {"execution_id": execution_id}
        self.stream_groups = [execution_group(execution_id)]
        return None


class TenantEventsConsumer(EventStreamConsumer):
    """``/ws/tenants/<tenant>/executions/``: every event of the tenant's executions.

    Without ``after`` it starts at the newest event (live only): a tenant's whole history is
    what the REST API's paginated listing is for.
    """

    async def authorize(self, user: Any) -> int | None:
        slug = str(self.scope["url_route"]["kwargs"]["tenant"])
        tenant_id = await database_sync_to_async(
            lambda: Tenant.objects.filter(slug=slug).values_list("id", flat=True).first()
        )()
        # Unknown and not-a-member look the same: forbidden.
        if tenant_id is None:
            return CLOSE_FORBIDDEN
        try:
            await database_sync_to_async(policy.require)(
                user, policy.Right.SUBSCRIBE, tenant=tenant_id, door="websocket"
            )
        except policy.RightDenied:
            return CLOSE_FORBIDDEN
        self.tenant_id = tenant_id
        self.stream_filter = {"tenant_id": tenant_id}
        self.stream_groups = [tenant_group(tenant_id)]
        return None

    async def default_after(self) -> int:
        return await database_sync_to_async(stream_head)(**self.stream_filter)
