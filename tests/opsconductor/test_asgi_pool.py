"""A request's synchronous part runs in one hop to its worker thread (opsconductor/asgi_pool.py).

Django's ASGI handler crossed between the event loop and the request's thread for the
request_started signal, the middleware chain, its async core, CSRF's process_view, the view
and response.close() (request_finished): 6 crossings per request once the chain was kept
synchronous, 16 before. Counted here by the asgiref adapters a request goes through, through
the web process's own handler (a real ASGI call, no server)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import AsyncToSync, SyncToAsync
from asgiref.testing import ApplicationCommunicator
from django.core.signals import request_finished, request_started
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import path

from opsconductor.asgi_pool import PooledASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)
STATIC = Path(__file__).resolve().parents[2] / "execution" / "static" / "execution" / "live.js"
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"localhost")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


def _in_a_thread(coroutine: Any) -> Any:
    # In a thread of its own: in a whole-suite run this thread may already run an event
    # loop (the session's browser), where asyncio.run() refuses to start.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=120)


def _get(path: str) -> tuple[list[dict[str, Any]], int, list[tuple[str, str, int]]]:
    """(messages sent, thread hops, signals as (name, thread, messages sent before it)) of
    one GET through the web process's ASGI handler."""
    hops = 0
    calls = {SyncToAsync: SyncToAsync.__call__, AsyncToSync: AsyncToSync.__call__}
    sent: list[dict[str, Any]] = []
    seen: list[tuple[str, str, int]] = []

    def counted(adapter: Any) -> Any:
        original = calls[adapter]

        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal hops
            hops += 1
            return original(self, *args, **kwargs)

        return call

    def started(**kwargs: Any) -> None:
        seen.append(("request_started", threading.current_thread().name, len(sent)))

    def finished(**kwargs: Any) -> None:
        seen.append(("request_finished", threading.current_thread().name, len(sent)))

    async def request() -> None:
        scope = {**SCOPE, "path": path, "raw_path": path.encode()}
        talk = ApplicationCommunicator(PooledASGIHandler(), scope)
        await talk.send_input({"type": "http.request", "body": b"", "more_body": False})
        while not sent or sent[-1].get("more_body", sent[-1]["type"] == "http.response.start"):
            sent.append(await talk.receive_output(30))
        await talk.wait(30)

    SyncToAsync.__call__ = counted(SyncToAsync)  # type: ignore[method-assign]
    AsyncToSync.__call__ = counted(AsyncToSync)  # type: ignore[method-assign]
    request_started.connect(started)
    request_finished.connect(finished)
    try:
        _in_a_thread(request())
    finally:
        SyncToAsync.__call__, AsyncToSync.__call__ = calls[SyncToAsync], calls[AsyncToSync]  # type: ignore[method-assign]
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    return sent, hops, seen


def test_a_request_crosses_to_its_thread_once_and_is_finished_there_before_the_answer() -> None:
    sent, hops, seen = _get("/healthz")
    assert sent[0]["status"] == 200
    # Signals, middleware chain, view and close(): one hop, in one of the pool's threads.
    assert hops == 1, hops
    assert [name for name, _, _ in seen] == ["request_started", "request_finished"], seen
    assert {thread for _, thread, _ in seen} == {seen[0][1]} and seen[0][1].startswith("web-"), seen
    # request_finished (the thread's connection kept or closed) before anything is sent.
    assert seen[1][2] == 0, seen


def test_a_streaming_response_is_streamed_then_finished() -> None:
    sent, _, seen = _get("/static/execution/live.js")
    assert sent[0]["status"] == 200
    assert b"".join(m.get("body", b"") for m in sent[1:]) == STATIC.read_bytes()
    # Written by the event loop as Django writes it, closed (request_finished) after that.
    assert [name for name, _, _ in seen] == ["request_started", "request_finished"], seen
    assert seen[1][2] == len(sent) and seen[1][1].startswith("web-"), seen


entered, release = threading.Event(), threading.Event()
closed: list[str] = []


class _Tracked(HttpResponse):
    def close(self) -> None:
        closed.append(threading.current_thread().name)
        super().close()


def _slow(request: HttpRequest) -> HttpResponse:
    entered.set()
    release.wait(30)
    return _Tracked("late")


urlpatterns = [path("slow", _slow)]


@override_settings(ROOT_URLCONF=__name__)
def test_a_client_that_leaves_during_the_view_gets_its_response_closed_in_the_thread() -> None:
    """The view runs on (a thread cannot be interrupted); its response is closed there, so
    request_finished and the request's own closers run once. Django's handler dropped the
    response unclosed and sent request_finished from the event loop instead."""
    entered.clear()
    release.clear()
    closed.clear()

    async def request() -> None:
        scope = {**SCOPE, "path": "/slow", "raw_path": b"/slow"}
        talk = ApplicationCommunicator(PooledASGIHandler(), scope)
        await talk.send_input({"type": "http.request", "body": b"", "more_body": False})
        await asyncio.get_running_loop().run_in_executor(None, entered.wait, 30)
        await talk.send_input({"type": "http.disconnect"})
        await asyncio.sleep(0.2)  # the old handler's disconnect listener acts meanwhile
        release.set()
        await talk.wait(30)

    _in_a_thread(request())
    assert len(closed) == 1 and closed[0].startswith("web-"), closed
