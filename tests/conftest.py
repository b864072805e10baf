"""Suite-wide fixtures: personas, the event-capture helper, and embedded-PostgreSQL cleanup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from execution.enums import Role
from tests.factories import MembershipFactory, TenantFactory, UserFactory

# One session-wide browser for every browser test: a second sync_playwright() started while the
# first is alive fails ("Sync API inside the asyncio loop"), so the fixtures live here only.
from tests.support.browser import browser, page  # noqa: F401 - pytest fixtures


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop this process's Redis and its embedded cluster (.state/test, an xdist worker's
    .state/test/<worker>: opsconductor/settings.py)."""
    from tests.support.redis import stop_suite_redis

    stop_suite_redis()
    from django.conf import settings

    if getattr(settings, "EMBEDDED_DATABASE", False):
        import os

        if os.environ.get("OPS_TEST_KEEP_PG"):
            return
        from django.db import connections

        connections.close_all()
        from opsconductor import embedded_pg

        embedded_pg.stop()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    """The cache holds per-address rate-limit counters; one test's must not throttle the next."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _bridge_stopped_after_the_test() -> Iterator[None]:
    """A socket test or a readiness check starts this process's LISTEN/NOTIFY bridge; stop it
    with the test (its connection would otherwise outlive the test database)."""
    yield
    from execution.realtime import bridge

    running = bridge._bridge
    if running is not None:
        running.stop()
        bridge._bridge = None


@pytest.fixture(autouse=True)
def _drains_in_this_process_do_not_linger(settings: Any) -> None:
    """Tests drain in their own process until the queue is empty, many times; an idle drain
    returns at once here. Worker processes started by tests keep the default linger, and
    tests/execution/worker/test_wake.py tests it."""
    settings.DRAIN_LINGER_SECONDS = 0.0


@pytest.fixture(autouse=True)
def _seeded_timeout_policies(request: pytest.FixtureRequest) -> None:
    """Re-seed the nine policies of migration 0004 for tests that use the database.

    Transactional tests (``transaction=True``) flush every table when they end, data
    migrations included, so a later test would otherwise find no policies.
    """
    marker = request.node.get_closest_marker("django_db")
    uses_db = marker is not None or {"db", "transactional_db"} & set(request.fixturenames)
    if not uses_db:
        return
    transactional = bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
    request.getfixturevalue("transactional_db" if transactional else "db")
    import importlib

    from execution.models import TimeoutPolicy

    if TimeoutPolicy.objects.count() >= 9:
        return
    seed = importlib.import_module("execution.migrations.0004_seed_timeout_policies")
    for sla, action, step, execution, lease, approval, attempts in seed.POLICIES:
        TimeoutPolicy.objects.get_or_create(
            sla_class=sla,
            action_class=action,
            defaults={
                "step_timeout_seconds": step,
                "execution_timeout_seconds": execution,
                "lease_timeout_seconds": lease,
                "approval_timeout_seconds": approval,
                "max_attempts": attempts,
            },
        )


@pytest.fixture
def loopback_opened(settings: Any) -> None:
    """Loopback opened as the operator opens it (``OUTBOUND_OPEN_NETWORKS``), for tests whose
    servers listen on 127.0.0.1: sshd, HTTP receivers, the target PostgreSQL, the service
    stand-ins. The outbound guard stays on (allow-list, the product's own ports, metadata);
    tests/execution/outbound/ test what it refuses."""
    settings.OUTBOUND_OPEN_NETWORKS = ["127.0.0.0/8", "::1"]


@pytest.fixture(scope="session")
def target_pg() -> Iterator[Any]:
    """A PostgreSQL server of its own on 127.0.0.1 (tests/support/pgtarget.py): the database
    asset of the sql tests, never the product's own database."""
    from tests.support.pgtarget import LoopbackPostgres

    server = LoopbackPostgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tenant(db: Any) -> Any:
    return TenantFactory(slug="acme")


@pytest.fixture
def other_tenant(db: Any) -> Any:
    return TenantFactory(slug="other")


def _member(tenant: Any, username: str, role: str) -> Any:
    user = UserFactory(username=username)
    MembershipFactory(tenant=tenant, user=user, role=role)
    return user


@pytest.fixture
def operator(tenant: Any) -> Any:
    return _member(tenant, "olga-operator", Role.OPERATOR)


@pytest.fixture
def deployer(tenant: Any) -> Any:
    return _member(tenant, "dan-deployer", Role.DEPLOYER)


@pytest.fixture
def approver(tenant: Any) -> Any:
    return _member(tenant, "ada-approver", Role.APPROVER)


@pytest.fixture
def viewer(tenant: Any) -> Any:
    return _member(tenant, "vic-viewer", Role.VIEWER)


@pytest.fixture
def tenant_admin(tenant: Any) -> Any:
    return _member(tenant, "ann-admin", Role.ADMIN)


@pytest.fixture
def outsider(other_tenant: Any) -> Any:
    return _member(other_tenant, "oscar-outsider", Role.ADMIN)


@pytest.fixture
def local_asset(tenant: Any) -> Any:
    """A ``local`` asset of the tenant: where command steps run on the worker host."""
    from tests.factories import LocalAssetFactory

    return LocalAssetFactory(tenant=tenant, hostname="local-1")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory local commands may write to: they run as the unprivileged
    LOCAL_RUNNER_USER when the tests run as root, and pytest's tmp_path is private to root."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="opsconductor-test-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class CapturedEvents(list):  # type: ignore[type-arg]
    """Events published after commit, each round-tripped through JSON."""

    def types(self) -> list[str]:
        return [e["event_type"] for e in self]


@pytest.fixture
def capture_events() -> Iterator[CapturedEvents]:
    """Like Zulip's capture_send_event_calls: what publish_event() sent, JSON round-tripped."""
    from execution.services import events as events_module

    captured = CapturedEvents()

    def publisher(event: Any) -> None:
        payload = {
            "id": event.pk,
            "event_type": event.event_type,
            "execution_id": str(event.execution_id),
            "from_status": event.from_status,
            "to_status": event.to_status,
            "details": event.details,
        }
        captured.append(json.loads(json.dumps(payload)))

    events_module.register_publisher(publisher)
    try:
        yield captured
    finally:
        events_module._publishers.remove(publisher)
