"""Django's ASGI handler on a fixed pool of threads, each keeping its database connection,
with a request's synchronous part in one hop to its thread.

Django's own handler gives every HTTP request a new thread (``ThreadSensitiveContext``), so
every request opened a new PostgreSQL connection (a new server process) and the old one
lingered until its thread was collected: under a burst the web process held dozens of idle
connections, hit ``max_connections`` and answered 503. Here a request borrows one of
``WEB_THREADS`` single-thread executors for its synchronous part (middleware, view,
signals) and gives it back after; the thread, and the connection it opened
(``DB_CONN_MAX_AGE``), serve the next request. A request that finds every thread busy waits
for one. Each thread is one connection: size ``max_connections`` with it
(docs/deployment.md).

Django's handler also crosses between the event loop and that thread several times per
request (the ``request_started`` signal, the middleware chain, its async core, the view,
``response.close()`` and its ``request_finished`` signal), and races every request against
a task listening for the client's disconnect. Every view and middleware here is
synchronous, so the chain is loaded synchronous (as under WSGI) and one hop runs it all:
``request_started``, the request, the chain, and for a whole (non-streaming) response its
``close()`` (``request_finished``: the thread's connection is kept or closed there, as
``DB_CONN_MAX_AGE`` says). The event loop then only writes the answer. A streaming response
is written as Django writes it: raced against the disconnect listener, closed after
(docs/engine.md "Submission cost").
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse
from django.http.response import HttpResponseBase
from django.urls import set_script_prefix


class PooledASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        # Not ASGIHandler.__init__: its chain is loaded async, one hop per sync middleware.
        self._free: asyncio.Queue[ThreadPoolExecutor] | None = None
        self.load_middleware(is_async=False)

    def _pool(self) -> asyncio.Queue[ThreadPoolExecutor]:
        # Made on first use, inside the server's event loop.
        if self._free is None:
            self._free = asyncio.Queue()
            for i in range(settings.WEB_THREADS):
                self._free.put_nowait(ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"web-{i}"))
        return self._free

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        free = self._pool()
        executor = await free.get()
        try:
            # sync_to_async(thread_sensitive=True) inside this context runs on the executor.
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            free.put_nowait(executor)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response = await sync_to_async(self.respond, thread_sensitive=True)(scope, body_file)
            if response.streaming:
                await self.stream(response, receive, send)
            else:
                # Closed already; a client gone meanwhile: daphne drops what is sent.
                await self.send_response(response, send)
        finally:
            body_file.close()

    def respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        """The request's synchronous part, in its thread: Django's ``handle`` less the I/O."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, refused = self.create_request(scope, body_file)
        response = self.get_response(request) if request is not None else cast(HttpResponseBase, refused)
        response._handler_class = self.__class__  # type: ignore[attr-defined]  # close()'s sender
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size  # the server chunks
        if not response.streaming:
            response.close()  # request_finished, here rather than in one more hop
        return response

    async def stream(self, response: HttpResponseBase, receive: Any, send: Any) -> None:
        """Django's way: the writing races the client's disconnect, then the response closes."""
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(self.send_response(response, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()  # the one still running
        for task in tasks:
            with contextlib.suppress(RequestAborted, asyncio.CancelledError):
                await task  # a disconnect stops the writing
        await sync_to_async(response.close)()
