"""Triggers (docs/runbooks.md#triggers): signed deliveries launch the runbook; a wrong
signature, an old timestamp or a replay creates nothing; an Alertmanager batch of 3 alerts
sent twice creates 3 executions; the hook is rate-limited."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from execution.models import Execution
from execution.runbooks.models import Runbook, RunbookTrigger, TriggerDelivery
from execution.runbooks.triggers import signature_of
from tests.execution.api.conftest import client_for

pytestmark = pytest.mark.django_db


def _hook(admin: Any, fmt: str, mapping: dict[str, str]) -> tuple[str, str]:
    answer = client_for(admin).post(
        "/api/v1/runbooks/health/triggers/",
        {"tenant": "acme", "format": fmt, "mapping": mapping},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    data = answer.json()
    assert data["url"] == f"/api/v1/hooks/{data['id']}/"
    return data["url"], data["secret"]


def _send(url: str, secret: str, payload: Any, *, timestamp: int | None = None, signature: str = "") -> Any:
    body = json.dumps(payload).encode()
    ts = str(timestamp if timestamp is not None else int(time.time()))
    sig = signature or "sha256=" + signature_of(secret, ts, body)
    return client_for().post(
        url,
        data=body,
        content_type="application/json",
        HTTP_X_OPSCONDUCTOR_TIMESTAMP=ts,
        HTTP_X_OPSCONDUCTOR_SIGNATURE=sig,
    )


def _alert(host: str, fingerprint: str, status: str = "firing") -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "HighLatency", "instance": host},
        "annotations": {"summary": "slow"},
        "startsAt": "2026-12-03T10:00:00Z",
        "fingerprint": fingerprint,
    }


def test_only_a_tenant_admin_makes_a_hook_and_the_secret_is_stored_encrypted(
    tenant_admin: Any, operator: Any, health: Runbook
) -> None:
    answer = client_for(operator).post(
        "/api/v1/runbooks/health/triggers/", {"tenant": "acme", "mapping": {}}, format="json"
    )
    assert answer.status_code == 403
    _url, secret = _hook(tenant_admin, "json", {"host": "/host"})
    trigger = RunbookTrigger.objects.get()
    assert secret not in trigger.secret_ciphertext and trigger.owner == tenant_admin
    bad = client_for(tenant_admin).post(
        "/api/v1/runbooks/health/triggers/",
        {"tenant": "acme", "mapping": {"nope": "/x", "host": "labels"}},
        format="json",
    )
    assert sorted(e["path"] for e in bad.json()["errors"]) == ["mapping.host", "mapping.nope"]


def test_a_signed_delivery_launches_with_mapped_values(tenant_admin: Any, health: Runbook) -> None:
    url, secret = _hook(tenant_admin, "json", {"host": "/target/host", "tries": "/tries"})
    answer = _send(url, secret, {"target": {"host": "web-2"}, "tries": 4})
    assert answer.status_code == 202, answer.content
    (launched,) = answer.json()["executions"]
    assert launched["links"]["page"] == f"/executions/{launched['execution_id']}/"
    execution = Execution.objects.get()
    assert execution.actor == tenant_admin
    assert execution.runbook["params"]["host"] == "web-2" and execution.runbook["params"]["tries"] == 4


@pytest.mark.parametrize("attack", ["wrong signature", "old timestamp", "future timestamp", "no signature"])
def test_a_bad_signature_or_timestamp_is_a_401_and_creates_nothing(
    tenant_admin: Any, health: Runbook, attack: str
) -> None:
    url, secret = _hook(tenant_admin, "json", {"host": "/host"})
    now = int(time.time())
    kwargs: dict[str, Any] = {
        "wrong signature": {"signature": "sha256=" + signature_of("not-the-secret", str(now), b"{}")},
        "old timestamp": {"timestamp": now - 301},
        # a minute past the window's edge: the clock moves on while the request is on its way
        # (now + 301 was inside the window once a loaded machine took a second to send it)
        "future timestamp": {"timestamp": now + 360},
        "no signature": {"signature": "sha256="},
    }[attack]
    answer = _send(url, secret, {"host": "web-1"}, **kwargs)
    assert answer.status_code == 401
    assert not Execution.objects.exists() and not TriggerDelivery.objects.exists()


def test_a_replay_is_refused_and_creates_nothing(tenant_admin: Any, health: Runbook) -> None:
    url, secret = _hook(tenant_admin, "json", {"host": "/host"})
    now = int(time.time())
    assert _send(url, secret, {"host": "web-1"}, timestamp=now).status_code == 202
    again = _send(url, secret, {"host": "web-1"}, timestamp=now)
    assert again.status_code == 409 and "replay" in again.json()["detail"]
    assert Execution.objects.count() == 1 and TriggerDelivery.objects.count() == 1


def test_an_alertmanager_batch_of_three_sent_twice_creates_three_executions(
    tenant_admin: Any, health: Runbook
) -> None:
    url, secret = _hook(tenant_admin, "alertmanager", {"host": "/labels/instance"})
    batch = {
        "version": "4",
        "status": "firing",
        "alerts": [
            _alert("web-1", "a1"),
            _alert("web-2", "a2"),
            _alert("web-1", "a3"),
            _alert("web-2", "a4", status="resolved"),
        ],
    }
    first = _send(url, secret, batch, timestamp=int(time.time()) - 1)
    assert first.status_code == 202, first.content
    assert len(first.json()["executions"]) == 3 and first.json()["ignored"] == 1
    second = _send(url, secret, batch)  # Alertmanager repeats the group later (a new timestamp)
    assert second.status_code == 202
    assert [e["replayed"] for e in second.json()["executions"]] == [True, True, True]
    assert Execution.objects.count() == 3
    assert sorted(e.runbook["params"]["host"] for e in Execution.objects.all()) == ["web-1", "web-1", "web-2"]


def test_a_resolved_alert_is_launched_when_the_mapping_reads_its_status(
    tenant_admin: Any, tenant: Any, health: Runbook
) -> None:
    from execution.runbooks.services import runbook_version_add
    from tests.execution.runbooks.conftest import HEALTH_PARAMETERS, HEALTH_PLAN

    parameters = {
        **HEALTH_PARAMETERS,
        "properties": {
            **HEALTH_PARAMETERS["properties"],
            "state": {"type": "string", "enum": ["firing", "resolved"]},
        },
    }
    runbook_version_add(runbook=health, actor=tenant_admin, parameters=parameters, plan=HEALTH_PLAN)
    url, secret = _hook(tenant_admin, "alertmanager", {"host": "/labels/instance", "state": "/status"})
    answer = _send(url, secret, {"alerts": [_alert("web-1", "r1", status="resolved")]})
    assert answer.status_code == 202 and answer.json()["ignored"] == 0
    assert Execution.objects.get().runbook["params"]["state"] == "resolved"


def test_a_value_the_body_lacks_or_the_schema_refuses_is_a_400(tenant_admin: Any, health: Runbook) -> None:
    url, secret = _hook(tenant_admin, "json", {"host": "/target/host"})
    missing = _send(url, secret, {"target": {}})
    assert missing.status_code == 400
    assert [e["path"] for e in missing.json()["errors"]] == ["body/target/host"]
    refused = _send(url, secret, {"target": {"host": "db-1"}})
    assert [e["path"] for e in refused.json()["errors"]] == ["params.host"]
    assert not Execution.objects.exists()


def test_each_hook_is_rate_limited(tenant_admin: Any, health: Runbook, settings: Any) -> None:
    settings.TRIGGER_RATE_PER_MINUTE = 2
    url, secret = _hook(tenant_admin, "json", {"host": "/host", "tries": "/n"})
    assert [_send(url, secret, {"host": "web-1", "n": n}).status_code for n in (1, 2, 3)] == [202, 202, 429]
    assert Execution.objects.count() == 2
    other_url, other_secret = _hook(tenant_admin, "json", {"host": "/host"})
    assert _send(other_url, other_secret, {"host": "web-2"}).status_code == 202  # per hook


def test_an_owner_without_the_right_any_more_is_refused(tenant_admin: Any, health: Runbook) -> None:
    url, secret = _hook(tenant_admin, "json", {"host": "/host"})
    from execution.models import Membership

    Membership.objects.filter(user=tenant_admin).update(role="viewer")
    answer = _send(url, secret, {"host": "web-1"})
    assert answer.status_code == 403 and answer.json()["refused"]
    assert not Execution.objects.exists()
