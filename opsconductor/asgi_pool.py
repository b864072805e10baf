"""Django's ASGI handler on a fixed pool of threads, each keeping its database connection.

Django's own handler gives every HTTP request a new thread (``ThreadSensitiveContext``), so
every request opened a new PostgreSQL connection (a new server process) and the old one
lingered until its thread was collected: under a burst the web process held dozens of idle
connections, hit ``max_connections`` and answered 503. Here a request borrows one of
``WEB_THREADS`` single-thread executors for its synchronous part (middleware, view,
signals) and gives it back after; the thread, and the connection it opened
(``DB_CONN_MAX_AGE``), serve the next request. A request that finds every thread busy waits
for one. Each thread is one connection: size ``max_connections`` with it
(docs/deployment.md).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler


class PooledASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._free: asyncio.Queue[ThreadPoolExecutor] | None = None

    def _pool(self) -> asyncio.Queue[ThreadPoolExecutor]:
        # Made on first use, inside the server's event loop.
        if self._free is None:
            self._free = asyncio.Queue()
            for i in range(settings.WEB_THREADS):
                self._free.put_nowait(ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"web-{i}"))
        return self._free

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        free = self._pool()
        executor = await free.get()
        try:
            # The outer context with an executor wins; Django's own (inside) then uses it.
            async with ThreadSensitiveContext(executor=executor):
                await super().__call__(scope, receive, send)
        finally:
            free.put_nowait(executor)
