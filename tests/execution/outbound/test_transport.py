"""The connection goes to the address the guard checked, and only there: TLS still verified
for the name, no proxy or netrc of the worker's environment, no redirect off the list."""

from __future__ import annotations

import contextlib
import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from execution.clients.base import ServiceClient, ServiceError
from execution.models import OutboundAllowRule
from execution.runners.registry import get_runner
from monitoring.notifications.deliver import delivery_attempt
from monitoring.notifications.models import Channel, NotificationDelivery, NotificationSubscription
from tests.execution.runners.conftest import make_ctx
from tests.support.httpserver import LoopbackHttpServer
from tests.support.listener import CountingListener
from tests.support.tls import make_certificates

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_opened")]


class _HttpsServer:
    """An HTTPS server on 127.0.0.1 recording the TLS server names and Host headers it got."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.server_names: list[str | None] = []
        self.hosts: list[str | None] = []
        outer = self

        def remember(sock: Any, server_name: str | None, ctx: Any) -> None:
            outer.server_names.append(server_name)

        context.sni_callback = remember

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hosts.append(self.headers.get("Host"))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]

    def __enter__(self) -> _HttpsServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def https_server(tmp_path: Path, names: list[str]) -> Iterator[_HttpsServer]:
    certificates = make_certificates(tmp_path / "tls", dns_names=names)
    with _HttpsServer(certificates.server_context()) as server:
        server.ca_file = certificates.ca_file  # type: ignore[attr-defined]
        yield server


def test_tls_goes_to_the_checked_address_and_is_verified_for_the_name(
    tenant: Any, tmp_path: Path, settings: Any
) -> None:
    OutboundAllowRule.objects.create(tenant=tenant, host_pattern="localhost")
    with https_server(tmp_path, ["localhost"]) as server:
        settings.OUTBOUND_CA_BUNDLE = str(server.ca_file)  # type: ignore[attr-defined]
        result = get_runner("http").run(make_ctx("http", {"url": f"https://localhost:{server.port}/"}))
        assert result.status == "completed", result.error_message
        assert server.server_names == ["localhost"]  # SNI: the name, not 127.0.0.1
        assert server.hosts == [f"localhost:{server.port}"]


def test_a_certificate_for_another_name_is_refused(tenant: Any, tmp_path: Path, settings: Any) -> None:
    OutboundAllowRule.objects.create(tenant=tenant, host_pattern="localhost")
    with https_server(tmp_path, ["other.example"]) as server:
        settings.OUTBOUND_CA_BUNDLE = str(server.ca_file)  # type: ignore[attr-defined]
        result = get_runner("http").run(make_ctx("http", {"url": f"https://localhost:{server.port}/"}))
        assert result.status == "failed"
        assert "SSLError" in result.error_message or "certificate" in result.error_message
        assert server.hosts == []


def test_no_proxy_or_netrc_of_the_environment_is_used(
    tenant: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    OutboundAllowRule.objects.create(tenant=tenant, host_pattern="127.0.0.1")
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login worker password worker-secret\n")
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    with CountingListener() as proxy, LoopbackHttpServer() as target:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        result = get_runner("http").run(make_ctx("http", {"url": f"{target.url}/x"}))
        assert result.status == "completed", result.error_message
        assert proxy.accepted == 0
        assert len(target.requests) == 1
        assert "Authorization" not in target.requests[0]["headers"]


def _webhook(tenant: Any, url: str) -> NotificationDelivery:
    subscription = NotificationSubscription.objects.create(
        tenant=tenant, name="hook", kinds=["failed"], channel=Channel.WEBHOOK, destination=url
    )
    delivery = NotificationDelivery.objects.create(
        subscription=subscription,
        tenant=tenant,
        event_id=1,
        execution_id=uuid.uuid4(),
        kind="failed",
        channel=Channel.WEBHOOK,
        destination=url,
        body="{}",
        attempts=1,
    )
    delivery_attempt(delivery=delivery)
    delivery.refresh_from_db()
    return delivery


def test_no_sender_follows_a_redirect_off_the_list(tenant: Any, settings: Any) -> None:
    """127.0.0.2 is listed and opened; it redirects to 127.0.0.1, which is neither."""
    settings.OUTBOUND_OPEN_NETWORKS = ["127.0.0.2"]
    OutboundAllowRule.objects.create(tenant=tenant, host_pattern="127.0.0.2")
    with CountingListener() as off_list:
        elsewhere = f"http://127.0.0.1:{off_list.port}/stolen"

        def redirect(m: str, p: str, h: dict[str, str], b: bytes) -> tuple[int, dict[str, str], bytes]:
            return 302, {"Location": elsewhere}, b""

        with LoopbackHttpServer(redirect, host="127.0.0.2") as allowed:
            http = get_runner("http").run(make_ctx("http", {"url": f"{allowed.url}/a"}))
            probe = get_runner("validate").run(make_ctx("validate", {"http_get": f"{allowed.url}/b"}))
            delivery = _webhook(tenant, f"{allowed.url}/c")
            client = ServiceClient(base_url=allowed.url, retries=0)
            with pytest.raises(ServiceError, match="a redirect, not followed"):
                client.request("GET", "/d")
            assert client.health()["ok"] is False
            assert len(allowed.requests) == 5
    assert off_list.accepted == 0
    assert http.status == "failed" and http.output["status_code"] == 302
    assert probe.status == "failed" and "-> 302" in probe.error_message
    assert (
        delivery.status != "delivered"
        and delivery.last_error
        == "HTTP 302: a redirect, not followed (a redirect could leave the allow-list)"
    )
