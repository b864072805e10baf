"""/healthz, /readyz, ``manage.py health`` and ``manage.py go_no_go`` (docs/contract.md#monitoring)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from execution.models import TimeoutPolicy

pytestmark = pytest.mark.django_db


def _run(command: str, *args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_healthz_answers_without_touching_anything(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_is_503_naming_workers_when_no_worker_heartbeats(client: Client, policies: None) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["failing"] == ["workers"]
    assert body["checks"]["workers"]["ok"] is False
    for name in ("database", "migrations", "policies", "channel_layer"):
        assert body["checks"][name]["ok"] is True, body["checks"][name]


def test_readyz_is_200_with_a_live_worker(client: Client, policies: None, live_worker: Any) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ready",
        "failing": [],
        "checks": response.json()["checks"],
    }
    assert "1 worker cluster(s)" in response.json()["checks"]["workers"]["detail"]


def test_stale_or_stopped_heartbeats_do_not_count(client: Client, policies: None, stale_worker: Any) -> None:
    assert client.get("/readyz").json()["failing"] == ["workers"]
    stale_worker.last_seen_at = timezone.now()
    stale_worker.stopped_at = timezone.now()
    stale_worker.save()
    assert client.get("/readyz").json()["failing"] == ["workers"]


def test_readyz_names_missing_policies(client: Client, policies: None, live_worker: Any) -> None:
    TimeoutPolicy.objects.filter(sla_class="long", action_class="deploy").delete()
    body = client.get("/readyz").json()
    assert body["failing"] == ["policies"]
    assert "longxdeploy" in body["checks"]["policies"]["detail"]


def test_health_command_exit_code_follows_readiness(policies: None) -> None:
    code, out = _run("health")
    assert code == 1
    assert "FAIL workers" in out and "NOT READY (workers)" in out

    from tests.factories import WorkerHeartbeatFactory

    WorkerHeartbeatFactory()
    code, out = _run("health")
    assert code == 0, out
    assert "READY" in out


def test_go_no_go_says_no_go_without_workers_and_go_with_one(policies: None) -> None:
    code, out = _run("go_no_go")
    assert code == 1
    assert "NO-GO" in out
    assert "- workers: no worker heartbeat" in out
    for item in ("schema", "enums", "migrations", "policies", "secret_backends", "channel_layer", "masking"):
        assert f"ok   {item}" in out, out

    from tests.factories import WorkerHeartbeatFactory

    WorkerHeartbeatFactory()
    code, out = _run("go_no_go")
    assert code == 0, out
    assert out.strip().splitlines()[-1].endswith("GO")
    assert "NO-GO" not in out


def test_go_no_go_json_lists_every_check(policies: None, live_worker: Any) -> None:
    import json

    code, out = _run("go_no_go", "--json")
    payload = json.loads(out)
    assert code == 0 and payload["decision"] == "GO"
    assert [c["name"] for c in payload["checks"]] == [
        "database",
        "schema",
        "enums",
        "migrations",
        "policies",
        "workers",
        "secret_backends",
        "channel_layer",
        "masking",
    ]


def test_go_no_go_fails_when_masking_leaks(policies: None, live_worker: Any, monkeypatch: Any) -> None:
    import execution.masking

    monkeypatch.setattr(execution.masking, "mask_text", lambda text, secrets=(): text)
    code, out = _run("go_no_go")
    assert code == 1
    assert "- masking: not masked: resolved secret value" in out


def test_unapplied_migrations_are_named(
    client: Client, policies: None, live_worker: Any, monkeypatch: Any
) -> None:
    from monitoring.services import readiness

    monkeypatch.setattr(readiness, "pending_migrations", lambda: ["monitoring.0002_future"])
    body = client.get("/readyz").json()
    assert body["failing"] == ["migrations"]
    assert "monitoring.0002_future" in body["checks"]["migrations"]["detail"]


def test_unreachable_database_fails_the_checks_that_need_it() -> None:
    import subprocess

    from tests.support.processes import manage_argv, subprocess_env

    env = subprocess_env(DATABASE_URL="postgres://postgres@127.0.0.1:1/unreachable")
    health = subprocess.run(manage_argv("health"), env=env, capture_output=True, text=True, timeout=120)
    assert health.returncode == 1
    assert "FAIL database" in health.stdout
    assert "FAIL channel_layer  skipped: database unreachable (the bridge listens on it)" in health.stdout
    go = subprocess.run(manage_argv("go_no_go"), env=env, capture_output=True, text=True, timeout=120)
    assert go.returncode == 1
    assert "NO-GO" in go.stdout and "- database: OperationalError" in go.stdout
    assert "ok   masking" in go.stdout


def test_channel_layer_check_works_from_a_thread_running_an_event_loop() -> None:
    import asyncio

    from monitoring.services.readiness import check_channel_layer

    async def inside_a_loop() -> Any:
        return check_channel_layer()

    result = asyncio.run(inside_a_loop())
    assert result.ok, result.detail


def test_the_channel_layer_check_goes_through_the_bridge(client: Client, policies: None) -> None:
    detail = client.get("/readyz").json()["checks"]["channel_layer"]
    assert detail["ok"] is True and "through the LISTEN/NOTIFY bridge (backend pid" in detail["detail"]


def test_a_bridge_that_cannot_listen_fails_the_channel_layer_check(
    client: Client, policies: None, live_worker: Any, monkeypatch: Any
) -> None:
    """The in-process layer answered itself: /readyz said ok while no event could reach a
    browser. Now the token has to come back through the bridge."""
    from execution.realtime import bridge

    params = bridge.connection_params()
    monkeypatch.setattr(bridge, "connection_params", lambda *a: {**params, "port": 1, "host": "127.0.0.1"})
    body = client.get("/readyz").json()
    assert body["failing"] == ["channel_layer"]
    assert "the LISTEN/NOTIFY bridge is not connected" in body["checks"]["channel_layer"]["detail"]
    code, out = _run("health")
    assert code == 1 and "FAIL channel_layer" in out
    code, out = _run("go_no_go")
    assert code == 1 and "- channel_layer: RuntimeError: the LISTEN/NOTIFY bridge is not connected" in out
