"""PostgreSQL unreachable → 503 with ``Retry-After`` (docs/contract.md#hostile-input).

While the database is down every request that needs it fails the same way; one traceback per
request would bury the logs. This middleware turns ``OperationalError``/``InterfaceError``
from a view (API or page) into a 503, logs one line when an outage starts and one when a
request succeeds again. Recovery needs nothing: Django's connection health checks
(``CONN_HEALTH_CHECKS``) drop the broken connection and the next request opens a new one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5

_lock = threading.Lock()
_down_since: float | None = None


def _outage_started(exc: BaseException) -> None:
    global _down_since
    with _lock:
        if _down_since is not None:
            return
        _down_since = time.monotonic()
    logger.error("database unreachable (%s); answering 503 until it is back", type(exc).__name__)


def _outage_over() -> None:
    global _down_since
    with _lock:
        if _down_since is None:
            return
        lasted, _down_since = time.monotonic() - _down_since, None
    logger.warning("database reachable again after %.0fs", lasted)


class DatabaseOutageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if _down_since is not None and response.status_code < 500:
            _outage_over()
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        _outage_started(exception)
        detail = "the database is unreachable; retry shortly"
        if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
            response: HttpResponse = JsonResponse(
                {"detail": detail, "reason": "database_unavailable"}, status=503
            )
        else:
            response = HttpResponse(
                f"503 Service Unavailable: {detail}.\n", status=503, content_type="text/plain"
            )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        # Django's request logger would log every 503 once more: the outage line says it all.
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response
