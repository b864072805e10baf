"""Keeps Django's middleware chain synchronous under ASGI (daphne): one thread per request.

Django builds the chain from the innermost middleware outwards. Under ASGI the innermost
handler is async, so every middleware that can run both ways (Django's own, through
``MiddlewareMixin``) runs async, and each of its ``process_request``/``process_response``
calls is a hop to the request's worker thread and back (``sync_to_async``), until a
sync-only middleware (ours: the request guard, the database-outage answer) turns the chain
back with ``async_to_sync``: a dozen hops between the event loop and the thread per request.
This sync-only middleware, innermost, turns the chain once: every middleware outside it runs
in the one worker thread that runs the view (docs/engine.md "Submission cost").
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class SyncChainMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
