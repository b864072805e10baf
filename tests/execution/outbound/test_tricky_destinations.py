"""Tricky URLs and addresses against a real listener on loopback, through every sender: the
listener must accept nothing (docs/security.md "Outbound connections").

The tenant's admin listed every host (``*``, the worst a tenant admin can do) and
``allowed.example``; nobody opened loopback. Each URL goes through the http step, the
validate ``http_get`` probe and a webhook delivery; each host through the validate ``tcp``
probe and as the address of a sql, ssh (command) and SFTP (file) asset. The last test opens
loopback the operator's way and shows the same listener does count what reaches it.
"""

from __future__ import annotations

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
]


# What the guard says (execution/outbound/addresses.py, guard.py): "is a loopback address",
# "is a list of hosts", "is a numeric IPv4 form", "is a path", "holds whitespace", ...
GUARD_REASONS = ("is a ", "holds ", "is neither", "has an IPv6 zone id", "is not on the outbound allow-list")


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
