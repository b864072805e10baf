"""Under ASGI a request's middleware runs in its one worker thread (opsconductor/sync_chain.py).

Without the innermost sync-only middleware, Django ran its own middleware async and each of
their process_request/process_response calls hopped from the event loop to the request's
thread and back: counted here by the asgiref adapters a request goes through, through the
web process's own handler (a real ASGI call, no server)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import pytest
from asgiref.sync import AsyncToSync, SyncToAsync
from asgiref.testing import ApplicationCommunicator

from opsconductor.asgi_pool import PooledASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


def _get(path: str) -> tuple[int, int]:
    """(status, thread hops) of one GET through the web process's ASGI handler."""
    hops = 0
    calls = {SyncToAsync: SyncToAsync.__call__, AsyncToSync: AsyncToSync.__call__}

    def counted(adapter: Any) -> Any:
        original = calls[adapter]

        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal hops
            hops += 1
            return original(self, *args, **kwargs)

        return call

    async def request() -> int:
        app = PooledASGIHandler()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"localhost")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        talk = ApplicationCommunicator(app, scope)
        await talk.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await talk.receive_output(30)
        await talk.receive_output(30)  # the body
        await talk.wait(30)
        return int(start["status"])

    SyncToAsync.__call__ = counted(SyncToAsync)  # type: ignore[method-assign]
    AsyncToSync.__call__ = counted(AsyncToSync)  # type: ignore[method-assign]
    try:
        # In a thread of its own: in a whole-suite run this thread may already run an event
        # loop (the session's browser), where asyncio.run() refuses to start.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            status = pool.submit(asyncio.run, request()).result(timeout=120)
    finally:
        SyncToAsync.__call__, AsyncToSync.__call__ = calls[SyncToAsync], calls[AsyncToSync]  # type: ignore[method-assign]
    return status, hops


def test_a_request_crosses_between_the_event_loop_and_its_thread_a_few_times_not_per_middleware() -> None:
    status, hops = _get("/healthz")
    assert status == 200
    # The request_started and request_finished signals, the middleware chain, out of it for
    # Django's async core, back in for CSRF's process_view and for the view: 6. It was 16 with
    # Django's own middleware run async (two hops for most of them).
    assert hops <= 6, hops
