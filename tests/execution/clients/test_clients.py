"""The service clients against real HTTP servers on loopback, with faults."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from execution.clients import AssetServiceClient, AutomationServiceClient, ServiceError, ServiceUnavailable
from execution.errors import NotFound
from execution.runners.base import ResolvedTarget
from execution.runners.connections import automation
from execution.services.assets import asset_resolve
from tests.execution.runners.conftest import make_ctx
from tests.factories import AssetFactory
from tests.support.automation import AutomationStandIn
from tests.support.httpserver import LoopbackHttpServer, json_answer
from tests.support.processes import free_port

ASSET = {
    "id": "a-17",
    "hostname": "web-1",
    "connection_type": "ssh",
    "address": "10.0.0.7",
    "port": 2222,
    "username": "deploy",
    "credential_ref": "vault:web-1#private_key",
    "tags": ["web"],
    "metadata": {"rack": "r1"},
}


def flaky(failures: int, answer: Any) -> Any:
    calls = {"n": 0}

    def respond(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        calls["n"] += 1
        if calls["n"] <= failures:
            return json_answer(503, {"error": "warming up"})
        return answer

    return respond


def test_503s_then_success_is_retried_with_backoff() -> None:
    with LoopbackHttpServer(flaky(2, json_answer(200, ASSET))) as server:
        client = AssetServiceClient(base_url=server.url, retries=3, backoff_factor=0.05)
        assert client.asset_get(tenant="acme", asset_id="a-17")["hostname"] == "web-1"
    assert len(server.requests) == 3
    assert server.requests[-1]["path"] == "/api/v1/tenants/acme/assets/a-17"


def test_503_forever_gives_a_service_error_after_the_retries() -> None:
    with LoopbackHttpServer(flaky(100, None)) as server:
        client = AssetServiceClient(base_url=server.url, retries=2, backoff_factor=0.01)
        with pytest.raises(ServiceError) as info:
            client.asset_get(tenant="acme", asset_id=1)
    assert info.value.status_code == 503
    assert len(server.requests) == 3


def test_timeout_is_retried_then_unavailable() -> None:
    def slow(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        time.sleep(3)
        return json_answer(200, ASSET)

    with LoopbackHttpServer(slow) as server:
        client = AssetServiceClient(base_url=server.url, timeout=0.5, retries=1, backoff_factor=0.01)
        with pytest.raises(ServiceUnavailable, match="unreachable"):
            client.asset_get(tenant="acme", asset_id=1)
        deadline = time.monotonic() + 10
        while len(server.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(server.requests) == 2  # the first try and one retry


def test_connection_refused_is_unavailable_and_health_says_so() -> None:
    client = AutomationServiceClient(
        base_url=f"http://127.0.0.1:{free_port()}", retries=2, backoff_factor=0.01
    )
    with pytest.raises(ServiceUnavailable):
        client.job_get(job_id="j-1")
    health = client.health()
    assert health["ok"] is False and health["status_code"] is None


def test_health_ok_and_bearer_token() -> None:
    with LoopbackHttpServer(lambda m, p, h, b: json_answer(200, {"status": "ok"})) as server:
        client = AssetServiceClient(base_url=server.url, token="svc-token")
        assert client.health()["ok"] is True
        client.assets_query(tenant="acme", tag="web")
    assert server.requests[1]["headers"]["Authorization"] == "Bearer svc-token"
    assert server.requests[1]["path"] == "/api/v1/tenants/acme/assets?tag=web"


@pytest.mark.django_db
def test_a_local_asset_from_the_asset_service_is_refused(tenant: Any, settings: Any) -> None:
    local = {**ASSET, "connection_type": "local"}
    with LoopbackHttpServer(lambda m, p, h, b: json_answer(200, local)) as server:
        settings.ASSET_SERVICE_URL = server.url
        with pytest.raises(NotFound, match="local connection"):
            asset_resolve(tenant=tenant, target={"asset_id": "a-17"})


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["address", "hostname"])
def test_an_asset_service_answer_pointing_at_a_socket_on_the_worker_host_is_refused(
    tenant: Any, settings: Any, field: str
) -> None:
    # A database asset whose address is the embedded PostgreSQL's socket directory was the
    # product's own database (trust authentication): every tenant's rows to any submitter.
    socket = {**ASSET, "connection_type": "database", "address": "", field: "/srv/opsconductor/.state/pgdata"}
    with LoopbackHttpServer(lambda m, p, h, b: json_answer(200, socket)) as server:
        settings.ASSET_SERVICE_URL = server.url
        with pytest.raises(NotFound, match=r"is a path \(a unix socket"):
            asset_resolve(tenant=tenant, target={"asset_id": "a-17"})


def test_404_is_not_found() -> None:
    with LoopbackHttpServer(lambda m, p, h, b: json_answer(404, {})) as server, pytest.raises(NotFound):
        AssetServiceClient(base_url=server.url).asset_get(tenant="acme", asset_id=1)
    assert len(server.requests) == 1  # a 404 is not retried


@pytest.mark.django_db
def test_asset_resolve_uses_the_asset_service_when_configured(tenant: Any, settings: Any) -> None:
    AssetFactory(tenant=tenant, hostname="web-1", address="192.0.2.1")

    def respond(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if path.startswith("/api/v1/tenants/acme/assets?hostname=web-1"):
            return json_answer(200, {"results": [ASSET]})
        if path == "/api/v1/tenants/acme/assets/a-17":
            return json_answer(200, ASSET)
        return json_answer(200, {"results": []}) if "?" in path else json_answer(404, {})

    with LoopbackHttpServer(respond) as server:
        settings.ASSET_SERVICE_URL = server.url
        by_name = asset_resolve(tenant=tenant, target={"hostname": "web-1"})
        by_id = asset_resolve(tenant=tenant, target={"asset_id": "a-17"})
        with pytest.raises(NotFound):
            asset_resolve(tenant=tenant, target={"hostname": "nope"})
    assert by_name == by_id
    assert by_name == ResolvedTarget(
        asset_id="a-17",
        hostname="web-1",
        connection_type="ssh",
        address="10.0.0.7",
        port=2222,
        username="deploy",
        credential_ref="vault:web-1#private_key",
        tags=("web",),
        metadata={"rack": "r1"},
    )
    settings.ASSET_SERVICE_URL = None
    assert asset_resolve(tenant=tenant, target={"hostname": "web-1"}).address == "192.0.2.1"


def automation_ctx(command: str = "deploy.sh", **kwargs: Any) -> Any:
    target = ResolvedTarget(asset_id="3", hostname="app-3", connection_type="automation")
    return make_ctx("command", {"command": command, "env": {"TOKEN": "t0k"}}, target=target, **kwargs)


def test_automation_connection_runs_and_streams(settings: Any) -> None:
    chunks: list[str] = []
    with AutomationStandIn() as service:
        settings.AUTOMATION_SERVICE_URL = service.url
        ctx = automation_ctx(
            'echo "step 1"; sleep 0.5; echo "step 2 $TOKEN"', emit_output=lambda s, t: chunks.append(t)
        )
        result = automation.run_command(ctx)
    assert result.status == "completed", result.error_message
    assert result.output["stdout"] == "step 1\nstep 2 t0k\n"
    assert "".join(c for c in chunks if c.startswith("step ")) == "step 1\nstep 2 t0k\n"
    (job,) = service.jobs.values()
    assert job.env == {"TOKEN": "t0k"} and job.target["hostname"] == "app-3"
    assert result.output["automation_job_id"] == job.id


def test_automation_cancel_cancels_the_remote_job(settings: Any) -> None:
    with AutomationStandIn() as service:
        settings.AUTOMATION_SERVICE_URL = service.url
        ctx = automation_ctx("sleep 30", timeout=60)
        threading.Timer(1.0, ctx.cancel_event.set).start()
        result = automation.run_command(ctx)
        assert result.status == "cancelled"
        # The job is still held when run() returns; the engine's cleanup() cancels it.
        assert [j.status for j in service.jobs.values()] == ["running"] and ctx.held
        ctx.held.release()
    assert [j.status for j in service.jobs.values()] == ["cancelled"]
    assert any(r["path"].endswith("/cancel") for r in service.requests)


def test_automation_without_url_fails_clearly(settings: Any) -> None:
    settings.AUTOMATION_SERVICE_URL = None
    result = automation.run_command(automation_ctx())
    assert result.status == "failed" and "AUTOMATION_SERVICE_URL is not set" in result.error_message
