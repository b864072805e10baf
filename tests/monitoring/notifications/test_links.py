"""Links in notifications lead to the server that sent them (docs/notifications.md).

``manage.py serve`` on a port other than 8000 (web and workers, real processes): the webhook
its workers deliver links to that port, and the link opens the approval page there. With
``OPS_PUBLIC_URL`` set (a proxy in front), links use it instead.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from approvals.services import approval_request
from execution.models import ExecutionEvent
from monitoring.notifications.kinds import notification_kind
from monitoring.notifications.models import Channel, Kind, NotificationDelivery
from monitoring.notifications.render import content_webhook
from tests.approvals.conftest import ensure_policies
from tests.execution.engine.helpers import make_execution, wait_until
from tests.monitoring.notifications.helpers import TimedReceiver, personas, subscribe
from tests.support.processes import (
    REPO_ROOT,
    free_port,
    manage_argv,
    stop_process,
    subprocess_env,
    wait_for_port,
)


def _serve(port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            manage_argv("serve", "--port", str(port), "--no-demo"),
            cwd=REPO_ROOT,
            env=subprocess_env(OPS_WORKERS="1"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_links_point_at_the_port_serve_listens_on(tenant: Any, tmp_path: Path) -> None:
    ensure_policies()
    people = personas(tenant)
    port = free_port()
    assert port != 8000
    log = tmp_path / "serve.log"
    with TimedReceiver(200) as receiver:
        subscribe(
            tenant=tenant, kinds=[Kind.APPROVAL_REQUESTED], channel=Channel.WEBHOOK, destination=receiver.url
        )
        server = _serve(port, log)
        try:
            wait_for_port(port, timeout=90)
            waiting = make_execution(
                tenant=tenant, actor=people["requester"], steps=[{"type": "noop"}], approve=False
            )
            approval = approval_request(execution=waiting, level=1)
            wait_until(
                lambda: NotificationDelivery.objects.filter(status="delivered").exists(),
                120,
                interval=0.5,
                what="the approval webhook delivered by serve's workers",
            )
            hook = json.loads(receiver.requests[0]["body"])
            link = hook["url"]
            assert link.startswith(f"http://127.0.0.1:{port}/approvals/link/"), log.read_text()[-2000:]
            assert f"<{link}|open>" in hook["text"]
            # The link opens the approval page on the server that sent it (the signed link
            # leads there behind login: docs/notifications.md#approval-links).
            client = Client()
            client.force_login(people["approver1"])
            request = urllib.request.Request(  # noqa: S310 - the hook's http link to loopback
                link, headers={"Cookie": f"sessionid={client.cookies['sessionid'].value}"}
            )
            with urllib.request.urlopen(request, timeout=20) as answer:  # noqa: S310 - loopback
                assert answer.status == 200
                assert answer.url == f"http://127.0.0.1:{port}/approvals/{approval.approval_id}/"
                assert str(waiting.execution_id) in answer.read().decode()
        finally:
            stop_process(server, timeout=60)


@pytest.mark.django_db
def test_ops_public_url_names_the_address_users_reach(tenant: Any, settings: Any) -> None:
    ensure_policies()
    people = personas(tenant)
    waiting = make_execution(
        tenant=tenant, actor=people["requester"], steps=[{"type": "noop"}], approve=False
    )
    approval_request(execution=waiting, level=1)
    event = ExecutionEvent.objects.filter(execution=waiting, event_type="approval_requested").latest("id")
    kind = notification_kind(event)
    assert kind == Kind.APPROVAL_REQUESTED

    def url() -> str:
        return str(
            json.loads(content_webhook(event=event, execution=waiting, kind=kind, approvers=[]).body)["url"]
        )

    settings.OPS_PUBLIC_URL, settings.OPS_HOST, settings.OPS_PORT = "", "0.0.0.0", 18123
    assert url().startswith("http://127.0.0.1:18123/approvals/link/")
    settings.OPS_PUBLIC_URL = "https://ops.example.com"
    assert url().startswith("https://ops.example.com/approvals/link/")
