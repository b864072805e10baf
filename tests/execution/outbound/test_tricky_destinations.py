"""Tricky URLs and addresses against a real listener on loopback, through every sender: the
listener must accept nothing (docs/security.md "Outbound connections").

The tenant's admin listed every host (``*``, the worst a tenant admin can do) and
``allowed.example``; nobody opened loopback. Each URL goes through the http step, the
validate ``http_get`` probe and a webhook delivery; each host through the validate ``tcp``
probe and as the address of a sql, ssh (command) and SFTP (file) asset. The last test opens
loopback the operator's way and shows the same listener does count what reaches it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from execution.models import OutboundAllowRule
from execution.runners.base import ResolvedTarget
from execution.runners.registry import get_runner
from monitoring.notifications.deliver import delivery_attempt
from monitoring.notifications.models import Channel, NotificationDelivery, NotificationSubscription
from tests.execution.runners.conftest import make_ctx
from tests.support.listener import CountingListener

pytestmark = pytest.mark.django_db


def _names_with_a_loopback_hosts_entry() -> list[str]:
    """Names /etc/hosts maps to loopback besides localhost (this machine's own name, as
    Debian writes it): DNS names that resolve to 127.0.0.1 through a hosts entry."""
    names = {socket.gethostname()}
    with contextlib.suppress(OSError), open("/etc/hosts") as hosts:
        for line in hosts:
            address, *aliases = line.split("#", 1)[0].split() or [""]
            if address.startswith("127.") or address == "::1":
                names.update(aliases)
    loopback = []
    for name in sorted(names - {"localhost", "ip6-localhost", "ip6-loopback"}):
        with contextlib.suppress(OSError):
            if all(ipaddress.ip_address(i[4][0]).is_loopback for i in socket.getaddrinfo(name, None)):
                loopback.append(name)
    return loopback


LOOPBACK_NAMES = _names_with_a_loopback_hosts_entry()

URLS = [
    "http://127.0.0.1:{port}\\@allowed.example/../x",  # backslash-@: requests sends it to 127.0.0.1
    "http://allowed.example@127.0.0.1:{port}/",  # userinfo
    "http://127.0.0.1:{port}/",
    "https://127.0.0.1:{port}/",
    "HTTP://127.0.0.1:{port}/",  # uppercase scheme
    "http://[::1]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped IPv6
    "http://[0:0:0:0:0:ffff:7f00:1]:{port}/",
    "http://[fe80::1%25lo]:{port}/",  # zone id
    "http://2130706433:{port}/",  # decimal
    "http://0177.0.0.1:{port}/",  # octal
    "http://0x7f.1:{port}/",  # hex, short
    "http://127.1:{port}/",  # short form
    "http://0.0.0.0:{port}/",
    "http://[::]:{port}/",
    "http://localhost:{port}/",  # a name on the allow-list that resolves to 127.0.0.1
    "http://localhost.:{port}/",  # trailing dot
    "http://LOCALHOST:{port}/",
    "http://\u24dbocalhost:{port}/",  # IDNA: \u24db maps to "l"
    "http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54:{port}/",  # IDNA: fullwidth letters
    "http://127\u30020\u30020\u30021:{port}/",  # IDNA: ideographic full stops are dots
    "http://%6c%6f%63%61%6c%68%6f%73%74:{port}/",  # percent-encoded host
    "http://0x7f000001:{port}/",  # hex, one number
    "http://017700000001:{port}/",  # octal, one number
    "http://127.000.000.001:{port}/",  # leading zeros (octal to inet_aton)
    "http://127.0.0.2:{port}/",  # the rest of 127/8
    "http://[::ffff:7f00:1]:{port}/",
    "http://[::127.0.0.1]:{port}/",  # IPv4-compatible (deprecated) form
    "http://[64:ff9b::7f00:1]:{port}/",  # NAT64
    "http://[2002:7f00:1::1]:{port}/",  # 6to4 of 127.0.0.1
    "http://[fe80::1%lo]:{port}/",  # zone id, not percent-encoded
    "http://[::1%25lo]:{port}/",
    "http://127.0.0.1:{port}#@allowed.example/",
    "http://127.0.0.1:{port}?@allowed.example/",
    "http://allowed.example:80@127.0.0.1:{port}/",  # userinfo with a colon
    "http://allowed.example%40127.0.0.1:{port}/",
    "http://127.0.0.1\t:{port}/",
    *(f"http://{name}:{{port}}/" for name in LOOPBACK_NAMES),  # names with a hosts entry
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/_GET%20/",
]
HOSTS = [
    "127.0.0.1",
    "::1",
    "[::1]",
    "::ffff:127.0.0.1",
    "localhost",
    "localhost.",
    "LOCALHOST",
    "2130706433",
    "0177.0.0.1",
    "0x7f.1",
    "127.1",
    "0.0.0.0",
    "::",
    "nonexistent.invalid,127.0.0.1",
    "127.0.0.1 ",
    "/tmp",
    "0x7f000001",
    "017700000001",
    "127.000.000.001",
    "127.0.0.2",
    "::ffff:7f00:1",
    "::127.0.0.1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::1",
    "fe80::1%lo",
    "::1%lo",
    "127.0.0.1:22",
    "[127.0.0.1]",
    "\u24dbocalhost",
    "127\u30020\u30020\u30021",
    *LOOPBACK_NAMES,
]


# What the guard says (execution/outbound/addresses.py, guard.py): "is a loopback address",
# "is a list of hosts", "is a numeric IPv4 form", "is a path", "holds whitespace", ...
GUARD_REASONS = (
    "is a ",
    "holds ",
    "is neither",
    "has an IPv6 zone id",
    "is not ASCII",
    "is not on the outbound allow-list",
)


@pytest.fixture
def listener(tenant: Any) -> Iterator[CountingListener]:
    for pattern in ("*", "allowed.example"):
        OutboundAllowRule.objects.create(tenant=tenant, environment="", host_pattern=pattern)
    with CountingListener() as server:
        yield server


def _webhook(tenant: Any, url: str) -> NotificationDelivery:
    subscription = NotificationSubscription.objects.create(
        tenant=tenant,
        name=f"hook {uuid.uuid4().hex[:6]}",
        kinds=["failed"],
        channel=Channel.WEBHOOK,
        destination=url,
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


def _senders_of_a_url(tenant: Any, url: str) -> dict[str, tuple[bool, str]]:
    """Each URL sender -> (did it report success, what it said)."""
    http = get_runner("http").run(make_ctx("http", {"url": url}))
    probe = get_runner("validate").run(make_ctx("validate", {"http_get": url}))
    delivery = _webhook(tenant, url)
    return {
        "http step": (http.status == "completed", http.error_message),
        "validate http_get": (probe.status == "completed", probe.error_message),
        "webhook": (delivery.status == "delivered", delivery.last_error),
    }


def _target(kind: str, host: str, port: int) -> ResolvedTarget:
    return ResolvedTarget(
        asset_id="1",
        hostname="asset",
        connection_type=kind,
        address=host,
        port=port,
        username="someone",
        metadata={"database": "app"},
    )


def _senders_of_a_host(host: str, port: int) -> dict[str, tuple[bool, str]]:
    tcp = get_runner("validate").run(make_ctx("validate", {"tcp": {"host": host, "port": port}}))
    sql = get_runner("sql").run(
        make_ctx("sql", {"query": "SELECT 1"}, target=_target("database", host, port))
    )
    ssh = get_runner("command").run(
        make_ctx("command", {"command": "true"}, target=_target("ssh", host, port), timeout=5)
    )
    sftp = get_runner("file").run(
        make_ctx(
            "file",
            {"direction": "download", "remote_path": "/etc/hostname", "local_path": "x"},
            target=_target("ssh", host, port),
            timeout=5,
        )
    )
    return {
        "validate tcp": (tcp.status == "completed", tcp.error_message),
        "sql asset": (sql.status == "completed", sql.error_message),
        "ssh asset": (ssh.status == "completed", ssh.error_message),
        "sftp asset": (sftp.status == "completed", sftp.error_message),
    }


@pytest.mark.parametrize("template", URLS)
def test_a_tricky_url_reaches_nothing_through_any_sender(
    tenant: Any, listener: CountingListener, template: str
) -> None:
    url = template.format(port=listener.port)
    answers = _senders_of_a_url(tenant, url)
    assert listener.accepted == 0, f"{url} reached the listener: {answers}"
    for sender, (ok, said) in answers.items():
        assert not ok, f"{sender} reported success for {url}"
        assert said, f"{sender} gave no reason for {url}"


@pytest.mark.parametrize("host", HOSTS)
def test_a_tricky_address_reaches_nothing_through_any_sender(
    tenant: Any, listener: CountingListener, host: str
) -> None:
    answers = _senders_of_a_host(host, listener.port)
    assert listener.accepted == 0, f"{host!r} reached the listener: {answers}"
    for sender, (ok, said) in answers.items():
        assert not ok, f"{sender} reported success for {host!r}"
        assert any(why in said for why in GUARD_REASONS), f"{sender} for {host!r}: {said}"


def test_the_same_listener_counts_what_an_opened_loopback_lets_through(
    tenant: Any, listener: CountingListener, loopback_opened: None
) -> None:
    """The control: opened by the operator, loopback is reached by every sender (the ssh,
    sftp and sql senders fail afterwards: the listener speaks neither protocol)."""
    url_answers = _senders_of_a_url(tenant, f"http://127.0.0.1:{listener.port}/")
    assert all(ok for ok, _ in url_answers.values()), url_answers
    _senders_of_a_host("127.0.0.1", listener.port)
    assert listener.accepted == 3 + 4, listener.accepted


# The product's own web port, with loopback opened by the operator (as a deployment whose
# assets live on this machine opens it): only the own-port rule stands between each sender
# and the listener, which is where the web server listens (OPS_HOST/OPS_PORT).
OWN_PORT_URLS = [
    "http://127.0.0.1:{port}/",
    "https://127.0.0.1:{port}/",
    "http://127.0.0.1:{port}\\@allowed.example/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:7f00:1]:{port}/",
    "http://0.0.0.0:{port}/",
    "http://[::]:{port}/",
    "http://localhost:{port}/",
    "http://localhost.:{port}/",
    "http://LOCALHOST:{port}/",
    "http://\u24dbocalhost:{port}/",
    *(f"http://{name}:{{port}}/" for name in LOOPBACK_NAMES),
]


def _operator_senders_of_a_url(url: str, settings: Any) -> dict[str, tuple[bool, str]]:
    """The senders whose destination the operator configures: the service clients and the
    audit sinks (syslog gets the URL's host and port)."""
    from urllib.parse import urlsplit

    from execution.clients.assets import AssetServiceClient
    from execution.clients.automation import AutomationServiceClient
    from execution.clients.base import ServiceError
    from execution.services.audit_sink import SinkFailed, send_syslog, send_webhook

    answers: dict[str, tuple[bool, str]] = {}
    for name, client in (
        ("Asset Service", AssetServiceClient(base_url=url, retries=0)),
        ("Automation Service", AutomationServiceClient(base_url=url, retries=0)),
    ):
        try:
            client.request("GET", "/health")
            answers[name] = (True, "")
        except ServiceError as exc:
            answers[name] = (False, str(exc))
        finally:
            client.close()
    settings.AUDIT_SINK_WEBHOOK_URL = url
    parts = urlsplit(url)
    settings.AUDIT_SINK_SYSLOG = f"tcp://{parts.netloc.rsplit('@', 1)[-1]}"
    for name, send in (("audit webhook", send_webhook), ("audit syslog", send_syslog)):
        try:
            send(["{}"])
            answers[name] = (True, "")
        except SinkFailed as exc:
            answers[name] = (False, str(exc))
    return answers


@pytest.mark.parametrize("ops_host", ["127.0.0.1", "0.0.0.0"])
@pytest.mark.parametrize("template", OWN_PORT_URLS)
def test_the_products_own_web_port_is_reached_by_no_sender(
    tenant: Any, listener: CountingListener, settings: Any, ops_host: str, template: str
) -> None:
    settings.OUTBOUND_OPEN_NETWORKS = ["127.0.0.0/8", "::1"]
    settings.OPS_HOST, settings.OPS_PORT = ops_host, listener.port
    url = template.format(port=listener.port)
    answers = _senders_of_a_url(tenant, url) | _operator_senders_of_a_url(url, settings)
    host = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]").split("\\")[0]
    answers |= _senders_of_a_host(host, listener.port)
    assert listener.accepted == 0, f"{url} reached the product's own web port: {answers}"
    for sender, (ok, said) in answers.items():
        assert not ok, f"{sender} reported success for {url}"
        assert said, f"{sender} gave no reason for {url}"


def test_another_loopback_port_is_reached_by_every_sender_once_opened(
    tenant: Any, listener: CountingListener, settings: Any
) -> None:
    """The control of the test above: the same senders reach the listener when it is not
    the product's web port (the sql, ssh and sftp senders then fail: it speaks neither)."""
    settings.OUTBOUND_OPEN_NETWORKS = ["127.0.0.0/8", "::1"]
    settings.OPS_HOST, settings.OPS_PORT = "127.0.0.1", listener.port + 1 if listener.port < 65535 else 1
    url = f"http://127.0.0.1:{listener.port}/"
    answers = _senders_of_a_url(tenant, url) | _operator_senders_of_a_url(url, settings)
    _senders_of_a_host("127.0.0.1", listener.port)
    assert listener.accepted == 3 + 4 + 4, (listener.accepted, answers)
