"""daphne's requests leave form parsing to Django (opsconductor/daphne_requests.py).

Twisted parsed every POST body with a Content-Type into ``request.args``, after parsing the
header with the ``email`` package; daphne never reads them. Fed here through daphne's own
HTTP protocol factory, as the web process loads it (opsconductor.asgi), with a stand-in for
daphne's server that records the application's scope and body."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest import mock

from daphne import http_protocol
from twisted.internet.testing import StringTransport
from twisted.web import http as twisted_http

import opsconductor.asgi  # noqa: F401  # the web process's setup


class _Server:
    """What daphne's protocol asks of its server, minus the application."""

    proxy_forwarded_address_header = None
    root_path = ""
    request_buffer_size = 8192
    server_name = b"daphne"

    def __init__(self) -> None:
        self.requests: list[tuple[Any, dict[str, Any], asyncio.Queue[Any]]] = []

    def protocol_connected(self, protocol: Any) -> None:
        pass

    def protocol_disconnected(self, protocol: Any) -> None:
        pass

    def log_action(self, *args: Any) -> None:
        pass

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self.requests.append((protocol, scope, queue))
        return queue


def test_a_form_post_reaches_django_whole_and_unparsed_by_twisted() -> None:
    server = _Server()
    channel = http_protocol.HTTPFactory(server).buildProtocol(("127.0.0.1", 50000))
    channel.makeConnection(StringTransport())
    body = b"username=ops&password=s3cret"
    head = b"POST /accounts/login/ HTTP/1.1\r\nHost: localhost\r\n"
    head += b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(body)
    with mock.patch.object(twisted_http, "_parseContentType", wraps=twisted_http._parseContentType) as parse:
        channel.dataReceived(head + body)
    [(request, scope, queue)] = server.requests
    assert (scope["method"], scope["path"]) == ("POST", "/accounts/login/")
    assert queue.get_nowait() == {"type": "http.request", "body": body, "more_body": False}
    # Twisted neither parsed the Content-Type with the email package nor the form.
    assert parse.call_count == 0
    assert request.args == {}
